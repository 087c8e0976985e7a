"""Evaluation figures (matplotlib, Agg backend): views with joints, a 3D skeleton, per-joint errors, bench rows."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .skeleton import BONES, JOINT_NAMES  # noqa: E402

PRED, TRUE, KEYPOINT = "#e0312b", "#2bb04a", "#f5c400"


def _skeleton_2d(ax, uv: np.ndarray, color: str, label: str) -> None:
    for a, b in BONES:
        if np.isfinite(uv[[a, b]]).all():
            ax.plot(uv[[a, b], 0], uv[[a, b], 1], "-", color=color, lw=1.5)
    ax.plot(uv[:, 0], uv[:, 1], "o", color=color, ms=2.5, label=label)


LEFT, RIGHT, MIDDLE = "#2b6fe0", "#e0312b", "#f0f0f0"


def draw_sided_skeleton(ax, uv: np.ndarray, lw: float = 1.2) -> None:
    """The 17-joint skeleton (17, 2) px with each bone coloured by its side: left blue, right red, trunk white (so
    a skeleton whose left and right cross shows it)."""
    for a, b in BONES:
        name = JOINT_NAMES[b]
        color = LEFT if name.startswith("left_") else RIGHT if name.startswith("right_") else MIDDLE
        if np.isfinite(uv[[a, b]]).all():
            ax.plot(uv[[a, b], 0], uv[[a, b], 1], "-", color=color, lw=lw)


def plot_views(images, pred2d: np.ndarray, gt2d: np.ndarray, keypoints2d: np.ndarray | None, path,
               title: str = "", boxes: np.ndarray | None = None) -> Path:
    """V full images with predicted (red) and true (green) joints, keypoints (yellow): (V, 17, 2) px each.

    ``boxes`` (V, 3) [cx, cy, side]: each view is zoomed to its label-free crop box (drawn dashed).
    """
    V = len(images)
    cols = min(V, 4)
    rows = (V + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for v, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if v >= V:
            continue
        ax.imshow(images[v])
        if keypoints2d is not None:
            ax.plot(keypoints2d[v, :, 0], keypoints2d[v, :, 1], "x", color=KEYPOINT, ms=3, label="keypoints")
        _skeleton_2d(ax, gt2d[v], TRUE, "true")
        _skeleton_2d(ax, pred2d[v], PRED, "predicted")
        h, w = images[v].shape[:2]
        if boxes is not None:
            cx, cy, side = boxes[v]
            ax.add_patch(plt.Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, ls="--", color="w", lw=1))
            half = 0.6 * side
            ax.set_xlim(cx - half, cx + half)
            ax.set_ylim(cy + half, cy - half)
        else:
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
        ax.set_title(f"view {v}", fontsize=9)
    axes.ravel()[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_skeleton_3d(pred: np.ndarray, gt: np.ndarray, path, title: str = "") -> Path:
    """(17, 3) predicted and true joints (metres, world z up) in one 3D axes."""
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    for joints, color, label in ((gt, TRUE, "true"), (pred, PRED, "predicted")):
        for a, b in BONES:
            ax.plot(joints[[a, b], 0], joints[[a, b], 1], joints[[a, b], 2], "-", color=color, lw=2)
        ax.scatter(joints[:, 0], joints[:, 1], joints[:, 2], color=color, s=8, label=label)
    pts = np.concatenate([gt, pred])
    pts = pts[np.isfinite(pts).all(1)]
    c, r = pts.mean(0), max(np.ptp(pts, 0).max() / 2, 0.1)
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_zlim(c[2] - r, c[2] + r)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_pose_grid(rows: list[list[tuple[str, np.ndarray, np.ndarray]]], path, title: str = "") -> Path:
    """A grid of 3D panels: ``rows`` of ``(panel title, predicted (17, 3), true (17, 3))`` in world metres, each
    panel centred on the true pose (so that a misplaced prediction shows as displaced)."""
    cols = max(len(r) for r in rows)
    fig = plt.figure(figsize=(2.6 * cols, 2.8 * len(rows)))
    for i, row in enumerate(rows):
        for j, (name, pred, gt) in enumerate(row):
            ax = fig.add_subplot(len(rows), cols, i * cols + j + 1, projection="3d")
            for joints, color in ((gt, TRUE), (pred, PRED)):
                if not np.isfinite(joints).all():
                    continue
                for a, b in BONES:
                    ax.plot(joints[[a, b], 0], joints[[a, b], 1], joints[[a, b], 2], "-", color=color, lw=1.5)
            c = gt.mean(0)
            ax.set_xlim(c[0] - 1, c[0] + 1)
            ax.set_ylim(c[1] - 1, c[1] + 1)
            ax.set_zlim(c[2] - 1, c[2] + 1)
            ax.set_box_aspect((1, 1, 1))
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.set_zticklabels([])
            ax.set_title(name, fontsize=8)
    fig.suptitle(f"{title}  (true: green, estimate: red; 2 m cubes)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_per_joint(errors_mm, path, title: str = "Mean error per joint") -> Path:
    """Bar chart of (17,) per-joint errors in millimetres."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.bar(range(len(errors_mm)), errors_mm, color="#4a78c2")
    ax.set_xticks(range(len(errors_mm)))
    ax.set_xticklabels(JOINT_NAMES[: len(errors_mm)], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("error (mm)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_rows(groups: dict[str, list[tuple[str, dict]]], path) -> Path:
    """One panel per group of bench rows (``{title: [(label, row line), ...]}``): each run's MPJPE (dots) and the
    row's mean with its standard error (bar), so that a change can be read against the spread of the runs."""
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 + 1.2 * sum(len(r) for r in groups.values()), 4.2),
                             squeeze=False, gridspec_kw={"width_ratios": [max(2, len(r)) for r in groups.values()]})
    for ax, (title, rows) in zip(axes[0], groups.items()):
        for i, (_, row) in enumerate(rows):
            seeds = row.get("mpjpe_mm_per_seed", [])
            ax.plot(np.full(len(seeds), i) + np.linspace(-0.12, 0.12, len(seeds)), seeds, "o", color="#9aa5b1", ms=4)
            ax.errorbar(i, row["mpjpe_mm"], yerr=row.get("mpjpe_mm_sem") or 0.0, fmt="_", color=PRED, ms=18,
                        capsize=4, lw=1.5)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([label.replace("+", "\n+") if len(label) > 12 else label for label, _ in rows], fontsize=7)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.set_ylabel("MPJPE (mm), test")
        ax.set_title(f"{title}: runs (grey), mean ± s.e. (red)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
