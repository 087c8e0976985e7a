"""Each loss term on hand-made inputs with known values, the switches, and gradients through the chain."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import losses
from kp3d_core.config import LossConfig, ModelConfig
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.models.synthetic import SyntheticDataset


def test_reconstruction_zero_when_equal_and_foreground_weighted():
    img = torch.rand(1, 2, 3, 8, 8)
    fg = torch.zeros(1, 2, 1, 8, 8)
    fg[..., :4, :] = 1.0  # top half is foreground
    assert torch.allclose(losses.reconstruction_loss(img, img, fg, 5.0), torch.zeros(1, 2))
    err_fg = img.clone()
    err_fg[..., 0, 0] += 0.5  # one foreground pixel wrong in every channel
    err_bg = img.clone()
    err_bg[..., 7, 7] += 0.5  # one background pixel wrong
    l_fg = losses.reconstruction_loss(img, err_fg, fg, 5.0)
    l_bg = losses.reconstruction_loss(img, err_bg, fg, 5.0)
    assert torch.allclose(l_fg, 5.0 * l_bg)
    # exact value: weights mean = (32*5 + 32*1)/64 = 3; |err| mean = 0.5/64 per pixel -> 0.5*1/64 / 3
    assert l_bg[0, 0].item() == pytest.approx(0.5 / 64 / 3, rel=1e-5)


def test_gradient_loss_sees_edges_not_offsets():
    img = torch.zeros(1, 1, 3, 8, 8)
    img[..., :, 4:] = 1.0  # vertical edge
    fg = torch.zeros(1, 1, 1, 8, 8)
    assert losses.gradient_loss(img, img, fg, 5.0).item() == 0.0
    assert losses.gradient_loss(img, img + 0.3, fg, 5.0).item() == pytest.approx(0.0, abs=1e-6)  # flat offset
    shifted = torch.zeros_like(img)
    shifted[..., :, 5:] = 1.0  # the edge one pixel off
    assert losses.gradient_loss(img, shifted, fg, 5.0).item() > 0.01


def test_coverage_is_mass_off_the_foreground():
    fg = torch.zeros(1, 1, 1, 4, 4)
    fg[..., :2, :] = 1.0
    probs = torch.zeros(1, 1, 2, 4, 4)
    probs[0, 0, 0, 0, 0] = 1.0  # on the foreground
    probs[0, 0, 1, 3, 3] = 0.5  # half off, half on
    probs[0, 0, 1, 1, 1] = 0.5
    assert losses.coverage_loss(probs, fg).item() == pytest.approx((0.0 + 0.5) / 2)


def test_centering_fill_mask_consistency_values():
    S = 32
    centre = (S - 1) / 2
    kp = torch.tensor([[[[centre - 5, centre], [centre + 5, centre]]]])  # mean at the centre
    middle = torch.full((1, 1, 2), centre)
    assert losses.centering_loss(kp, S, middle).item() == pytest.approx(0.0)
    assert losses.centering_loss(kp + torch.tensor([3.2, 0.0]), S, middle).item() == pytest.approx(3.2 / S)
    fg = torch.zeros(1, 1, 1, 4, 4)
    fg[..., :, :2] = 1.0
    full = torch.ones(1, 1, 1, 4, 4)
    # centroid target: the left half of the crop is foreground, its centroid is at x = S / 4 - 0.5, y = centre
    c = losses.foreground_centroid(fg, S)
    assert c[0, 0].tolist() == pytest.approx([S / 4 - 0.5, centre])
    assert losses.centering_loss(kp, S, c).item() == pytest.approx((centre - (S / 4 - 0.5)) / S)
    assert losses.centering_loss(kp - torch.tensor([centre - (S / 4 - 0.5), 0.0]), S, c).item() == pytest.approx(0.0)
    assert losses.fill_loss(full, fg).item() == pytest.approx(0.0)
    half = torch.zeros(1, 1, 1, 4, 4)
    half[..., :2, :] = 1.0  # covers half of the foreground, plus background (free for fill)
    assert losses.fill_loss(half, fg).item() == pytest.approx(0.5)
    assert losses.mask_loss(half, fg).item() == pytest.approx(0.5)  # 8 of 16 cells differ by 1
    assert losses.consistency_loss(kp, kp + torch.tensor([1.0, -2.0]), S).item() == pytest.approx(3.0 / S)


def test_thin_parts_keep_limbs_and_drop_the_trunk():
    fg = torch.zeros(1, 1, 1, 32, 32)
    fg[..., 8:24, 10:20] = 1.0  # a 16 x 10 px trunk
    fg[..., 10:12, 20:30] = 1.0  # a 2 px wide arm leaving it
    thin = losses.thin_parts(fg, 5)
    assert thin.shape == fg.shape
    assert torch.all(thin[..., 10:12, 20:30] == 1.0)  # the arm is thin
    assert thin[..., 8:24, 10:20].sum() == 0  # a 5 x 5 square fits everywhere in the trunk
    assert thin.sum() == 2 * 10
    # fill on the thin parts: keypoints on the trunk only leave the whole arm uncovered
    trunk_only = torch.zeros_like(fg)
    trunk_only[..., 8:24, 10:20] = 1.0
    assert losses.fill_loss(trunk_only, thin).item() == pytest.approx(1.0)
    assert losses.fill_loss(trunk_only, fg).item() == pytest.approx(20 / 180)


def test_separation_kernel_values():
    X = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    # pairs (ordered, k != l): (0,1),(1,0) kernel 1; four pairs with the far point ~0 -> mean 2/6
    assert losses.separation_loss(X, valid, 0.08).item() == pytest.approx(2 / 6, abs=1e-6)
    X2 = torch.tensor([[[0.0, 0.0, 0.0], [0.08, 0.0, 0.0]]])
    assert losses.separation_loss(X2, torch.ones(1, 2, dtype=torch.bool), 0.08).item() == pytest.approx(np.exp(-0.5))
    # invalid points do not count
    assert losses.separation_loss(X, torch.tensor([[True, False, True]]), 0.08).item() == pytest.approx(0.0, abs=1e-6)


def test_supervised_loss_ignores_invisible_and_unlabelled():
    kp = torch.zeros(1, 1, 3, 2)
    target = torch.tensor([[[[1.0, 1.0], [50.0, 50.0], [float("nan"), 0.0]]]])
    visible = torch.tensor([[[True, False, True]]])
    assert losses.supervised_loss(kp, target, visible, 32).item() == pytest.approx(2.0 / 32)


def _tiny_batch():
    ds = SyntheticDataset(2, 3, 32, seed=3)
    return torch.utils.data.default_collate([ds[i] for i in range(2)])


def test_switches_and_gradients_through_triangulation():
    torch.manual_seed(0)
    cfg_m = ModelConfig(crop_size=32, num_keypoints=5, width=8, decoder_width=16)
    model = DiscoveryModel(cfg_m)
    b = _tiny_batch()
    out = model(b)
    every = losses.unsupervised_losses(out, b, LossConfig(), 32)
    assert set(every) == {"reconstruction", "structure", "mask", "mask_to_fg", "coverage", "centering", "fill",
                          "separation", "consistency"}
    assert "thin_fill" in losses.unsupervised_losses(out, b, LossConfig(thin_fill=1.0), 32)
    assert all(torch.isfinite(v) for v in every.values())
    # the paper's ablation: reconstruction only
    only = LossConfig(structure=0, mask=0, mask_to_fg=0, coverage=0, centering=0, fill=0, separation=0,
                      consistency=0)
    assert set(losses.unsupervised_losses(out, b, only, 32)) == {"reconstruction"}
    none = LossConfig(**{k: 0.0 for k in ("reconstruction", "structure", "mask", "mask_to_fg", "coverage",
                                          "centering", "fill", "separation", "consistency")})
    with pytest.raises(ValueError, match="switched off"):
        losses.total_loss(losses.unsupervised_losses(out, b, none, 32), none)
    # each geometric term reaches the keypoint net through triangulation and reprojection
    for name in ("fill", "thin_fill", "separation", "centering", "mask"):
        model.zero_grad()
        out = model(b)
        cfg = LossConfig(**{k: (1.0 if k == name else 0.0) for k in ("reconstruction", "structure", "mask",
                         "mask_to_fg", "coverage", "centering", "fill", "thin_fill", "separation", "consistency")})
        losses.total_loss(losses.unsupervised_losses(out, b, cfg, 32), cfg).backward()
        g = sum(p.grad.abs().sum() for p in model.keypoint_net.parameters() if p.grad is not None)
        assert torch.isfinite(g) and g > 0, name


def test_fill_and_separation_reward_spread_keypoints():
    """The prototype's collapse fix: collapsed keypoints score worse than keypoints spread over the body."""
    b = _tiny_batch()
    cfg = LossConfig()
    j = b["joints2d_crop"].float()[:, :, :16]
    collapsed = j[:, :, :1].expand_as(j).clone()
    from kp3d_core.render_keypoints import render_mask

    def fill_of(kp):
        B, V, K = kp.shape[:3]
        r = render_mask(kp.reshape(B * V, K, 2), 16, 32, cfg.render_sigma * 32).reshape(B, V, 1, 16, 16)
        return losses.fill_loss(r, losses.downsample(b["fg"], 16)).mean().item()

    assert fill_of(j) < fill_of(collapsed) - 0.1
    X = b["joints3d"].float()[:, :16]
    valid = torch.ones(2, 16, dtype=torch.bool)
    assert losses.separation_loss(X, valid, 0.08) < 0.5 * losses.separation_loss(X[:, :1].expand_as(X), valid, 0.08)


