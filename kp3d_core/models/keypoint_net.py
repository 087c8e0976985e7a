"""The keypoint network: crops -> K heatmaps -> 2D soft-argmax keypoints and confidences.

This is the module exported to ONNX and run at inference (contract in docs/interfaces.md)::

    net = KeypointNet(ModelConfig())
    keypoints, confidence = net(crops)   # crops (N, 3, S, S) RGB in [0, 1]
                                         # -> (N, K, 2) crop px (x, y), (N, K) in [0, 1]

No background input (REFERENCE section 5: background channels may let the encoder key its labelling
to the camera), no data-dependent control flow, GroupNorm (identical in training and inference).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import load_checkpoint, load_state_checked, model_config_of, shipped_model_path
from ..config import ModelConfig
from ..render_keypoints import cell_centres


def conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv + GroupNorm + SiLU."""
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.GroupNorm(groups, cout), nn.SiLU()
    )


class ResBlock(nn.Module):
    """Two 3x3 conv blocks with an identity skip."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_block(ch, ch), conv_block(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Encoder(nn.Module):
    """A small U-shaped conv net: (N, 3, S, S) -> (N, C, S/stride, S/stride) features (C = out_channels).

    Down to S/8 for a receptive field covering the whole crop (left/right identity needs global
    context), then up with skips to the heatmap resolution. With width w=12 and S=64: 0.53 M
    parameters, 93 MMAC per crop (w=16: 0.93 M, 164 MMAC).
    """

    def __init__(self, width: int, heatmap_stride: int) -> None:
        super().__init__()
        w = width
        self.stem = conv_block(3, w)  # S
        self.down1 = nn.Sequential(conv_block(w, 2 * w, 2), ResBlock(2 * w))  # S/2
        self.down2 = nn.Sequential(conv_block(2 * w, 4 * w, 2), ResBlock(4 * w))  # S/4
        self.down3 = nn.Sequential(conv_block(4 * w, 8 * w, 2), ResBlock(8 * w), ResBlock(8 * w))  # S/8
        self.up2 = conv_block(12 * w, 4 * w)  # S/4
        self.up1 = conv_block(6 * w, 3 * w) if heatmap_stride <= 2 else None  # S/2
        self.up0 = conv_block(4 * w, 2 * w) if heatmap_stride == 1 else None  # S
        self.heatmap_stride = heatmap_stride
        self.out_channels = {4: 4 * w, 2: 3 * w, 1: 2 * w}[heatmap_stride]
        self.deep_channels = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> the heatmap-resolution features and the deepest ones (N, 8w, S/8, S/8)."""
        f0 = self.stem(x)
        f1 = self.down1(f0)
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        u = self.up2(torch.cat([F.interpolate(f3, scale_factor=2.0, mode="nearest"), f2], 1))
        if self.up1 is not None:
            u = self.up1(torch.cat([F.interpolate(u, scale_factor=2.0, mode="nearest"), f1], 1))
        if self.up0 is not None:
            u = self.up0(torch.cat([F.interpolate(u, scale_factor=2.0, mode="nearest"), f0], 1))
        return u, f3


def soft_argmax(logits: torch.Tensor, crop_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """2D soft-argmax over heatmap logits.

    Args:
        logits: (N, K, h, w) unnormalised heatmaps (h == w).
        crop_size: S, crop side in pixels.
    Returns:
        probs (N, K, h, w) summing to 1 per keypoint; keypoints (N, K, 2) crop px (x, y);
        spread (N, K): the heatmap's standard deviation sqrt(var_x + var_y) as a fraction of S.
    """
    n, k, h, w = logits.shape
    probs = torch.softmax(logits.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
    cx = cell_centres(w, crop_size, logits.device, logits.dtype)
    cy = cell_centres(h, crop_size, logits.device, logits.dtype)
    px = probs.sum(dim=2)  # (N, K, w) marginal over x
    py = probs.sum(dim=3)  # (N, K, h)
    mx = (px * cx).sum(-1)
    my = (py * cy).sum(-1)
    var = (px * (cx - mx.unsqueeze(-1)) ** 2).sum(-1) + (py * (cy - my.unsqueeze(-1)) ** 2).sum(-1)
    spread = torch.sqrt(var + 1e-8) / crop_size
    return probs, torch.stack([mx, my], dim=-1), spread


class KeypointNet(nn.Module):
    """Encoder + 1x1 heatmap head + soft-argmax; forward returns (keypoints, confidence)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.width, cfg.heatmap_stride)
        self.head = nn.Conv2d(self.encoder.out_channels, cfg.num_keypoints, 1)

    def heatmaps(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> probs (N, K, h, w) summing to 1, keypoints (N, K, 2) crop px, confidence (N, K) in [0, 1]."""
        S = self.cfg.crop_size
        probs, kp, spread = soft_argmax(self.head(self.encoder(crops)), S)
        s0 = self.cfg.confidence_scale
        return probs, kp, s0 / (s0 + spread)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """crops (N, 3, S, S) float32 RGB in [0, 1] -> keypoints (N, K, 2) crop px, confidence (N, K)."""
        _, kp, conf = self.heatmaps(crops)
        return kp, conf


def check_crops(crops: torch.Tensor, crop_size: int) -> None:
    """Raise ValueError naming 'crops' unless it is (N, 3, S, S)."""
    if crops.dim() != 4 or crops.shape[1] != 3 or crops.shape[2] != crop_size or crops.shape[3] != crop_size:
        raise ValueError(f"crops: expected shape (N, 3, {crop_size}, {crop_size}), got {tuple(crops.shape)}")


def load_keypoint_net(checkpoint_path=None, map_location: str = "cpu") -> KeypointNet:
    """Load the inference keypoint net (eval mode) from a training checkpoint.

    ``checkpoint_path`` None loads the shipped model ``kp3d_core/assets/model.pt``.
    Raises :class:`kp3d_core.checkpoint.CheckpointError` naming the file if it is missing, corrupt,
    or does not match the architecture.
    """
    path = shipped_model_path() if checkpoint_path is None else checkpoint_path
    ckpt = load_checkpoint(path, map_location=map_location)
    cfg = model_config_of(ckpt, path)
    net = KeypointNet(cfg)
    state = {k[len("keypoint_net."):]: v for k, v in ckpt["model"].items() if k.startswith("keypoint_net.")}
    load_state_checked(net, state, path)
    return net.eval()
