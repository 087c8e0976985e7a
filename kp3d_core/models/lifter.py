"""The single-view lifter: one camera's 2D keypoints -> 3D keypoints in that camera's frame (Honari stage 2).

The camera frame is the levelled one (:func:`kp3d_core.inference.single_view.levelling`: the camera turned level, so
that an upright person is upright whatever the camera's tilt and roll); rays below are expressed in it.

Input contract (:func:`lifter_inputs`): a view's keypoints as normalised image rays ``r = K^-1 [u, v, 1]``
(undistorted, so any lens and image size look alike), centred on their confidence-weighted mean ``m`` and divided by
their RMS spread ``s``, with each keypoint's confidence; plus ``m`` itself (where the person is in the view: an
off-axis subject is seen obliquely). The network predicts the keypoints relative to their mean in the camera frame,
in metres: a metric body shape, whose size it learns from the triangulated keypoints it is trained on. Where the
shape stands (its depth) is then solved from the rays (:func:`kp3d_core.geometry.solve_translation`).

A temporal variant reads a causal window of the last ``window`` frames of the same view (a convolution spanning
the window, then the same residual blocks); ``window = 1`` is the per-frame lifter.

Example::

    net = LifterNet(num_keypoints=32, window=1)
    x = lifter_inputs(rays, conf)            # (B, 1, K, 2) rays, (B, 1, K) -> (B, 1, K*3 + 2)
    Y = net(x)                               # (B, K, 3) m, camera frame, relative to the keypoints' mean
"""
from __future__ import annotations

import torch
import torch.nn as nn

MIN_SPREAD = 1e-4
"""Smallest RMS spread of a view's rays (about 0.1 px at f = 1000 px): fewer than two distinct keypoints."""


def lifter_inputs(rays: torch.Tensor, conf: torch.Tensor) -> torch.Tensor:
    """Keypoints of one view -> the lifter's input features.

    Args:
        rays: (..., K, 2) normalised undistorted image coordinates (``K^-1 [u, v, 1]``); NaN where missing.
        conf: (..., K) confidences in [0, 1]; 0 where missing.
    Returns:
        (..., K * 3 + 2): per keypoint ``(r - m) / s`` and its confidence, then ``m`` (zeros where nothing is seen).
    """
    ok = torch.isfinite(rays).all(-1) & (conf > 0)
    w = torch.where(ok, conf, torch.zeros_like(conf))
    r = torch.where(ok[..., None], rays, torch.zeros_like(rays))
    total = w.sum(-1, keepdim=True).clamp_min(1e-8)
    m = (w[..., None] * r).sum(-2) / total  # (..., 2)
    d = torch.where(ok[..., None], r - m[..., None, :], torch.zeros_like(r))
    s = ((w * (d * d).sum(-1)).sum(-1, keepdim=True) / total).sqrt().clamp_min(MIN_SPREAD)  # (..., 1)
    feats = torch.cat([d / s[..., None], w[..., None]], dim=-1).flatten(-2)
    return torch.cat([feats, m], dim=-1)


class ResidualBlock(nn.Module):
    """Linear-BatchNorm-ReLU-Dropout twice, with a skip (the block of Martinez et al.'s baseline lifter)."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class LifterNet(nn.Module):
    """(B, window, K*3 + 2) input features (:func:`lifter_inputs`, oldest frame first) -> (B, K, 3) metres.

    The output is the newest frame's keypoints in its camera's frame, relative to their mean.
    """

    def __init__(self, num_keypoints: int, window: int = 1, width: int = 512, blocks: int = 2,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"LifterNet: window must be >= 1, got {window}")
        self.num_keypoints, self.window = int(num_keypoints), int(window)
        features = 3 * self.num_keypoints + 2
        # One convolution spanning the whole causal window: the temporal model sees every frame of it at once.
        self.stem = nn.Conv1d(features, width, kernel_size=self.window)
        self.stem_norm = nn.Sequential(nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[ResidualBlock(width, dropout) for _ in range(blocks)])
        self.head = nn.Linear(width, 3 * self.num_keypoints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.window or x.shape[2] != 3 * self.num_keypoints + 2:
            raise ValueError(f"LifterNet: expected (B, {self.window}, {3 * self.num_keypoints + 2}), got {tuple(x.shape)}")
        h = self.stem_norm(self.stem(x.transpose(1, 2))[..., 0])
        return self.head(self.blocks(h)).reshape(-1, self.num_keypoints, 3)


class PoseDiscriminator(nn.Module):
    """(B, K*3 + 2) single-frame lifter inputs -> (B,) logits: a real view's 2D pose, or a projected lifted one.

    Only the centred, scaled 2D shape is judged (the confidences and the centre are dropped): a lifted pose that
    projects to an implausible 2D shape from another viewpoint is what the rotation cycle must not produce.
    """

    def __init__(self, num_keypoints: int, width: int = 256) -> None:
        super().__init__()
        self.num_keypoints = int(num_keypoints)
        self.net = nn.Sequential(
            nn.Linear(2 * self.num_keypoints, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x[..., : 3 * self.num_keypoints].reshape(*x.shape[:-1], self.num_keypoints, 3)[..., :2]
        return self.net(shape.flatten(-2))[..., 0]
