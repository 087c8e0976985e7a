"""The subject's motion in a studio-field session: one continuous clip from one source, moving about or
staying in place, present from the first frame.

Sources (all licence-clean): ``procedural`` (kp3d's generator; with ``stay`` no walking), ``cmu`` (a
window of a CMU clip of the split; its clips walk, so never for ``stay``) and ``generator`` (the varied-pose
generator, :mod:`kp3d_core.studio.poses_generator`, see ``generator_motion``). A source that cannot give the
clip falls back to procedural and says so in the returned notes.

A stay-in-place clip keeps the pelvis within ``STAY_RADIUS_M`` (horizontal) of where it starts for the whole
clip (``stays_in_place``): the hardest case for background estimation, since the person never uncovers
the floor they stand on. It is moved off the volume centre by up to 0.4 m and, in half of them, stands on a
platform 0.1-0.35 m high (the joints are lifted by its height; the platform box goes into the room).

Example::

    clip = session_motion(np.random.default_rng(9), "procedural", stay=True, num_frames=250, fps=30.0,
                          proportions=props, volume_radius=1.0, cmu_clips=[])
    clip.joints3d.shape, clip.platform           # (250, 17, 3), Box(...) or None
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..skeleton import JOINT_INDEX
from .bvh import load_bvh
from .motion import Motion
from .procedural import procedural_motion
from .proportions import BodyProportions
from .retarget import retarget
from .scene import Box

STAY_RADIUS_M = 0.5
FIELD_SOURCES = ("procedural", "cmu", "generator")


@dataclass
class SessionClip:
    """The subject's motion of a session: joints3d (T, 17, 3) metres world; clip name (manifest ``motion``);
    the source actually used; stay-in-place or not; the platform under it (or None); notes on fallbacks."""

    joints3d: np.ndarray
    name: str
    source: str
    stay: bool
    platform: Box | None = None
    notes: list[str] = field(default_factory=list)

    def keep_out(self, margin_m: float = 0.3) -> tuple[float, float, float]:
        """(x, y, radius) metres: a disc holding every joint over the clip, plus ``margin_m``."""
        xy = self.joints3d[:, :, :2].reshape(-1, 2)
        c = 0.5 * (xy.min(axis=0) + xy.max(axis=0))
        return float(c[0]), float(c[1]), float(np.linalg.norm(xy - c, axis=1).max() + margin_m)


def stays_in_place(joints3d: np.ndarray, radius_m: float = STAY_RADIUS_M) -> bool:
    """Whether the pelvis stays within ``radius_m`` (horizontal) of its first position over the clip."""
    p = np.asarray(joints3d)[:, 0, :2]
    return bool(np.linalg.norm(p - p[0], axis=1).max() <= radius_m)


def generator_motion(num_frames: int, fps: float, seed: int, proportions: BodyProportions, volume_radius: float,
                     stay: bool) -> Motion | None:
    """A clip of the varied-pose generator (jumps, crouches, kicks, arms overhead, one-leg balance, turning,
    sitting, reaching down), or None where kp3d_core/studio/poses_generator.py is not installed.

    HOOK(poses_generator): the one place studio-field calls that module (another engineer's; its API as of
    this writing: ``varied_motion(num_frames, fps, seed, proportions, actions, stay_in_place, radius_m)``).
    """
    try:
        from .poses_generator import varied_motion
    except ImportError:
        return None
    return varied_motion(num_frames, fps, seed=seed, proportions=proportions, stay_in_place=stay,
                         radius_m=max(volume_radius, 1.0))


def _cmu_window(rng: np.random.Generator, paths: list[Path], num_frames: int, fps: float,
                proportions: BodyProportions, volume_radius: float) -> tuple[np.ndarray, str] | None:
    if not paths:
        return None
    path = paths[int(rng.integers(len(paths)))]
    m = retarget(load_bvh(path), fps=fps, proportions=proportions, volume_radius=volume_radius)
    n = min(num_frames, m.num_frames)
    start = int(rng.integers(0, m.num_frames - n + 1))
    return m.joints3d[start:start + n], f"{path.parent.name}/{path.name}@{start}"


def session_motion(rng: np.random.Generator, source: str, stay: bool, num_frames: int, fps: float,
                   proportions: BodyProportions, volume_radius: float, cmu_clips: list[Path]) -> SessionClip:
    """The subject's clip of one session (see the module docstring); deterministic per ``rng`` state."""
    if source not in FIELD_SOURCES:
        raise ValueError(f"source: expected one of {FIELD_SOURCES}, got '{source}'")
    seed = int(rng.integers(2**31))
    notes: list[str] = []
    joints, name, used = None, "", source
    if source == "generator":
        m = generator_motion(num_frames, fps, seed, proportions, volume_radius, stay)
        if m is None:
            notes.append("generator: kp3d_core/studio/poses_generator.py not available: procedural")
        else:
            joints, name = m.joints3d[:num_frames], f"generator/seed{seed}"
    elif source == "cmu":
        got = None if stay else _cmu_window(rng, cmu_clips, num_frames, fps, proportions, volume_radius)
        if got is None:
            notes.append("cmu: no clip for this split" if not stay else "cmu: its clips walk, not stay-in-place")
        else:
            joints, name = got
    if joints is None:
        used = "procedural"
        m = procedural_motion(num_frames, fps, seed=seed, proportions=proportions,
                              volume_radius=max(volume_radius, 1.0), stay_in_place=stay)
        joints, name = m.joints3d, f"procedural/seed{seed}" + ("-stay" if stay else "")
    joints = np.array(joints, dtype=np.float64)
    if stay and not stays_in_place(joints):
        # A turn pivots about a foot; pivots that drift further are rare: start over in place.
        notes.append(f"{name}: pelvis left the {STAY_RADIUS_M} m disc; replaced by procedural stay-in-place")
        m = procedural_motion(num_frames, fps, seed=seed + 1, proportions=proportions, volume_radius=1.0,
                              stay_in_place=True)
        joints, name, used = m.joints3d.copy(), f"procedural/seed{seed + 1}-stay", "procedural"
    platform = None
    if stay:
        # Off the volume centre, sometimes on a platform (a balance board, a stage block).
        shift = rng.uniform(-0.4, 0.4, 2) - joints[:, 0, :2].mean(axis=0)
        joints[:, :, :2] += shift
        if rng.random() < 0.5:
            h = float(rng.uniform(0.1, 0.35))
            feet = joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], :2].reshape(-1, 2)
            lo, hi = feet.min(axis=0) - 0.3, feet.max(axis=0) + 0.3
            joints[:, :, 2] += h
            colour = tuple(float(v) for v in rng.uniform([0.1, 0.1, 0.1], [0.7, 0.6, 0.5]))
            platform = Box((float(lo[0]), float(lo[1]), 0.0), (float(hi[0]), float(hi[1]), h), colour)
    return SessionClip(joints, name, used, stay, platform, notes)
