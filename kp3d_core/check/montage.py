"""Montages of a check run: per camera, a strip of frames showing what the figures are made of.

One PNG per camera, ``<out>/<camera>.png``: one column per kept frame (spread evenly over the recording after
the background warm-up), three rows: the image with its 2D keypoints (red confident, yellow unsure) and the
crop box (green; magenta when the estimate was rejected), the background the predictor used, and the
label-free foreground mask |I - B| with the box. A wrong background shows at once: the person (or the room of
another scene) in the background row, a mask that is not a silhouette, a box much larger than the person.

Example::

    paths = write_montages(run.samples, run.cameras, "out/check")     # [Path('out/check/cam0.png'), ...]
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..inference.overlay import draw_keypoints

TILE_WIDTH = 256
"""Width of one tile, pixels (height follows the camera's aspect)."""
_BOX = (40, 220, 40)
_BOX_REJECTED = (230, 40, 230)
_LABEL_HEIGHT = 18


def _draw_box(image: np.ndarray, box: np.ndarray, colour, thickness: int) -> None:
    if not np.isfinite(box).all():
        return
    cx, cy, side = box
    half = side / 2.0
    cv2.rectangle(image, (int(round(cx - half)), int(round(cy - half))), (int(round(cx + half)), int(round(cy + half))),
                  colour, thickness)


def _label(text: str, width: int) -> np.ndarray:
    strip = np.full((_LABEL_HEIGHT, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (4, _LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def column(sample, v: int) -> np.ndarray:
    """One frame of camera ``v``: (3 * h + label, TILE_WIDTH, 3) uint8 RGB (see the module docstring)."""
    view = sample.views[v]
    H, W = view.image.shape[:2]
    thick = max(1, int(round(W / 320)))
    colour = _BOX if sample.rejected is None else _BOX_REJECTED
    img = draw_keypoints(view.image, view.keypoints2d, view.confidence, radius=max(2, int(round(W / 120))))
    _draw_box(img, view.box, colour, thick)
    mask = np.repeat((view.mask > 0).astype(np.uint8)[..., None] * 255, 3, axis=2)
    _draw_box(mask, view.box, colour, thick)
    h = max(1, int(round(TILE_WIDTH * H / W)))
    tiles = [cv2.resize(t, (TILE_WIDTH, h), interpolation=cv2.INTER_AREA) for t in (img, view.background, mask)]
    text = f"frame {sample.index}" + (f" rejected: {sample.rejected}" if sample.rejected else "")
    return np.concatenate([_label(text, TILE_WIDTH), *tiles])


def write_montages(samples: list, cameras: list[str], out: str | Path) -> list[Path]:
    """Write ``<out>/<camera>.png`` for every camera from the kept frames; returns the paths (none without samples)."""
    if not samples:
        return []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    gap = 4
    for v, name in enumerate(cameras):
        cols = [column(s, v) for s in samples]
        hmax = max(c.shape[0] for c in cols)
        cols = [np.pad(c, ((0, hmax - c.shape[0]), (0, gap), (0, 0)), constant_values=255) for c in cols]
        strip = np.concatenate([_label(f"{name}: image + keypoints + box | background | foreground |I - B|",
                                       sum(c.shape[1] for c in cols)), np.concatenate(cols, axis=1)])
        path = out / f"{name}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write the montage")
        paths.append(path)
    return paths
