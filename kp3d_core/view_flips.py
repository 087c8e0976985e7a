"""Left/right label flips of single views, decided by multi-view geometry alone (Mask as Supervision, seed 002).

A silhouette looks the same from the front and from the back, so a skeleton-mode net may label a view's left limbs
as right ones. Triangulation exposes it: a view whose left/right labels are swapped sends each left joint's ray
towards the right joint seen by the other views, and the reprojection residual grows. Swapping that view's labels
back lowers it. This needs no ground truth, only the calibrated views; but it only makes the views agree with each
other (with their majority): swapping every view at once leaves the residual unchanged, so which side is left for
the whole body is not decided here. Example::

    uv = crop_to_ideal(out["kp"], batch)                       # (B, V, 17, 2) ideal px
    flips = resolve_view_flips(uv, out["conf"], batch["P"])    # (B, V) bool: swap these views' labels
    X, valid = geometry.triangulate(flip_views(uv, flips), flip_views(out["conf"], flips), batch["P"])
"""
from __future__ import annotations

import torch

from . import geometry
from .skeleton import FLIP_PERMUTATION, NUM_JOINTS


def flip_views(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """(B, V, 17, ...) with the left/right joints of the views where ``flips`` (B, V) is True swapped."""
    perm = torch.tensor(FLIP_PERMUTATION, device=x.device)
    f = flips.reshape(*flips.shape, *([1] * (x.dim() - 2)))
    return torch.where(f, x[:, :, perm], x)


def reprojection_residual(uv: torch.Tensor, weights: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """(B,) weighted mean distance (ideal px) between the 2D joints and the reprojection of their triangulation.

    Args: uv (B, V, K, 2) ideal px; weights (B, V, K) >= 0; P (B or 1, V, 3, 4). Joints that do not triangulate
    (fewer than two views with weight) do not count; a frame with none gets +inf.
    """
    X, valid = geometry.triangulate(uv, weights, P)
    X = torch.where(valid[..., None], X, torch.zeros_like(X))
    err = (geometry.project(X, P.to(uv.dtype)) - uv).norm(dim=-1)  # (B, V, K)
    w = weights.to(uv.dtype) * valid[:, None, :].to(uv.dtype)
    err = torch.where(w > 0, err, torch.zeros_like(err))  # non-finite joints have weight 0: keep their NaN out
    total = w.sum(dim=(1, 2))
    return torch.where(total > 0, (err * w).sum(dim=(1, 2)) / total.clamp_min(1e-12),
                       torch.full_like(total, float("inf")))


def view_flip_residuals(uv: torch.Tensor, weights: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """(B, V + 1) residuals (:func:`reprojection_residual`): column 0 as labelled, column 1 + v with view v's
    left/right labels swapped (the other views as labelled). All V + 1 triangulations in one batched call.

    Args: uv (B, V, 17, 2) ideal px; weights (B, V, 17); P (B or 1, V, 3, 4).
    """
    if uv.dim() != 4 or uv.shape[2:] != (NUM_JOINTS, 2):
        raise ValueError(f"uv: expected shape (B, V, {NUM_JOINTS}, 2) ideal px, got {tuple(uv.shape)}")
    B, V = uv.shape[:2]
    which = torch.cat([torch.zeros(1, V, dtype=torch.bool, device=uv.device),
                       torch.eye(V, dtype=torch.bool, device=uv.device)])  # (V + 1, V): candidate c flips view c - 1
    flips = which[None].expand(B, -1, -1).reshape(B * (V + 1), V)
    uv_c = flip_views(uv.repeat_interleave(V + 1, dim=0), flips)
    w_c = flip_views(weights.repeat_interleave(V + 1, dim=0), flips)
    P_c = P.expand(B, -1, -1, -1).repeat_interleave(V + 1, dim=0)
    return reprojection_residual(uv_c, w_c, P_c).reshape(B, V + 1)


@torch.no_grad()
def resolve_view_flips(uv: torch.Tensor, weights: torch.Tensor, P: torch.Tensor, min_gain_px: float = 0.0,
                       rounds: int | None = None) -> torch.Tensor:
    """(B, V) bool: the views whose left/right labels to swap so that all views agree, found greedily.

    Each round swaps, per frame, the one view whose swap lowers the residual most (by more than ``min_gain_px``),
    until none does or after ``rounds`` (default V) rounds. Greedy, since deciding every view at once from the
    labelled residuals fails when several views are flipped (each then looks like the odd one out); every swap
    strictly lowers the residual, so it cannot cycle. Swapping every view changes nothing geometrically, so where
    the swaps found are more than half the views with weight, their complement is returned: the fewest swaps that
    make the views agree (the majority keeps its labels).
    """
    B, V = uv.shape[:2]
    flips = torch.zeros(B, V, dtype=torch.bool, device=uv.device)
    for _ in range(V if rounds is None else rounds):
        res = view_flip_residuals(flip_views(uv, flips), flip_views(weights, flips), P)
        best, view = res[:, 1:].min(dim=1)
        gain = res[:, 0] - best
        act = torch.isfinite(gain) & (gain > min_gain_px)
        if not bool(act.any()):
            break
        rows = torch.nonzero(act)[:, 0]
        flips[rows, view[rows]] ^= True
    seen = (weights > 0).any(dim=-1)  # (B, V): views that take part
    more = 2 * (flips & seen).sum(dim=1, keepdim=True) > seen.sum(dim=1, keepdim=True)
    return torch.where(more, ~flips & seen, flips)
