"""Differentiable drawing of keypoints into maps: Gaussian blobs, limb segments and their soft union.

Pixel convention: a map of side ``size`` covers a crop of side ``crop_size`` pixels; map cell ``c``
has its centre at crop pixel ``(c + 0.5) * crop_size / size - 0.5`` (pixel centres at integers,
as cv2.warpAffine crops). All sigmas are in crop pixels. Example::

    g = gaussian_maps(kp, size=32, crop_size=64, sigma=3.0)   # (N, K, 32, 32) in [0, 1]
    mask = soft_union(g)                                        # (N, 1, 32, 32) in [0, 1]
"""
from __future__ import annotations

import torch


def cell_centres(size: int, crop_size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(size,) crop-pixel coordinates of the centres of the map cells along one axis."""
    scale = crop_size / size
    return (torch.arange(size, device=device, dtype=dtype) + 0.5) * scale - 0.5


def _check_points(points: torch.Tensor, name: str = "points") -> None:
    if points.dim() != 3 or points.shape[-1] != 2:
        raise ValueError(f"{name}: expected shape (N, K, 2) crop pixels, got {tuple(points.shape)}")


def gaussian_maps(points: torch.Tensor, size: int, crop_size: int, sigma: float) -> torch.Tensor:
    """Isotropic Gaussians exp(-d^2 / (2 sigma^2)), peak 1, one channel per keypoint.

    Args:
        points: (N, K, 2) keypoints in crop pixels (x, y).
        size: side of the output map in cells.
        crop_size: side of the crop in pixels.
        sigma: standard deviation in crop pixels.
    Returns:
        (N, K, size, size) maps in [0, 1].
    """
    _check_points(points)
    c = cell_centres(size, crop_size, points.device, points.dtype)
    gx = torch.exp(-((c.view(1, 1, -1) - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (N, K, W)
    gy = torch.exp(-((c.view(1, 1, -1) - points[..., 1:2]) ** 2) / (2 * sigma**2))  # (N, K, H)
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)  # separable: (N, K, H, W)


def segment_maps(points: torch.Tensor, pairs: torch.Tensor, size: int, crop_size: int, sigma: float) -> torch.Tensor:
    """Limb maps exp(-d^2 / (2 sigma^2)) of each cell's distance d to the segment between two keypoints.

    Args:
        points: (N, K, 2) keypoints in crop pixels.
        pairs: (N, L, 2) or (L, 2) long indices into K: the segment end points.
        size, crop_size, sigma: as in :func:`gaussian_maps`.
    Returns:
        (N, L, size, size) maps in [0, 1].
    """
    _check_points(points)
    n = points.shape[0]
    if pairs.dim() == 2:
        pairs = pairs.unsqueeze(0).expand(n, -1, -1)
    if pairs.dim() != 3 or pairs.shape[-1] != 2 or pairs.shape[0] != n:
        raise ValueError(f"pairs: expected shape (L, 2) or ({n}, L, 2), got {tuple(pairs.shape)}")
    idx_a = pairs[..., 0:1].expand(-1, -1, 2)
    idx_b = pairs[..., 1:2].expand(-1, -1, 2)
    a = torch.gather(points, 1, idx_a)  # (N, L, 2)
    b = torch.gather(points, 1, idx_b)
    px, py = _cell_grid(size, crop_size, points)
    d2 = _segment_sq_distance(a[..., 0:1], a[..., 1:2], b[..., 0:1], b[..., 1:2], px, py)  # (N, L, HW)
    return torch.exp(-d2 / (2 * sigma**2)).view(n, -1, size, size)


def _cell_grid(size: int, crop_size: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop-pixel x and y of every map cell, row-major: two (HW,) tensors on ``like``'s device and dtype."""
    c = cell_centres(size, crop_size, like.device, like.dtype)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return xx.reshape(-1), yy.reshape(-1)


def _segment_sq_distance(ax, ay, bx, by, px, py) -> torch.Tensor:
    """Squared distance (crop px^2) from points (px, py) to the segments a-b; the arguments broadcast."""
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    t = ((apx * abx + apy * aby) / (abx * abx + aby * aby + 1e-6)).clamp(0.0, 1.0)  # projection onto the segment
    dx, dy = apx - t * abx, apy - t * aby
    return dx * dx + dy * dy


def soft_union(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) maps in [0, 1] -> (N, 1, H, W) soft union 1 - prod_c (1 - m_c), in [0, 1]."""
    if maps.dim() != 4:
        raise ValueError(f"maps: expected shape (N, C, H, W), got {tuple(maps.shape)}")
    log_empty = torch.log1p(-maps.clamp(max=1.0 - 1e-6)).sum(dim=1, keepdim=True)
    return 1.0 - torch.exp(log_empty)


def render_mask(points: torch.Tensor, size: int, crop_size: int, sigma: float) -> torch.Tensor:
    """The mask drawn from keypoints: the soft union of their Gaussians, (N, K, 2) crop px -> (N, 1, size, size)."""
    return soft_union(gaussian_maps(points, size, crop_size, sigma))
