"""Placing an imported rig in a kp3d world: z up (REP-103), the floor at z = 0 when it is known.

Every source has its own world: a mocap lab frame (z up, floor at 0), the first camera's optical
frame (y down), a COLMAP model (anything). :func:`align_world` finds ``T_world_source``, the rigid
transform (metres) from the source frame, already scaled to metres, to the kp3d world:

* ``up``: the source direction that points up, an axis (``x``, ``-y``, ...) or ``camera`` (the first
  camera's image-up direction, ``-y`` of its optical frame: right for a level camera);
* ``floor_points``: three or more points on the floor (source frame, metres): the floor plane gives
  up (towards the cameras, or the side ``up`` names) and z = 0;
* ``camera_height``: one camera's height above the floor, when no floor points are at hand;
* ``T_world_source``: the transform itself, when the world is known another way.

The rotation is the smallest one that takes up to +z, and the source origin moves only along up
(onto the floor), so a source that is already z-up with its floor at 0 is left as it is. A rotation
never mirrors, so the imported world is right-handed whenever the source is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rig import Rig
from .errors import RigOptionError
from .poses import pose, rotation_between

AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
UP_CHOICES = ("x", "-x", "y", "-y", "z", "-z", "camera")


@dataclass(frozen=True)
class WorldSpec:
    """How the imported world is placed; every field optional (the format's default up otherwise).

    Attributes:
        up: the source direction pointing up, one of :data:`UP_CHOICES`.
        floor_points: (N, 3) points on the floor, source frame, source units (N >= 3).
        camera_height: (camera name, metres above the floor).
        T_world_source: (4, 4) rigid transform, metres; excludes the other fields.
    """

    up: str | None = None
    floor_points: np.ndarray | None = None
    camera_height: tuple[str, float] | None = None
    T_world_source: np.ndarray | None = None


@dataclass(frozen=True)
class Alignment:
    """The result of :func:`align_world`.

    Attributes:
        T_world_source: (4, 4) source frame (metres) -> kp3d world, metres.
        up: one line saying where up came from.
        floor: one line saying where z = 0 came from (``None``: the floor is unknown, z = 0 is the
            source origin's height).
        floor_rms_m: RMS distance of the floor points to their plane, metres (``None`` without points).
    """

    T_world_source: np.ndarray
    up: str
    floor: str | None
    floor_rms_m: float | None = None


def up_vector(rig_source: Rig, up: str) -> np.ndarray:
    """(3,) unit direction in the source frame for an ``up`` choice (see :data:`UP_CHOICES`)."""
    if up == "camera":
        R_source_cam = rig_source[0].R.T
        return -R_source_cam[:, 1]
    if up not in UP_CHOICES:
        raise RigOptionError(f"up: expected one of {', '.join(UP_CHOICES)}, got '{up}'")
    sign = -1.0 if up.startswith("-") else 1.0
    return sign * np.asarray(AXES[up.lstrip("-")])


def fit_floor(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Plane through (N, 3) points (N >= 3, not collinear): (centroid (3,), unit normal (3,), RMS residual)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 3:
        raise RigOptionError(f"floor points: need three or more 3D points, got shape {points.shape}")
    centroid = points.mean(axis=0)
    _, s, Vt = np.linalg.svd(points - centroid)
    if s[1] <= 1e-9 * max(s[0], 1e-12):
        raise RigOptionError("floor points: they lie on one line, so they do not define a plane")
    return centroid, Vt[2], float(s[2] / np.sqrt(len(points)))


def align_world(rig_source: Rig, spec: WorldSpec, default_up: str, default_floor: str | None = None) -> Alignment:
    """``T_world_source`` for ``rig_source`` (cameras in the source frame, metres) under ``spec``.

    ``spec.floor_points`` must already be in metres. ``default_floor`` describes the source's own floor
    (z = 0 of a z-up lab frame); it holds while up stays the default and no floor option is given.
    Raises :class:`RigOptionError` for contradicting options.
    """
    if spec.T_world_source is not None:
        if spec.up is not None or spec.floor_points is not None or spec.camera_height is not None:
            raise RigOptionError("T_world_source sets the world by itself: drop up, floor points and camera height")
        T = np.asarray(spec.T_world_source, dtype=np.float64)
        # typed-in matrices carry ~6 digits: within 1e-5 the nearest rotation is meant
        rigid = T.shape == (4, 4) and np.allclose(T[3], [0, 0, 0, 1]) \
            and np.allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-5) and np.linalg.det(T[:3, :3]) > 0
        if not rigid:
            raise RigOptionError("T_world_source: expected a 4x4 rigid transform (proper rotation, last row 0 0 0 1)")
        U, _, Vt = np.linalg.svd(T[:3, :3])
        return Alignment(pose(U @ Vt, T[:3, 3]), "given (T_world_source)", "given (T_world_source)")
    if spec.floor_points is not None and spec.camera_height is not None:
        raise RigOptionError("floor points and a camera height both set the floor: give one of them")

    up_name = spec.up or default_up
    up = up_vector(rig_source, up_name)
    up_text = f"{up_name} of the source" + ("" if spec.up else " (the format's default)")
    if up_name == "camera":
        up_text = f"image-up (-y) of camera '{rig_source[0].name}'" + ("" if spec.up else " (the format's default)")
    floor_text, rms, floor_point = None, None, None
    if spec.floor_points is not None:
        centroid, normal, rms = fit_floor(spec.floor_points)
        if spec.up is not None:
            side = up  # the user said which way is up
        else:
            # the cameras hang above the floor
            side = np.mean([c.center for c in rig_source], axis=0) - centroid
            if abs(side @ normal) < 1e-9:
                side = up
        up = normal if normal @ side > 0 else -normal
        up_text = f"normal of the {len(spec.floor_points)} floor points" \
            + (f", on the side of {spec.up}" if spec.up else ", towards the cameras")
        floor_text = f"the plane of the floor points (RMS {rms * 1000:.1f} mm off it)"
        floor_point = centroid
    R = rotation_between(up, [0.0, 0.0, 1.0])
    T = pose(R, np.zeros(3))
    if floor_point is not None:
        T[2, 3] = -(R @ floor_point)[2]
    elif spec.camera_height is not None:
        name, height = spec.camera_height
        if name not in rig_source.names:
            raise RigOptionError(f"camera height: no camera '{name}' (cameras: {', '.join(rig_source.names)})")
        T[2, 3] = float(height) - (R @ rig_source[name].center)[2]
        floor_text = f"{height:g} m below camera '{name}'"
    elif spec.up in (None, default_up):
        floor_text = default_floor
    return Alignment(T, up_text, floor_text, rms)
