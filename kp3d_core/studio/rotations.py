"""Rotations about the world axes, batched: (...,) angles in radians -> (..., 3, 3) matrices (right-handed)."""
from __future__ import annotations

import numpy as np


def rot_x(a) -> np.ndarray:
    """(...,) radians -> (..., 3, 3) rotations about x."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(a.shape + (3, 3))


def rot_y(a) -> np.ndarray:
    """(...,) radians -> (..., 3, 3) rotations about y."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(a.shape + (3, 3))


def rot_z(a) -> np.ndarray:
    """(...,) radians -> (..., 3, 3) rotations about z (counter-clockwise seen from above)."""
    a = np.asarray(a, dtype=np.float64)
    c, s, o, z = np.cos(a), np.sin(a), np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(a.shape + (3, 3))
