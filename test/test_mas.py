"""Mask as Supervision (issue 36): skeleton drawing, geodesic weights, physique net, symmetry, cascade, and a few
training steps of a tiny skeleton-mode config."""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
import torch

from kp3d_core import losses, mas
from kp3d_core.cascade import Stage, cascade_stage
from kp3d_core.checkpoint import load_checkpoint
from kp3d_core.config import Config, ConfigError, LossConfig, config_from_dict, load_config
from kp3d_core.geodesic import geodesic_weights
from kp3d_core.models.keypoint_net import load_keypoint_net
from kp3d_core.models.physique import PhysiqueNet
from kp3d_core.models.skeleton_head import SkeletonHead
from kp3d_core.models.synthetic import _TEMPLATE
from kp3d_core.skeleton import FLIP_PERMUTATION
from kp3d_core.skeleton import JOINT_INDEX as J
from kp3d_core.skeleton_mask import skeleton_lines, skeleton_mask
from kp3d_core.train import build_dataset, build_model, compute_losses, model_batch, optimisation_step, train

TINY = "training/configs/tiny.yaml"
MAS_TERMS = {"skeleton", "physique", "symmetry"}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as tiny.yaml's training runs: two threads beside another busy process spin-wait (x50)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_mas_cfg(tmp_path, **loss) -> Config:
    """tiny.yaml in skeleton mode: 17 keypoints, every MaS term on, a small physique net, stages at steps 1 and 2."""
    d = dataclasses.asdict(load_config(TINY))
    d["model"]["num_keypoints"] = 17
    d["loss"].update({"skeleton": 1.0, "physique": 1.0, "symmetry": 1.0, "geodesic": True, "physique_width": 8,
                      "skeleton_sigma": 0.04, "skeleton_arm_sigma": 0.025, "physique_from_step": 1,
                      "arms_from_step": 2, **loss})
    d["train"].update(out_dir=str(tmp_path / "run"), tensorboard=False, preview_every=0)
    return config_from_dict(d, "tiny_mas")


# ------------------------------------------------------------------------------------------ drawing
def _arm_and_thigh_pose() -> torch.Tensor:
    """(1, 17, 2) crop px: every joint at (5, 5) except a horizontal left thigh (hip (5, 5) -> knee (25, 5)) and a
    vertical left upper arm (shoulder (5, 5) -> elbow (5, 25)); the left wrist sits on the elbow."""
    p = torch.full((1, 17, 2), 5.0)
    p[0, J["left_knee"]] = torch.tensor([25.0, 5.0])
    p[0, J["left_ankle"]] = torch.tensor([25.0, 5.0])
    p[0, J["left_elbow"]] = torch.tensor([5.0, 25.0])
    p[0, J["left_wrist"]] = torch.tensor([5.0, 25.0])
    return p


def test_lines_are_bones_and_torso_with_four_arm_bones():
    pairs, is_arm = skeleton_lines()
    assert pairs.shape == (24, 2) and int(is_arm.sum()) == 4  # 16 bones + 8 torso lines
    arm_joints = {J[n] for n in ("left_elbow", "left_wrist", "right_elbow", "right_wrist")}
    assert {int(c) for c in pairs[is_arm][:, 1]} == arm_joints
    pairs, is_arm = skeleton_lines(arms=False)
    assert pairs.shape == (20, 2) and not bool(is_arm.any())


def test_bone_peaks_on_its_segment_and_arms_are_thinner():
    sigma, arm_sigma = 2.0, 1.0
    m = skeleton_mask(_arm_and_thigh_pose(), 32, 32, sigma, arm_sigma)[0, 0]  # cell (y, x) centred on pixel (x, y)
    assert m.shape == (32, 32) and float(m.max()) <= 1.0
    # on the thigh (y = 5) and on the upper arm (x = 5): 1; one pixel off: exp(-1 / sigma^2) of the bone's sigma
    assert float(m[5, 15]) == pytest.approx(1.0) and float(m[15, 5]) == pytest.approx(1.0)
    assert float(m[6, 15]) == pytest.approx(math.exp(-1 / sigma**2), rel=1e-4)
    assert float(m[15, 6]) == pytest.approx(math.exp(-1 / arm_sigma**2), rel=1e-4)
    assert float(m[15, 6]) < float(m[6, 15])  # the arm is drawn thinner
    # falls off with the distance to the segment, and past its end
    across = m[5:12, 15]
    assert bool((across[1:] < across[:-1]).all())
    assert float(m[5, 28]) == pytest.approx(math.exp(-9 / sigma**2), rel=1e-4)
    # without arms (cascade stage 1) the arm bone is gone, the thigh stays
    no_arms = skeleton_mask(_arm_and_thigh_pose(), 32, 32, sigma, arm_sigma, arms=False)[0, 0]
    assert float(no_arms[15, 5]) < 1e-6 and float(no_arms[5, 15]) == pytest.approx(1.0)
    # the soft union is never below the max
    soft = skeleton_mask(_arm_and_thigh_pose(), 32, 32, sigma, arm_sigma, union="soft")[0, 0]
    assert bool((soft >= m - 1e-6).all())


def test_drawing_rejects_bad_input():
    with pytest.raises(ValueError, match="joints"):
        skeleton_mask(torch.zeros(1, 16, 2), 8, 8, 1.0, 1.0)
    with pytest.raises(ValueError, match="union"):
        skeleton_mask(torch.zeros(1, 17, 2), 8, 8, 1.0, 1.0, union="sum")


# ----------------------------------------------------------------------------------------- geodesic
def test_geodesic_weights_hand_checked_bar():
    mask = np.zeros((1, 7, 7))
    mask[0, 3, :] = 1.0  # a horizontal bar through the middle: centroid at column 3
    w = geodesic_weights(mask)[0]
    # inside: d = |c - 3| / 3 along the bar, w = exp(2 d) + 1
    expect_in = np.exp(2 * np.abs(np.arange(7) - 3) / 3) + 1
    np.testing.assert_allclose(w[3], expect_in, rtol=1e-5)
    # outside: d = rows away / 3, w = 3 d + 20
    for row, d in ((2, 1), (1, 2), (0, 3), (4, 1), (6, 3)):
        np.testing.assert_allclose(w[row], 20 + d, rtol=1e-5)


def test_geodesic_weights_follow_the_body_not_the_straight_line():
    """An L-shaped silhouette: inside, the weight grows along the body from the centroid; outside, with the distance
    to the body; every outside weight exceeds every inside one."""
    mask = np.zeros((1, 16, 16), dtype=np.float32)
    mask[0, 2:14, 2:5] = 1.0  # vertical bar
    mask[0, 11:14, 2:14] = 1.0  # foot of the L
    w = geodesic_weights(mask)[0]
    inside = mask[0] > 0.5
    assert w[inside].max() <= math.exp(2) + 1 + 1e-4 and w[inside].min() == pytest.approx(2.0)
    assert w[~inside].min() > w[inside].max() and w[~inside].max() == pytest.approx(23.0)
    foot = w[12, 4:14]  # along the foot, away from the corner near the centroid
    assert bool((np.diff(foot) > 0).all())
    # outside: next to the bar (1 px), 3 px from it, in the far corner (~11 px from the bar's top)
    assert w[8, 5] < w[8, 7] < w[0, 15]
    # soft masks are thresholded; an empty crop has weight 1
    np.testing.assert_allclose(geodesic_weights(0.8 * mask)[0], w)
    np.testing.assert_array_equal(geodesic_weights(np.zeros((2, 4, 4))), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="mask"):
        geodesic_weights(np.zeros((4, 4)))


# ------------------------------------------------------------------------------------------ physique
def test_physique_net_shapes_range_and_gradient():
    torch.manual_seed(0)
    net = PhysiqueNet(8)
    x = torch.rand(3, 1, 16, 16, requires_grad=True)
    y = net(x)
    assert y.shape == (3, 1, 16, 16) and bool(((y > 0) & (y < 1)).all())
    assert net(torch.rand(2, 1, 7, 9)).shape == (2, 1, 7, 9)  # odd sides
    y.sum().backward()
    assert float(x.grad.abs().sum()) > 0  # the physique term reaches the skeleton, hence the joints
    with pytest.raises(ValueError, match="skeleton"):
        net(torch.rand(2, 3, 8, 8))
    widths = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(widths) == 32 and 16 in widths  # w-2w-4w
    assert max(m.out_channels for m in PhysiqueNet().modules() if isinstance(m, torch.nn.Conv2d)) == 128


# ------------------------------------------------------------------------------------------ symmetry
def test_symmetry_loss_zero_when_symmetric_positive_otherwise():
    X = torch.tensor(_TEMPLATE, dtype=torch.float64)[None]  # left/right mirror images
    valid = torch.ones(1, 17, dtype=torch.bool)
    assert len(mas.SYMMETRIC_BONES) == 6
    assert float(mas.symmetry_loss(X, valid)) == pytest.approx(0.0, abs=1e-9)
    def stretch(pose, parent, child, metres):
        out = pose.clone()
        d = out[0, J[child]] - out[0, J[parent]]
        out[0, J[child]] += metres * d / d.norm()
        return out

    longer = stretch(X, "left_knee", "left_ankle", 0.1)  # left shin 0.1 m longer
    assert float(mas.symmetry_loss(longer, valid)) == pytest.approx(0.1 / 6, rel=1e-6)
    arm = stretch(X, "right_elbow", "right_wrist", 0.3)  # right forearm 0.3 m longer: counted only with the arms
    assert float(mas.symmetry_loss(arm, valid)) == pytest.approx(0.3 / 6, rel=1e-6)
    assert float(mas.symmetry_loss(arm, valid, arms=False)) == pytest.approx(0.0, abs=1e-9)
    some = valid.clone()
    some[0, J["left_ankle"]] = False  # an invalid joint's pairs do not count
    assert float(mas.symmetry_loss(longer, some)) == pytest.approx(0.0, abs=1e-9)
    Xg = longer.clone().requires_grad_(True)
    mas.symmetry_loss(Xg, valid).backward()
    assert float(Xg.grad[0, J["left_ankle"], 2]) < 0  # descent (-grad) lifts the ankle, shortening the shin


# -------------------------------------------------------------------------------------- skeleton term
def test_skeleton_term_pulls_an_outside_bone_into_the_silhouette():
    """Gradient descent on the joints alone against a fixed vertical-bar silhouette brings a bone drawn outside it
    back inside: the term's real behaviour, not only its value."""
    fg = torch.zeros(1, 1, 1, 32, 32)
    fg[..., :, 12:20] = 1.0
    joints = torch.full((1, 17, 2), 16.0)
    joints[0, J["left_knee"]] = torch.tensor([28.0, 16.0])  # thigh sticking out to the right
    joints[0, J["left_ankle"]] = torch.tensor([28.0, 16.0])
    joints.requires_grad_(True)
    weights = mas.pixel_weights(fg, 0.5)
    opt = torch.optim.SGD([joints], lr=200.0)

    def outside(skel):  # the part of the skeleton drawn off the bar
        return float((skel.detach() * (1.0 - fg)).pow(2).sum())

    first = first_outside = None
    for _ in range(60):
        skel = skeleton_mask(joints, 32, 32, 2.0, 1.5).reshape(1, 1, 1, 32, 32)
        loss = mas.skeleton_loss(skel, fg, weights).sum()
        if first is None:
            first, first_outside = float(loss.detach()), outside(skel)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first  # two-sided: the bar's uncovered inside keeps a floor
    assert outside(skel) < 0.1 * first_outside
    assert float(joints.detach()[0, J["left_knee"], 0]) < 22.0  # moved towards the bar (x in 12..19)


def test_skeleton_term_is_two_sided_a_collapsed_skeleton_costs_more_than_a_spread_one():
    """Outside alone, joints piled on the body's centre would be free (the collapse seen on real crops); the inside
    half makes a skeleton laid along the silhouette cost less than one shrunk to a point."""
    fg = torch.zeros(1, 1, 1, 32, 32)
    fg[..., 4:28, 14:18] = 1.0  # a standing bar, 4 px wide
    spread = torch.full((1, 17, 2), 16.0)
    spread[0, :, 1] = torch.linspace(5.0, 27.0, 17)  # every joint on the bar's axis, top to bottom
    collapsed = torch.full((1, 17, 2), 16.0)
    weights = mas.pixel_weights(fg, 0.5)

    def cost(joints):
        return float(mas.skeleton_loss(skeleton_mask(joints, 32, 32, 2.0, 1.5).reshape(1, 1, 1, 32, 32), fg, weights))

    assert cost(spread) < 0.7 * cost(collapsed)
    assert float(mas.skeleton_loss(fg, fg)) == 0.0  # a skeleton that is the silhouette costs nothing


def test_upright_prior_is_free_for_a_standing_body_and_orders_a_collapsed_one():
    standing = torch.as_tensor(np.asarray(_TEMPLATE), dtype=torch.float64)[None]  # (1, 17, 3), z up
    ok = torch.ones(1, 17, dtype=torch.bool)
    up = torch.tensor([0.0, 0.0, 2.0])  # any length
    assert float(mas.upright_loss(standing, ok, up, 0.03)) == 0.0
    upside_down = standing * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    assert float(mas.upright_loss(upside_down, ok, up, 0.03)) > 0.1  # metres, per pair
    assert float(mas.upright_loss(standing, ok, torch.tensor([0.0, 0.0, -1.0]), 0.03)) > 0.1  # the axis counts
    # joints piled on one point pay the margin, and the gradient lifts the head and lowers the ankles
    pile = torch.zeros(1, 17, 3, dtype=torch.float64, requires_grad=True)
    loss = mas.upright_loss(pile, ok, up, 0.03)
    assert float(loss.detach()) == pytest.approx(0.03)
    loss.backward()
    assert float(pile.grad[0, J["head"], 2]) < 0 < float(pile.grad[0, J["left_ankle"], 2])
    none = torch.zeros(1, 17, dtype=torch.bool)
    assert float(mas.upright_loss(upside_down, none, up, 0.03)) == 0.0  # invalid joints do not count


def test_width_prior_is_free_for_a_body_and_parts_twins_that_start_together():
    standing = torch.as_tensor(np.asarray(_TEMPLATE), dtype=torch.float64)[None]
    ok = torch.ones(1, 17, dtype=torch.bool)
    up = torch.tensor([0.0, 0.0, 1.0])
    assert float(mas.width_loss(standing, ok, up)) == 0.0
    narrow = standing.clone()
    narrow[0, J["left_hip"]] = narrow[0, J["right_hip"]] = standing[0, J["pelvis"]]
    assert float(mas.width_loss(narrow, ok, up)) == pytest.approx(0.15 / 2, abs=1e-5)  # the hips' minimum, 1 pair of 2
    stacked = narrow.clone()
    stacked[0, J["left_hip"], 2] += 0.3  # one hip 30 cm above the other: still no width
    assert float(mas.width_loss(stacked, ok, up)) == pytest.approx(0.15 / 2, abs=1e-5)
    # twins 1 mm apart: a full-strength push apart, along their difference
    pile = torch.zeros(1, 17, 3, dtype=torch.float64)
    pile[0, J["left_hip"], 1] = 1e-3
    pile.requires_grad_(True)
    mas.width_loss(pile, ok, up).backward()
    assert float(pile.grad[0, J["left_hip"], 1]) < -0.1 and float(pile.grad[0, J["right_hip"], 1]) > 0.1
    assert torch.isfinite(pile.grad).all()  # the shoulders sit exactly on each other: finite, no NaN


def test_hinge_prior_is_free_for_a_body_and_costs_its_mirror_image():
    """The template faces +x (right hip at -y), knees 2 cm forward, wrists 5 cm forward of the elbows' line."""
    body = torch.as_tensor(np.asarray(_TEMPLATE), dtype=torch.float64)[None]
    ok = torch.ones(1, 17, dtype=torch.bool)
    up = torch.tensor([0.0, 0.0, 1.0])
    assert float(mas.hinge_loss(body, ok, up)) == 0.0
    mirror = body[:, list(FLIP_PERMUTATION)]  # every left/right label swapped: the masks cannot tell, the knees can
    cost = float(mas.hinge_loss(mirror, ok, up, arms=False))
    assert cost == pytest.approx(0.02, abs=0.005)  # metres: each knee bends its 2 cm the wrong way
    assert float(mas.hinge_loss(mirror, ok, up)) > 0.0  # the elbows too
    straight = body.clone()
    straight[0, [J["left_knee"], J["right_knee"]], 0] = 0.0
    assert float(mas.hinge_loss(straight[:, list(FLIP_PERMUTATION)], ok, up, arms=False)) == pytest.approx(0.0, abs=1e-9)
    # the gradient of the mirror bends its knees back the other way
    mirror = mirror.clone().requires_grad_(True)
    mas.hinge_loss(mirror, ok, up, arms=False).backward()
    assert float(mirror.grad[0, J["left_knee"], 0]) > 0 and float(mirror.grad[0, J["right_knee"], 0]) > 0
    # hips on one point: finite, and invalid joints do not count
    pile = torch.zeros(1, 17, 3, dtype=torch.float64, requires_grad=True)
    mas.hinge_loss(pile, ok, up).backward()
    assert torch.isfinite(pile.grad).all()
    assert float(mas.hinge_loss(mirror.detach(), torch.zeros(1, 17, dtype=torch.bool), up)) == 0.0


def test_proportion_prior_is_free_in_proportion_and_pulls_a_slid_joint_back():
    body = torch.as_tensor(np.asarray(_TEMPLATE), dtype=torch.float64)[None]
    ok = torch.ones(1, 17, dtype=torch.bool)
    assert float(mas.proportion_loss(body, ok)) == 0.0
    assert float(mas.proportion_loss(2.5 * body, ok)) == pytest.approx(0.0, abs=1e-12)  # scale-free
    slid = body.clone()
    slid[0, J["spine"]] = slid[0, J["thorax"]]  # the spine slid up the trunk line onto the thorax
    slid.requires_grad_(True)
    loss = mas.proportion_loss(slid, ok)
    loss.backward()
    assert float(loss.detach()) > 0.05 and float(slid.grad[0, J["spine"], 2]) > 0  # descent moves it back down
    short_arms = body.clone()
    short_arms[0, [J["left_wrist"], J["right_wrist"]]] = short_arms[0, [J["left_elbow"], J["right_elbow"]]]
    assert float(mas.proportion_loss(short_arms, ok, arms=False)) < float(mas.proportion_loss(short_arms, ok))
    assert float(mas.proportion_loss(slid.detach(), torch.zeros(1, 17, dtype=torch.bool))) == 0.0


# ------------------------------------------------------------------------------------------- cascade
def test_cascade_switches_terms_at_their_steps():
    cfg = LossConfig(physique=1.0, physique_from_step=10, arms_from_step=20)
    assert cascade_stage(0, cfg) == Stage(arms=False, physique=False)
    assert cascade_stage(9, cfg) == Stage(arms=False, physique=False)
    assert cascade_stage(10, cfg) == Stage(arms=False, physique=True)
    assert cascade_stage(20, cfg) == Stage(arms=True, physique=True)
    assert cascade_stage(None, cfg) == Stage()
    assert not cascade_stage(50, LossConfig()).physique  # no physique without its weight


def test_skeleton_mode_steps_switch_terms_and_train(tmp_path):
    """A few real optimisation steps of the tiny skeleton-mode config: finite losses, each MaS term logged from its
    cascade step, the arm bones drawn from theirs, the physique net trained only once on."""
    torch.manual_seed(0)
    cfg = tiny_mas_cfg(tmp_path)  # physique from step 1, arms from step 2
    model, opt = build_model(cfg, torch.device("cpu"))
    assert isinstance(model.skeleton_head, SkeletonHead) and model.skeleton_head.physique is not None
    ds = build_dataset(cfg)
    batch = model_batch(torch.utils.data.default_collate([ds[i] for i in range(2)]), 1, torch.device("cpu"))
    physique_before = [p.detach().clone() for p in model.skeleton_head.physique.parameters()]
    seen = []
    for step in range(4):
        total, terms, out = optimisation_step(model, opt, batch, cfg, 1e-3, step)
        assert math.isfinite(float(total)) and all(math.isfinite(v) for v in terms.values())
        seen.append(set(terms) & MAS_TERMS)
        assert out["skeleton"].shape == (2, 3, 1, 16, 16)
        if step == 0:  # the physique net sat idle: Adam left its weights alone
            assert all(torch.equal(a, b) for a, b in zip(physique_before, model.skeleton_head.physique.parameters()))
    assert seen == [{"skeleton", "symmetry"}] + [MAS_TERMS] * 3
    assert not all(torch.equal(a, b) for a, b in zip(physique_before, model.skeleton_head.physique.parameters()))
    # arms: the skeleton of step 1 (no arms) is the one of step 2 less the arm bones
    model.eval()
    with torch.no_grad():
        _, _, early = compute_losses(model, batch, cfg, None, 1)
        _, _, late = compute_losses(model, batch, cfg, None, 2)
    assert bool((late["skeleton"] >= early["skeleton"] - 1e-6).all())
    assert float((late["skeleton"] - early["skeleton"]).abs().max()) > 1e-3


def test_training_loop_in_skeleton_mode_checkpoints_the_physique_net(tmp_path):
    cfg = tiny_mas_cfg(tmp_path)
    cfg.train.steps, cfg.train.preview_every = 3, 2
    ckpt = load_checkpoint(train(cfg))
    assert ckpt["step"] == 3 and any(k.startswith("skeleton_head.physique.") for k in ckpt["model"])
    # previews draw the sided skeleton and the skeleton mask over the foreground (a third row under the recon.)
    previews = sorted((tmp_path / "run" / "previews").glob("step_*.png"))
    assert previews and cv2.imread(str(previews[-1])).shape[0] > 3 * 2.2 * 80 * 0.9
    net = load_keypoint_net(tmp_path / "run" / "ckpt.pt")  # inference loads the keypoint net alone
    assert net.cfg.num_keypoints == 17


def test_view_flips_in_the_forward_triangulate_in_the_majority_labelling(tmp_path, monkeypatch):
    """loss.view_flips: a view whose left/right labels are swapped is swapped back before triangulation (no labels
    used: the residual decides), so X is the true pose; its own keypoints stay as the net gave them."""
    cfg = tiny_mas_cfg(tmp_path, view_flips=True)
    model, _ = build_model(cfg, torch.device("cpu"))
    assert model.view_flips
    batch = model_batch(_batch(cfg), 1, torch.device("cpu"))
    kp = batch["joints2d_crop"].float().clone()  # (B, V, 17, 2): the net is replaced by the true 2D joints ...
    kp[:, 1] = kp[:, 1][:, list(FLIP_PERMUTATION)]  # ... with view 1's left and right swapped
    B, V, K = kp.shape[:3]

    def heatmaps(crops):
        return torch.zeros(B * V, K, 16, 16), kp.reshape(B * V, K, 2), torch.ones(B * V, K)

    monkeypatch.setattr(model.keypoint_net, "heatmaps", heatmaps)
    out = model(batch, decode=False)
    expect = torch.zeros(B, V, dtype=torch.bool)
    expect[:, 1] = True
    assert torch.equal(out["flips"], expect) and torch.equal(out["kp"], kp)
    assert float((out["X"] - batch["joints3d"]).norm(dim=-1).max()) < 0.02  # metres
    plain, _ = build_model(tiny_mas_cfg(tmp_path), torch.device("cpu"))
    monkeypatch.setattr(plain.keypoint_net, "heatmaps", heatmaps)
    unresolved = plain(batch, decode=False)
    assert "flips" not in unresolved and float((unresolved["X"] - batch["joints3d"]).norm(dim=-1).max()) > 0.05


def test_encoder_init_loads_the_encoder_of_a_model_with_other_keypoints(tmp_path):
    """train.init_encoder_from: a 17-joint model starts from a 32-keypoint model's encoder; head and decoder stay
    fresh; an encoder of another width is refused naming the file."""
    from kp3d_core.checkpoint import CheckpointError, save_checkpoint
    from kp3d_core.config import config_to_dict
    from kp3d_core.train import start_encoder_from

    torch.manual_seed(0)
    other = load_config(TINY)
    other.model.num_keypoints = 32
    donor, _ = build_model(other, torch.device("cpu"))
    path = save_checkpoint(tmp_path / "donor.pt", {"config": config_to_dict(other), "model": donor.state_dict()})
    model, _ = build_model(tiny_mas_cfg(tmp_path), torch.device("cpu"))
    head_before = model.keypoint_net.head.weight.detach().clone()
    assert start_encoder_from(path, model) > 10
    for k, v in donor.keypoint_net.encoder.state_dict().items():
        assert torch.equal(model.keypoint_net.encoder.state_dict()[k], v)
    assert torch.equal(model.keypoint_net.head.weight, head_before)
    from kp3d_core.train import shrink_head

    crops = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        spread_before = float(model.keypoint_net(crops)[0].std(dim=1).mean())
        shrink_head(model, 0.01)  # train.head_init_scale: nearly flat heatmaps, every keypoint near the crop's centre
        kp, _ = model.keypoint_net(crops)
    assert float((kp - 15.5).abs().max()) < 0.5  # 15.5: the centre of pixels 0..31
    assert float(kp.std(dim=1).mean()) < 0.1 * spread_before
    assert float((kp[:, J["left_knee"]] - kp[:, J["right_knee"]]).abs().max()) > 0  # left and right still apart
    wide = load_config(TINY)
    wide.model.width = 12
    donor_wide, _ = build_model(wide, torch.device("cpu"))
    bad = save_checkpoint(tmp_path / "wide.pt", {"config": config_to_dict(wide), "model": donor_wide.state_dict()})
    with pytest.raises(CheckpointError, match="wide.pt"):
        start_encoder_from(bad, model)


# -------------------------------------------------------------------------------------------- config
def test_defaults_are_off_and_leave_the_model_as_before(tmp_path):
    cfg = load_config(TINY)
    model, _ = build_model(cfg, torch.device("cpu"))
    assert model.skeleton_head is None and not any(k.startswith("skeleton_head") for k in model.state_dict())
    assert not MAS_TERMS & set(losses.unsupervised_losses(model(_batch(cfg)), _batch(cfg), cfg.loss, 32))
    # skeleton mode without its physique term: a head with no weights
    skel_only = tiny_mas_cfg(tmp_path, physique=0.0)
    model, _ = build_model(skel_only, torch.device("cpu"))
    assert model.skeleton_head.physique is None and not any(k.startswith("skeleton_head") for k in model.state_dict())


def _batch(cfg):
    ds = build_dataset(cfg)
    return torch.utils.data.default_collate([ds[i] for i in range(2)])


def test_config_checks_and_the_shipped_mas_config():
    cfg = load_config("training/configs/mas.yaml")
    assert cfg.model.num_keypoints == 17 and cfg.loss.skeleton > 0 and cfg.loss.physique > 0 and cfg.loss.geodesic
    assert cfg.loss.physique_from_step < cfg.loss.arms_from_step  # the paper's order
    with pytest.raises(ConfigError, match="model.num_keypoints"):
        config_from_dict({"loss": {"symmetry": 1.0}})  # 32 keypoints are no named joints
    with pytest.raises(ConfigError, match="loss.skeleton_union"):
        config_from_dict({"model": {"num_keypoints": 17}, "loss": {"skeleton": 1.0, "skeleton_union": "sum"}})
    with pytest.raises(ConfigError, match="loss.arms_from_step"):
        config_from_dict({"loss": {"arms_from_step": -1}})
    with pytest.raises(ConfigError, match="model.num_keypoints"):
        config_from_dict({"loss": {"view_flips": True}})
    for prior in ("upright", "width"):
        with pytest.raises(ConfigError, match="model.num_keypoints"):
            config_from_dict({"loss": {prior: 1.0}})
    with pytest.raises(ConfigError, match="train.head_init_scale"):
        config_from_dict({"train": {"head_init_scale": 0.0}})
    with pytest.raises(ConfigError, match="train.init_encoder_from"):
        config_from_dict({"train": {"init_from": "a.pt", "init_encoder_from": "b.pt"}})
