"""A camera's calibration for its image resized to another pixel grid (the whole image, no crop).

Pixel centres are at integer coordinates (OpenCV), so resizing a ``W x H`` image to ``W' x H'`` maps pixel
``u -> sx (u + 0.5) - 0.5`` and ``v -> sy (v + 0.5) - 0.5`` with ``sx = W' / W``, ``sy = H' / H``: the
image edges ``-0.5`` and ``W - 0.5`` stay the edges. ``cv2.resize`` samples with the same convention.
Applied to ``u = fx x + s y + cx`` (normalised, distorted coordinates x, y) it scales fx, s and fy and
maps the principal point like any pixel; the distortion coefficients act on normalised coordinates and
do not change. The map is exact for any sx, sy (non-uniform too).

Example::

    half = scaled_camera(cam, cam.width // 2, cam.height // 2)
    half.project(points_world)      # == scale_pixels(cam.project(points_world), cam.size, half.size)
"""
from __future__ import annotations

import numpy as np

from .camera import Camera


def scale_pixels(pixels: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """(..., 2) pixels of a ``from_size`` (W, H) image -> (..., 2) pixels of the image resized to ``to_size``."""
    s = np.asarray(to_size, dtype=np.float64) / np.asarray(from_size, dtype=np.float64)
    return s * (np.asarray(pixels, dtype=np.float64) + 0.5) - 0.5


def scaled_camera(camera: Camera, width_px: int, height_px: int) -> Camera:
    """``camera`` for its image resized to ``width_px x height_px`` (same pose, distortion and frame id)."""
    width_px, height_px = int(width_px), int(height_px)
    if width_px <= 0 or height_px <= 0:
        raise ValueError(f"camera '{camera.name}': scaled size must be positive, got {width_px}x{height_px}")
    sx, sy = width_px / camera.width, height_px / camera.height
    # [u', v', 1] = A [u, v, 1] with A the pixel map of the module docstring, so K' = A K
    A = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return Camera(camera.name, A @ camera.K, camera.dist, width_px, height_px, camera.R, camera.t, camera.frame_id)
