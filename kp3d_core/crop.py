"""Label-free subject detection and square crops, shared by training data, evaluation and the node.

The subject is found from the difference to an estimated background ``|I - B|`` only (never from
ground truth): the background scaled by the image's global per-channel gain (:func:`estimate_gain`: lamps,
auto-exposure) -> threshold -> morphological opening -> the subject's blob (the largest plausible one, or, given
a ``hint`` region where the subject is expected, the one there: :func:`box_from_patch`) plus nearby pieces such
as a separated arm -> a square box with a margin. Crops are resampled with ``cv2.warpAffine`` after a Gaussian
pyramid step so that strong downscaling does not alias.

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
    gain: bool = True
    """Scale the background by the image's per-channel gain over the room (:func:`estimate_gain`) before the
    difference, so that a lamp switched on or off or an auto-exposure step does not turn the room into
    foreground. Gains within ``GAIN_DEAD_ZONE`` of 1 are not applied (the plain difference, exactly)."""

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

    def pixel_rect(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) integer pixel slice bounds of the box within a ``width`` x ``height`` image."""
        half = self.side / 2.0
        x0, y0 = int(max(self.cx - half, 0)), int(max(self.cy - half, 0))
        x1, y1 = int(min(self.cx + half + 1, width)), int(min(self.cy + half + 1, height))
        return x0, y0, x1, y1


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


GAIN_DEAD_ZONE = 0.03
"""A gain within this of 1 in every channel is treated as 1 (a drift of 3 % is 4 levels at 150: noise)."""


def estimate_gain(image: np.ndarray, background: np.ndarray, exclude=None, step: int = 16) -> np.ndarray:
    """Per-channel gain ``g`` with ``image ~ g * background`` over the room: (H, W, 3) uint8 x2 -> (3,) float64.

    The median of ``image / background`` over a grid of every ``step``-th pixel (1200 samples at 640x480;
    background at least 24 levels, image not saturated), then again over the samples within 15 % of it (the room;
    a subject, a ghost or a bystander differ by more). ``exclude`` (x0, y0, x1, y1) leaves out a rectangle (the subject's box). Returns
    ones when fewer than 64 samples are usable. Clipped to [0.25, 4].

    Example: ``estimate_gain(np.full((8, 8, 3), 120, np.uint8), np.full((8, 8, 3), 100, np.uint8), step=1)``
    is ``[1.2, 1.2, 1.2]``.
    """
    image, background = _check_image("image", image), _check_image("background", background)
    img = image[step // 2 :: step, step // 2 :: step].astype(np.float32)
    bg = background[step // 2 :: step, step // 2 :: step].astype(np.float32)
    keep = (bg.min(axis=-1) >= 24.0) & (img.max(axis=-1) <= 250.0)
    if exclude is not None:
        x0, y0, x1, y1 = exclude
        ys = np.arange(step // 2, image.shape[0], step)[: keep.shape[0]]
        xs = np.arange(step // 2, image.shape[1], step)[: keep.shape[1]]
        keep &= ~(((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :])
    if keep.sum() < 64:
        return np.ones(3)
    ratio = img[keep] / bg[keep]  # (N, 3)
    g = np.median(ratio, axis=0)
    near = (np.abs(ratio / g - 1.0) <= 0.15).all(axis=-1)
    if near.sum() >= 64:
        g = np.median(ratio[near], axis=0)
    return np.clip(g.astype(np.float64), 0.25, 4.0)


def apply_gain(background: np.ndarray, gain) -> np.ndarray:
    """``background`` (H, W, 3) uint8 scaled per channel by ``gain`` (3,), rounded and saturated; the same array
    when every gain is within :data:`GAIN_DEAD_ZONE` of 1 (or ``gain`` is None)."""
    if gain is None or np.all(np.abs(np.asarray(gain) - 1.0) <= GAIN_DEAD_ZONE):
        return background
    return cv2.transform(background, np.diag(np.asarray(gain, dtype=np.float64)))


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


def threshold_mask(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams(),
                   gain=None) -> np.ndarray:
    """Foreground before the opening: |I - g B| above ``params.threshold``. -> (H, W) uint8 in {0, 1}.

    ``gain``: (3,) per-channel gain of the image over the background (:func:`estimate_gain`, :func:`apply_gain`);
    None: estimated here when ``params.gain``, else none.
    """
    if gain is None and params.gain:
        gain = estimate_gain(image, background)
    diff = _channel_max_diff(image, apply_gain(background, gain))
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


def foreground_mask(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams(),
                    gain=None) -> np.ndarray:
    """Binary foreground for detection: threshold (``gain`` as in :func:`threshold_mask`) then opening.
    -> (H, W) uint8 in {0, 1}."""
    mask = threshold_mask(image, background, params, gain)
    patch, x0, y0 = open_patch(mask, params)
    out = np.zeros_like(mask)
    out[y0 : y0 + patch.shape[0], x0 : x0 + patch.shape[1]] = patch
    return out


def box_from_patch(
    patch: np.ndarray, x0: int, y0: int, min_area: float, params: CropParams = CropParams(), hint=None,
) -> CropBox | None:
    """:func:`box_from_mask` of a mask that is zero outside ``patch`` (placed at x0, y0), with the smallest blob
    area ``min_area`` in pixels; the box is in the mask's coordinates.

    ``hint`` (x0, y0, x1, y1), mask px: where the subject is expected (the reprojection of its last 3D keypoints,
    or of its 3D position agreed by the views: :mod:`kp3d_core.foreground`). The main blob is then the largest
    one of at least ``min_area`` whose centre lies in the hint (None when there is none: not the largest blob
    elsewhere), so that a bystander or a ghost outside the hint never wins; nearby pieces join it as without a
    hint (the boxes the network was trained on).
    """
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
    inside = None
    if hint is None:
        main = int(np.argmax(areas))
    else:  # patch coordinates: the hint shifted
        hx0, hy0, hx1, hy1 = hint[0] - x0, hint[1] - y0, hint[2] - x0, hint[3] - y0
        c = centroids[1:]
        inside = (c[:, 0] >= hx0) & (c[:, 0] <= hx1) & (c[:, 1] >= hy0) & (c[:, 1] <= hy1)
        if not (inside & (areas >= min_area)).any():
            return None
        main = int(np.argmax(np.where(inside, areas, -1)))
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


def box_from_mask(mask: np.ndarray, params: CropParams = CropParams(), hint=None) -> CropBox | None:
    """Square box around the largest plausible blob of a binary mask (H, W); None if there is none.

    Blobs are 8-connected; the largest must cover ``min_area_fraction`` of the mask; pieces of at least
    ``merge_fraction`` of its area whose centroid lies within ``merge_reach`` of its box join it. ``hint``: see
    :func:`box_from_patch`.
    """
    h, w = mask.shape
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    x, y, bw, bh = cv2.boundingRect(mask)  # labelling only the part that holds blobs: same blobs, less work
    x0, y0 = _even(x), _even(y)
    return box_from_patch(mask[y0 : y + bh, x0 : x + bw], x0, y0, params.min_area_fraction * h * w, params, hint)


def detect_box(image: np.ndarray, background: np.ndarray, params: CropParams = CropParams(), hint=None,
               gain=None) -> CropBox | None:
    """The subject's square box from |I - B| alone, or None when no person is found (never raises).

    Equal to ``box_from_mask(foreground_mask(image, background, params, gain), params, hint)``; the opening and
    the labelling run only around the thresholded foreground.
    """
    mask = threshold_mask(image, background, params, gain)
    h, w = mask.shape
    return box_from_patch(*open_patch(mask, params), params.min_area_fraction * h * w, params, hint)


def blobs(mask: np.ndarray, min_area: float, limit: int = 6) -> np.ndarray:
    """The largest blobs of an opened binary mask (H, W): (N, 7) float64 rows [x0, y0, x1, y1, area, cx, cy]
    (box edges as pixel borders, x1/y1 exclusive; centre of mass in pixel centres), at least ``min_area`` pixels,
    at most ``limit``, largest first. The candidates :func:`kp3d_core.foreground.agree_across_views` chooses from."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    x, y, bw, bh = cv2.boundingRect(mask)
    x0, y0 = _even(x), _even(y)
    return blobs_of_patch(mask[y0 : y + bh, x0 : x + bw], x0, y0, min_area, limit)


def blobs_of_patch(patch: np.ndarray, x0: int, y0: int, min_area: float, limit: int = 6) -> np.ndarray:
    """:func:`blobs` of a mask that is zero outside ``patch`` (placed at x0, y0)."""
    if patch.size == 0:
        return np.zeros((0, 7))
    n, _, stats, centroids = cv2.connectedComponentsWithStats(np.ascontiguousarray(patch, dtype=np.uint8),
                                                              connectivity=8, ltype=cv2.CV_32S)
    st, c = stats[1:].astype(np.float64), centroids[1:]
    rows = np.column_stack([st[:, 0] + x0, st[:, 1] + y0, st[:, 0] + st[:, 2] + x0, st[:, 1] + st[:, 3] + y0,
                            st[:, 4], c[:, 0] + x0, c[:, 1] + y0])
    rows = rows[rows[:, 4] >= min_area]
    return rows[np.argsort(-rows[:, 4], kind="stable")[:limit]]


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
