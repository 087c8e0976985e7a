"""Label-free augmentation: geometry stays exact (crop_to_image follows the warp), colour touches only the body,
the background swap changes only what the keypoint net sees."""
from __future__ import annotations

import math

import pytest
import torch

from kp3d_core.augment import (Augmenter, grey_axis_rotations, recolour_foreground, similarity, swap_backgrounds,
                               warp_crops)
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


def test_zoom_shift_keeps_image_points_and_moves_pixels_with_the_labels():
    b = batch_with_dot()
    out = Augmenter(AugmentConfig(scale=0.3, shift=0.1), seed=3)(b)
    # Geometry: a label maps to the same image pixel before and after (triangulation is unchanged).
    before = to_image(b["crop_to_image"][:, :, None], b["joints2d_crop"])
    after = to_image(out["crop_to_image"][:, :, None], out["joints2d_crop"])
    assert torch.allclose(before, after, atol=1e-9)
    assert not torch.allclose(out["joints2d_crop"], b["joints2d_crop"])
    # Pixels: the warped image is brightest (red channel) where the moved label says the dot is.
    red = out["image"][:, :, 0]
    for bi in range(2):
        for v in range(3):
            y, x = divmod(int(red[bi, v].argmax()), S)
            assert abs(x - out["joints2d_crop"][bi, v, 0, 0]) <= 1.0 and abs(y - out["joints2d_crop"][bi, v, 0, 1]) <= 1.0
    assert out["fg"].shape == b["fg"].shape and out["background"].shape == b["background"].shape


def test_similarity_and_warp_agree():
    A = similarity(torch.tensor([1.25]), torch.tensor([[2.0, -3.0]]), S)
    c = (S - 1) / 2
    p = torch.tensor([5.0, 20.0, 1.0], dtype=torch.float64)
    assert torch.allclose(A[0] @ p, torch.tensor([1.25 * (5 - c) + c + 2, 1.25 * (20 - c) + c - 3, 1.0], dtype=torch.float64))
    x = torch.zeros(1, 1, S, S)
    x[0, 0, 20, 5] = 1.0
    y = warp_crops(x, A, "zeros")
    q = A[0] @ p
    yy, xx = divmod(int(y[0, 0].argmax()), S)
    assert abs(xx - q[0]) <= 1 and abs(yy - q[1]) <= 1


def test_colour_changes_the_body_only_and_alike_in_every_view():
    b = batch_with_dot(B=1, V=2)
    b["image"][0, 1] = b["image"][0, 0]  # two identical views
    b["fg"][0, 1] = b["fg"][0, 0]
    out = Augmenter(AugmentConfig(colour=1.0), seed=1)(b)
    bg = b["fg"] == 0
    assert torch.equal(out["image"][bg.expand_as(b["image"])], b["image"][bg.expand_as(b["image"])])
    assert not torch.allclose(out["image"], b["image"])
    assert torch.allclose(out["image"][0, 0], out["image"][0, 1])
    assert out["image"].min() >= 0 and out["image"].max() <= 1
    assert torch.equal(out["crop_to_image"], b["crop_to_image"])


def test_hue_rotation_keeps_grey_and_turns_red_towards_green():
    R = grey_axis_rotations(torch.tensor([2 * math.pi / 3], dtype=torch.float64))[0]
    assert torch.allclose(R @ torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(R @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
                          torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-12)
    img = torch.full((1, 1, 3, 2, 2), 0.5)
    same = recolour_foreground(img, torch.ones(1, 1, 1, 2, 2), torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([1.0]))
    assert torch.allclose(same, img)  # grey has no hue to rotate


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
