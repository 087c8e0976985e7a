"""Studio motion: the `Motion` container and bone-level helpers (bone lengths, rebuild, volume fit).

World frame: z up, metres, floor at z = 0, capture volume a disc of `volume_radius` around the
origin. Joint order: `kp3d_core.skeleton.JOINT_NAMES` (17 joints, ``head`` is the top of the head).
Subjects' proportions are in :mod:`.proportions`, the procedural generator in :mod:`.procedural`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..skeleton import BONES, NUM_JOINTS


# --------------------------------------------------------------------------------------------
# Motion container
# --------------------------------------------------------------------------------------------
@dataclass
class Motion:
    """A sequence of studio poses.

    Attributes:
        name: short identifier (clip file stem or ``procedural_seed<N>``).
        joints3d: (T, 17, 3) float64 metres, world frame z up, joint order of kp3d_core.skeleton.
        fps: frames per second.
        source: where it came from (a BVH path, or ``procedural``).
        segments: optional action labels as (action, first frame, end frame exclusive).
    """

    name: str
    joints3d: np.ndarray
    fps: float
    source: str
    segments: tuple[tuple[str, int, int], ...] = ()

    def __post_init__(self) -> None:
        j = np.asarray(self.joints3d, dtype=np.float64)
        if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"Motion {self.name!r}: joints3d must be (T, {NUM_JOINTS}, 3), got {j.shape}")
        if j.shape[0] < 1:
            raise ValueError(f"Motion {self.name!r}: joints3d has no frames")
        if not np.isfinite(j).all():
            raise ValueError(f"Motion {self.name!r}: joints3d has non-finite values")
        if not self.fps > 0:
            raise ValueError(f"Motion {self.name!r}: fps must be > 0, got {self.fps}")
        self.joints3d = j

    @property
    def num_frames(self) -> int:
        return int(self.joints3d.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    def bone_lengths(self) -> np.ndarray:
        """(T, 16) metres, one column per `skeleton.BONES` entry."""
        return bone_lengths(self.joints3d)

    def resample(self, fps: float) -> "Motion":
        """The same motion at another frame rate, keeping every bone length exact.

        The pelvis is interpolated linearly; each bone's direction by normalised linear
        interpolation and its length linearly, then the tree is rebuilt, so constant bone
        lengths stay constant (plain position interpolation would shorten bending limbs).
        """
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if abs(fps - self.fps) < 1e-9 * self.fps:
            return replace(self, joints3d=self.joints3d.copy())
        n_new = int(np.floor(self.duration * fps + 1e-6)) + 1
        t_src = np.arange(n_new) * (self.fps / fps)            # positions in source frames
        i0 = np.clip(np.floor(t_src).astype(int), 0, self.num_frames - 1)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        w = (t_src - i0)[:, None]
        J = self.joints3d
        parents = np.asarray([p for p, _ in BONES])
        children = np.asarray([c for _, c in BONES])
        vec = J[:, children] - J[:, parents]                     # (T, 16, 3)
        length = np.linalg.norm(vec, axis=-1)
        unit = vec / np.maximum(length, 1e-12)[..., None]
        u = (1 - w[..., None]) * unit[i0] + w[..., None] * unit[i1]
        u /= np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
        L = (1 - w) * length[i0] + w * length[i1]
        root = (1 - w) * J[i0, 0] + w * J[i1, 0]
        out = build_from_bones(root, u, L)
        segs = tuple((a, int(round(s * fps / self.fps)), int(round(e * fps / self.fps)))
                     for a, s, e in self.segments)
        return Motion(self.name, out, float(fps), self.source, segs)

    def slice(self, start: int, stop: int) -> "Motion":
        """Frames [start, stop) as a new Motion (segments clipped and shifted)."""
        segs = tuple((a, max(s, start) - start, min(e, stop) - start)
                     for a, s, e in self.segments if e > start and s < stop)
        return Motion(self.name, self.joints3d[start:stop].copy(), self.fps, self.source, segs)


def bone_lengths(joints3d: np.ndarray) -> np.ndarray:
    """(..., 17, 3) joints -> (..., 16) bone lengths in the same units, `skeleton.BONES` order."""
    p = [a for a, _ in BONES]
    c = [b for _, b in BONES]
    return np.linalg.norm(joints3d[..., c, :] - joints3d[..., p, :], axis=-1)


def build_from_bones(root: np.ndarray, unit: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Rebuild joints from the pelvis, bone directions and bone lengths.

    Args:
        root: (T, 3) pelvis positions.
        unit: (T, 16, 3) unit bone directions (parent -> child), `skeleton.BONES` order.
        length: (T, 16) or (16,) bone lengths.
    Returns:
        (T, 17, 3) joints.
    """
    T = root.shape[0]
    length = np.broadcast_to(length, (T, len(BONES)))
    out = np.empty((T, NUM_JOINTS, 3))
    out[:, 0] = root
    for b, (p, c) in enumerate(BONES):  # BONES is in child order, parents always come first
        out[:, c] = out[:, p] + unit[:, b] * length[:, b, None]
    return out


def fit_in_volume(joints3d: np.ndarray, volume_radius: float) -> tuple[np.ndarray, float]:
    """Keep every joint inside the disc |xy| <= volume_radius by shrinking the horizontal path.

    The whole body is translated per frame (bone lengths unchanged): its pelvis path about the
    origin is scaled by the largest factor k in [0, 1] with |k * pelvis_xy| + body extent
    <= volume_radius on every frame. Feet slide when k < 1; poses stay exact.

    Returns:
        (joints (T, 17, 3), k).
    Raises:
        ValueError: a pose alone is wider than the volume.
    """
    pelvis = joints3d[:, 0, :2]
    extent = np.linalg.norm(joints3d[:, :, :2] - pelvis[:, None], axis=-1).max(axis=1)  # (T,)
    if (extent >= volume_radius).any():
        raise ValueError(f"volume_radius {volume_radius} m is smaller than the body's horizontal "
                         f"extent {extent.max():.2f} m")
    reach = np.linalg.norm(pelvis, axis=-1)
    with np.errstate(divide="ignore"):
        k_frames = np.where(reach > 1e-9, (volume_radius - extent) / np.maximum(reach, 1e-9), np.inf)
    k = float(min(1.0, k_frames.min()))
    if k >= 1.0:
        return joints3d, 1.0
    k *= 1.0 - 1e-9  # strictly inside despite rounding
    out = joints3d.copy()
    out[:, :, :2] += (k - 1.0) * pelvis[:, None, :]
    return out, k
