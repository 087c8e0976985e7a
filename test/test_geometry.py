"""Triangulation, projection, refinement and distortion (float64 exactness, OpenCV agreement, gradients)."""
import cv2
import numpy as np
import pytest
import torch

from kp3d_core.geometry import (
    distort_pixels,
    project,
    refine_triangulation,
    reprojection_error,
    triangulate,
    undistort_pixels,
)
from kp3d_core.rig import ring_rig


@pytest.fixture(scope="module")
def P():
    return torch.from_numpy(ring_rig(4, radius=4.0, heights=[1.5, 2.2, 1.7, 2.0]).projection_matrices())[None]


def _points(B=6, K=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, 3, generator=g, dtype=torch.float64) * 0.5 + torch.tensor([0.0, 0.0, 1.0])


def test_noise_free_recovery_float64(P):
    X = _points()
    Xt, valid = triangulate(project(X, P), torch.rand(6, 4, 17, dtype=torch.float64) + 0.1, P)
    assert valid.all()
    rel = (Xt - X).norm(dim=-1) / X.norm(dim=-1)
    assert rel.max() < 1e-6


def test_float32_and_per_frame_projections(P):
    X = _points()
    P_b = P.expand(6, -1, -1, -1).clone()
    Xt, valid = triangulate(project(X, P_b).float(), torch.ones(6, 4, 17), P_b.float())
    assert valid.all() and (Xt.double() - X).norm(dim=-1).max() < 1e-3


def test_two_views_agree_with_opencv(P):
    X = _points(B=1, K=50)
    uv = project(X, P)
    uv_noisy = uv + 0.5 * torch.randn(uv.shape, generator=torch.Generator().manual_seed(3), dtype=uv.dtype)
    w = torch.zeros(1, 4, 50, dtype=torch.float64)
    w[:, [0, 1]] = 1.0
    for pts, tol in ((uv, 1e-9), (uv_noisy, 2e-3)):  # exact without noise; same estimate up to its algebraic cost
        Xt, valid = triangulate(pts, w, P)
        ref = cv2.triangulatePoints(P[0, 0].numpy(), P[0, 1].numpy(), pts[0, 0].numpy().T, pts[0, 1].numpy().T)
        ref = (ref[:3] / ref[3]).T
        assert valid.all()
        np.testing.assert_allclose(Xt[0].numpy(), ref, atol=tol)


def test_fewer_than_two_views_is_nan_and_invalid(P):
    X = _points(B=2, K=5)
    uv = project(X, P)
    w = torch.ones(2, 4, 5, dtype=torch.float64)
    w[0, 1:, :3] = 0.0  # points 0-2 of frame 0 seen by one view only
    w[1, :, 4] = 0.0  # point 4 of frame 1 seen by none
    uv[1, 2, 0] = float("nan")  # a non-finite keypoint is treated as unseen, not propagated
    Xt, valid = triangulate(uv, w, P)
    assert not valid[0, :3].any() and torch.isnan(Xt[0, :3]).all()
    assert valid[0, 3:].all() and not valid[1, 4] and valid[1, :4].all()
    assert torch.allclose(Xt[1, 0], X[1, 0], atol=1e-9)


def test_gradients_finite_near_degenerate(P):
    X = _points(B=1, K=8)
    uv = project(X, P).clone().requires_grad_(True)
    w = torch.ones(1, 4, 8, dtype=torch.float64)
    w[:, 2:] = 1e-9  # two views almost gone
    w[:, 1, :4] = 0.0  # so half the points rest on one view plus two nearly-zero ones
    w[:, 1:, 7] = 0.0  # and one point on a single view (invalid)
    w.requires_grad_(True)
    Xt, valid = triangulate(uv, w, P)
    loss = torch.nan_to_num(Xt).pow(2).sum()
    loss.backward()
    assert torch.isfinite(uv.grad).all() and torch.isfinite(w.grad).all()
    assert valid[0, :7].all() and not valid[0, 7]


def test_gradcheck(P):
    X = _points(B=1, K=3)
    uv = (project(X, P) + 0.3).requires_grad_(True)
    w = torch.rand(1, 4, 3, dtype=torch.float64).add(0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: triangulate(a, b, P)[0], (uv, w))


def test_refinement_lowers_reprojection_error(P):
    X = _points(B=4, K=17)
    uv = project(X, P)
    noise = torch.randn(uv.shape, generator=torch.Generator().manual_seed(1), dtype=uv.dtype)
    uv_noisy = uv + 3.0 * noise
    uv_noisy[:, 0, :3] += 80.0  # an outlier view for a few points
    w = torch.ones(4, 4, 17, dtype=torch.float64)
    X0, _ = triangulate(uv_noisy, w, P)
    X1 = refine_triangulation(X0, uv_noisy, w, P, iterations=5)
    e0, e1 = (X0 - X).norm(dim=-1), (X1 - X).norm(dim=-1)
    assert e1.mean() < e0.mean()
    assert reprojection_error(X1, uv_noisy, P).median() <= reprojection_error(X0, uv_noisy, P).median()


def test_shape_errors_name_the_argument(P):
    with pytest.raises(ValueError, match="points2d"):
        triangulate(torch.zeros(2, 4, 5, 3), torch.ones(2, 4, 5), P)
    with pytest.raises(ValueError, match="weights"):
        triangulate(torch.zeros(2, 4, 5, 2), torch.ones(2, 3, 5), P)
    with pytest.raises(ValueError, match="P"):
        triangulate(torch.zeros(2, 3, 5, 2), torch.ones(2, 3, 5), P)


def test_distortion_matches_opencv_and_inverts():
    cam = ring_rig(1, dist=(-0.25, 0.07, 0.001, -0.0015, -0.01))[0]
    K, d = torch.from_numpy(cam.K), torch.from_numpy(cam.dist)
    pts = np.random.default_rng(2).normal([0.0, 0.0, 1.0], 0.6, size=(300, 3))
    ref = cam.project(pts)  # cv2.projectPoints with distortion
    ideal = project(torch.from_numpy(pts)[None], torch.from_numpy(cam.P)[None, None])[0, 0]
    np.testing.assert_allclose(distort_pixels(ideal, K, d).numpy(), ref, atol=1e-8)
    np.testing.assert_allclose(undistort_pixels(torch.from_numpy(ref), K, d).numpy(), ideal.numpy(), atol=1e-6)
    np.testing.assert_allclose(cam.undistort_pixels(ref), ideal.numpy(), atol=1e-6)
    # batched: (V, N, 2) with K (V, 3, 3)
    Kb, db = K.expand(3, 3, 3), d.expand(3, 5)
    assert undistort_pixels(torch.from_numpy(ref).expand(3, -1, -1), Kb, db).shape == (3, 300, 2)


