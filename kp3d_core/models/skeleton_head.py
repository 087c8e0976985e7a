"""Training-only MaS head of the discovery model: reprojected joints -> skeleton mask (-> physique silhouette).

Part of the model (not of the losses) because the physique net has weights: under DDP every trained weight must be
used inside the wrapped module's forward. Built only when a MaS pixel term is on (``loss.skeleton`` or
``loss.physique`` > 0), so other models keep their weights' keys. Maps are drawn at the heatmap side
h = S / heatmap_stride, like the other mask terms.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..cascade import Stage
from ..config import LossConfig, ModelConfig
from ..skeleton_mask import skeleton_mask
from .physique import PhysiqueNet


class SkeletonHead(nn.Module):
    """``forward(joints, stage)``: (N, 17, 2) crop px -> skeleton (N, 1, h, h) and physique (N, 1, h, h) or None."""

    def __init__(self, crop_size: int, size: int, sigma_px: float, arm_sigma_px: float, union: str = "max",
                 physique_width: int = 0) -> None:
        super().__init__()
        self.crop_size, self.size = crop_size, size
        self.sigma_px, self.arm_sigma_px, self.union = sigma_px, arm_sigma_px, union
        self.physique = PhysiqueNet(physique_width) if physique_width > 0 else None

    @classmethod
    def from_config(cls, model: ModelConfig, loss: LossConfig) -> SkeletonHead | None:
        """The head the config asks for, or None when no MaS pixel term is on."""
        if loss.skeleton <= 0 and loss.physique <= 0:
            return None
        S = model.crop_size
        return cls(S, S // model.heatmap_stride, loss.skeleton_sigma * S, loss.skeleton_arm_sigma * S,
                   loss.skeleton_union, loss.physique_width if loss.physique > 0 else 0)

    def forward(self, joints: torch.Tensor, stage: Stage = Stage()) -> tuple[torch.Tensor, torch.Tensor | None]:
        skel = skeleton_mask(joints, self.size, self.crop_size, self.sigma_px, self.arm_sigma_px, stage.arms,
                             self.union)
        physique = self.physique(skel) if self.physique is not None and stage.physique else None
        return skel, physique
