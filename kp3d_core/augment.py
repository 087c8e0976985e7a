"""Label-free training augmentation of multi-view crop batches: foreground colour, crop zoom/shift, background swap.

Why: a network of this size learns its training subjects' clothes and fails on new people (on the former
3000-frame, 8-subject studio-bench train split, the supervised upper bound fitted its training crops to
~1 px and missed test crops by several). Both jitters need no labels and keep the multi-view geometry exact:

- colour: the foreground only (soft |I - B| mask, so the background B of the composite stays valid) is
  re-coloured per frame, identically in every view (one subject, one outfit): a rotation of the chroma
  about the grey axis, a saturation and a brightness factor. New clothes, same silhouette.
- background swap: the keypoint net (only) sees each foreground on another crop's background, so the room
  cannot tell it which camera it looks through (``encoder_image``; the reconstruction keeps the true one).
- zoom/shift: each view's crop is resampled by a similarity A (crop px -> new crop px) and its
  ``crop_to_image`` becomes ``crop_to_image @ inv(A)``, so triangulation sees the same image points;
  the label-free crop box jitters at run time, and this teaches the net not to rely on where it falls.

Example::

    aug = Augmenter(AugmentConfig(colour=0.5, scale=0.1, shift=0.05), seed=0)
    batch = aug(batch)   # same keys, same shapes; labels (joints2d_crop) moved with the crops
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig


def grey_axis_rotations(angles: torch.Tensor) -> torch.Tensor:
    """(N,) radians -> (N, 3, 3) RGB rotations about the grey axis (1, 1, 1)/sqrt(3) (hue rotations)."""
    u = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=angles.dtype, device=angles.device)
    Kx = torch.zeros(3, 3, dtype=angles.dtype, device=angles.device)
    Kx[0, 1], Kx[0, 2], Kx[1, 0], Kx[1, 2], Kx[2, 0], Kx[2, 1] = -u[2], u[1], u[2], -u[0], -u[1], u[0]
    s, c = torch.sin(angles)[:, None, None], torch.cos(angles)[:, None, None]
    return torch.eye(3, dtype=angles.dtype, device=angles.device) + s * Kx + (1 - c) * (Kx @ Kx)


def recolour_foreground(image: torch.Tensor, fg: torch.Tensor, hue: torch.Tensor, saturation: torch.Tensor,
                        brightness: torch.Tensor) -> torch.Tensor:
    """Re-colour the foreground of every view of each frame alike.

    Args:
        image: (B, V, 3, S, S) RGB in [0, 1]. fg: (B, V, 1, S, S) soft foreground in [0, 1].
        hue: (B,) radians; saturation, brightness: (B,) factors (1 = unchanged).
    Returns:
        (B, V, 3, S, S) in [0, 1]: ``image + fg * (T(image) - image)``; background pixels (fg = 0) unchanged.
    """
    R = grey_axis_rotations(hue.to(image.dtype)) * saturation.to(image.dtype)[:, None, None]  # (B, 3, 3)
    grey = image.mean(dim=2, keepdim=True)
    chroma = torch.einsum("bij,bvjhw->bvihw", R, image - grey)
    recoloured = (brightness.to(image.dtype)[:, None, None, None, None] * grey + chroma).clamp(0.0, 1.0)
    return image + fg * (recoloured - image)


def similarity(scale: torch.Tensor, shift: torch.Tensor, size: int) -> torch.Tensor:
    """(N,) zoom factors and (N, 2) shifts in crop px -> (N, 3, 3) maps A: crop px -> new crop px.

    ``A p = scale * (p - c) + c + shift`` with c = (S - 1) / 2, the crop centre (pixel centres at integers).
    """
    c = (size - 1) / 2.0
    A = torch.zeros(scale.shape[0], 3, 3, dtype=torch.float64, device=scale.device)
    s = scale.to(torch.float64)
    A[:, 0, 0] = A[:, 1, 1] = s
    A[:, :2, 2] = c * (1 - s[:, None]) + shift.to(torch.float64)
    A[:, 2, 2] = 1.0
    return A


def warp_crops(x: torch.Tensor, A: torch.Tensor, padding: str) -> torch.Tensor:
    """Resample (N, C, S, S) crops so that new pixel A p shows old pixel p (bilinear)."""
    n, _, s, _ = x.shape
    Ainv = torch.linalg.inv(A)  # new px -> old px
    # Normalised coordinates (align_corners=False): u = (2 p + 1) / S - 1, i.e. p = (u + 1) S / 2 - 1/2.
    N = torch.tensor([[2.0 / s, 0.0, 1.0 / s - 1.0], [0.0, 2.0 / s, 1.0 / s - 1.0], [0.0, 0.0, 1.0]],
                     dtype=torch.float64, device=A.device)
    theta = (N @ Ainv @ torch.linalg.inv(N))[:, :2].to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def swap_backgrounds(image: torch.Tensor, fg: torch.Tensor, background: torch.Tensor, other: torch.Tensor,
                     swap: torch.Tensor) -> torch.Tensor:
    """The encoder's input with foregrounds laid on other crops' backgrounds.

    Args:
        image, background: (B, V, 3, S, S) in [0, 1]; fg: (B, V, 1, S, S) soft foreground in [0, 1].
        other: (B*V,) index of the crop (flattened over B and V) whose background each crop receives.
        swap: (B*V,) bool, which crops are swapped (the others are returned unchanged).
    Returns:
        (B, V, 3, S, S): ``fg * image + (1 - fg) * background[other]`` where ``swap``, else ``image``.
    """
    shape = image.shape
    flat = image.reshape(-1, *shape[2:])
    f = fg.reshape(-1, *fg.shape[2:])
    b = background.reshape(-1, *shape[2:])[other]
    swapped = f * flat + (1.0 - f) * b
    return torch.where(swap.reshape(-1, 1, 1, 1), swapped, flat).reshape(shape)


class Augmenter:
    """Callable that augments a training batch (dict of the training-sample contract, batched) in place of it."""

    def __init__(self, cfg: AugmentConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, shape, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=self.generator, dtype=torch.float64)

    def __call__(self, batch: dict) -> dict:
        cfg = self.cfg
        if cfg.colour <= 0 and cfg.scale <= 0 and cfg.shift <= 0 and cfg.background_swap <= 0:
            return batch
        out = dict(batch)
        image, fg = batch["image"], batch["fg"]
        B, V, _, S, _ = image.shape
        dev = image.device
        if cfg.colour > 0:
            c = cfg.colour
            hue = self._uniform((B,), -math.pi * c, math.pi * c)
            sat = self._uniform((B,), 1 - c / 2, 1 + c / 2)
            bright = self._uniform((B,), 1 - c / 2, 1 + c / 2)
            out["image"] = image = recolour_foreground(image, fg, hue.to(dev), sat.to(dev), bright.to(dev))
        if cfg.scale > 0 or cfg.shift > 0:
            A = similarity(self._uniform((B * V,), 1 - cfg.scale, 1 + cfg.scale),
                           self._uniform((B * V, 2), -cfg.shift * S, cfg.shift * S), S).to(dev)
            for key, pad in (("image", "border"), ("background", "border"), ("fg", "zeros")):
                x = out[key]  # the image as re-coloured above
                out[key] = warp_crops(x.reshape(B * V, *x.shape[2:]), A, pad).reshape(x.shape)
            A = A.reshape(B, V, 3, 3)
            out["crop_to_image"] = batch["crop_to_image"].to(torch.float64) @ torch.linalg.inv(A)
            if "joints2d_crop" in batch:
                j = batch["joints2d_crop"].to(torch.float64)
                out["joints2d_crop"] = (j @ A[..., :2, :2].transpose(-1, -2) + A[..., None, :2, 2]).to(batch["joints2d_crop"].dtype)
        if cfg.background_swap > 0:
            swap = torch.rand((B * V,), generator=self.generator) < cfg.background_swap
            other = torch.randperm(B * V, generator=self.generator)
            out["encoder_image"] = swap_backgrounds(out["image"], out["fg"], out["background"], other.to(dev), swap.to(dev))
        return out
