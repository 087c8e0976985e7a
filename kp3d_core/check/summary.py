"""A run's per-frame arrays -> the label-free figures of the recording, overall and per camera (plain values).

Which frames count: the reprojection and foreground figures use the frames after the background warm-up
(the estimator rejects the warm-up's sets; their background still holds the subject's ghost), including
those the plausibility gate rejected (their disagreement is exactly what is measured). The pose figures use
the frames with a pose. Units are in the names: ``_px`` pixels, ``_box`` crop-box sides, ``_m_s`` metres per
second, ``_frac`` fractions (of the image, of the frames or of the keypoints, as named). NaN becomes None.

Example::

    figs = summarise(run)
    figs["reprojection"]["ratio_to_null"]      # 0.2: the keypoints agree across views far better than chance
    figs["cameras"]["cam1"]["loo_bias_box"]    # 0.2: cam1's keypoints sit off the others' by a fixed offset
"""
from __future__ import annotations

import numpy as np

from ..skeleton import BONES, JOINT_NAMES
from .figures import (
    bone_length_cv,
    box_fraction,
    in_box_sides,
    leave_one_out_residuals,
    reprojection_errors,
    residual_bias,
    root_speeds,
    shuffle_identities,
    summary,
    swap_ratios,
    sync_lags,
)
from .run import CheckRun

#: A keypoint counts as on the foreground within this many crop-box sides of a foreground pixel (the mask's
#: opening trims thin limbs, and a keypoint on a wrist sits at the silhouette's edge).
ON_FOREGROUND_BOX = 0.02
#: Reasons a frame has no pose, in the order they are tested (a frame counts under the first that holds).
NO_POSE_REASONS = ("background_warmup", "no_person", "too_few_views", "rejected_reprojection", "no_mapping",
                   "too_few_keypoints")


def _r(x, nd: int = 4):
    """Round for JSON; NaN / None -> None."""
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _ratio(a: float, b: float):
    """a / b rounded for JSON, None unless both are finite and b > 0."""
    return _r(a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else None


def _median(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def ideal_pixels(run: CheckRun) -> np.ndarray:
    """(T, V, K, 2) undistorted keypoints (what triangulation uses), NaN where not found."""
    out = np.array(run.keypoints2d, dtype=np.float64)
    for v, cam in enumerate(run.rig.cameras):
        if np.any(cam.dist):
            ok = np.isfinite(out[:, v]).all(-1)
            out[:, v][ok] = cam.undistort_pixels(out[:, v][ok])
    return out


def frame_counts(run: CheckRun) -> dict:
    """Frames processed, after the warm-up, with a pose, and why the others have none (:data:`NO_POSE_REASONS`)."""
    found = run.found.sum(axis=1)
    has_pose = np.isfinite(run.poses).all(axis=(1, 2))
    reasons = dict.fromkeys(NO_POSE_REASONS, 0)
    for t in np.flatnonzero(~has_pose):
        if run.rejected[t] == "background_warmup":
            why = "background_warmup"
        elif found[t] == 0:
            why = "no_person"
        elif found[t] == 1:
            why = "too_few_views"
        elif run.rejected[t] is not None:
            why = "rejected_reprojection" if run.rejected[t] == "reprojection" else f"rejected_{run.rejected[t]}"
        elif not run.has_mapping:
            why = "no_mapping"
        else:
            why = "too_few_keypoints"
        reasons[why] = reasons.get(why, 0) + 1
    analysed = int(run.analysed.sum())
    return {"processed": run.num_frames, "backgrounds": "stored" if run.stored_backgrounds else "learnt",
            "after_warmup": analysed, "with_pose": int(has_pose.sum()),
            "with_pose_frac": _r(has_pose.sum() / analysed) if analysed else None, "without_pose": reasons}


def summarise(run: CheckRun, seed: int = 0) -> dict:
    """All figures (see the module docstring); ``seed`` fixes the shuffled null's permutations."""
    a = run.analysed
    V = len(run.cameras)
    uv = ideal_pixels(run)[a]
    w = np.where(run.found[a][..., None], run.confidence[a], 0.0)
    side = run.boxes[a][..., 2]  # (Ta, V)
    err_px, _ = reprojection_errors(uv, w, run.P)
    err_box = in_box_sides(err_px, side)
    null_px, _ = reprojection_errors(*shuffle_identities(uv, w, np.random.default_rng(seed)), run.P)
    null_box = in_box_sides(null_px, side)
    loo = leave_one_out_residuals(uv, w, run.P)  # (Ta, V, K, 2) px
    loo_box = loo / side[..., None, None]
    loo_err_box = np.linalg.norm(loo_box, axis=-1)
    lags = sync_lags(loo, uv, run.frame_index[a])

    swaps = swap_ratios(uv, w, run.P)
    px, bx, npx, nbx = summary(err_px), summary(err_box), summary(null_px), summary(null_box)
    reproj = {
        "median_px": _r(px["median"], 2), "p90_px": _r(px["p90"], 2),
        "median_box": _r(bx["median"]), "p90_box": _r(bx["p90"]),
        "null_median_px": _r(npx["median"], 2), "null_p90_px": _r(npx["p90"], 2),
        "null_median_box": _r(nbx["median"]), "null_p90_box": _r(nbx["p90"]),
        "ratio_to_null": _ratio(bx["median"], nbx["median"]),
        "estimator_median_box": _r(_median(run.estimator_error[a])),
        "observations": px["n"],
        "swap": None,
    }
    if swaps:
        (va, vb), ratio = min(swaps.items(), key=lambda item: item[1])
        reproj["swap"] = {"cameras": [run.cameras[va], run.cameras[vb]], "ratio": _r(ratio)}

    frac = box_fraction(run.boxes[..., 2], run.image_sizes)[a]  # (Ta, V)
    cams = {}
    for v, name in enumerate(run.cameras):
        dist_box = run.fg_distance[a][:, v] / side[:, v, None]
        dist_box = dist_box[np.isfinite(dist_box)]
        area = _median(run.fg_area[a][:, v])
        cams[name] = {
            "found_frac": _r(run.found[a][:, v].mean()) if a.any() else None,
            "box_median_frac": _r(_median(frac[:, v])),
            "box_max_frac": _r(np.nanmax(frac[:, v])) if np.isfinite(frac[:, v]).any() else None,
            "on_foreground_frac": _r((dist_box <= ON_FOREGROUND_BOX).mean()) if dist_box.size else None,
            "foreground_area_frac": _r(area),
            "warmup_moving_frac": _r(run.warmup_moving[v]),
            "warmup_moving_to_foreground": _ratio(run.warmup_moving[v], area),
            "outside_box_frac": _r(float(np.nanmean(run.fg_outside[a][:, v])))
            if np.isfinite(run.fg_outside[a][:, v]).any() else None,
            "reprojection_median_px": _r(summary(err_px[:, v])["median"], 2),
            "reprojection_median_box": _r(summary(err_box[:, v])["median"]),
            "null_median_box": _r(summary(null_box[:, v])["median"]),
            "ratio_to_null": _ratio(summary(err_box[:, v])["median"], summary(null_box[:, v])["median"]),
            "loo_median_px": _r(summary(np.linalg.norm(loo[:, v], axis=-1))["median"], 2),
            "loo_median_box": _r(summary(loo_err_box[:, v])["median"]),
            "loo_bias_box": _r(residual_bias(loo_box[:, v])),
            "lag_frames": _r(lags[v], 2),
        }

    has_pose = np.isfinite(run.poses).all(axis=(1, 2))
    cv = bone_length_cv(run.poses[has_pose]) if has_pose.sum() >= 2 else np.full(len(BONES), np.nan)
    sp = summary(root_speeds(run.poses, run.stamps_ns), (50, 90, 99))
    pose = {
        "bone_cv_median": _r(_median(cv)),
        "bone_cv_max": _r(np.nanmax(cv)) if np.isfinite(cv).any() else None,
        "bone_cv": {f"{JOINT_NAMES[p]}-{JOINT_NAMES[c]}": _r(x) for (p, c), x in zip(BONES, cv)},
        "root_speed_median_m_s": _r(sp["median"], 3), "root_speed_p90_m_s": _r(sp["p90"], 3),
        "root_speed_p99_m_s": _r(sp["p99"], 3), "root_speed_pairs": sp["n"],
    }
    timing = {"estimator_median_ms": _r(_median(run.timings_ms), 1), "seconds": _r(run.seconds, 1),
              "backend": run.backend}
    return {"frames": frame_counts(run), "reprojection": reproj, "pose": pose, "cameras": cams, "timing": timing}
