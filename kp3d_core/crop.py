"""Label-free subject detection and square crops, shared by training data, evaluation and the node.

The subject is found from the difference to an estimated background ``|I - B|`` only (never from
ground truth): threshold -> morphological opening -> the largest plausible blob (plus nearby pieces
such as a separated arm) -> a square box with a margin. Crops are resampled with ``cv2.warpAffine``
after a Gaussian pyramid step so that strong downscaling does not alias.

Pixel convention: integer coordinates are pixel centres (OpenCV). A crop of size S over a box of side
``side`` (image px) centred at (cx, cy) maps crop pixel c to image pixel ``x = cx + s * (c - (S-1)/2)``
with ``s = side / S``; :func:`crop_to_image_matrix` is that map as a homogeneous 3x3 similarity.
Boxes live in the RAW (distorted) image; undistort the mapped pixels before triangulating.

Example::

    params = CropParams()
    box = detect_box(image, background, params)           # CropBox or None (no person)
    crops = crop_images([image], [box], 64)                 # (1, 64, 64, 3) uint8
    uv_img = crop_to_image(uv_crop, crop_to_image_matrix(box, 64))
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropParams:
    """How the subject is found and boxed (defaults suit a 640x480 studio view of one person)."""

    threshold: float = 15.0 / 255.0
    """|I - B| (max over RGB, in [0, 1]) above which a pixel is foreground for detection. On studio-bench
    (120 frames x 4 views) 40/255 lost dark hair against dark walls: the head joint fell outside 36 % of
    crops; 15/255 with margin 1.3 keeps 99.9 % of visible joints (99 % of heads) inside, no runaway boxes."""
    soft_low: float = 15.0 / 255.0
    """Soft foreground: 0 at or below this difference ..."""
    soft_high: float = 60.0 / 255.0
    """... 1 at or above this one (linear ramp between)."""
    open_kernel: int = 5
    """Side (px) of the elliptic structuring element of the morphological opening (removes noise)."""
    min_area_fraction: float = 0.002
    """A blob smaller than this fraction of the image area is not a person."""
    merge_fraction: float = 0.05
    """Pieces of at least this fraction of the main blob's area whose centre lies within ``merge_reach``..."""
    merge_reach: float = 0.5
    """... times the main blob's size of its box are added to it (an arm split off by the opening)."""
    margin: float = 1.3
    """The square side is this factor times the longer side of the blob's box."""
    min_side: float = 32.0
    """Smallest square side in image pixels."""

    def key(self) -> str:
        """Stable text of the parameters (part of cache keys)."""
        return ",".join(f"{k}={getattr(self, k)!r}" for k in self.__dataclass_fields__)


@dataclass(frozen=True)
class CropBox:
    """A square crop region of the raw image: centre (cx, cy) and side, image pixels."""

    cx: float
    cy: float
    side: float

    def as_array(self) -> np.ndarray:
        """(3,) [cx, cy, side]."""
        return np.array([self.cx, self.cy, self.side], dtype=np.float64)


def _check_image(name: str, image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected an (H, W, 3) image, got shape {image.shape}")
    return image


def _channel_max_diff(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """|I - B| max over channels, (H, W) in the input dtype (cv2 per channel: numpy's max(axis=2) is 40x slower)."""
    image = _check_image("image", image)
    background = _check_image("background", background)
    if image.shape != background.shape or image.dtype != background.dtype:
        raise ValueError(f"background: shape/dtype {background.shape} {background.dtype} differs from the image's "
                         f"{image.shape} {image.dtype}")
    c0, c1, c2 = cv2.split(cv2.absdiff(image, background))
    return cv2.max(cv2.max(c0, c1), c2)


def difference(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """|I - B| as the max over channels: (H, W, 3) uint8 x2 -> (H, W) float32 in [0, 1]."""
    diff = _channel_max_diff(image, background)
    return diff.astype(np.float32) / 255.0 if diff.dtype == np.uint8 else diff.astype(np.float32)


def soft_foreground(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> np.ndarray:
    """Soft foreground from |I - B| with a linear ramp: (H, W, 3) x2 -> (H, W) float32 in [0, 1].

    Works on full images and on crops alike (crop image and background with the same box first).
    """
    d = difference(image, background)
    return np.clip((d - params.soft_low) / max(params.soft_high - params.soft_low, 1e-6), 0.0, 1.0)


def foreground_mask(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> np.ndarray:
    """Binary foreground for detection: threshold then opening. -> (H, W) uint8 in {0, 1}."""
    diff = _channel_max_diff(image, background)
    level = params.threshold * 255.0 if diff.dtype == np.uint8 else params.threshold
    mask = (diff > level).astype(np.uint8)
    if params.open_kernel > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (params.open_kernel, params.open_kernel))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask


def box_from_mask(mask: np.ndarray, params: CropParams = CropParams()) -> CropBox | None:
    """Square box around the largest plausible blob of a binary mask (H, W); None if there is none."""
    h, w = mask.shape
    n, _, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    main = int(np.argmax(areas))
    if areas[main] < params.min_area_fraction * h * w:
        return None
    x0, y0 = stats[1 + main, cv2.CC_STAT_LEFT], stats[1 + main, cv2.CC_STAT_TOP]
    x1 = x0 + stats[1 + main, cv2.CC_STAT_WIDTH]
    y1 = y0 + stats[1 + main, cv2.CC_STAT_HEIGHT]
    reach = params.merge_reach * max(x1 - x0, y1 - y0)
    for i in range(len(areas)):
        if i == main or areas[i] < params.merge_fraction * areas[main]:
            continue
        cx, cy = centroids[1 + i]
        if x0 - reach <= cx <= x1 + reach and y0 - reach <= cy <= y1 + reach:
            s = stats[1 + i]
            x0, y0 = min(x0, s[cv2.CC_STAT_LEFT]), min(y0, s[cv2.CC_STAT_TOP])
            x1 = max(x1, s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH])
            y1 = max(y1, s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT])
    # Box edges are pixel borders; centre in the pixel-centre convention.
    cx, cy = (x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5
    side = max(params.margin * max(x1 - x0, y1 - y0), params.min_side)
    return CropBox(float(cx), float(cy), float(side))


def detect_box(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> CropBox | None:
    """The subject's square box from |I - B| alone, or None when no person is found (never raises)."""
    return box_from_mask(foreground_mask(image, background, params), params)


def fallback_box(width: int, height: int) -> CropBox:
    """The box used when no person is found: the image centre, side = the shorter image side."""
    return CropBox((width - 1) / 2.0, (height - 1) / 2.0, float(min(width, height)))


def crop_to_image_matrix(box: CropBox, size: int) -> np.ndarray:
    """(3, 3) float64 similarity, crop pixels -> image pixels (homogeneous)."""
    s = box.side / size
    c = (size - 1) / 2.0
    return np.array([[s, 0.0, box.cx - s * c], [0.0, s, box.cy - s * c], [0.0, 0.0, 1.0]])


def image_to_crop_matrix(box: CropBox, size: int) -> np.ndarray:
    """(3, 3) float64 similarity, image pixels -> crop pixels (inverse of :func:`crop_to_image_matrix`)."""
    s = box.side / size
    c = (size - 1) / 2.0
    return np.array([[1 / s, 0.0, c - box.cx / s], [0.0, 1 / s, c - box.cy / s], [0.0, 0.0, 1.0]])


def _apply(uv, M):
    """Apply (..., 3, 3) similarities to (..., N, 2) points; NumPy or torch, same type out."""
    if hasattr(uv, "detach"):  # torch: keep it differentiable
        M = M.to(uv.dtype)
        return uv @ M[..., :2, :2].transpose(-1, -2) + M[..., None, :2, 2]
    uv = np.asarray(uv, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    return uv @ np.swapaxes(M[..., :2, :2], -1, -2) + M[..., None, :2, 2]


def crop_to_image(uv_crop, crop_to_image_M):
    """Crop pixels (..., N, 2) -> image pixels (..., N, 2), with (..., 3, 3) matrices (NumPy or torch)."""
    return _apply(uv_crop, crop_to_image_M)


def image_to_crop(uv_image, crop_to_image_M):
    """Image pixels (..., N, 2) -> crop pixels (..., N, 2); the inverse of :func:`crop_to_image`."""
    if hasattr(crop_to_image_M, "detach"):
        import torch

        return _apply(uv_image, torch.linalg.inv(crop_to_image_M))
    return _apply(uv_image, np.linalg.inv(np.asarray(crop_to_image_M, dtype=np.float64)))


def crop_image(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """One square crop (size, size, C) of an (H, W, C) image, zero outside the image.

    Downscaling by s = side / size >= 2 first halves the image with ``cv2.pyrDown`` (Gaussian blur then
    every second pixel: pyramid pixel j sits at image pixel 2j) so bilinear sampling does not alias.
    """
    M = crop_to_image_matrix(box, size)
    src = image
    s = box.side / size
    while s >= 2.0 and min(src.shape[:2]) >= 8:
        src = cv2.pyrDown(src)
        M = np.diag([0.5, 0.5, 1.0]) @ M
        s /= 2.0
    return cv2.warpAffine(
        src, M[:2], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def crop_images(images, boxes, size: int) -> np.ndarray:
    """Crops of V images: sequence of (H, W, C) images and V boxes -> (V, size, size, C), input dtype.

    A box of None is replaced by :func:`fallback_box` (the caller flags that view as invalid).
    """
    if len(images) != len(boxes):
        raise ValueError(f"crop_images: {len(images)} images but {len(boxes)} boxes")
    if size < 4:
        raise ValueError(f"crop_images: size must be >= 4, got {size}")
    out = []
    for img, box in zip(images, boxes):
        img = np.asarray(img)
        if box is None:
            box = fallback_box(img.shape[1], img.shape[0])
        crop = crop_image(img, box, size)
        out.append(crop if crop.ndim == img.ndim else crop[..., None])
    return np.stack(out)
