"""A learned subject box inside the crop: a spatial transformer the reconstruction trains (``model.learned_crop``).

Honari & Fua detect the subject with a box network that the reconstruction trains, and their centering term keeps the
box's centre on the mean of the reprojected keypoints ("for robust bbox prediction"). kp3d's crop is the label-free
bounding box of |I - B|; this module refines it: a small localisation net reads the crop and predicts a square box
(scale s, centre offset t, in the crop's normalised coordinates), the crop is resampled to that box at the crop's own
size, and the keypoint net works in the box. The keypoints are mapped back to crop pixels, so the box is part of the
exported net and invisible to everything downstream (triangulation, the node, the decoder).

Normalised coordinates follow ``torch.nn.functional.affine_grid`` with ``align_corners=False``: -1 and +1 are the outer
edges of the crop. Box parameters ``theta`` (N, 3) = (s, tx, ty): box point n maps to crop point s * n + t.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SCALE_RANGE = 0.35  # log-scale bound: the box side stays within exp(-0.35..0.35) = 0.70..1.42 of the crop's
SHIFT_RANGE = 0.3  # the box centre stays within 0.3 half-sides (15 % of the crop side) of the crop centre


class BoxNet(nn.Module):
    """(N, 3, S, S) crops -> theta (N, 3) = (scale, tx, ty); the identity box (1, 0, 0) at initialisation.

    Three stride-2 convolutions on the half-resolution crop and a global average: the box needs the silhouette's
    extent, not its detail (about 6 k parameters).
    """

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.AvgPool2d(2),
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = nn.Linear(4 * w, 3)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(self.out(self.features(crops)))
        return torch.cat([torch.exp(SCALE_RANGE * a[:, :1]), SHIFT_RANGE * a[:, 1:]], dim=1)


def warp_to_box(maps: torch.Tensor, theta: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) crop-frame maps -> (N, C, size, size) the box's view of them (bilinear; zeros outside the crop).

    The sampling grid is built from elementwise operations (a scale and a shift need no ``affine_grid``), so the net
    exports to ONNX opset 16+ (GridSample) and TensorRT as it is."""
    n = (torch.arange(size, device=maps.device, dtype=maps.dtype) + 0.5) * (2.0 / size) - 1.0  # box cell centres
    s, tx, ty = (theta[:, i, None, None].to(maps.dtype) for i in range(3))
    x = (s * n[None, None, :] + tx).expand(-1, size, size)
    y = (s * n[None, :, None] + ty).expand(-1, size, size)
    return F.grid_sample(maps, torch.stack([x, y], dim=-1), mode="bilinear", padding_mode="zeros", align_corners=False)


def box_to_crop(points: torch.Tensor, theta: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(N, K, 2) box px -> (N, K, 2) crop px (both frames ``crop_size`` pixels wide; pixel centres at i + 0.5)."""
    half = crop_size / 2.0
    n = (points + 0.5) / half - 1.0
    n = theta[:, None, :1] * n + theta[:, None, 1:]
    return (n + 1.0) * half - 0.5


def box_centre(theta: torch.Tensor, crop_size: int) -> torch.Tensor:
    """(..., 3) box parameters -> (..., 2) crop px: the box's centre."""
    return (theta[..., 1:] + 1.0) * (crop_size / 2.0) - 0.5
