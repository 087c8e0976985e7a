"""Keypoint net, soft-argmax, keypoint rendering, decoder and the multi-view chain (tiny sizes, CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import geometry
from kp3d_core.checkpoint import CheckpointError, save_checkpoint
from kp3d_core.config import Config, ModelConfig, config_to_dict
from kp3d_core.models import KeypointNet, load_keypoint_net, soft_argmax
from kp3d_core.models.decoder import Decoder
from kp3d_core.models.discovery import DiscoveryModel, crop_to_ideal, ideal_to_crop
from kp3d_core.models.synthetic import SyntheticDataset
from kp3d_core.render_keypoints import (
    cell_centres,
    gaussian_maps,
    segment_maps,
    soft_union,
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


def test_keypoint_net_exports_without_data_dependent_control_flow(tmp_path):
    net = KeypointNet(TINY).eval()
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


def test_decoder_outputs_in_range_and_follow_keypoints():
    dec = Decoder(TINY)
    kp = torch.full((2, 6, 2), 16.0)
    mask, fg = dec(kp)
    assert mask.shape == (2, 1, 32, 32) and fg.shape == (2, 3, 32, 32)
    assert (mask > 0).all() and (mask < 1).all() and (fg >= 0).all() and (fg <= 1).all()
    mask2, _ = dec(kp + 8.0)
    assert not torch.allclose(mask, mask2)  # the output depends on where the keypoints are


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


