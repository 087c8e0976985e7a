"""Label-free training augmentation of multi-view crop batches: the background swap.

The keypoint net (only) sees each foreground (soft |I - B| mask) on another crop's background, so the room
cannot tell it which camera it looks through; the reconstruction target and its composite keep the true
background (``encoder_image`` is the one new key).

Example::

    aug = Augmenter(AugmentConfig(background_swap=1.0), seed=0)
    batch = aug(batch)   # same keys, plus ``encoder_image`` (B, V, 3, S, S)
"""
from __future__ import annotations

import torch

from .config import AugmentConfig


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

    def __call__(self, batch: dict) -> dict:
        p = self.cfg.background_swap
        if p <= 0:
            return batch
        image = batch["image"]
        B, V = image.shape[:2]
        dev = image.device
        swap = torch.rand((B * V,), generator=self.generator) < p
        other = torch.randperm(B * V, generator=self.generator)
        return {**batch, "encoder_image": swap_backgrounds(image, batch["fg"], batch["background"], other.to(dev),
                                                           swap.to(dev))}
