"""Single-view figures beside the multi-view ones of the same model, on tracks of a studio recording.

Each view of each frame is lifted alone (:func:`lift_track`, the batched equivalent of the run-time
:class:`~kp3d_core.inference.single_view.SingleViewLifter`), mapped to the 17 joints with the checkpoint's mapping
and compared with the true joints; the multi-view pose of the same frames is compared alike. Frames count where the
multi-view pose exists and the view could be lifted, so both figures are over the same frames.

Example::

    lifted = lift_track(ckpt["lifter"], track)      # (T, V, K, 3) world metres
    figs = single_view_figures(track, lifted, ckpt["mapping"])
    figs["single_view"]["p_mpjpe_mm"], figs["multi_view"]["p_mpjpe_mm"]
"""
from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..inference.single_view import MIN_KEYPOINTS, build_lifter_net, lift_to_world
from ..models.mapping import apply_mapping
from .fit import window_rows
from .tracks import Track


def lift_track(entry: dict, track: Track) -> np.ndarray:
    """Every view of every frame lifted alone: (T, V, K, 3) world metres, NaN where the view cannot be lifted."""
    net = build_lifter_net(entry)
    rays = torch.from_numpy(track.rays())
    conf = torch.from_numpy(track.confidence)
    T, V, K = conf.shape
    out = np.full((T, V, K, 3), np.nan)
    windows = window_rows(torch.arange(T), torch.zeros(T, dtype=torch.long), net.window)  # (T, W)
    for v, cam in enumerate(track.cameras):
        usable = (torch.isfinite(rays[:, v]).all(-1) & (conf[:, v] > 0)).sum(-1) >= MIN_KEYPOINTS
        ok = usable.numpy()
        lifted = lift_to_world(net, rays[:, v][windows], conf[:, v][windows], cam, entry.get("floor_offset"))
        out[ok, v] = lifted[ok]
    return out


def _figures(pred: np.ndarray, gt: np.ndarray) -> dict:
    if len(pred) == 0:
        return {"frames": 0}
    return {"frames": int(len(pred)), "mpjpe_mm": 1e3 * metrics.mpjpe(pred, gt),
            "p_mpjpe_mm": 1e3 * metrics.p_mpjpe(pred, gt), "n_mpjpe_mm": 1e3 * metrics.n_mpjpe(pred, gt)}


def single_view_figures(track: Track | list[Track], lifted: np.ndarray | list[np.ndarray], mapping: dict) -> dict:
    """Figures (mm) of each camera's lifted pose and of the multi-view pose on the same frames.

    Returns ``{"cameras": {name: {"single_view": {...}, "multi_view": {...}}}, "single_view": {...} (mean over
    cameras), "multi_view": {...} (the frames of any camera), "ratio_p_mpjpe": single / multi}``.
    """
    tracks = track if isinstance(track, list) else [track]
    lifts = lifted if isinstance(lifted, list) else [lifted]
    names = [c.name for c in tracks[0].cameras]
    per_cam: dict[str, dict] = {}
    for v, name in enumerate(names):
        sv, mv, gt = [], [], []
        for tr, L in zip(tracks, lifts):
            pose = apply_mapping(mapping, L[:, v])
            ok = (np.isfinite(pose).all((-1, -2)) & np.isfinite(tr.poses).all((-1, -2))
                  & np.isfinite(tr.gt).all((-1, -2)))
            sv.append(pose[ok])
            mv.append(tr.poses[ok])
            gt.append(tr.gt[ok])
        sv, mv, gt = (np.concatenate(a) for a in (sv, mv, gt))
        per_cam[name] = {"single_view": _figures(sv, gt), "multi_view": _figures(mv, gt)}
    keys = ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm")
    counted = [f for f in per_cam.values() if f["single_view"]["frames"]]
    mean_sv = {k: float(np.mean([f["single_view"][k] for f in counted])) for k in keys} if counted else {}
    mean_mv = {k: float(np.mean([f["multi_view"][k] for f in counted])) for k in keys} if counted else {}
    res = {"cameras": per_cam, "single_view": mean_sv, "multi_view": mean_mv}
    if mean_sv and mean_mv:
        res["ratio_p_mpjpe"] = mean_sv["p_mpjpe_mm"] / mean_mv["p_mpjpe_mm"]
    return res
