"""The skeleton mask of Mask as Supervision (seed 002): the 17 named joints drawn as bones and torso lines.

Each line is exp(-d^2 / sigma^2) of a cell's distance d (crop px) to the segment between two joints (the paper's
form; :func:`kp3d_core.render_keypoints.segment_maps` draws exp(-d^2 / (2 s^2)), so it is called with
s = sigma / sqrt(2)). The lines are the 16 bones of :data:`kp3d_core.skeleton.BONES` (the paper's 17 count the head
twice) and 8 torso lines that fill the trunk between hips and shoulders; the 4 arm bones (shoulder-elbow,
elbow-wrist) are drawn with their own, smaller sigma, since an arm is far thinner than a leg. Example::

    m = skeleton_mask(kp_hat, size=32, crop_size=64, sigma=1.3, arm_sigma=0.8)   # (N, 1, 32, 32) in [0, 1]
    m = skeleton_mask(kp_hat, 32, 64, 1.3, 0.8, arms=False)                       # cascade stage 1
"""
from __future__ import annotations

import math

import torch

from .render_keypoints import segment_maps, soft_union
from .skeleton import BONES, JOINT_INDEX, NUM_JOINTS

_J = JOINT_INDEX
TORSO_LINES: tuple[tuple[int, int], ...] = (
    (_J["left_hip"], _J["right_hip"]),
    (_J["left_shoulder"], _J["right_shoulder"]),
    (_J["left_hip"], _J["left_shoulder"]),
    (_J["right_hip"], _J["right_shoulder"]),
    (_J["left_hip"], _J["right_shoulder"]),  # the two diagonals cross the belly: the trunk is a filled area
    (_J["right_hip"], _J["left_shoulder"]),
    (_J["spine"], _J["left_shoulder"]),
    (_J["spine"], _J["right_shoulder"]),
)
"""(joint, joint) lines across the trunk, drawn with the body sigma."""

ARM_JOINTS: frozenset[int] = frozenset(_J[n] for n in ("left_elbow", "left_wrist", "right_elbow", "right_wrist"))
"""Joints that only the arm bones reach: the cascade leaves them out until ``loss.arms_from_step``."""

LINES: tuple[tuple[int, int], ...] = BONES + TORSO_LINES
"""Every line of the skeleton mask: the bones, then the torso lines (24 in all)."""

IS_ARM: tuple[bool, ...] = tuple(c in ARM_JOINTS for _, c in LINES)
"""Per line of :data:`LINES`: whether it is an arm bone (drawn with ``arm_sigma``, left out without arms)."""


def skeleton_lines(arms: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The lines to draw: (L, 2) long joint pairs and (L,) bool 'is an arm bone'; without ``arms``, no arm bones."""
    keep = [i for i, a in enumerate(IS_ARM) if arms or not a]
    pairs = torch.tensor([LINES[i] for i in keep], dtype=torch.long)
    return pairs, torch.tensor([IS_ARM[i] for i in keep], dtype=torch.bool)


def skeleton_mask(joints: torch.Tensor, size: int, crop_size: int, sigma: float, arm_sigma: float,
                  arms: bool = True, union: str = "max") -> torch.Tensor:
    """Draw the skeleton of 17 named joints as a soft mask.

    Args:
        joints: (N, 17, 2) crop px, joint k = ``skeleton.JOINT_NAMES[k]``.
        size: side of the output map in cells (cell centres as in :mod:`kp3d_core.render_keypoints`).
        crop_size: side of the crop in pixels.
        sigma, arm_sigma: line widths in crop px, exp(-d^2 / sigma^2); arm bones use ``arm_sigma``.
        arms: draw the arm bones (the cascade's stage 3), else leave them out.
        union: 'max' (the brightest line wins: a line's value does not grow where lines cross, so crossings are not
            brighter than the silhouette allows) or 'soft' (1 - prod(1 - m), smooth gradients to every line).
    Returns:
        (N, 1, size, size) in [0, 1].
    """
    if joints.dim() != 3 or joints.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"joints: expected shape (N, {NUM_JOINTS}, 2) crop px, got {tuple(joints.shape)}")
    if sigma <= 0 or arm_sigma <= 0:
        raise ValueError(f"sigma, arm_sigma: must be > 0 crop px, got {sigma}, {arm_sigma}")
    if union not in ("max", "soft"):
        raise ValueError(f"union: must be 'max' or 'soft', got {union!r}")
    pairs, is_arm = skeleton_lines(arms)
    pairs = pairs.to(joints.device)
    maps = segment_maps(joints, pairs[~is_arm.to(joints.device)], size, crop_size, sigma / math.sqrt(2.0))
    if bool(is_arm.any()):
        arm = segment_maps(joints, pairs[is_arm.to(joints.device)], size, crop_size, arm_sigma / math.sqrt(2.0))
        maps = torch.cat([maps, arm], dim=1)
    return maps.amax(dim=1, keepdim=True) if union == "max" else soft_union(maps)
