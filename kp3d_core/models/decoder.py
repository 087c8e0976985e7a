"""Training-only decoder: keypoint Gaussian maps -> foreground mask M and foreground image D.

The decoder sees the subject only through its (reprojected) keypoints, so the reconstruction
I~ = M*D + (1-M)*B rewards keypoints that explain where the body is. Not exported for inference.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..render_keypoints import gaussian_maps
from .keypoint_net import ResBlock, conv_block


class Decoder(nn.Module):
    """(N, K, 2) crop-px keypoints -> mask M (N, 1, S, S) in (0, 1), foreground D (N, 3, S, S) in (0, 1).

    Gaussians are drawn at S/4 and S/2 and the maps upsampled to S with convolutions in between.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        k, w = cfg.num_keypoints, cfg.decoder_width
        self.crop_size = cfg.crop_size
        self.sigma = cfg.decoder_sigma * cfg.crop_size
        self.inp = nn.Sequential(conv_block(k, 2 * w), ResBlock(2 * w))  # S/4
        self.mid = nn.Sequential(conv_block(2 * w + k, w), ResBlock(w))  # S/2
        self.top = nn.Sequential(conv_block(w, w // 2), nn.Conv2d(w // 2, 4, 3, padding=1))  # S

    def forward(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.crop_size
        g4 = gaussian_maps(keypoints, s // 4, s, self.sigma)
        g2 = gaussian_maps(keypoints, s // 2, s, self.sigma)
        x = self.inp(g4)
        x = self.mid(torch.cat([F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False), g2], 1))
        x = self.top(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        # Mask kept away from exactly 0/1 so the composite always passes gradient to both paths.
        mask = 1e-4 + (1 - 2e-4) * torch.sigmoid(x[:, :1])
        fg = torch.sigmoid(x[:, 1:])
        return mask, fg
