"""Label-free augmentation: geometry stays exact (crop_to_image follows the warp), colour touches only the body,
the background swap changes only what the keypoint net sees."""
from __future__ import annotations

import pytest
import torch

from kp3d_core.augment import (
    Augmenter,
    swap_backgrounds,
)
from kp3d_core.config import AugmentConfig, ConfigError, config_from_dict

S = 32


def batch_with_dot(B=2, V=3):
    """Crops with one bright pixel each at a known place; fg = a disc around it; labels at the dot."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(B, V, 3, S, S, generator=g) * 0.2
    dots = torch.randint(10, 22, (B, V, 2), generator=g)
    for b in range(B):
        for v in range(V):
            x, y = dots[b, v].tolist()
            image[b, v, :, y, x] = torch.tensor([0.9, 0.3, 0.1])
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    fg = ((xx - dots[..., 0, None, None]) ** 2 + (yy - dots[..., 1, None, None]) ** 2 <= 9).float().unsqueeze(2)
    M = torch.eye(3, dtype=torch.float64).repeat(B, V, 1, 1)
    M[..., 0, 0] = M[..., 1, 1] = 4.0  # crop px -> image px: x4 zoom plus an offset
    M[..., 0, 2], M[..., 1, 2] = 100.0, 50.0
    j = dots.to(torch.float64).unsqueeze(2).repeat(1, 1, 17, 1)
    return {"image": image, "background": torch.rand(B, V, 3, S, S, generator=g) * 0.2, "fg": fg,
            "crop_to_image": M, "joints2d_crop": j}


def to_image(M, p):
    return (M[..., :2, :2] @ p.unsqueeze(-1)).squeeze(-1) + M[..., :2, 2]


def test_zero_strength_is_the_identity():
    b = batch_with_dot()
    assert Augmenter(AugmentConfig())(b) is b


def test_swap_backgrounds_keeps_the_body_and_takes_the_other_room():
    b = batch_with_dot(B=1, V=2)
    other, swap = torch.tensor([1, 0]), torch.tensor([True, False])
    out = swap_backgrounds(b["image"], b["fg"], b["background"], other, swap)
    body, room = b["fg"][0, 0, 0] == 1, b["fg"][0, 0, 0] == 0
    assert torch.equal(out[0, 0][:, body], b["image"][0, 0][:, body])           # the subject is kept
    assert torch.allclose(out[0, 0][:, room], b["background"][0, 1][:, room])   # the room is view 1's
    assert torch.equal(out[0, 1], b["image"][0, 1])                             # not swapped: unchanged


def test_background_swap_touches_only_the_encoder_input():
    b = batch_with_dot()
    out = Augmenter(AugmentConfig(background_swap=1.0), seed=2)(b)
    for key in ("image", "background", "fg", "crop_to_image", "joints2d_crop"):
        assert torch.equal(out[key], b[key])  # reconstruction target, composite and geometry as they were
    body = b["fg"].expand_as(b["image"]) == 1
    assert torch.equal(out["encoder_image"][body], b["image"][body])
    assert not torch.allclose(out["encoder_image"], b["image"])


def test_the_keypoint_net_reads_the_encoder_image():
    from kp3d_core.config import ModelConfig
    from kp3d_core.models.discovery import DiscoveryModel
    from kp3d_core.models.synthetic import SyntheticDataset

    torch.manual_seed(0)
    model = DiscoveryModel(ModelConfig(crop_size=32, num_keypoints=4, width=8, decoder_width=8)).eval()
    ds = SyntheticDataset(1, 2, 32, seed=1)
    batch = torch.utils.data.default_collate([ds[0]])
    with torch.no_grad():
        plain = model(batch)
        seen = model({**batch, "encoder_image": batch["image"].flip(-1)})
    assert not torch.allclose(plain["kp"], seen["kp"])  # the net looked at the other input
    # ... while the composite still lays the decoder's foreground on the true background
    assert torch.allclose(seen["recon"], seen["mask"] * seen["fg_image"] + (1 - seen["mask"]) * batch["background"])


def test_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="data.augment.scale"):
        config_from_dict({"data": {"augment": {"scale": 0.7}}})
    with pytest.raises(ConfigError, match="data.augment.colouur"):
        config_from_dict({"data": {"augment": {"colouur": 0.5}}})
    with pytest.raises(ConfigError, match="data.augment.background_swap"):
        config_from_dict({"data": {"augment": {"background_swap": 1.5}}})
