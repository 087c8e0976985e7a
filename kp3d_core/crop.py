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


def threshold_mask(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> np.ndarray:
    """Foreground before the opening: |I - B| above ``params.threshold``. -> (H, W) uint8 in {0, 1}."""
    diff = _channel_max_diff(image, background)
    if diff.dtype == np.uint8:
        # for an integer d, d > t <=> d > floor(t): cv2.threshold (which floors an 8-bit threshold) gives
        # numpy's (diff > t) mask, 10x faster
        return cv2.threshold(diff, params.threshold * 255.0, 1, cv2.THRESH_BINARY)[1]
    return (diff > params.threshold).astype(np.uint8)


def _open_kernel(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def open_patch(mask: np.ndarray, params: CropParams = CropParams()) -> tuple[np.ndarray, int, int]:
    """The opened mask on a rectangle that holds all of its foreground: ``(patch, x0, y0)``.

    ``patch`` (h, w) uint8 is the opening of the whole (H, W) mask at ``[y0:y0+h, x0:x0+w]``; the opening is
    zero elsewhere. The rectangle is the mask's bounding box grown by the kernel's radius (the opening is a
    union of kernels inside the mask, so nothing grows further), clipped to the image, so the opening there
    is the whole-image opening exactly (borders that are image borders are borders in both; elsewhere the
    kernel sees real zeros). Cost follows the subject, not the image. An empty mask gives a 0x0 patch.
    """
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0 or h == 0:
        return mask[:0, :0], 0, 0
    r = params.open_kernel // 2 if params.open_kernel > 1 else 0  # the kernel's reach from its anchor, both sides
    H, W = mask.shape
    x0, y0, x1, y1 = _even(max(x - r, 0)), _even(max(y - r, 0)), min(x + w + r, W), min(y + h + r, H)
    if r == 0:
        return mask[y0:y1, x0:x1], x0, y0
    return cv2.morphologyEx(mask[y0:y1, x0:x1], cv2.MORPH_OPEN, _open_kernel(params.open_kernel)), x0, y0


def _even(v: int) -> int:
    """``v`` rounded down to even. Patches start on even pixels: OpenCV's labelling scans 2x2 blocks, and the
    order of the blobs (which decides what :func:`box_from_patch` merges first) follows that block grid."""
    return v - (v & 1)


def foreground_mask(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> np.ndarray:
    """Binary foreground for detection: threshold then opening. -> (H, W) uint8 in {0, 1}."""
    mask = threshold_mask(image, background, params)
    patch, x0, y0 = open_patch(mask, params)
    out = np.zeros_like(mask)
    out[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
    return out


def box_from_patch(
    patch: np.ndarray, x0: int, y0: int, min_area: float, params: CropParams = CropParams()
) -> CropBox | None:
    """:func:`box_from_mask` of a mask that is zero outside ``patch`` (placed at x0, y0), with the smallest blob
    area ``min_area`` in pixels; the box is in the mask's coordinates."""
    if patch.size == 0:
        return None
    h, w = patch.shape
    # 16-bit labels (40 % faster) where they cannot overflow: 8-connected blobs are at most one per 2x2 block
    ltype = cv2.CV_16U if ((h + 1) // 2) * ((w + 1) // 2) < 65535 else cv2.CV_32S
    patch = np.ascontiguousarray(patch, dtype=np.uint8)
    n, _, stats, centroids = cv2.connectedComponentsWithStats(patch, connectivity=8, ltype=ltype)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    main = int(np.argmax(areas))
    if areas[main] < min_area:
        return None
    # patch coordinates below (every comparison is the same in both frames); shifted at the end
    x0p, y0p = stats[1 + main, cv2.CC_STAT_LEFT], stats[1 + main, cv2.CC_STAT_TOP]
    x1p = x0p + stats[1 + main, cv2.CC_STAT_WIDTH]
    y1p = y0p + stats[1 + main, cv2.CC_STAT_HEIGHT]
    reach = params.merge_reach * max(x1p - x0p, y1p - y0p)
    for i in range(len(areas)):
        if i == main or areas[i] < params.merge_fraction * areas[main]:
            continue
        cx, cy = centroids[1 + i]
        if x0p - reach <= cx <= x1p + reach and y0p - reach <= cy <= y1p + reach:
            s = stats[1 + i]
            x0p, y0p = min(x0p, s[cv2.CC_STAT_LEFT]), min(y0p, s[cv2.CC_STAT_TOP])
            x1p = max(x1p, s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH])
            y1p = max(y1p, s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT])
    bx0, by0, bx1, by1 = int(x0p) + x0, int(y0p) + y0, int(x1p) + x0, int(y1p) + y0
    # Box edges are pixel borders; centre in the pixel-centre convention.
    cx, cy = (bx0 + bx1) / 2.0 - 0.5, (by0 + by1) / 2.0 - 0.5
    side = max(params.margin * max(bx1 - bx0, by1 - by0), params.min_side)
    return CropBox(float(cx), float(cy), float(side))


def box_from_mask(mask: np.ndarray, params: CropParams = CropParams()) -> CropBox | None:
    """Square box around the largest plausible blob of a binary mask (H, W); None if there is none.

    Blobs are 8-connected; the largest must cover ``min_area_fraction`` of the mask; pieces of at least
    ``merge_fraction`` of its area whose centroid lies within ``merge_reach`` of its box join it.
    """
    h, w = mask.shape
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    x, y, bw, bh = cv2.boundingRect(mask)  # labelling only the part that holds blobs: same blobs, less work
    x0, y0 = _even(x), _even(y)
    return box_from_patch(mask[y0 : y + bh, x0 : x + bw], x0, y0, params.min_area_fraction * h * w, params)


def detect_box(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams()) -> CropBox | None:
    """The subject's square box from |I - B| alone, or None when no person is found (never raises).

    Equal to ``box_from_mask(foreground_mask(image, background, params), params)``; the opening and the
    labelling run only around the thresholded foreground.
    """
    mask = threshold_mask(image, background, params)
    h, w = mask.shape
    return box_from_patch(*open_patch(mask, params), params.min_area_fraction * h * w, params)


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
    For uint8 images only the pyramid pixels the warp reads are computed (:func:`_pyramid_for_box`); a
    float pyramid's rounding depends on where its rows start, so float images are halved whole.
    """
    M = crop_to_image_matrix(box, size)
    src = image
    s = box.side / size
    levels = 0
    h, w = image.shape[:2]
    while s >= 2.0 and min(h, w) >= 8:
        h, w = (h + 1) // 2, (w + 1) // 2  # cv2.pyrDown's output size
        M = np.diag([0.5, 0.5, 1.0]) @ M
        s /= 2.0
        levels += 1
    if levels and image.dtype == np.uint8:  # integer pyramid: the same pixels wherever it starts
        src = _pyramid_for_box(image, levels, M, size)
    else:
        for _ in range(levels):
            src = cv2.pyrDown(src)
    return cv2.warpAffine(
        src, M[:2], (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def _pyramid_for_box(image: np.ndarray, levels: int, M: np.ndarray, size: int) -> np.ndarray:
    """``levels`` x ``cv2.pyrDown(image)``, correct only where the warp ``M`` (crop -> pyramid px) samples.

    The result has the full pyramid level's shape, so the warp runs with the unchanged matrix and borders
    (bit-identical crops); only a window around the crop's footprint is filled: each pyramid pixel j reads
    image pixels 2j-2 .. 2j+2 of the level below, so the window grows by that much per level, and its origin
    is a multiple of 2**levels so that the window's pyramid samples the image's. Other pixels are never read.
    """
    H, W = image.shape[:2]
    dims = [(H, W)]
    for _ in range(levels):
        dims.append(((dims[-1][0] + 1) // 2, (dims[-1][1] + 1) // 2))
    corners = M[:2, :2] @ np.array([[0.0, size - 1.0, 0.0, size - 1.0], [0.0, 0.0, size - 1.0, size - 1.0]]) + M[:2, 2:]
    # bilinear taps floor(x) and floor(x) + 1, and a pixel to spare for the warp's fixed-point rounding
    lo = np.floor(corners.min(axis=1)).astype(np.int64) - 1  # (x, y)
    hi = np.floor(corners.max(axis=1)).astype(np.int64) + 2
    top_h, top_w = dims[-1]
    if hi[0] < 0 or hi[1] < 0 or lo[0] >= top_w or lo[1] >= top_h:
        return np.zeros((top_h, top_w) + image.shape[2:], image.dtype)  # the crop is all border
    for lvl in range(levels, -1, -1):
        dh, dw = dims[lvl]
        lo, hi = np.maximum(lo, 0), np.minimum(hi, [dw - 1, dh - 1])
        if lvl:
            lo, hi = 2 * lo - 2, 2 * hi + 2
    step = 1 << levels
    x0, y0 = int(lo[0]) // step * step, int(lo[1]) // step * step
    x1, y1 = int(hi[0]) + 1, int(hi[1]) + 1
    window = image[y0:y1, x0:x1]
    for _ in range(levels):
        window = cv2.pyrDown(window)
    out = np.empty((top_h, top_w) + image.shape[2:], image.dtype)
    ox, oy = x0 // step, y0 // step
    out[oy : oy + window.shape[0], ox : ox + window.shape[1]] = window
    return out


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
