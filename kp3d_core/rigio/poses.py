"""Rigid poses as (4, 4) matrices, quaternions and Rodrigues vectors, and moving a whole rig.

Names follow ``T_a_b``: the pose of frame ``b`` in frame ``a``, mapping points from ``b`` to ``a``
(``X_a = T_a_b @ X_b``). Quaternions are Hamilton, unit, in the order the caller names
(``xyzw`` for ROS geometry_msgs, ``wxyz`` for COLMAP).

Example::

    T_world_cam = pose(quaternion_to_rotation([0, 0, 0, 1]), [1.0, 2.0, 0.5])
    T_cam_world = invert(T_world_cam)
    rig_m = move_rig(rig_mm, T_world_source, metres_per_unit=0.001)
"""
from __future__ import annotations

import cv2
import numpy as np

from ..rig import Rig


def pose(R, t) -> np.ndarray:
    """(3, 3) rotation and (3,) translation -> (4, 4) homogeneous transform."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert(T) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform (exact transpose of the rotation, no general inverse)."""
    T = np.asarray(T, dtype=np.float64)
    R = T[:3, :3]
    return pose(R.T, -R.T @ T[:3, 3])


def quaternion_to_rotation(q_xyzw) -> np.ndarray:
    """(4,) unit quaternion x, y, z, w (Hamilton) -> (3, 3) rotation matrix."""
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def rotation_to_quaternion(R) -> np.ndarray:
    """(3, 3) rotation -> (4,) unit quaternion x, y, z, w with w >= 0.

    Uses the largest of the four squared components (w, x, y or z) as the pivot, so the result keeps
    full precision for every rotation, including half turns where w is near zero.
    """
    R = np.asarray(R, dtype=np.float64)
    trace = np.trace(R)
    squares = np.array([1 + trace, 1 + 2 * R[0, 0] - trace, 1 + 2 * R[1, 1] - trace, 1 + 2 * R[2, 2] - trace])
    i = int(np.argmax(squares))  # 4 * (w^2, x^2, y^2, z^2)
    s = 2.0 * np.sqrt(squares[i])
    if i == 0:
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    elif i == 1:
        q = [s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif i == 2:
        q = [(R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4, (R[1, 0] - R[0, 1]) / s]
    q = np.asarray(q)
    return -q if q[3] < 0 else q


def rodrigues_to_rotation(rvec) -> np.ndarray:
    """(3,) Rodrigues (axis * angle, radians) vector -> (3, 3) rotation (OpenCV's convention)."""
    return cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]


def rotation_to_rodrigues(R) -> np.ndarray:
    """(3, 3) rotation -> (3,) Rodrigues vector."""
    return cv2.Rodrigues(np.asarray(R, dtype=np.float64))[0].reshape(3)


def rotation_between(a, b) -> np.ndarray:
    """(3, 3) the smallest rotation taking direction ``a`` onto direction ``b`` ((3,) each, any length).

    Axis-aligned inputs give an exact signed permutation (no rounding), so ``--up=-y`` is exact.
    """
    a = np.asarray(a, dtype=np.float64) / np.linalg.norm(a)
    b = np.asarray(b, dtype=np.float64) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        if c > 0:
            return np.eye(3)
        # a half turn about an axis perpendicular to a: x when it is (z down -> z up keeps x)
        axis = np.cross(a, [0.0, 1.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [1.0, 0.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    V = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + V + V @ V / (1.0 + c)


def move_rig(rig: Rig, T_world_source=None, metres_per_unit: float = 1.0, world_frame: str | None = None) -> Rig:
    """The same cameras with poses in another frame: lengths scaled to metres, then moved rigidly.

    Args:
        rig: cameras with ``T_world_cam`` in the *source* frame and units.
        T_world_source: (4, 4) rigid transform, metres, applied after scaling (default identity).
        metres_per_unit: metres per source unit (0.001 for millimetres).
        world_frame: the new rig's world frame id (default: the input's).
    """
    T_ws = np.eye(4) if T_world_source is None else np.asarray(T_world_source, dtype=np.float64)
    cams = []
    for cam in rig:
        T_source_cam = cam.T_world_cam
        T_source_cam[:3, 3] *= metres_per_unit
        cams.append(cam.with_pose(T_ws @ T_source_cam))
    return Rig(tuple(cams), world_frame or rig.world_frame)

