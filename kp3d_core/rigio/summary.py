"""The figures a user checks a rig by: camera centres and heights, where the optical axes meet, and
which cameras see each other.

Example::

    s = rig_summary(rig)
    s["meeting_point_m"]                     # [x, y, z] the least-squares closest point to all optical axes
    s["cameras"][0]["others_in_image"]       # how many other camera centres cam0's image shows
"""
from __future__ import annotations

import numpy as np

from ..camera import Camera
from ..rig import Rig


def optical_axes(rig: Rig) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) camera centres and (V, 3) unit optical axes (the optical frame's z), world frame."""
    centres = np.stack([c.center for c in rig])
    axes = np.stack([c.R[2] for c in rig])  # row 2 of R_cam_world = the camera z axis in the world
    return centres, axes


def closest_point_to_lines(origins: np.ndarray, directions: np.ndarray) -> np.ndarray | None:
    """(3,) the point with the least sum of squared distances to V lines, or ``None`` when the lines
    are (nearly) parallel and no single point is closest.

    Args:
        origins: (V, 3) a point on each line.
        directions: (V, 3) unit directions.
    """
    # the squared distance of X to line i is |(I - d d^T)(X - o)|^2; the normal equations sum the projectors
    projectors = np.eye(3)[None] - directions[:, :, None] * directions[:, None, :]
    A = projectors.sum(axis=0)
    b = np.einsum("vij,vj->i", projectors, origins)
    eig = np.linalg.eigvalsh(A)
    if eig[0] < 1e-6 * eig[-1]:
        return None
    return np.linalg.solve(A, b)


def distances_to_lines(point: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(V,) distance from (3,) ``point`` to each line."""
    d = point[None] - origins
    return np.linalg.norm(d - (d * directions).sum(axis=1, keepdims=True) * directions, axis=1)


def in_view(camera: Camera, points_world: np.ndarray, margin: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Which (N, 3) world points ``camera`` images: ((N, 2) pixels, (N,) bool).

    A point counts when it lies in front of the camera, its undistorted projection is within the image
    grown by ``margin`` of its size on each side (a polynomial lens model folds far-off points back
    into the image), and its distorted pixel is inside the image.
    """
    pts = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    X_cam = camera.world_to_camera(pts)
    z = X_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        ideal = (X_cam[:, :2] / z[:, None]) * np.diag(camera.K)[:2] + camera.K[:2, 2]
    w, h = camera.width, camera.height
    near = (z > 1e-9) & (ideal[:, 0] > -margin * w) & (ideal[:, 0] < (1 + margin) * w) \
        & (ideal[:, 1] > -margin * h) & (ideal[:, 1] < (1 + margin) * h)
    uv = np.full((len(pts), 2), np.nan)
    if np.any(near):
        uv[near] = camera.project(pts[near])
    return uv, near & camera.in_image(np.nan_to_num(uv, nan=-1.0))


def _r(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) + 0.0 for v in values]  # + 0.0: no "-0.0" in the JSON


def rig_summary(rig: Rig) -> dict:
    """Plain-JSON figures of a rig (world z up, floor z = 0, metres).

    Keys: ``cameras`` (per camera: name, centre_m, height_m, others_in_image and their names, the
    meeting point's pixel or ``None``, and its depth along the optical axis, negative when the camera
    looks away from it), ``meeting_point_m`` (``None`` if the axes are parallel), ``axis_distance_m``
    (each optical axis's distance from the meeting point).
    """
    centres, axes = optical_axes(rig)
    meet = closest_point_to_lines(centres, axes)
    cams = []
    for i, cam in enumerate(rig):
        others = [j for j in range(len(rig)) if j != i]
        _, seen = in_view(cam, centres[others])
        meet_px, meet_depth = None, None
        if meet is not None:
            uv, ok = in_view(cam, meet[None])
            meet_px = _r(uv[0], 2) if ok[0] else None
            meet_depth = _r([(meet - centres[i]) @ axes[i]])[0]
        cams.append({
            "name": cam.name,
            "centre_m": _r(cam.center),
            "height_m": _r(cam.center[2:])[0],
            "others_in_image": int(seen.sum()),
            "others_seen": [rig[j].name for j, s in zip(others, seen) if s],
            "meeting_point_px": meet_px,
            "meeting_point_depth_m": meet_depth,
        })
    return {
        "cameras": cams,
        "meeting_point_m": None if meet is None else _r(meet),
        "axis_distance_m": None if meet is None else _r(distances_to_lines(meet, centres, axes)),
    }
