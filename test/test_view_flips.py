"""Left/right flips of single views decided by triangulation residuals (kp3d_core.view_flips)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import geometry
from kp3d_core.models.synthetic import random_pose, synthetic_rig
from kp3d_core.skeleton import FLIP_PERMUTATION
from kp3d_core.view_flips import reprojection_residual, resolve_view_flips, view_flip_residuals


def _views(num_views: int, frames: int = 3, noise_px: float = 0.0, seed: int = 0):
    """Ideal-pixel joints of random poses seen by a ring rig: (B, V, 17, 2), weights (B, V, 17), P (1, V, 3, 4)."""
    rng = np.random.default_rng(seed)
    rig = synthetic_rig(num_views)
    P = torch.from_numpy(np.stack([c.P for c in rig.cameras]))[None]
    X = torch.from_numpy(np.stack([random_pose(rng) for _ in range(frames)]))
    uv = geometry.project(X, P)
    uv = uv + noise_px * torch.from_numpy(rng.normal(size=uv.shape))
    return uv, torch.ones(uv.shape[:3], dtype=uv.dtype), P


def _flip_views(uv, views):
    out = uv.clone()
    for v in views:
        out[:, v] = uv[:, v][:, list(FLIP_PERMUTATION)]
    return out


def test_consistent_views_have_no_residual_and_no_flip():
    uv, w, P = _views(4)
    assert float(reprojection_residual(uv, w, P).max()) < 1e-6
    res = view_flip_residuals(uv, w, P)
    assert res.shape == (3, 5) and bool((res[:, 1:] > 1.0).all())  # swapping any view only hurts
    assert not bool(resolve_view_flips(uv, w, P).any())


def test_a_flipped_view_is_found_and_swapping_it_back_removes_the_residual():
    uv, w, P = _views(4, noise_px=0.5)
    bad = _flip_views(uv, [2])
    res = view_flip_residuals(bad, w, P)
    assert bool((res[:, 3] < 0.2 * res[:, 0]).all())  # view 2 swapped back: the residual of the noise alone
    assert torch.equal(res[:, 1:].argmin(dim=1), torch.full((3,), 2))  # the best single swap is view 2's
    expect = torch.zeros(3, 4, dtype=torch.bool)
    expect[:, 2] = True
    assert torch.equal(resolve_view_flips(bad, w, P, min_gain_px=0.5), expect)


def test_several_flipped_views_are_resolved_towards_the_majority_and_a_global_flip_is_invisible():
    uv, w, P = _views(5, noise_px=0.3, seed=1)
    flips = resolve_view_flips(_flip_views(uv, [1, 3]), w, P, min_gain_px=0.5)
    expect = torch.zeros(3, 5, dtype=torch.bool)
    expect[:, [1, 3]] = True
    assert torch.equal(flips, expect)
    # every view swapped: the views agree, geometry cannot tell (documented limit)
    assert not bool(resolve_view_flips(_flip_views(uv, range(5)), w, P, min_gain_px=0.5).any())


def test_zero_weight_views_are_ignored_and_bad_shapes_raise():
    uv, w, P = _views(4)
    bad = _flip_views(uv, [0])
    w = w.clone()
    w[:, 0] = 0.0  # the flipped view is not used: nothing to fix, nothing found
    assert not bool(resolve_view_flips(bad, w, P, min_gain_px=0.5).any())
    with pytest.raises(ValueError, match="uv"):
        view_flip_residuals(uv[:, :, :16], w[:, :, :16], P)
