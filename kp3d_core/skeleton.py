"""The studio skeleton: 17 Human3.6M-style joints, their tree and the bones drawn between them.

Joint order is fixed and documented here once; every array of joints in kp3d (ground truth,
mapped pose, published PoseArray) uses it.
"""
from __future__ import annotations

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",          # 0  root
    "right_hip",       # 1
    "right_knee",      # 2
    "right_ankle",     # 3
    "left_hip",        # 4
    "left_knee",       # 5
    "left_ankle",      # 6
    "spine",           # 7
    "thorax",          # 8
    "neck",            # 9
    "head",            # 10 top of the head
    "left_shoulder",   # 11
    "left_elbow",      # 12
    "left_wrist",      # 13
    "right_shoulder",  # 14
    "right_elbow",     # 15
    "right_wrist",     # 16
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
ROOT = 0

# Parent of each joint in the kinematic tree (-1 for the root).
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

# Bones as (parent, child) pairs, in joint order of the child.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

# Left/right joint pairs (left, right): used by the ambiguity ratio and by flips.
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = ((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16))

# Permutation that swaps every left joint with its right twin.
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    next((r for l, r in LEFT_RIGHT_PAIRS if l == j), next((l for l, r in LEFT_RIGHT_PAIRS if r == j), j))
    for j in range(NUM_JOINTS)
)
