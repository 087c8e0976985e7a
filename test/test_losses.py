"""Each loss term on hand-made inputs with known values, the switches, and gradients through the chain."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import geometry, losses
from kp3d_core.config import LossConfig, ModelConfig
from kp3d_core.models.discovery import DiscoveryModel, crop_to_ideal, ideal_to_crop
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
    assert losses.centering_loss(kp, S).item() == pytest.approx(0.0)
    assert losses.centering_loss(kp + torch.tensor([3.2, 0.0]), S).item() == pytest.approx(3.2 / S)
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


def test_sample_at_reads_pixel_centres_and_is_differentiable():
    maps = torch.arange(16.0).reshape(1, 1, 1, 4, 4)  # value = 4 * row + column
    kp = torch.tensor([[[[0.0, 0.0], [3.0, 2.0], [1.5, 1.0]]]], requires_grad=True)  # (x, y) crop px
    got = losses.sample_at(maps, kp, 4)
    assert got.shape == (1, 1, 3, 1)
    assert got[0, 0, :, 0].tolist() == pytest.approx([0.0, 11.0, 5.5])
    got.sum().backward()
    assert kp.grad[0, 0, 2].tolist() == pytest.approx([1.0, 4.0])  # d/dx = 1, d/dy = 4 between centres
    # a 3x3 box blur of a single bright pixel spreads it to its neighbours
    spot = torch.zeros(1, 1, 1, 5, 5)
    spot[..., 2, 2] = 9.0
    assert losses.sample_at(spot, torch.tensor([[[[1.0, 1.0]]]]), 5, blur=3).item() == pytest.approx(1.0)


def test_photo_consistency_rewards_one_colour_in_every_view_and_bounds_occlusion():
    valid_view = torch.ones(1, 3, dtype=torch.bool)
    valid = torch.ones(1, 2, dtype=torch.bool)
    same = torch.full((1, 3, 2, 3), 0.4)
    assert losses.photo_consistency_loss(same, valid_view, valid, 0.15).item() == pytest.approx(0.0)
    occluded = same.clone()
    occluded[0, 2] = torch.tensor([0.9, 0.1, 0.1])  # one view sees another part
    floating = torch.rand(1, 3, 2, 3, generator=torch.Generator().manual_seed(0))
    one = losses.photo_consistency_loss(occluded, valid_view, valid, 0.15).item()
    assert 0 < one < 4 / 6 + 1e-6  # 4 of 6 ordered view pairs disagree, each at most 1
    # a huge difference costs at most 1 per pair (Geman-McClure), a small one about d^2 / tau^2
    d = torch.zeros(1, 2, 1, 3)
    d[0, 1] = 0.015
    assert losses.photo_consistency_loss(d, torch.ones(1, 2, dtype=torch.bool), valid[:, :1], 0.15).item() == \
        pytest.approx(0.01 / 1.01, rel=1e-4)
    assert losses.photo_consistency_loss(floating, valid_view, valid, 0.15).item() > 0.3
    # invalid views and keypoints do not count
    assert losses.photo_consistency_loss(occluded, torch.tensor([[True, True, False]]), valid, 0.15).item() == \
        pytest.approx(0.0)


def test_inside_is_zero_on_thin_limbs_and_grows_off_the_body():
    fg = torch.zeros(1, 1, 1, 32, 32)
    fg[..., 8:24, 10:20] = 1.0  # trunk
    fg[..., 10:11, 20:30] = 1.0  # a 1 px wide arm
    out = losses.outside_distance(fg, 8)
    assert torch.all(out[fg > 0] == 0)  # the thin arm counts as body
    assert out[0, 0, 0, 16, 22].item() == pytest.approx(2 / 8)  # 3 px right of the trunk: 2 dilations miss it
    assert out[0, 0, 0, 31, 31].item() == pytest.approx(1.0)  # beyond the reach
    kp = torch.tensor([[[[25.0, 10.0], [22.0, 16.0]]]])  # on the arm; 3 px off the trunk
    at = losses.sample_at(out, kp, 32)
    valid = torch.ones(1, 2, dtype=torch.bool)
    assert losses.inside_loss(at, torch.ones(1, 1, dtype=torch.bool), valid).item() == pytest.approx(0.5 * 2 / 8)


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
    assert {"photo", "inside"} <= set(losses.unsupervised_losses(out, b, LossConfig(photo=1.0, inside=1.0), 32))
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
    for name in ("fill", "thin_fill", "separation", "centering", "mask", "photo", "inside"):
        model.zero_grad()
        out = model(b)
        cfg = LossConfig(**{k: (1.0 if k == name else 0.0) for k in ("reconstruction", "structure", "mask",
                         "mask_to_fg", "coverage", "centering", "fill", "thin_fill", "separation", "consistency",
                         "photo", "inside")})
        losses.total_loss(losses.unsupervised_losses(out, b, cfg, 32), cfg).backward()
        g = sum(p.grad.abs().sum() for p in model.keypoint_net.parameters() if p.grad is not None)
        assert torch.isfinite(g) and g > 0, name
    # centering on the foreground's centroid also reaches the keypoint net
    model.zero_grad()
    cfg = LossConfig(**{k: 0.0 for k in ("reconstruction", "structure", "mask", "mask_to_fg", "coverage", "fill",
                                         "separation", "consistency")}, centering=1.0, centering_target="centroid")
    losses.total_loss(losses.unsupervised_losses(model(b), b, cfg, 32), cfg).backward()
    assert sum(p.grad.abs().sum() for p in model.keypoint_net.parameters() if p.grad is not None) > 0
    from kp3d_core.config import ConfigError, config_from_dict
    with pytest.raises(ConfigError, match="loss.centering_target"):
        config_from_dict({"loss": {"centering_target": "bbox"}}, "test")
    with pytest.raises(ConfigError, match="loss.centering_target.*model.learned_crop"):
        config_from_dict({"loss": {"centering_target": "learned"}}, "test")
    # segment rendering works too
    seg = losses.unsupervised_losses(model(b), b, LossConfig(render_shape="segments"), 32)
    assert torch.isfinite(seg["fill"]) and 0 <= seg["fill"].item() <= 1


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


def test_the_learned_box_is_trained_by_reconstruction_and_centering_not_coverage():
    torch.manual_seed(0)
    model = DiscoveryModel(ModelConfig(crop_size=32, num_keypoints=5, width=8, decoder_width=16, learned_crop=True))
    b = _tiny_batch()
    off = {k: 0.0 for k in ("reconstruction", "structure", "mask", "mask_to_fg", "coverage", "centering", "fill",
                            "separation", "consistency")}

    def box_grad(**on) -> float:
        cfg = LossConfig(**{**off, **on}, centering_target="learned")
        model.zero_grad()
        out = model(b)
        losses.total_loss(losses.unsupervised_losses(out, b, cfg, 32), cfg).backward()
        return sum(p.grad.abs().sum().item() for p in model.keypoint_net.box_net.parameters() if p.grad is not None)

    assert box_grad(reconstruction=1.0) > 0 and box_grad(centering=1.0) > 0
    # coverage reaches the box only through the heatmaps, not through the foreground it warps into the box (a box
    # shrunk onto the body would satisfy it for free)
    out = model(b)
    held = losses.unsupervised_losses({**out, "probs": out["probs"].detach()}, b,
                                      LossConfig(**{**off, "coverage": 1.0}), 32)["coverage"]
    assert not held.requires_grad
    # centering on the learned box: the distance from the box's centre to the mean reprojected keypoint
    out = model(b)
    cfg = LossConfig(**{**off, "centering": 1.0}, centering_target="learned")
    u = (out["box"][..., 1:] + 1.0) * 16 - 0.5
    expected = ((out["kp_hat"].mean(2) - u).abs().sum(-1) / 32).mean()
    assert torch.allclose(losses.unsupervised_losses(out, b, cfg, 32)["centering"], expected, atol=1e-6)
    # coverage reads the foreground as the box sees it: an identity box reads the crop's own
    assert torch.allclose(out["box"], torch.tensor([1.0, 0.0, 0.0]).expand_as(out["box"]))
    plain = dict(out)
    del plain["box"]
    cov = LossConfig(**{**off, "coverage": 1.0})
    assert torch.allclose(losses.unsupervised_losses(out, b, cov, 32)["coverage"],
                          losses.unsupervised_losses(plain, b, cov, 32)["coverage"], atol=1e-6)
    with pytest.raises(ValueError, match="learned_crop"):
        losses.unsupervised_losses(plain, b, cfg, 32)


def test_triangulated_centre_is_one_3d_point_seen_by_every_view():
    """Per-view centres that disagree become the reprojections of one 3D point; centres that already agree stay."""
    ds = SyntheticDataset(2, 3, 32, seed=1)
    batch = torch.utils.data.default_collate([ds[i] for i in range(2)])
    batch = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in batch.items()}
    P = batch["P"]
    point = torch.tensor([[[0.1, -0.05, 0.9]], [[0.0, 0.1, 1.0]]], dtype=torch.float64)  # (B, 1, 3) m
    agree = ideal_to_crop(geometry.project(point, P), batch)[:, :, 0]  # (B, V, 2) crop px
    assert torch.allclose(losses.triangulated_centre(agree, batch), agree, atol=1e-6)
    apart = agree + torch.tensor([[3.0, -2.0], [-1.5, 2.5], [0.5, 1.0]], dtype=torch.float64)
    out = losses.triangulated_centre(apart, batch)
    C, valid = geometry.triangulate(crop_to_ideal(out.unsqueeze(2), batch), torch.ones(2, 3, 1, dtype=P.dtype), P)
    assert valid.all() and torch.allclose(ideal_to_crop(geometry.project(C, P), batch)[:, :, 0], out, atol=1e-6)
    assert not torch.allclose(out, apart, atol=0.1)
    alone = dict(batch, valid_view=torch.tensor([[True, False, False], [True, True, True]]))
    kept = losses.triangulated_centre(apart, alone)
    assert torch.equal(kept[0], apart[0]) and torch.allclose(kept[1], out[1])  # one view: its own centre
