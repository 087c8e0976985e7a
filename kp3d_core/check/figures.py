"""Label-free quality figures of a recording, as pure functions over per-frame arrays.

Shapes: ``T`` frames, ``V`` views (cameras), ``K`` keypoints, ``J`` = 17 joints (kp3d_core/skeleton.py).
Pixels are raw image pixels unless a name says ``ideal`` (undistorted pixels of the pinhole camera, which
is what triangulation uses); metres and seconds elsewhere. Missing values are NaN, never a sentinel.

- Reprojection consistency: keypoints triangulated (confidence-weighted DLT, as the estimator does) and
  reprojected; the distance to the detected keypoint, in pixels and in crop-box sides.
- The identity-shuffled null: the same per-view keypoints with their identities permuted across keypoints,
  independently in every view and frame, before triangulating. Points on the body with no correspondence:
  what a model whose keypoint labels mean nothing across views would score.
- Time offsets: a view's leave-one-out residuals against the image velocity (a late camera lags its motion).
- Swapped names: the reprojection error with two views' calibrations exchanged, over the error as calibrated.
- Leave-one-out: each view's keypoints against the point triangulated from the OTHER views; a camera
  knocked out of its calibration shows a residual of a consistent direction (its bias), where a view that
  is merely hard for the model shows scattered residuals.
- Keypoints on the foreground, bone-length stability, root speed, crop size.

Example::

    err_px, used = reprojection_errors(uv_ideal, weights, P)          # (T, V, K) px, (T, V, K) bool
    loo = leave_one_out_residuals(uv_ideal, weights, P)               # (T, V, K, 2) px
    residual_bias(loo[:, 1] / box_side[:, 1, None, None])             # cam 1's systematic offset, box sides
    null_px, _ = reprojection_errors(*shuffle_identities(uv_ideal, weights, rng), P)
    summary(err_px[used])                                             # {"median": ..., "p90": ...}
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..background import median_background
from ..crop import CropParams, foreground_mask
from ..geometry import project, triangulate
from ..skeleton import BONES, ROOT


def _check(name: str, a: np.ndarray, ndim: int, last: tuple[int, ...] = ()) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim or (last and tuple(a.shape[-len(last):]) != last):
        want = "(" + ", ".join(["*"] * (ndim - len(last)) + [str(s) for s in last]) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    return a


def summary(values, quantiles: tuple[int, ...] = (50, 90)) -> dict[str, float]:
    """Percentiles of the finite values: {"median": p50, "p90": ..., "n": count}; NaN percentiles when empty."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    out = {}
    for q in quantiles:
        out["median" if q == 50 else f"p{q}"] = float(np.percentile(v, q)) if v.size else float("nan")
    out["n"] = int(v.size)
    return out


# ------------------------------------------------------------------------------------------ reprojection
def reprojection_errors(points2d_ideal, weights, P, min_views: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Distance between each keypoint and the reprojection of its triangulated 3D point.

    Args:
        points2d_ideal: (T, V, K, 2) ideal pixels (NaN: not seen).
        weights: (T, V, K) confidences >= 0 (0: the view does not contribute the keypoint).
        P: (V, 3, 4) projection matrices, world metres -> ideal pixels.
        min_views: views with positive weight needed to triangulate a keypoint.

    Returns:
        errors_px: (T, V, K) float64 pixels; NaN where not ``used``.
        used: (T, V, K) bool, the view contributed to a keypoint that was triangulated.
    """
    uv = _check("points2d_ideal", points2d_ideal, 4, (2,)).astype(np.float64)
    T, V, K, _ = uv.shape
    w = _check("weights", weights, 3).astype(np.float64)
    if w.shape != (T, V, K):
        raise ValueError(f"weights: expected shape {(T, V, K)}, got {w.shape}")
    P = _check("P", P, 3, (3, 4)).astype(np.float64)
    if P.shape[0] != V:
        raise ValueError(f"P: expected {V} projection matrices, got {P.shape[0]}")
    if T == 0:
        return np.zeros((0, V, K)), np.zeros((0, V, K), bool)
    w = np.where(np.isfinite(uv).all(-1), np.clip(w, 0.0, None), 0.0)
    uv_t = torch.from_numpy(np.nan_to_num(uv))
    P_t = torch.from_numpy(P)[None]
    X, valid = triangulate(uv_t, torch.from_numpy(w), P_t, min_views=min_views)
    err = (project(torch.nan_to_num(X), P_t) - uv_t).norm(dim=-1).numpy()  # (T, V, K)
    used = (w > 0) & valid.numpy()[:, None, :]
    return np.where(used, err, np.nan), used


def swap_ratios(points2d_ideal, weights, P, min_views: int = 2) -> dict[tuple[int, int], float]:
    """For every pair of views (a, b): the median reprojection error with their projection matrices exchanged,
    over the median as calibrated. Far below 1 for a pair whose names are swapped (in the rig file or on the
    topics): the views agree once the two calibrations trade places.

    Args as :func:`reprojection_errors` (the ideal pixels stay each view's own: exact for cameras with the same
    intrinsics, close for similar ones). Returns {(a, b): ratio} for a < b; empty with fewer than 3 views (two
    views agree about as well either way) or without a finite baseline.
    """
    P = _check("P", P, 3, (3, 4)).astype(np.float64)
    V = P.shape[0]
    base = np.nanmedian(reprojection_errors(points2d_ideal, weights, P, min_views)[0]) if V >= 3 else np.nan
    if not np.isfinite(base) or base <= 0:
        return {}
    out = {}
    for a in range(V):
        for b in range(a + 1, V):
            Ps = P.copy()
            Ps[[a, b]] = P[[b, a]]
            err = np.nanmedian(reprojection_errors(points2d_ideal, weights, Ps, min_views)[0])
            out[(a, b)] = float(err / base)
    return out


def leave_one_out_residuals(points2d_ideal, weights, P, min_views: int = 2) -> np.ndarray:
    """Each view's keypoints against the point triangulated from the other views only.

    Shapes as :func:`reprojection_errors`. Returns (T, V, K, 2) float64 pixels: for view v, the reprojection
    into v of the point triangulated without v, minus v's keypoint; NaN where v has no weight or the other
    views cannot triangulate (with V = 2 the other view alone never can). A camera whose calibration is off
    shows a residual of a consistent direction (see :func:`residual_bias`); a hard view, a scattered one.
    """
    uv = _check("points2d_ideal", points2d_ideal, 4, (2,)).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)
    T, V, K, _ = uv.shape
    out = np.full((T, V, K, 2), np.nan)
    P = np.asarray(P, dtype=np.float64)
    if T == 0:
        return out
    seen = np.isfinite(uv).all(-1) & (w > 0)
    uv_t = torch.from_numpy(np.nan_to_num(uv))
    for v in range(V):
        w_others = np.where(seen, w, 0.0)
        w_others[:, v] = 0.0
        X, valid = triangulate(uv_t, torch.from_numpy(w_others), torch.from_numpy(P)[None], min_views=min_views)
        uv_hat = project(torch.nan_to_num(X), torch.from_numpy(P[v : v + 1])[None])[:, 0].numpy()  # (T, K, 2)
        ok = valid.numpy() & seen[:, v]
        out[:, v] = np.where(ok[..., None], uv_hat - uv[:, v], np.nan)
    return out


def sync_lags(residuals, points2d_ideal, frame_index, min_speed_px: float = 1.0) -> np.ndarray:
    """Each view's time offset against the others, in frames (positive: its images are late).

    A view whose images show the instant ``d`` frames earlier sees each keypoint where it was ``d`` frames ago:
    its leave-one-out residual (the others' point minus its own) is ``d`` times the point's image velocity. ``d``
    is the least-squares fit of the residuals onto the velocities of the others' point (central differences over
    consecutive frames), over keypoints moving at least ``min_speed_px`` per frame.

    Args: residuals (T, V, K, 2) px (:func:`leave_one_out_residuals`); points2d_ideal (T, V, K, 2); frame_index
    (T,) each row's index among the recording's frames (velocities only where rows t-1, t, t+1 are consecutive).
    Returns (V,) frames, NaN where no keypoint moved enough.
    """
    r = _check("residuals", residuals, 4, (2,)).astype(np.float64)
    uv = _check("points2d_ideal", points2d_ideal, 4, (2,)).astype(np.float64)
    idx = np.asarray(frame_index)
    T, V = r.shape[:2]
    lags = np.full(V, np.nan)
    if T < 3:
        return lags
    others = uv + r  # where the other views put each keypoint in this view
    vel = (others[2:] - others[:-2]) / 2.0  # (T-2, V, K, 2) px per frame, at rows 1..T-2
    consecutive = (idx[2:] - idx[:-2]) == 2
    res = r[1:-1]
    speed = np.linalg.norm(vel, axis=-1)
    ok = consecutive[:, None, None] & np.isfinite(speed) & np.isfinite(res).all(-1) & (speed >= min_speed_px)
    for v in range(V):
        m = ok[:, v]
        if m.sum() >= 10:
            a, b = vel[:, v][m], res[:, v][m]
            lags[v] = float((a * b).sum() / (a * a).sum())
    return lags


def residual_bias(residuals) -> float:
    """Length of the component-wise median of (..., 2) residual vectors (finite rows only); NaN when none.

    Random keypoint errors cancel in the median; a calibration error (a rotation of a few degrees shifts
    the whole image) does not.
    """
    r = np.asarray(residuals, dtype=np.float64).reshape(-1, 2)
    r = r[np.isfinite(r).all(axis=1)]
    return float(np.linalg.norm(np.median(r, axis=0))) if len(r) else float("nan")


def shuffle_identities(points2d, weights, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The identity-shuffled null: in every frame and view, keypoints (and their weights) permuted at random.

    (T, V, K, 2), (T, V, K) -> new arrays of the same shapes; each (t, v) gets its own permutation of K,
    so the points stay where the model put them (on the body) but lose their correspondence across views.
    """
    uv = _check("points2d", points2d, 4, (2,))
    w = np.asarray(weights)
    T, V, K, _ = uv.shape
    perm = np.argsort(rng.random((T, V, K)), axis=-1)
    return np.take_along_axis(uv, perm[..., None], axis=2), np.take_along_axis(w, perm, axis=2)


def in_box_sides(errors_px, box_side_px) -> np.ndarray:
    """Pixels (T, V, K) -> crop-box sides, with (T, V) box sides in pixels (NaN where no box)."""
    side = np.asarray(box_side_px, dtype=np.float64)
    side = np.where(np.isfinite(side) & (side > 0), side, np.nan)
    return np.asarray(errors_px, dtype=np.float64) / side[..., None]


# ------------------------------------------------------------------------------------------ images
def distance_to_mask(points, mask) -> np.ndarray:
    """(K, 2) raw pixels and an (H, W) {0, 1} mask -> (K,) pixels from each point to the nearest mask pixel.

    0 on the mask; NaN for NaN points; a point outside the image is measured from its nearest image pixel
    plus the distance to that pixel; inf when the mask is empty.
    """
    pts = _check("points", points, 2, (2,)).astype(np.float64)
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W), got {m.shape}")
    out = np.full(len(pts), np.nan)
    ok = np.isfinite(pts).all(1)
    if not m.any():
        out[ok] = np.inf
        return out
    dist = cv2.distanceTransform((m == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    H, W = m.shape
    ij = np.round(pts[ok]).astype(np.int64)
    x, y = np.clip(ij[:, 0], 0, W - 1), np.clip(ij[:, 1], 0, H - 1)
    outside = np.hypot(pts[ok, 0] - x, pts[ok, 1] - y)
    out[ok] = dist[y, x] + np.where((ij[:, 0] != x) | (ij[:, 1] != y), outside, 0.0)
    return out


def outside_box(mask, box) -> float:
    """Share of a (H, W) {0, 1} mask's pixels outside the square ``box`` [cx, cy, side] (all of it without a box);
    NaN for an empty mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask: expected shape (H, W), got {mask.shape}")
    box = np.asarray(box, dtype=np.float64)
    total = int(np.count_nonzero(mask))
    if total == 0:
        return float("nan")
    if not np.isfinite(box).all():
        return 1.0
    cx, cy, side = box
    H, W = mask.shape
    x0, x1 = int(np.clip(np.floor(cx - side / 2), 0, W)), int(np.clip(np.ceil(cx + side / 2) + 1, 0, W))
    y0, y1 = int(np.clip(np.floor(cy - side / 2), 0, H)), int(np.clip(np.ceil(cy + side / 2) + 1, 0, H))
    return float(1.0 - np.count_nonzero(mask[y0:y1, x0:x1]) / total)


def moving_fraction(frames, params: CropParams = CropParams()) -> float:
    """Fraction of the image where anything moved over (N, H, W, 3) uint8 frames of one static camera.

    A pixel moved when at least one frame differs from the frames' median there (the detector's threshold and
    opening, :func:`kp3d_core.crop.foreground_mask`). Over the frames a background is learnt from, it is the
    area a person crossed or stood in while in view: where they stayed for most of the frames, the median
    (and so the background) holds them. 0 for an empty scene or a single frame.
    """
    stack = _check("frames", frames, 4, (3,))
    if len(stack) < 2:
        return 0.0
    med = median_background(stack)
    moved = np.zeros(stack.shape[1:3], bool)
    for f in stack:
        moved |= foreground_mask(f, med, params) > 0
    return float(moved.mean())


def box_fraction(box_side_px, image_sizes) -> np.ndarray:
    """(T, V) crop-box sides, pixels, and (V, 2) image (width, height) -> (T, V) side / shorter image side."""
    side = np.asarray(box_side_px, dtype=np.float64)
    wh = _check("image_sizes", image_sizes, 2, (2,)).astype(np.float64)
    return side / wh.min(axis=1)


# ------------------------------------------------------------------------------------------ pose over time
def bone_lengths(poses) -> np.ndarray:
    """(T, 17, 3) poses, metres -> (T, B) length of each bone of ``skeleton.BONES``, metres."""
    p = _check("poses", poses, 3, (3,)).astype(np.float64)
    parent, child = np.array(BONES).T
    return np.linalg.norm(p[:, child] - p[:, parent], axis=-1)


def bone_length_cv(poses) -> np.ndarray:
    """(T, 17, 3) -> (B,) coefficient of variation (std / mean) of each bone's length over the frames.

    A real person's bones keep their length: a good estimate varies by a few per cent. NaN with fewer than
    2 frames; NaN rows (no pose) are skipped.
    """
    lengths = bone_lengths(poses)
    lengths = lengths[np.isfinite(lengths).all(axis=1)]
    if len(lengths) < 2:
        return np.full(lengths.shape[1], np.nan)
    return lengths.std(axis=0) / np.maximum(lengths.mean(axis=0), 1e-9)


def root_speeds(poses, stamps_ns, max_gap_s: float = 0.5) -> np.ndarray:
    """Speed of the root joint (pelvis) between consecutive poses, m/s.

    Args:
        poses: (T, 17, 3) metres; NaN rows are frames without a pose.
        stamps_ns: (T,) integer nanoseconds, increasing.
        max_gap_s: pairs of poses further apart in time than this are not used.

    Returns:
        (N,) speeds of the consecutive pairs of valid poses within ``max_gap_s``.
    """
    p = _check("poses", poses, 3, (3,)).astype(np.float64)
    t = np.asarray(stamps_ns, dtype=np.int64)
    if t.shape != (len(p),):
        raise ValueError(f"stamps_ns: expected shape ({len(p)},), got {t.shape}")
    ok = np.isfinite(p).all(axis=(1, 2))
    root, t = p[ok, ROOT], t[ok] * 1e-9
    if len(root) < 2:
        return np.zeros(0)
    dt = np.diff(t)
    keep = (dt > 0) & (dt <= max_gap_s)
    return np.linalg.norm(np.diff(root, axis=0), axis=1)[keep] / dt[keep]
