"""Keypoint net, soft-argmax, keypoint rendering, decoder and the multi-view chain (tiny sizes, CPU)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from kp3d_core import geometry
from kp3d_core.checkpoint import CheckpointError, save_checkpoint
from kp3d_core.config import Config, ModelConfig, config_to_dict
from kp3d_core.models import KeypointNet, load_keypoint_net, soft_argmax
from kp3d_core.models.keypoint_net import RawOutput, estimate_twins, resolve_exchange
from kp3d_core.models.decoder import Decoder
from kp3d_core.models.discovery import DiscoveryModel, crop_to_ideal, ideal_to_crop
from kp3d_core.models.synthetic import SyntheticDataset
from kp3d_core.render_keypoints import (
    cell_centres, gaussian_maps, link_map, nearest_neighbour_pairs, render_mask, segment_maps, soft_union,
)

TINY = ModelConfig(crop_size=32, num_keypoints=6, width=8, decoder_width=16)


def batch_of(n: int = 2, views: int = 3, crop: int = 32) -> dict:
    ds = SyntheticDataset(n, views, crop, seed=1)
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def test_cell_centres_match_crop_pixels():
    # 16 cells over a 32 px crop: cell 0 covers pixels 0..1, centre 0.5
    c = cell_centres(16, 32)
    assert c[0].item() == pytest.approx(0.5)
    assert c[-1].item() == pytest.approx(30.5)
    assert torch.allclose(cell_centres(32, 32), torch.arange(32.0))


def test_soft_argmax_of_a_peak_is_the_cell_centre():
    logits = torch.full((1, 2, 16, 16), -50.0)
    logits[0, 0, 3, 10] = 50.0  # row 3, column 10
    logits[0, 1, 12, 1] = 50.0
    probs, kp, spread = soft_argmax(logits, crop_size=32)
    assert torch.allclose(probs.sum(dim=(2, 3)), torch.ones(1, 2))
    assert torch.allclose(kp[0, 0], torch.tensor([10 * 2 + 0.5, 3 * 2 + 0.5]), atol=1e-4)
    assert torch.allclose(kp[0, 1], torch.tensor([1 * 2 + 0.5, 12 * 2 + 0.5]), atol=1e-4)
    assert spread.max() < 1e-3
    # a uniform heatmap sits at the crop centre with a large spread
    _, kp_u, spread_u = soft_argmax(torch.zeros(1, 1, 16, 16), 32)
    assert torch.allclose(kp_u, torch.full((1, 1, 2), 15.5), atol=1e-4)
    assert spread_u.item() == pytest.approx(np.sqrt(2 * (32**2 - 4) / 12) / 32, rel=1e-3)


def test_keypoint_net_contract_shapes_ranges_and_parameters():
    net = KeypointNet(TINY).eval()
    kp, conf = net(torch.rand(5, 3, 32, 32))
    assert kp.shape == (5, 6, 2) and conf.shape == (5, 6)
    assert (conf > 0).all() and (conf <= 1).all()
    assert (kp >= -0.5).all() and (kp <= 31.5).all()  # soft-argmax stays inside the crop
    default = KeypointNet(ModelConfig())
    n = sum(p.numel() for p in default.parameters())
    assert 0.5e6 <= n <= 1.5e6, n  # the brief's size budget
    for stride in (1, 4):
        cfg = ModelConfig(crop_size=32, num_keypoints=3, width=8, heatmap_stride=stride)
        probs, kp, _ = KeypointNet(cfg).heatmaps(torch.rand(1, 3, 32, 32))
        assert probs.shape == (1, 3, 32 // stride, 32 // stride)


def _off_centre_box_net() -> KeypointNet:
    """A learned-crop net whose box is not the identity: zoomed in, shifted, and moving with the crop."""
    net = KeypointNet(replace(TINY, learned_crop=True)).eval()
    with torch.no_grad():
        net.box_net.out.bias.copy_(torch.tensor([-0.8, 0.5, -0.3]))
        net.box_net.out.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    return net


def test_learned_box_warps_the_crop_and_maps_keypoints_back():
    from kp3d_core.models.box import box_centre, box_to_crop, warp_to_box

    img = torch.rand(1, 1, 32, 32)
    assert torch.equal(warp_to_box(img, torch.tensor([[1.0, 0.0, 0.0]]), 32), img)  # identity box: the crop itself
    shifted = warp_to_box(img, torch.tensor([[1.0, 4 / 32, 0.0]]), 32)  # 2 px right: box pixel x is crop pixel x + 2
    assert torch.allclose(shifted[..., :30], img[..., 2:]) and (shifted[..., 30:] == 0).all()  # zeros off the crop
    half = torch.tensor([[0.5, 0.0, 0.0]])  # the crop's central half, upsampled twice
    corners = box_to_crop(torch.tensor([[[-0.5, -0.5], [31.5, 31.5], [15.5, 15.5]]]), half, 32)
    assert torch.allclose(corners, torch.tensor([[[7.5, 7.5], [23.5, 23.5], [15.5, 15.5]]]))
    assert torch.allclose(box_centre(torch.tensor([[0.7, 0.5, -0.25]]), 32), torch.tensor([[23.5, 11.5]]))
    # the net at initialisation: the identity box, so the same keypoints as without one (same weights)
    torch.manual_seed(0)
    plain, boxed = KeypointNet(TINY).eval(), KeypointNet(replace(TINY, learned_crop=True)).eval()
    boxed.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(3, 3, 32, 32)
    for a, b in zip(plain(x), boxed(x)):
        assert torch.allclose(a, b, atol=1e-5)
    # an off-centre box: keypoints come back in crop px, inside the box
    r = _off_centre_box_net().raw(x)
    lo = box_to_crop(torch.full((3, 1, 2), -0.5), r.box, 32)
    hi = box_to_crop(torch.full((3, 1, 2), 31.5), r.box, 32)
    assert (r.box[:, 0] < 0.9).all() and ((r.kp >= lo - 1e-4) & (r.kp <= hi + 1e-4)).all()
    assert not torch.allclose(r.kp, plain.raw(x).kp)


@pytest.mark.parametrize("learned_crop", [False, True])
def test_keypoint_net_exports_without_data_dependent_control_flow(tmp_path, learned_crop):
    net = _off_centre_box_net() if learned_crop else KeypointNet(TINY).eval()
    x = torch.rand(2, 3, 32, 32)
    # torch.export refuses data-dependent control flow; the batch size stays dynamic
    ep = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("n")},))
    y = torch.rand(3, 3, 32, 32)
    for a, b in zip(ep.module()(y), net(y)):
        assert torch.allclose(a, b, atol=1e-5)
    # and the ONNX graph (soft-argmax inside) gives the same numbers in ONNX Runtime
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "kp.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["crops"], output_names=["keypoints", "confidence"],
                      dynamic_axes={"crops": {0: "n"}}, dynamo=False)
    got = ort.InferenceSession(str(path)).run(None, {"crops": y.numpy()})
    for a, b in zip(got, net(y)):
        assert np.abs(a - b.detach().numpy()).max() < 1e-4


def test_gaussian_and_segment_maps():
    pts = torch.tensor([[[4.0, 4.0], [20.0, 10.0]]])
    g = gaussian_maps(pts, 32, 32, sigma=2.0)
    assert g.shape == (1, 2, 32, 32)
    assert g[0, 0, 4, 4].item() == pytest.approx(1.0)
    assert g[0, 1, 10, 20].item() == pytest.approx(1.0)
    assert g[0, 0, 4, 6].item() == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    seg = segment_maps(pts, torch.tensor([[0, 1]]), 32, 32, sigma=1.0)
    # the midpoint (12, 7) lies on the segment; a point 3 px off it has exp(-9/2)
    assert seg[0, 0, 7, 12].item() == pytest.approx(1.0, abs=1e-5)
    assert seg[0, 0, 0, 31].item() < 1e-6
    u = soft_union(torch.stack([g[:, 0], g[:, 0]], 1))
    assert u.shape == (1, 1, 32, 32) and u.max() <= 1 and u.min() >= 0
    assert u[0, 0, 4, 6].item() == pytest.approx(1 - (1 - np.exp(-0.5)) ** 2, rel=1e-4)
    with pytest.raises(ValueError, match="points"):
        gaussian_maps(torch.zeros(2, 2), 8, 8, 1.0)
    with pytest.raises(ValueError, match="pairs"):
        segment_maps(pts, torch.tensor([0, 1]), 8, 8, 1.0)


def test_render_mask_segments_follow_nearest_neighbours():
    X = torch.tensor([[[0.0, 0, 0], [0.1, 0, 0], [1.0, 0, 0], [1.05, 0, 0]]])
    pairs = nearest_neighbour_pairs(X)
    assert pairs[0, :, 1].tolist() == [1, 0, 3, 2]
    m = render_mask(torch.tensor([[[2.0, 2], [10, 2], [2, 20], [10, 20]]]), 32, 32, 1.5, pairs)
    assert m[0, 0, 2, 6].item() > 0.99  # on the segment 0-1
    assert m[0, 0, 11, 2].item() < 1e-3  # between keypoints 0 and 2: not linked


def test_decoder_outputs_in_range_and_follow_keypoints():
    dec = Decoder(TINY)
    kp = torch.full((2, 6, 2), 16.0)
    mask, fg = dec(kp)
    assert mask.shape == (2, 1, 32, 32) and fg.shape == (2, 3, 32, 32)
    assert (mask > 0).all() and (mask < 1).all() and (fg >= 0).all() and (fg <= 1).all()
    mask2, _ = dec(kp + 8.0)
    assert not torch.allclose(mask, mask2)  # the output depends on where the keypoints are


def test_link_map_is_the_max_of_weighted_segments_with_its_gradient():
    torch.manual_seed(0)
    pairs = torch.triu_indices(5, 5, 1).T
    w = torch.rand(len(pairs), dtype=torch.float64, requires_grad=True)
    pts = (torch.rand(3, 5, 2, dtype=torch.float64) * 32).requires_grad_()
    g = torch.rand(3, 1, 16, 16, dtype=torch.float64)
    ref = (segment_maps(pts, pairs, 16, 32, 2.0) * w.view(1, -1, 1, 1)).amax(1, keepdim=True)
    grads_ref = torch.autograd.grad((ref * g).sum(), (pts, w))
    out = link_map(pts, pairs, w, 16, 32, 2.0)
    grads = torch.autograd.grad((out * g).sum(), (pts, w))
    assert out.shape == (3, 1, 16, 16)
    assert torch.allclose(out, ref, atol=1e-12)
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(grads, grads_ref))
    # a link of strength 0 draws nothing: two keypoints with only that link leave an empty map
    two = torch.tensor([[[4.0, 4.0], [28.0, 4.0]]])
    assert link_map(two, torch.tensor([[0, 1]]), torch.zeros(1), 16, 32, 2.0).max() == 0
    assert link_map(two, torch.tensor([[0, 1]]), torch.ones(1), 16, 32, 2.0)[0, 0, 2, 8] > 0.9  # on the line
    with pytest.raises(ValueError, match="weights"):
        link_map(two, torch.tensor([[0, 1]]), torch.ones(2), 16, 32, 2.0)


def test_decoder_with_links_learns_its_link_strengths():
    dec = Decoder(replace(TINY, decoder_links=True))
    assert dec.link_logits.shape == (15,)  # every pair of 6 keypoints
    assert "link_pairs" not in dec.state_dict()  # derived from K, not stored
    kp = (torch.rand(2, 6, 2) * 32).requires_grad_()
    mask, fg = dec(kp)
    assert mask.shape == (2, 1, 32, 32) and fg.shape == (2, 3, 32, 32)
    (mask.mean() + fg.mean()).backward()
    assert dec.link_logits.grad is not None and dec.link_logits.grad.abs().sum() > 0
    assert kp.grad.abs().sum() > 0


def test_crop_ideal_round_trip_and_triangulation_of_true_joints():
    b = batch_of()
    j = b["joints2d_crop"].float()
    uv = crop_to_ideal(j, b)
    assert torch.allclose(ideal_to_crop(uv, b), j, atol=1e-3)
    X, valid = geometry.triangulate(uv, torch.ones(uv.shape[:3]), b["P"].float())
    assert valid.all()
    assert (X - b["joints3d"].float()).norm(dim=-1).max() < 1e-3  # metres


def test_discovery_model_forward_shapes_and_gradients():
    torch.manual_seed(0)
    model = DiscoveryModel(TINY)
    b = batch_of()
    out = model(b)
    assert out["kp"].shape == (2, 3, 6, 2) and out["conf"].shape == (2, 3, 6)
    assert out["X"].shape == (2, 6, 3) and out["valid"].all()
    assert out["kp_hat"].shape == (2, 3, 6, 2)
    assert out["recon"].shape == (2, 3, 3, 32, 32) and out["mask"].shape == (2, 3, 1, 32, 32)
    # reprojection of the triangulated points lies near the detections (all views see the same body)
    assert (out["kp_hat"] - out["kp"]).abs().max() < 32
    (out["recon"].mean() + out["kp_hat"].mean()).backward()
    grads = [p.grad for p in model.keypoint_net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # an invalid view gets no weight: triangulation still works from the other two
    b["valid_view"][:, 0] = False
    out2 = model(b)
    assert out2["valid"].all()
    b["valid_view"][:, 1] = False
    assert not model(b)["valid"].any()  # one view left: no 3D point, zeros instead of NaN
    with pytest.raises(ValueError, match="image"):
        model({**b, "image": b["image"][0]})


def test_load_keypoint_net_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    cfg = Config(model=TINY)
    model = DiscoveryModel(TINY)
    path = save_checkpoint(tmp_path / "m.pt", {"config": config_to_dict(cfg), "model": model.state_dict()})
    net = load_keypoint_net(path)
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    for a, b in zip(net(x), model.keypoint_net(x)):
        assert torch.allclose(a, b)
    # stored weights of another size: the error names the file
    other = DiscoveryModel(ModelConfig(crop_size=32, num_keypoints=7, width=8, decoder_width=16))
    bad = save_checkpoint(tmp_path / "bad.pt", {"config": config_to_dict(cfg), "model": other.state_dict()})
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_keypoint_net(bad)


class _ImageSideNet(torch.nn.Module):
    """Labels by image side, as a per-view net does: keypoint k at dx[k] px right of the crop's brightest pixel."""

    def __init__(self, crop: int, dx=(-3.0, -1.0, 1.0, 3.0)) -> None:
        super().__init__()
        self.cfg = replace(TINY, crop_size=crop, num_keypoints=len(dx))
        self.dx = torch.tensor(dx)

    def raw(self, crops):
        n, S = crops.shape[0], crops.shape[-1]
        i = crops.sum(1).reshape(n, -1).argmax(1)
        x, y = (i % S).float(), (i // S).float()
        kp = torch.stack([x[:, None] + self.dx, y[:, None].expand(n, len(self.dx))], -1)
        return RawOutput(None, kp, torch.ones(n, len(self.dx)), None, None)


def test_estimate_twins_pairs_each_keypoint_with_its_mirror_image():
    crops = torch.zeros(5, 3, 32, 32)
    for j, (x, y) in enumerate([(5, 6), (9, 20), (12, 3), (20, 25), (27, 14)]):
        crops[j, :, y, x] = 1.0
    assert estimate_twins(_ImageSideNet(32), crops).tolist() == [3, 2, 1, 0]
    # an odd count: the middle keypoint is its own twin
    assert estimate_twins(_ImageSideNet(32, (-2.0, 0.0, 2.0)), crops).tolist() == [2, 1, 0]


def test_exchange_twins_and_the_facing_head_through_the_forward_pass():
    values = torch.arange(2 * 3 * 4).reshape(2, 3, 4)  # (B, V, K)
    twins = torch.tensor([1, 0, 3, 2])
    exchange = torch.tensor([[False, True, False], [True, True, False]])
    out = geometry.exchange_twins(values, twins, exchange)
    assert out[0, 0].tolist() == [0, 1, 2, 3] and out[0, 1].tolist() == [5, 4, 7, 6]
    assert out[1, 2].tolist() == [20, 21, 22, 23]

    torch.manual_seed(0)
    net = KeypointNet(replace(TINY, facing=True)).eval()
    net.twins.copy_(torch.tensor([1, 0, 2, 3, 5, 4]))
    crops = torch.rand(8, 3, 32, 32)
    _, kp_raw, conf_raw, logit, _ = net.raw(crops)
    assert logit.shape == (8,)
    net.facing_head[-1].bias.data -= logit.median()  # some crops exchange, some do not
    _, kp_raw, conf_raw, logit, _ = net.raw(crops)
    assert (logit > 0).any() and (logit <= 0).any()
    kp, conf = net(crops)
    ex = logit > 0
    assert torch.equal(kp[ex], kp_raw[ex][:, net.twins]) and torch.equal(kp[~ex], kp_raw[~ex])
    assert torch.equal(conf[ex], conf_raw[ex][:, net.twins])


def test_discovery_model_exchanges_what_triangulation_finds_mirrored():
    torch.manual_seed(0)
    model = DiscoveryModel(replace(TINY, facing=True))
    b = batch_of()
    assert "facing_target" not in model(b)  # twins not estimated yet: nothing to exchange, no target
    model.keypoint_net.twins.copy_(torch.tensor([1, 0, 2, 3, 5, 4]))
    out = model(b)
    assert out["facing_logit"].shape == (2, 3) and out["facing_target"].shape == (2, 3)
    _, kp_raw, conf_raw, _, _ = model.keypoint_net.raw(b["image"].reshape(6, 3, 32, 32))
    kp_raw, conf_raw, target = kp_raw.reshape(2, 3, 6, 2), conf_raw.reshape(2, 3, 6), out["facing_target"].bool()
    assert torch.allclose(out["kp"], geometry.exchange_twins(kp_raw, model.keypoint_net.twins, target))
    # the exchange agrees with the mirror relations triangulation finds, and with the head on the free side
    relation = geometry.mirror_relations(crop_to_ideal(kp_raw, b), conf_raw, b["P"], model.keypoint_net.twins)
    assert torch.equal(target ^ target[:, :1], relation)


def test_resolve_exchange_follows_the_relations_and_the_heads_majority():
    relation = torch.tensor([[False, True, False], [False, False, True], [False, True, True], [False, False, False]])
    seen = torch.ones(4, 3, dtype=torch.bool)
    logit = torch.tensor([[2.0, -1.0, 0.5], [-3.0, -1.0, 0.2], [-0.1, 0.1, 0.1], [0.1, 0.1, -5.0]])
    exchange = resolve_exchange(relation, logit, seen)
    assert torch.equal(exchange ^ exchange[:, :1], relation)  # the relations always hold
    assert exchange.tolist() == [[True, False, True], [False, False, True], [False, True, True], [False, False, False]]
    # an unseen view's head has no say
    seen[3, 2] = False
    assert resolve_exchange(relation, logit, seen)[3].tolist() == [True, True, True]
    # a window of two frames takes one side, the heads of both frames together: frame 0 alone would exchange
    assert resolve_exchange(relation, logit, torch.ones(4, 3, dtype=torch.bool), window=2).tolist() == [
        [False, True, False], [False, False, True], [False, True, True], [False, False, False]]


def test_discover_keypoints_exchanges_by_the_relations_and_the_heads_majority():
    from kp3d_core.evaluate import discover_keypoints

    torch.manual_seed(0)
    net = KeypointNet(replace(TINY, facing=True)).eval()
    ds = SyntheticDataset(4, 3, 32, seed=1)
    plain = discover_keypoints(net, ds, batch_size=4, progress=False)  # twins not estimated: nothing exchanged
    b = batch_of(4)
    _, kp_raw, _, _, _ = net.raw(b["image"].reshape(12, 3, 32, 32))
    assert np.allclose(plain["kp_crop"], kp_raw.reshape(4, 3, 6, 2).detach().numpy())
    net.twins.copy_(torch.tensor([1, 0, 2, 3, 5, 4]))
    found = discover_keypoints(net, ds, batch_size=4, progress=False)
    _, kp_raw, conf_raw, logit, _ = net.raw(b["image"].reshape(12, 3, 32, 32))
    kp_raw, conf_raw = kp_raw.reshape(4, 3, 6, 2).double(), conf_raw.reshape(4, 3, 6).double()
    relation = geometry.mirror_relations(crop_to_ideal(kp_raw, b), conf_raw, b["P"].double(), net.twins)
    exchange = resolve_exchange(relation, logit.reshape(4, 3).double(), b["valid_view"])
    assert exchange.any() and not exchange.all()  # both kinds of view occur
    assert np.allclose(found["kp_crop"], geometry.exchange_twins(kp_raw, net.twins, exchange).detach().numpy())
