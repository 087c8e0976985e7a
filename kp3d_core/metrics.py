"""Pose accuracy metrics (NumPy, float64). Inputs in metres give outputs in metres unless noted.

Definitions (``pred``, ``gt``: (N, J, 3), N poses of J joints; reported in millimetres by callers):

- MPJPE: mean over poses and joints of the Euclidean distance ``|pred - gt|``.
- N-MPJPE: both poses root-centred (joint ``root``), then ``pred`` scaled by the least-squares factor
  ``s = <pred, gt> / <pred, pred>`` (per pose), then MPJPE (Rhodin et al. 2018).
- P-MPJPE: ``pred`` aligned to ``gt`` per pose by the similarity transform (rotation, uniform scale,
  translation) that minimises the squared error (Procrustes; proper rotation, no reflection), then MPJPE.
- 3D-PCK: percentage of joints whose error is below a threshold (150 mm).
- AUC: mean of 3D-PCK over 31 thresholds evenly spaced in [0, 150 mm], as a percentage.
- 2D error (% of image size): mean over points of ``100 * sqrt((du / W)^2 + (dv / H)^2)``.
- Ambiguity ratio (Yang et al., Mask as Supervision): for each left/right pair i, ``f_i`` counts the N
  samples in which the predicted pair is flipped (its left joint nearer the true right joint and vice
  versa, summed distances); ``r = sum_i min(f_i, N - f_i) / (N * pairs)``. A labelling that is
  consistently swapped counts 0; a coin flip per sample gives 0.5.
- Keypoint placement (a diagnosis of the discovered keypoints, not of the pose): each valid 3D keypoint's
  distance to the nearest bone segment of the true skeleton, and to its nearest fellow keypoint. A keypoint
  can reproject onto the body in every view yet float in the visual hull's phantom volumes, off the body;
  only the first figure shows it.
- Body-side keeping (a diagnosis of the discovered keypoints' left/right identity): the true body's left axis
  (left minus right hip plus left minus right shoulder, horizontal) gives each frame a heading and each 3D
  keypoint a lateral coordinate. Frames whose heading points against the circular mean heading are "turned".
  For each lateral keypoint (median lateral offset over 8 cm) its body side is the sign of its median lateral
  coordinate in the other frames; the figures are the percentages of frames in which it is on that side, with
  the body facing its usual way and turned. A keypoint labelled on the body keeps its side either way; one
  labelled by a direction in the room (e.g. "the limb nearer the door") changes side whenever the body turns.

No metric chooses anything by its error against ground truth on behalf of the prediction: the left/right
test of the ambiguity ratio only measures, it never changes the prediction.
"""
from __future__ import annotations

import numpy as np

from .skeleton import BONES, JOINT_INDEX, LEFT_RIGHT_PAIRS, ROOT

PCK_THRESHOLD_M = 0.150
AUC_THRESHOLDS_M = np.linspace(0.0, 0.150, 31)


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim < 2:
        raise ValueError(f"pred and gt must have the same shape (..., J, D), got {p.shape} and {g.shape}")
    return p, g


def joint_errors(pred, gt) -> np.ndarray:
    """(..., J) Euclidean distance per joint."""
    p, g = _pair(pred, gt)
    return np.linalg.norm(p - g, axis=-1)


def mpjpe(pred, gt) -> float:
    """Mean per-joint position error of (N, J, 3) poses."""
    return float(joint_errors(pred, gt).mean())


def n_mpjpe(pred, gt, root: int = ROOT) -> float:
    """MPJPE after root-centring and a per-pose least-squares scale of the prediction."""
    p, g = _pair(pred, gt)
    p = p - p[..., root : root + 1, :]
    g = g - g[..., root : root + 1, :]
    s = (p * g).sum(axis=(-1, -2), keepdims=True) / np.maximum((p * p).sum(axis=(-1, -2), keepdims=True), 1e-12)
    return mpjpe(s * p, g)


def procrustes_align(pred, gt) -> np.ndarray:
    """(N, J, 3) ``pred`` after the per-pose similarity transform that best fits ``gt`` (Umeyama)."""
    p, g = _pair(pred, gt)
    mp, mg = p.mean(axis=-2, keepdims=True), g.mean(axis=-2, keepdims=True)
    p0, g0 = p - mp, g - mg
    H = np.swapaxes(p0, -1, -2) @ g0  # (N, 3, 3)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    D = np.ones_like(S)
    D[..., -1] = d
    R = np.swapaxes(Vt, -1, -2) @ (D[..., :, None] * np.swapaxes(U, -1, -2))  # (N, 3, 3): p0 @ R.T ~ g0
    scale = (S * D).sum(-1) / np.maximum((p0**2).sum(axis=(-1, -2)), 1e-12)
    return scale[..., None, None] * (p0 @ np.swapaxes(R, -1, -2)) + mg


def p_mpjpe(pred, gt) -> float:
    """MPJPE after similarity Procrustes alignment per pose."""
    return mpjpe(procrustes_align(pred, gt), gt)


def pck(pred, gt, threshold: float = PCK_THRESHOLD_M) -> float:
    """Percentage of joints with error below ``threshold`` (same units as the poses)."""
    return float(100.0 * (joint_errors(pred, gt) < threshold).mean())


def auc(pred, gt, thresholds=AUC_THRESHOLDS_M) -> float:
    """Area under the PCK curve over ``thresholds``, as a percentage."""
    err = joint_errors(pred, gt)
    return float(np.mean([100.0 * (err < t).mean() for t in thresholds]))


def error_2d_pct(pred2d, gt2d, image_size: tuple[int, int]) -> float:
    """Mean 2D error in percent of the image size; ``image_size`` = (W, H) pixels."""
    p, g = _pair(pred2d, gt2d)
    w, h = image_size
    d = (p - g) / np.array([w, h], dtype=np.float64)
    return float(100.0 * np.linalg.norm(d, axis=-1).mean())


def flipped_pairs(pred, gt, pairs=LEFT_RIGHT_PAIRS) -> np.ndarray:
    """(N, pairs) bool: the predicted left/right pair sits nearer the swapped true pair. Works in 2D or 3D."""
    p, g = _pair(pred, gt)
    p, g = p.reshape(-1, *p.shape[-2:]), g.reshape(-1, *g.shape[-2:])
    out = np.empty((p.shape[0], len(pairs)), dtype=bool)
    for i, (l, r) in enumerate(pairs):
        same = np.linalg.norm(p[:, l] - g[:, l], axis=-1) + np.linalg.norm(p[:, r] - g[:, r], axis=-1)
        swap = np.linalg.norm(p[:, l] - g[:, r], axis=-1) + np.linalg.norm(p[:, r] - g[:, l], axis=-1)
        out[:, i] = swap < same
    return out


def ambiguity_ratio(pred, gt, pairs=LEFT_RIGHT_PAIRS) -> float:
    """Left-right ambiguity ratio in [0, 0.5] over the samples of (N, J, D) poses."""
    f = flipped_pairs(pred, gt, pairs)
    n = f.shape[0]
    counts = f.sum(axis=0)
    return float(np.minimum(counts, n - counts).sum() / (n * len(pairs)))


def distance_to_skeleton(points, joints, bones=BONES) -> np.ndarray:
    """(N, P) distance from each of the points (N, P, 3) to the nearest bone segment of the poses (N, J, 3)."""
    p = np.asarray(points, dtype=np.float64)[:, :, None]  # (N, P, 1, 3)
    j = np.asarray(joints, dtype=np.float64)
    a = j[:, [i for i, _ in bones]][:, None]  # (N, 1, L, 3) segment starts
    ab = j[:, [i for _, i in bones]][:, None] - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1).min(-1)


def keypoint_placement(X, valid, joints) -> dict[str, float]:
    """Where discovered 3D keypoints X (N, K, 3) m (``valid`` (N, K) bool) sit against true poses (N, J, 3), mm:
    the median and 90th percentile of their distance to the skeleton, and the median distance to the
    nearest other valid keypoint of the same frame."""
    X, valid = np.asarray(X, dtype=np.float64), np.asarray(valid, dtype=bool)
    if not valid.any():
        return {}
    to_bone = distance_to_skeleton(X, joints)[valid]
    d = np.linalg.norm(X[:, :, None] - X[:, None], axis=-1)
    pair = valid[:, :, None] & valid[:, None] & ~np.eye(X.shape[1], dtype=bool)
    nearest = np.where(pair, d, np.inf).min(-1)[valid]
    nearest = nearest[np.isfinite(nearest)]
    return {
        "keypoint_to_skeleton_median_mm": 1000.0 * float(np.median(to_bone)),
        "keypoint_to_skeleton_p90_mm": 1000.0 * float(np.percentile(to_bone, 90)),
        "keypoint_spacing_median_mm": 1000.0 * float(np.median(nearest)) if nearest.size else float("nan"),
    }


LATERAL_MIN_M = 0.08  # median lateral offset from the pelvis above which a keypoint counts as on one side


def body_side_keeping(X, valid, joints, up=(0.0, 0.0, 1.0)) -> dict[str, float]:
    """How lateral 3D keypoints X (N, K, 3) m (``valid`` (N, K) bool) keep their body side as true poses
    (N, J, 3) turn (definition in the module docstring), in percent; empty if no keypoint is lateral."""
    X, valid, J = np.asarray(X, dtype=np.float64), np.asarray(valid, dtype=bool), np.asarray(joints, dtype=np.float64)
    u = np.asarray(up, dtype=np.float64) / np.linalg.norm(up)
    I = JOINT_INDEX
    left = (J[:, I["left_hip"]] - J[:, I["right_hip"]]) + (J[:, I["left_shoulder"]] - J[:, I["right_shoulder"]])
    left = left - (left @ u)[:, None] * u
    left /= np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-12)
    mean = left.mean(0)
    turned = left @ mean < 0  # heading more than 90 degrees from the circular mean heading
    lateral = np.where(valid, np.einsum("nkc,nc->nk", X - J[:, ROOT, None], left), np.nan)  # (N, K) m
    with np.errstate(all="ignore"):
        is_lateral = np.nanmedian(np.abs(lateral), axis=0) > LATERAL_MIN_M
    if not is_lateral.any() or turned.all():
        return {}
    side = np.sign(np.nanmedian(lateral[~turned][:, is_lateral], axis=0))  # (L,) each keypoint's body side

    def kept(frames: np.ndarray) -> float:
        s = lateral[frames][:, is_lateral]
        ok = np.isfinite(s)
        return 100.0 * float((np.sign(s) == side)[ok].mean()) if ok.any() else float("nan")

    return {
        "lateral_keypoints": int(is_lateral.sum()),
        "turned_frames_pct": 100.0 * float(turned.mean()),
        "body_side_kept_facing_pct": kept(~turned),
        "body_side_kept_turned_pct": kept(turned) if turned.any() else float("nan"),
    }


def summarise(pred, gt, root: int = ROOT) -> dict[str, float]:
    """All 3D figures in the units of reporting: millimetres and percentages."""
    return {
        "mpjpe_mm": 1000.0 * mpjpe(pred, gt),
        "n_mpjpe_mm": 1000.0 * n_mpjpe(pred, gt, root),
        "p_mpjpe_mm": 1000.0 * p_mpjpe(pred, gt),
        "pck150_pct": pck(pred, gt),
        "auc_pct": auc(pred, gt),
        "ambiguity_ratio": ambiguity_ratio(pred, gt),
    }
