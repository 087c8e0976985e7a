"""The keypoint network: crops -> K heatmaps -> 2D soft-argmax keypoints and confidences.

This is the module exported to ONNX and run at inference (contract in docs/interfaces.md)::

    net = KeypointNet(ModelConfig())
    keypoints, confidence = net(crops)   # crops (N, 3, S, S) RGB in [0, 1]
                                         # -> (N, K, 2) crop px (x, y), (N, K) in [0, 1]

No background input (REFERENCE section 5: background channels may let the encoder key its labelling
to the camera), no data-dependent control flow, GroupNorm (identical in training and inference).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..geometry import exchange_twins
from ..render_keypoints import cell_centres
from .box import BoxNet, box_to_crop, warp_to_box


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


class RawOutput(NamedTuple):
    """What :meth:`KeypointNet.raw` returns for N crops."""

    probs: torch.Tensor
    """(N, K, h, w) heatmaps summing to 1, over the learned box (``box``) or, without one, over the crop."""
    kp: torch.Tensor
    """(N, K, 2) crop px, in the net's own labels (no exchange)."""
    conf: torch.Tensor
    """(N, K) in [0, 1]."""
    logit: torch.Tensor | None
    """(N,) the facing logit; None without the facing head."""
    box: torch.Tensor | None
    """(N, 3) the learned box (scale, tx, ty; :mod:`kp3d_core.models.box`); None without ``model.learned_crop``."""


class KeypointNet(nn.Module):
    """[Learned box +] encoder + 1x1 heatmap head + soft-argmax (+ the facing head); forward returns (keypoints,
    confidence).

    With ``cfg.facing`` the forward pass exchanges each crop's keypoints (and confidences) with their mirror twins
    where the facing logit is positive: the labels then follow the body rather than the image side. ``twins`` (K,)
    is that pairing, estimated during training (:func:`estimate_twins`); the identity until then.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.learned_crop:
            self.box_net = BoxNet()
        self.encoder = Encoder(cfg.width, cfg.heatmap_stride)
        self.head = nn.Conv2d(self.encoder.out_channels, cfg.num_keypoints, 1)
        if cfg.facing:
            cells = (cfg.crop_size // 8) ** 2  # the layout matters: a face or hair at the top of the crop
            self.facing_head = nn.Sequential(nn.Conv2d(self.encoder.deep_channels, 8, 1), nn.SiLU(), nn.Flatten(),
                                             nn.Linear(8 * cells, 1))
            self.register_buffer("twins", torch.arange(cfg.num_keypoints))

    def heatmaps(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, S, S) -> probs (N, K, h, w), keypoints (N, K, 2) crop px, confidence (N, K), in the net's own labels
        (no exchange)."""
        return self.raw(crops)[:3]

    def raw(self, crops: torch.Tensor) -> RawOutput:
        """:meth:`heatmaps` plus the facing logit and the learned box (:class:`RawOutput`)."""
        S = self.cfg.crop_size
        box = self.box_net(crops) if self.cfg.learned_crop else None
        u, deep = self.encoder.features(crops if box is None else warp_to_box(crops, box, S))
        probs, kp, spread = soft_argmax(self.head(u), S)
        if box is not None:
            kp, spread = box_to_crop(kp, box, S), spread * box[:, :1]  # box px -> crop px; spread as a crop fraction
        s0 = self.cfg.confidence_scale
        logit = self.facing_head(deep)[:, 0] if self.cfg.facing else None
        return RawOutput(probs, kp, s0 / (s0 + spread), logit, box)

    def estimated_twins(self) -> torch.Tensor | None:
        """The mirror twins (K,) once estimated; None without the facing head or while they are the identity."""
        twins = getattr(self, "twins", None)
        if twins is None or bool((twins == torch.arange(len(twins), device=twins.device)).all()):
            return None
        return twins

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """crops (N, 3, S, S) float32 RGB in [0, 1] -> keypoints (N, K, 2) crop px, confidence (N, K)."""
        _, kp, conf, logit, _ = self.raw(crops)
        if logit is None:
            return kp, conf
        return exchange_twins(kp, self.twins, logit > 0), exchange_twins(conf, self.twins, logit > 0)


@torch.no_grad()
def resolve_exchange(relation: torch.Tensor, logit: torch.Tensor, seen: torch.Tensor, window: int = 1) -> torch.Tensor:
    """(B, V) bool: the views whose keypoints take their twins' labels. ``relation`` (B, V) bool says which views
    label the body mirrored relative to view 0 (:func:`kp3d_core.geometry.mirror_relations`); of the two labellings
    that agree with it, the one the facing logits (B, V) of the seen views (``seen`` (B, V)) lean to wins: one view's
    head may err, the rig's majority decides, and the head's own choice of side sticks. ``window``: rows ``window * i``
    ... ``window * i + window - 1`` are consecutive frames of one clip (kp3d_core.data.pairs.flatten_windows) and take
    one side together, so that a keypoint cannot change sides between them."""
    seen = seen.to(logit.dtype)

    def cost(target: torch.Tensor) -> torch.Tensor:  # (B,) the heads' disagreement with a labelling, per window
        bce = (F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype), reduction="none") * seen).sum(1)
        return bce.reshape(-1, window).sum(1).repeat_interleave(window)

    flip = cost(~relation) < cost(relation)  # (B,)
    return relation ^ flip[:, None]


@torch.no_grad()
def estimate_twins(net: "KeypointNet", crops: torch.Tensor) -> torch.Tensor:
    """(K,) long: each keypoint's mirror twin, from the net's keypoints on ``crops`` (N, 3, S, S) and on the same crops
    flipped left to right. A net that labels limbs by image side puts, on a flipped crop, keypoint k where it puts its
    twin on the crop itself; the pairing is the assignment (Hungarian, SciPy) of least mean distance, symmetrised."""
    from scipy.optimize import linear_sum_assignment

    S = net.cfg.crop_size
    kp = net.raw(crops).kp
    kp_flip = net.raw(torch.flip(crops, dims=[-1])).kp
    kp_flip = torch.stack([S - 1 - kp_flip[..., 0], kp_flip[..., 1]], dim=-1)  # back to the crop's x (pixel centres)
    cost = (kp[:, :, None] - kp_flip[:, None, :]).norm(dim=-1).mean(0)  # (K, K): keypoint k against flipped m
    cost = (cost + cost.T).double().cpu().numpy()
    _, twins = linear_sum_assignment(cost)
    return torch.as_tensor(twins, dtype=torch.long, device=crops.device)


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
    from ..checkpoint import load_checkpoint, shipped_model_path, model_config_of

    path = shipped_model_path() if checkpoint_path is None else checkpoint_path
    ckpt = load_checkpoint(path, map_location=map_location)
    cfg = model_config_of(ckpt, path)
    net = KeypointNet(cfg)
    state = {k[len("keypoint_net."):]: v for k, v in ckpt["model"].items() if k.startswith("keypoint_net.")}
    from ..checkpoint import load_state_checked

    load_state_checked(net, state, path)
    return net.eval()
