"""Temporal windows and the temporal term: windows within a clip, the batch layout, the loss, a training run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import losses
from kp3d_core.config import ConfigError, LossConfig, ModelConfig, config_from_dict, load_config
from kp3d_core.data.pairs import TemporalWindows, flatten_windows, temporal_windows
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.models.synthetic import SyntheticDataset


def test_windows_stay_in_their_clip():
    frames = np.arange(10)
    clips = np.array([0] * 5 + [1] * 5)
    w = temporal_windows(frames, clips, 2)
    # starting at the sample when the clip allows it, else an offset earlier; always in time order
    assert w.tolist() == [[0, 2], [1, 3], [2, 4], [1, 3], [2, 4], [5, 7], [6, 8], [7, 9], [6, 8], [7, 9]]
    w3 = temporal_windows(frames, clips, 1, 3)
    assert w3[:5].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4], [2, 3, 4], [2, 3, 4]]
    assert w3[7].tolist() == [7, 8, 9]
    # a labelled subset: windows come from the exposed frames only; a lone frame repeats itself
    sub = np.array([0, 2, 7])
    assert temporal_windows(sub, clips[sub], 2).tolist() == [[0, 1], [0, 1], [2, 2]]
    # equal frame numbers in two clips (two recordings) do not meet
    assert temporal_windows([0, 1, 1], [0, 0, 1], 1).tolist() == [[0, 1], [0, 1], [2, 2]]
    with pytest.raises(ValueError, match="offset"):
        temporal_windows(frames, clips, 0)
    with pytest.raises(ValueError, match="length"):
        temporal_windows(frames, clips, 1, 1)


def test_windows_stack_and_flatten_to_the_loss_layout():
    ds = SyntheticDataset(4, 2, 32, seed=0)
    pairs = TemporalWindows(ds, 1)
    item = pairs[1]
    assert item["image"].shape == (2, 2, 3, 32, 32)
    assert item["frame"].tolist() == [1, 2]
    batch = flatten_windows(torch.utils.data.default_collate([pairs[0], pairs[3]]))
    assert batch["image"].shape == (4, 2, 3, 32, 32) and batch["temporal_window"] == 2
    assert batch["frame"].tolist() == [0, 1, 2, 3]  # window i at rows 2i, 2i + 1; the last frame's starts earlier
    triples = TemporalWindows(ds, 1, 3)
    batch = flatten_windows(torch.utils.data.default_collate([triples[0], triples[3]]))
    assert batch["temporal_window"] == 3 and batch["frame"].tolist() == [0, 1, 2, 1, 2, 3]


def test_temporal_loss_ignores_translation_and_charges_a_swap():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1, 6, 3, generator=g, dtype=torch.float64)
    valid = torch.ones(2, 6, dtype=torch.bool)
    walked = torch.cat([X, X + torch.tensor([1.5, -0.3, 0.0], dtype=torch.float64)])
    assert losses.temporal_loss(walked, valid).item() == pytest.approx(0.0, abs=1e-12)
    swapped = torch.cat([X, X[:, [1, 0, 2, 3, 4, 5]]])
    gap = (X[0, 0] - X[0, 1]).norm().item()
    # two of six keypoints each moved by the gap (Charbonnier: minus the 1 cm floor)
    expected = 2 * (np.sqrt(gap**2 + 1e-4) - 1e-2) / 6
    assert losses.temporal_loss(swapped, valid).item() == pytest.approx(expected, rel=1e-9)
    # an invalid keypoint in either frame does not count, and does not move the centres
    valid[1, 0] = False
    assert losses.temporal_loss(swapped, valid).item() == pytest.approx(
        losses.temporal_loss(swapped[:, 1:], valid[:, 1:]).item(), rel=1e-9)


def test_second_order_charges_a_handover_and_not_steady_motion():
    # Two feet 20 cm apart laterally swing past each other along x; a third keypoint (the trunk) balances the centre.
    t = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)[:, None]
    left = torch.cat([0.1 * t, torch.full_like(t, 0.1), torch.zeros_like(t)], 1)    # swinging forward, 10 cm a frame
    right = torch.cat([-0.1 * t, torch.full_like(t, -0.1), torch.zeros_like(t)], 1)  # stance: backward in body frame
    trunk = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(3, 3)
    true = torch.stack([left, right, trunk], 1)  # (3 frames, 3 keypoints, 3)
    valid = torch.ones(3, 3, dtype=torch.bool)
    assert losses.temporal_loss(true, valid, length=3).item() == pytest.approx(0.0, abs=1e-12)
    # "the leading foot": the foot ahead, which is the right one before the crossing and the left one after
    ahead = torch.where((left[:, :1] >= right[:, :1]), left, right)
    behind = torch.where((left[:, :1] >= right[:, :1]), right, left)
    handed = torch.stack([ahead, behind, trunk], 1)
    assert losses.temporal_loss(handed, valid, length=3).item() > 0.05
    # the first difference charges the true, steadily moving feet too
    pairs = torch.cat([true[:2], true[1:]])
    assert losses.temporal_loss(pairs, torch.ones(4, 3, dtype=torch.bool)).item() > 0.05


def test_temporal_term_needs_windowed_batches_and_gives_gradients():
    torch.manual_seed(0)
    model = DiscoveryModel(ModelConfig(crop_size=32, num_keypoints=5, width=8, decoder_width=16))
    for order in (1, 2):
        ds = TemporalWindows(SyntheticDataset(4, 3, 32, seed=3), 1, order + 1)
        batch = flatten_windows(torch.utils.data.default_collate([ds[0], ds[2]]))
        cfg = LossConfig(temporal=1.0, temporal_order=order)
        terms = losses.unsupervised_losses(model(batch), batch, cfg, 32)
        assert terms["temporal"] > 0
        model.zero_grad()
        terms["temporal"].backward()
        grads = [p.grad for p in model.keypoint_net.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
        with pytest.raises(ValueError, match="temporal windows of"):  # windows of the other length
            losses.unsupervised_losses(model(batch), batch, LossConfig(temporal=1.0, temporal_order=3 - order), 32)
    plain = {k: v for k, v in batch.items() if k != "temporal_window"}
    with pytest.raises(ValueError, match="temporal"):
        losses.unsupervised_losses(model(plain), plain, cfg, 32)


def test_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="train.batch_size"):
        config_from_dict({"loss": {"temporal": 1.0}, "train": {"batch_size": 3}})
    with pytest.raises(ConfigError, match="loss.temporal_offset"):
        config_from_dict({"loss": {"temporal_offset": 0}})
    with pytest.raises(ConfigError, match="loss.temporal_order"):
        config_from_dict({"loss": {"temporal_order": 3}})
    with pytest.raises(ConfigError, match="train.batch_size.*multiple of 3"):
        config_from_dict({"loss": {"temporal": 1.0, "temporal_order": 2}, "train": {"batch_size": 8}})


def test_training_with_the_temporal_term(tmp_path):
    from kp3d_core.checkpoint import load_checkpoint
    from kp3d_core.train import train

    for order, batch_size in ((1, 4), (2, 6)):
        cfg = load_config("training/configs/tiny.yaml")
        cfg.loss.temporal, cfg.loss.temporal_order, cfg.train.batch_size = 1.0, order, batch_size
        cfg.train.out_dir = str(tmp_path / str(order))
        cfg.train.tensorboard, cfg.train.steps, cfg.train.preview_every = False, 3, 0
        ck = load_checkpoint(train(cfg))
        assert ck["step"] == 3 and ck["samples"] == 3 * batch_size
