"""Pictures of a rig (matplotlib, Agg): the cameras over the floor, and each camera's image with the
other cameras and the optical axes' meeting point drawn where the calibration says they are.

Example::

    draw_rig(rig, rig_summary(rig), "out/rig/rig.png")
    images = first_images("bag", rig.names)              # camera -> (H, W, 3) uint8 RGB
    draw_view(rig, "cam0", images["cam0"], meeting_point, "out/rig/view_cam0.png")
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..bagio import BagReader  # noqa: E402
from ..image_encoding import image_msg_to_rgb  # noqa: E402
from ..rig import Rig  # noqa: E402
from .summary import in_view, optical_axes  # noqa: E402

_AXIS_COLOURS = ("tab:red", "tab:green", "tab:blue")  # world x, y, z


def frustum_world(camera, depth_m: float) -> np.ndarray:
    """(4, 3) world points of the image corners (top-left, top-right, bottom-right, bottom-left) at
    ``depth_m`` along the optical axis (lens distortion left out: a sketch, not a measurement)."""
    w, h = camera.width, camera.height
    corners_px = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    rays = np.c_[(corners_px - camera.K[:2, 2]) / np.diag(camera.K)[:2], np.ones(4)] * depth_m
    return rays @ camera.R + camera.center  # camera -> world: R^T x + C, as row vectors


def _extent(rig: Rig, meet) -> tuple[np.ndarray, np.ndarray, float]:
    pts = np.stack([c.center for c in rig] + ([meet] if meet is not None else []) + [np.zeros(3)])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return lo, hi, float(max(np.max(hi - lo), 1.0))


def draw_rig(rig: Rig, summary: dict, path) -> Path:
    """A 3D view and a top view: frustums with names, the floor grid (1 m), the world axes, the meeting
    point and each optical axis up to it. Returns the PNG path."""
    meet = None if summary["meeting_point_m"] is None else np.asarray(summary["meeting_point_m"])
    lo, hi, size = _extent(rig, meet)
    depth = 0.12 * size
    centres, axes = optical_axes(rig)
    fig = plt.figure(figsize=(13, 6.2))
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    top = fig.add_subplot(1, 2, 2)

    # floor grid at z = 0, whole metres around everything drawn
    gx = np.arange(np.floor(lo[0]) - 1, np.ceil(hi[0]) + 2)
    gy = np.arange(np.floor(lo[1]) - 1, np.ceil(hi[1]) + 2)
    for x in gx:
        ax3.plot([x, x], [gy[0], gy[-1]], [0, 0], color="0.85", lw=0.6)
        top.plot([x, x], [gy[0], gy[-1]], color="0.9", lw=0.6, zorder=0)
    for y in gy:
        ax3.plot([gx[0], gx[-1]], [y, y], [0, 0], color="0.85", lw=0.6)
        top.plot([gx[0], gx[-1]], [y, y], color="0.9", lw=0.6, zorder=0)

    axis_len = 0.15 * size
    for k, colour in enumerate(_AXIS_COLOURS):
        end = np.eye(3)[k] * axis_len
        ax3.plot([0, end[0]], [0, end[1]], [0, end[2]], color=colour, lw=2.5)
        ax3.text(*(end * 1.1), "xyz"[k], color=colour)
        if k < 2:
            top.annotate("", xy=end[:2], xytext=(0, 0), arrowprops={"color": colour, "width": 1.5, "headwidth": 6})
            top.text(*(end[:2] * 1.12), "xy"[k], color=colour, ha="center", va="center")

    for cam, c, a in zip(rig, centres, axes):
        corners = frustum_world(cam, depth)
        edges = [np.c_[c, p] for p in corners] + [np.c_[corners[k], corners[(k + 1) % 4]] for k in range(4)]
        for e in edges:
            ax3.plot(*e, color="tab:purple", lw=0.9)
            top.plot(*e[:2], color="tab:purple", lw=0.8)
        ax3.plot(*corners[:2].T, color="black", lw=2.0)  # the image's top edge: shows a camera's roll
        ax3.text(*c, f" {cam.name}", fontsize=9)
        top.plot(*c[:2], "o", color="tab:purple")
        top.annotate(f"{cam.name}\n{c[2]:.2f} m", c[:2], textcoords="offset points", xytext=(6, 6), fontsize=8)
        if meet is not None:
            s = max(float((meet - c) @ a), 0.0)  # the axis point nearest the meeting point
            end = c + s * a
            ax3.plot(*np.c_[c, end], color="tab:orange", lw=0.8, ls="--")
            top.plot(*np.c_[c[:2], end[:2]], color="tab:orange", lw=0.8, ls="--")
    if meet is not None:
        ax3.scatter(*meet, marker="*", s=180, color="black", zorder=5)
        top.plot(*meet[:2], "*", ms=14, color="black")
        top.annotate(f"axes meet\n({meet[0]:.2f}, {meet[1]:.2f}, {meet[2]:.2f}) m", meet[:2],
                     textcoords="offset points", xytext=(8, -24), fontsize=8)

    z0, z1 = min(lo[2], 0.0), max(hi[2], 0.0) + 0.5  # a camera below the floor (a wrong up) stays in view
    span = np.array([gx[-1] - gx[0], gy[-1] - gy[0], z1 - z0])
    ax3.set_box_aspect(np.maximum(span / span.max(), 0.3))  # metres alike on every axis, up to a flat floor
    ax3.grid(False)  # the floor grid is the only grid: metres on the floor
    for axis in (ax3.xaxis, ax3.yaxis, ax3.zaxis):
        axis.pane.set_visible(False)
        axis.set_major_locator(MaxNLocator(5, integer=True))
    ax3.set_xlabel("x [m]"), ax3.set_ylabel("y [m]"), ax3.set_zlabel("z [m]")
    ax3.set_zlim(z0, z1)
    ax3.set_title(f"{len(rig)} cameras, world '{rig.world_frame}' (z up, floor z = 0)")
    top.set_aspect("equal")
    top.set_xlabel("x [m]"), top.set_ylabel("y [m]")
    top.set_title("top view (camera heights in metres)")
    fig.subplots_adjust(left=0.02, right=0.97, wspace=0.2)
    return _save(fig, path)


def _segments_in_view(camera, points_world: np.ndarray) -> np.ndarray:
    """(N, 2) pixels of a sampled world polyline, NaN where the camera does not see it (lines break there)."""
    uv, ok = in_view(camera, points_world, margin=0.2)
    uv[~ok] = np.nan
    return uv


def draw_view(rig: Rig, name: str, image: np.ndarray, meeting_point, path) -> tuple[Path, int]:
    """``image`` ((H, W, 3) uint8 RGB) of camera ``name`` with the floor grid, the world axes, the other
    cameras' centres and the meeting point projected through the calibration (distortion included).
    Returns (PNG path, how many other cameras are inside the image)."""
    cam = rig[name]
    h, w = image.shape[:2]
    fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(image, extent=(-0.5, w - 0.5, h - 0.5, -0.5))  # pixel centres at integers, as OpenCV
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    # the floor grid (1 m) under the cameras, as in the rig picture
    lo, hi, _ = _extent(rig, meeting_point)
    x0, x1, y0, y1 = np.floor(lo[0]) - 1, np.ceil(hi[0]) + 1, np.floor(lo[1]) - 1, np.ceil(hi[1]) + 1
    t = np.linspace(0.0, 1.0, 80)[:, None]
    lines = [np.c_[np.full_like(t, x), y0 + (y1 - y0) * t, 0 * t] for x in np.arange(x0, x1 + 1)]
    lines += [np.c_[x0 + (x1 - x0) * t, np.full_like(t, y), 0 * t] for y in np.arange(y0, y1 + 1)]
    for line in lines:
        uv = _segments_in_view(cam, line)
        ax.plot(uv[:, 0], uv[:, 1], color="white", lw=0.6, alpha=0.6)
    for k, colour in enumerate(_AXIS_COLOURS):
        uv = _segments_in_view(cam, t * np.eye(3)[k] * 0.5)
        ax.plot(uv[:, 0], uv[:, 1], color=colour, lw=2.5)
    others = [c for c in rig if c.name != name]
    seen = 0
    if others:
        uv, ok = in_view(cam, np.stack([c.center for c in others]))
        for other, p, visible in zip(others, uv, ok):
            if visible:
                seen += 1
                ax.plot(*p, "o", ms=9, mfc="none", mec="yellow", mew=2)
                ax.annotate(other.name, p, textcoords="offset points", xytext=(7, -7), color="yellow", fontsize=10,
                            fontweight="bold")
    if meeting_point is not None:
        uv, ok = in_view(cam, np.asarray(meeting_point)[None])
        if ok[0]:
            ax.plot(*uv[0], "*", ms=16, color="orange", mec="black")
    ax.text(4, 4, f"{name}: {seen} of {len(others)} other cameras in view", color="white", va="top", fontsize=10,
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 2})
    return _save(fig, path, dpi=100), seen


def first_images(bag, names: list[str]) -> dict[str, np.ndarray]:
    """Camera name -> its first ``/<name>/image_raw`` image ((H, W, 3) uint8 RGB) in the bag; cameras
    without that topic are left out."""
    images: dict[str, np.ndarray] = {}
    with BagReader(bag) as reader:
        topics = {f"/{n}/image_raw": n for n in names if f"/{n}/image_raw" in reader.topics}
        if not topics:
            return images
        for msg in reader.messages(list(topics)):
            name = topics[msg.topic]
            if name not in images:
                images[name] = np.array(image_msg_to_rgb(msg.msg))
                if len(images) == len(topics):
                    break
    return images


def _save(fig, path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
