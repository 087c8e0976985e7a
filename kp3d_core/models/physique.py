"""Training-only physique net of Mask as Supervision (seed 002): skeleton mask -> silhouette.

A thin skeleton cannot match a silhouette pixel for pixel; the physique net learns how flesh is laid around bones,
so that its output compared with the foreground pulls each bone to where the body is (the skeleton's "fill" term).
Never exported; it exists only while ``loss.physique > 0`` (so checkpoints without it keep their weights' keys).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .keypoint_net import conv_block


class PhysiqueNet(nn.Module):
    """A small U-Net, widths w-2w-4w (the paper's 32-64-128 for w = 32), sigmoid output.

    ``forward``: (N, 1, h, w) skeleton mask in [0, 1] -> (N, 1, h, w) silhouette in (0, 1), any h, w >= 1.
    At w = 32 and 32 x 32 maps: 0.43 M parameters, about 95 MMAC per map; forward + backward of mas.yaml's 36 maps
    take ~0.28 s on one CPU thread (+50 % on its step; w = 16 takes ~0.12 s).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.enc1 = nn.Sequential(conv_block(1, w), conv_block(w, w))  # h
        self.enc2 = nn.Sequential(conv_block(w, 2 * w, 2), conv_block(2 * w, 2 * w))  # h/2
        self.enc3 = nn.Sequential(conv_block(2 * w, 4 * w, 2), conv_block(4 * w, 4 * w))  # h/4: a limb's width
        self.dec2 = conv_block(6 * w, 2 * w)  # h/2
        self.dec1 = conv_block(3 * w, w)  # h
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, skeleton: torch.Tensor) -> torch.Tensor:
        if skeleton.dim() != 4 or skeleton.shape[1] != 1:
            raise ValueError(f"skeleton: expected shape (N, 1, h, w), got {tuple(skeleton.shape)}")
        e1 = self.enc1(skeleton)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        # Upsampled to the skip's size (not by 2), so odd map sides work too.
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return torch.sigmoid(self.head(d1))
