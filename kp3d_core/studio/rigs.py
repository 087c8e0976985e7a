"""Varied camera rigs as real labs set them up: 3-8 cameras, portrait or landscape, wide lenses with
distortion, heights 0.5-3 m, distances 2-6 m, uneven spacing, all looking roughly at the capture volume.

``field_rig(rng, style, volume_radius_m)`` draws one rig from a :class:`RigStyle`. Each camera's focal
length is the longest that still frames the capture volume (a column of ``volume_radius_m`` from the floor
to 2.1 m, less a random slack), capped by the style's widest lens: near cameras get wide lenses, far ones
narrower; wide lenses get barrel distortion with ``k2 = 0.6 k1^2`` (monotonic at every radius, so
undistortion is well posed). A camera too close to frame everything keeps the widest lens and crops the
person, as real rigs do. ``FIELD`` is studio-field's style; ``NEW`` (portrait cameras high up looking
down, held out of studio-field) is studio-field-new's.

Example::

    rig = field_rig(np.random.default_rng(4), FIELD, volume_radius_m=1.0)
    [c.size for c in rig.cameras]     # e.g. [(360, 640)] * 5: one image size per rig
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera import Camera, look_at
from ..rig import Rig

LANDSCAPE = (640, 480)   # (width, height) pixels
PORTRAIT = (360, 640)    # the 9:16 of a 1088x1920 camera used at a third of its size


@dataclass(frozen=True)
class RigStyle:
    """Ranges of a rig generator (uniform unless said otherwise)."""

    num_cameras: tuple[int, int]             # inclusive
    p_portrait: float                        # chance the rig's cameras are portrait (one orientation per rig)
    height_m: tuple[float, float]            # camera centre above the floor
    distance_m: tuple[float, float]          # horizontal distance to the volume centre
    arc_deg: tuple[float, float]             # angular span the cameras cover around the volume (360: a ring)
    max_hfov_deg: float                      # widest lens, horizontal field of view of the pinhole model
    max_k1: float                            # barrel distortion k1 of the widest lens (scaled down for narrower)
    aim_jitter_m: float                      # where each camera looks: volume centre +- this (x, y)
    roll_deg: float                          # camera roll, +- (a tripod is never quite level)
    slack: tuple[float, float]               # framing: fraction of the image the volume fills at most
    reject_all_high_portrait: float | None   # redraw portrait rigs whose cameras are all above this (m)


FIELD = RigStyle(num_cameras=(3, 8), p_portrait=0.4, height_m=(0.5, 3.0), distance_m=(2.0, 6.0),
                 arc_deg=(150.0, 360.0), max_hfov_deg=100.0, max_k1=0.30, aim_jitter_m=0.3, roll_deg=4.0,
                 slack=(0.7, 0.95), reject_all_high_portrait=2.2)
NEW = RigStyle(num_cameras=(4, 6), p_portrait=1.0, height_m=(2.3, 3.0), distance_m=(2.5, 4.5),
               arc_deg=(200.0, 360.0), max_hfov_deg=100.0, max_k1=0.35, aim_jitter_m=0.2, roll_deg=3.0,
               slack=(0.8, 0.95), reject_all_high_portrait=None)


def _azimuths(rng: np.random.Generator, n: int, arc_deg: tuple[float, float]) -> np.ndarray:
    """(n,) radians, unevenly spaced over a random arc (a full ring when the arc reaches 360 deg)."""
    span = np.deg2rad(min(rng.uniform(*arc_deg), 360.0))
    full = span > np.deg2rad(340.0)
    gaps = rng.dirichlet(np.full(n if full else n - 1, 3.0)) * (2 * np.pi if full else span)
    start = rng.uniform(-np.pi, np.pi)
    return start + np.concatenate([[0.0], np.cumsum(gaps)[: n - 1]])


def _roll(T: np.ndarray, roll_rad: float) -> np.ndarray:
    """Pose T_world_cam (4, 4) rolled about the optical axis."""
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    out = T.copy()
    out[:3, :3] = T[:3, :3] @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return out


def volume_points(volume_radius_m: float) -> np.ndarray:
    """(N, 3) points the cameras should see: rings of the capture volume's cylinder at 0, 1 and 2.1 m."""
    a = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], axis=1) * volume_radius_m
    return np.concatenate([np.column_stack([ring, np.full(12, z)]) for z in (0.0, 1.0, 2.1)])


def framing_focal(T_world_cam: np.ndarray, size: tuple[int, int], points_world: np.ndarray, fill: float) -> float:
    """Longest focal length (pixels) at which every point in front of the camera lies within ``fill`` of the
    image's half-width and half-height about its centre (pinhole model)."""
    R = T_world_cam[:3, :3].T
    pc = (points_world - T_world_cam[:3, 3]) @ R.T
    pc = pc[pc[:, 2] > 0.1]
    if len(pc) == 0:
        raise ValueError("framing_focal: no point in front of the camera")
    W, H = size
    xs, ys = np.abs(pc[:, 0] / pc[:, 2]), np.abs(pc[:, 1] / pc[:, 2])
    return float(min(fill * 0.5 * W / max(xs.max(), 1e-9), fill * 0.5 * H / max(ys.max(), 1e-9)))


def field_rig(rng: np.random.Generator, style: RigStyle = FIELD, volume_radius_m: float = 1.0,
              centre=(0.0, 0.0)) -> Rig:
    """Draw a rig of ``style`` around a capture volume of ``volume_radius_m`` centred at ``centre`` (x, y).

    Returns:
        A :class:`Rig` of cameras ``cam0..`` (all one image size), ordered by azimuth.
    """
    if not volume_radius_m > 0:
        raise ValueError(f"volume_radius_m must be > 0, got {volume_radius_m}")
    for _ in range(100):
        n = int(rng.integers(style.num_cameras[0], style.num_cameras[1] + 1))
        portrait = bool(rng.random() < style.p_portrait)
        heights = rng.uniform(*style.height_m, n)
        if not (portrait and style.reject_all_high_portrait is not None
                and np.all(heights > style.reject_all_high_portrait)):
            break
    W, H = PORTRAIT if portrait else LANDSCAPE
    az = _azimuths(rng, n, style.arc_deg)
    # No camera inside the volume's reach: at least 0.8 m beyond its edge.
    dist = rng.uniform(max(style.distance_m[0], volume_radius_m + 0.8), max(style.distance_m), n)
    c = np.array([centre[0], centre[1], 0.0])
    pts = volume_points(volume_radius_m) + c
    f_min = 0.5 * W / np.tan(np.deg2rad(style.max_hfov_deg) / 2)
    cams = []
    for i in range(n):
        eye = c + np.array([dist[i] * np.cos(az[i]), dist[i] * np.sin(az[i]), heights[i]])
        aim = c + np.array([*rng.uniform(-style.aim_jitter_m, style.aim_jitter_m, 2), rng.uniform(0.7, 1.2)])
        T = _roll(look_at(eye, aim), np.deg2rad(rng.uniform(-style.roll_deg, style.roll_deg)))
        f = max(framing_focal(T, (W, H), pts, rng.uniform(*style.slack)), f_min)
        hfov = 2 * np.degrees(np.arctan(0.5 * W / f))
        # Wider lenses distort more: k1 grows from 0 at 45 deg to max_k1 at the widest lens.
        wide = float(np.clip((hfov - 45.0) / (style.max_hfov_deg - 45.0), 0.0, 1.0))
        k1 = -style.max_k1 * wide * rng.uniform(0.6, 1.0)
        dist_coeffs = (k1, 0.6 * k1 * k1, *rng.normal(0.0, 3e-4, 2), 0.0)
        cx, cy = (W - 1) / 2 + rng.normal(0, 0.01 * W), (H - 1) / 2 + rng.normal(0, 0.01 * H)
        K = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
        cams.append(Camera.from_pose(f"cam{i}", K, dist_coeffs, W, H, T))
    return Rig(tuple(cams))


def describe(rig: Rig) -> list[dict]:
    """Per camera: height (m), horizontal distance to the origin (m), horizontal field of view (deg), k1."""
    out = []
    for cam in rig.cameras:
        c = cam.center
        out.append({"name": cam.name, "height_m": round(float(c[2]), 3),
                    "distance_m": round(float(np.hypot(c[0], c[1])), 3),
                    "hfov_deg": round(float(2 * np.degrees(np.arctan(0.5 * cam.width / cam.K[0, 0]))), 1),
                    "k1": round(float(cam.dist[0]), 4)})
    return out
