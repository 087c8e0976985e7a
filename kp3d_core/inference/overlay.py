"""Overlay images: a view with its 2D keypoints drawn, for a person watching the pipeline.

Example::

    img = draw_keypoints(rgb, est.keypoints2d[v], est.confidence[v])   # a new (H, W, 3) uint8 image
"""
from __future__ import annotations

import cv2
import numpy as np


def draw_keypoints(image: np.ndarray, keypoints2d: np.ndarray, confidence: np.ndarray, radius: int = 4) -> np.ndarray:
    """A copy of ``image`` with one filled disc per keypoint, red (confident) to yellow (unsure).

    Args:
        image: (H, W, 3) uint8 RGB (not changed).
        keypoints2d: (K, 2) raw image pixels; NaN rows are skipped.
        confidence: (K,) in [0, 1]; keypoints with confidence 0 are skipped.
        radius: disc radius, pixels.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"draw_keypoints: image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
    kp = np.asarray(keypoints2d, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if kp.ndim != 2 or kp.shape[1] != 2 or conf.shape != kp.shape[:1]:
        raise ValueError(f"draw_keypoints: keypoints2d must be (K, 2) and confidence (K,), got {kp.shape}, {conf.shape}")
    out = np.ascontiguousarray(img).copy()
    for (u, v), c in zip(kp, conf):
        if np.isfinite(u) and np.isfinite(v) and c > 0:
            cv2.circle(out, (int(round(u)), int(round(v))), radius, (255, int(255 * (1 - c)), 0), -1)
    return out
