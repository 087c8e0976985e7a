"""Batched multi-view geometry in PyTorch: weighted DLT triangulation, projection, lens distortion.

Every function is differentiable and works on any float dtype and device. Shapes:
``B`` frames, ``V`` views, ``K`` points. Pixels are those of the ideal pinhole camera unless a
function says "distorted". Projection matrices ``P`` are ``K [R | t]`` (world metres -> pixels).

Example::

    X, valid = triangulate(uv, weights, P)          # (B, K, 3) metres, (B, K) bool
    uv_hat = project(X, P)                          # (B, V, K, 2) pixels
"""
from __future__ import annotations

import torch
from torch import Tensor


def _check(name: str, t: Tensor, ndim: int, last: tuple[int, ...]) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.ndim != ndim or (last and tuple(t.shape[-len(last):]) != last):
        want = "(" + ", ".join(["*"] * (ndim - len(last)) + [str(s) for s in last]) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(t.shape)}")


def _normalising_transform(P: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-view pixel normalisation (Hartley) read off P itself, so DLT rows are O(1) in float32.

    Returns the scaled P (third row of unit norm), the principal point c (..., 2) and the focal scale f (...,).
    For P = K [R | t] with zero skew: P1 . P3 = cx |P3|^2 and |P1|^2 = (fx^2 + cx^2) |P3|^2.
    """
    P = P / P[..., 2:3, :3].norm(dim=-1, keepdim=True)
    M = P[..., :3]
    c = (M[..., :2, :] * M[..., 2:3, :]).sum(-1)  # (..., 2)
    f2 = (M[..., :2, :] ** 2).sum(-1) - c**2
    f = f2.clamp_min(1e-12).sqrt().mean(-1)  # (...,)
    return P, c.detach(), f.detach()


def triangulate(
    points2d: Tensor, weights: Tensor, P: Tensor, min_views: int = 2
) -> tuple[Tensor, Tensor]:
    """Confidence-weighted linear (DLT) triangulation of K points seen by V views.

    Each view contributes the rows ``w * (u * P3 - P1)`` and ``w * (v * P3 - P2)``; the point is the
    least-squares solution of ``A [X; 1] = 0`` (normal equations of a 3x3 system, which keeps gradients
    finite where an SVD's would not: repeated singular values near degenerate configurations).

    Args:
        points2d: (B, V, K, 2) ideal (undistorted) pixels.
        weights: (B, V, K) non-negative confidences; a view with weight 0 (or a non-finite keypoint)
            is ignored.
        P: (B, V, 3, 4) or (1, V, 3, 4) projection matrices, world metres -> pixels.
        min_views: views with positive weight needed for a point to be valid.

    Returns:
        X: (B, K, 3) world points, metres; NaN where invalid.
        valid: (B, K) bool, at least ``min_views`` views with positive weight and a solvable system.
    """
    _check("points2d", points2d, 4, (2,))
    B, V, K, _ = points2d.shape
    _check("weights", weights, 3, ())
    if tuple(weights.shape) != (B, V, K):
        raise ValueError(f"weights: expected shape {(B, V, K)}, got {tuple(weights.shape)}")
    _check("P", P, 4, (3, 4))
    if P.shape[0] not in (1, B) or P.shape[1] != V:
        raise ValueError(f"P: expected shape ({B} or 1, {V}, 3, 4), got {tuple(P.shape)}")

    # Non-finite keypoints count as unseen (weight 0) so one bad view cannot poison the point.
    finite = torch.isfinite(points2d).all(-1)
    weights = torch.where(finite, weights, torch.zeros_like(weights))
    points2d = torch.where(finite[..., None], points2d, torch.zeros_like(points2d))

    Pn, c, f = _normalising_transform(P.to(points2d.dtype))  # (b, V, 3, 4), (b, V, 2), (b, V)
    uv = (points2d - c[:, :, None, :]) / f[:, :, None, None]  # (B, V, K, 2)
    # Shift P to the normalised pixel frame: rows P1' = (P1 - cx P3) / f, P2' = (P2 - cy P3) / f.
    P12 = (Pn[:, :, :2, :] - c[..., None] * Pn[:, :, 2:3, :]) / f[..., None, None]  # (b, V, 2, 4)
    P3 = Pn[:, :, 2, :]  # (b, V, 4)

    w = weights.clamp_min(0).to(points2d.dtype)
    # rows (B, V, K, 2, 4): w * (uv_i * P3 - P_i)
    rows = w[..., None, None] * (uv[..., None] * P3[:, :, None, None, :] - P12[:, :, None, :, :])
    rows = rows.permute(0, 2, 1, 3, 4).reshape(B, K, 2 * V, 4)
    A3, a4 = rows[..., :3], rows[..., 3]
    M = A3.transpose(-1, -2) @ A3  # (B, K, 3, 3)
    b = -(A3.transpose(-1, -2) @ a4[..., None])  # (B, K, 3, 1)

    enough = (weights > 0).sum(dim=1) >= min_views  # (B, K)
    eye = torch.eye(3, dtype=M.dtype, device=M.device)
    # Solve only well-posed systems; replace the others by identity so the backward pass stays finite.
    ridge = torch.finfo(M.dtype).eps * 16 * M.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-30)
    M = torch.where(enough[..., None, None], M + ridge[..., None, None] * eye, eye.expand_as(M))
    X = torch.linalg.solve(M, b)[..., 0]
    valid = enough & torch.isfinite(X).all(-1)
    X = torch.where(valid[..., None], X, torch.full_like(X, float("nan")))
    return X, valid


def project(X: Tensor, P: Tensor, min_depth: float = 1e-6) -> Tensor:
    """Project world points into every view.

    Args:
        X: (B, K, 3) world points, metres.
        P: (B, V, 3, 4) or (1, V, 3, 4) projection matrices.
        min_depth: depths are clamped to at least this (points behind a camera do not divide by zero).

    Returns:
        (B, V, K, 2) ideal pixels.
    """
    _check("X", X, 3, (3,))
    _check("P", P, 4, (3, 4))
    Xh = torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)  # (B, K, 4)
    x = torch.einsum("bvij,bkj->bvki", P.to(X.dtype), Xh)  # (B, V, K, 3)
    z = x[..., 2:3]
    z = torch.where(z.abs() < min_depth, torch.full_like(z, min_depth), z)
    return x[..., :2] / z


def reprojection_error(X: Tensor, points2d: Tensor, P: Tensor) -> Tensor:
    """(B, V, K) pixel distance between ``project(X, P)`` and ``points2d`` (B, V, K, 2)."""
    return (project(X, P) - points2d).norm(dim=-1)


def refine_triangulation(
    X: Tensor,
    points2d: Tensor,
    weights: Tensor,
    P: Tensor,
    iterations: int = 3,
    huber_px: float | None = 4.0,
    damping: float = 1e-6,
) -> Tensor:
    """Refine triangulated points by minimising weighted reprojection error (Gauss-Newton, Huber-IRLS).

    The DLT minimises an algebraic error; with noisy keypoints a few Gauss-Newton steps on the pixel error
    (each view weighted by its confidence, outliers down-weighted by a Huber kernel of ``huber_px``) help.

    Args:
        X: (B, K, 3) initial points (e.g. from :func:`triangulate`); NaN points stay NaN.
        points2d: (B, V, K, 2) ideal pixels; weights: (B, V, K); P: (B|1, V, 3, 4).

    Returns:
        (B, K, 3) refined points, metres.
    """
    P = P.to(X.dtype)
    w = weights.clamp_min(0).to(X.dtype)
    ok = torch.isfinite(X).all(-1)
    X = torch.where(ok[..., None], X, torch.zeros_like(X))
    eye = torch.eye(3, dtype=X.dtype, device=X.device)
    for _ in range(iterations):
        Xh = torch.cat([X, torch.ones_like(X[..., :1])], dim=-1)
        x = torch.einsum("bvij,bkj->bvki", P, Xh)  # (B, V, K, 3)
        z = x[..., 2:3].clamp_min(1e-6)
        uv = x[..., :2] / z
        r = uv - points2d  # (B, V, K, 2)
        # d(uv)/dX = (P[:2, :3] - uv (x) P[2, :3]) / z  -> (B, V, K, 2, 3)
        J = (P[:, :, None, :2, :3] - uv[..., None] * P[:, :, None, 2:3, :3]) / z[..., None]
        wv = w**2
        if huber_px is not None:
            rn = r.norm(dim=-1).clamp_min(1e-12)
            wv = wv * torch.where(rn <= huber_px, torch.ones_like(rn), huber_px / rn)
        H = torch.einsum("bvk,bvkij,bvkil->bkjl", wv, J, J)
        g = torch.einsum("bvk,bvkij,bvki->bkj", wv, J, r)
        H = H + damping * H.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12)[..., None, None] * eye
        X = X - torch.linalg.solve(H, g[..., None])[..., 0]
    return torch.where(ok[..., None], X, torch.full_like(X, float("nan")))


# ------------------------------------------------------------------------------------ distortion
def _to_normalised(uv: Tensor, K: Tensor) -> Tensor:
    fx, fy, cx, cy, s = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 0, 1]
    y = (uv[..., 1] - cy[..., None]) / fy[..., None]
    x = (uv[..., 0] - cx[..., None] - s[..., None] * y) / fx[..., None]
    return torch.stack([x, y], dim=-1)


def _to_pixels(xy: Tensor, K: Tensor) -> Tensor:
    fx, fy, cx, cy, s = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 0, 1]
    u = fx[..., None] * xy[..., 0] + s[..., None] * xy[..., 1] + cx[..., None]
    v = fy[..., None] * xy[..., 1] + cy[..., None]
    return torch.stack([u, v], dim=-1)


def distort_normalised(xy: Tensor, dist: Tensor) -> Tensor:
    """OpenCV plumb_bob model on normalised coordinates: (..., N, 2) with dist (..., 5) = k1, k2, p1, p2, k3."""
    k1, k2, p1, p2, k3 = (dist[..., i, None] for i in range(5))
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return torch.stack([xd, yd], dim=-1)


def distort_pixels(uv: Tensor, K: Tensor, dist: Tensor) -> Tensor:
    """Ideal pixels (..., N, 2) -> distorted pixels of the camera (K (..., 3, 3), dist (..., 5))."""
    return _to_pixels(distort_normalised(_to_normalised(uv, K), dist), K)


def undistort_pixels(uv: Tensor, K: Tensor, dist: Tensor, iterations: int = 20) -> Tensor:
    """Distorted pixels (..., N, 2) -> ideal pixels, by the fixed-point iteration OpenCV uses.

    Differentiable (the iterations are unrolled). Accurate to well below 0.01 px for the moderate
    distortion of ordinary lenses; identity when ``dist`` is zero.
    """
    xd = _to_normalised(uv, K)
    k1, k2, p1, p2, k3 = (dist[..., i, None] for i in range(5))
    x, y = xd[..., 0], xd[..., 1]
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd[..., 0] - dx) / radial
        y = (xd[..., 1] - dy) / radial
    return _to_pixels(torch.stack([x, y], dim=-1), K)


# ------------------------------------------------------------------------------------ single view
def solve_translation(Y: Tensor, rays: Tensor, weights: Tensor) -> Tensor:
    """Where a rigid 3D shape stands in front of one camera: the translation T that best aligns ``Y + T`` with rays.

    Each point k asks ``(Y_k + T)_x = r_kx (Y_k + T)_z`` and the same in y, linear in T; solved by weighted least
    squares (3x3 normal equations). Differentiable.

    Args:
        Y: (B, K, 3) shape in the camera frame, metres (e.g. relative to its mean).
        rays: (B, K, 2) normalised image coordinates the points are seen along.
        weights: (B, K) >= 0 (0: ignore the point; NaN rays must have weight 0).
    Returns:
        (B, 3) translation, metres; NaN where fewer than two points have weight.
    """
    _check("Y", Y, 3, (3,))
    _check("rays", rays, 3, (2,))
    r = torch.nan_to_num(rays)
    w = weights.to(Y.dtype)
    # Rows: [1, 0, -r_x] T = r_x Y_z - Y_x and [0, 1, -r_y] T = r_y Y_z - Y_y.
    zeros, ones = torch.zeros_like(r[..., 0]), torch.ones_like(r[..., 0])
    ax = torch.stack([ones, zeros, -r[..., 0]], dim=-1)  # (B, K, 3)
    ay = torch.stack([zeros, ones, -r[..., 1]], dim=-1)
    bx = r[..., 0] * Y[..., 2] - Y[..., 0]
    by = r[..., 1] * Y[..., 2] - Y[..., 1]
    A = torch.cat([ax, ay], dim=1)  # (B, 2K, 3)
    b = torch.cat([bx, by], dim=1)
    ww = torch.cat([w, w], dim=1)
    H = torch.einsum("bn,bni,bnj->bij", ww, A, A)
    g = torch.einsum("bn,bni,bn->bi", ww, A, b)
    ok = (w > 0).sum(-1) >= 2
    eye = torch.eye(3, dtype=Y.dtype, device=Y.device)
    T = torch.linalg.solve(torch.where(ok[:, None, None], H, eye), g[..., None])[..., 0]
    return torch.where(ok[:, None], T, torch.full_like(T, float("nan")))
