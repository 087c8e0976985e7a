"""Temporal pairs and the temporal term: partners within a clip, the pair layout, the loss, a training run."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kp3d_core import losses
from kp3d_core.config import ConfigError, LossConfig, ModelConfig, config_from_dict, load_config
from kp3d_core.data.pairs import TemporalPairs, flatten_pairs, temporal_partners
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.models.synthetic import SyntheticDataset


def test_partners_stay_in_their_clip():
    frames = np.arange(10)
    clips = np.array([0] * 5 + [1] * 5)
    p = temporal_partners(frames, clips, 2)
    # later when the clip allows it, else earlier
    assert p.tolist() == [2, 3, 4, 1, 2, 7, 8, 9, 6, 7]
    # a labelled subset: partners come from the exposed frames only; a lone frame pairs with itself
    sub = np.array([0, 2, 7])
    assert temporal_partners(sub, clips[sub], 2).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="offset"):
        temporal_partners(frames, clips, 0)


def test_pairs_stack_and_flatten_to_the_loss_layout():
    ds = SyntheticDataset(4, 2, 32, seed=0)
    pairs = TemporalPairs(ds, 1)
    item = pairs[1]
    assert item["image"].shape == (2, 2, 3, 32, 32)
    assert item["frame"].tolist() == [1, 2]
    batch = flatten_pairs(torch.utils.data.default_collate([pairs[0], pairs[3]]))
    assert batch["image"].shape == (4, 2, 3, 32, 32) and batch["temporal_pairs"]
    assert batch["frame"].tolist() == [0, 1, 3, 2]  # pair i at rows 2i, 2i + 1; the last frame pairs backwards


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


def test_temporal_margin_frees_small_motion_and_charges_the_rest_of_a_swap():
    X = torch.tensor([[[0.3, 0.0, 1.0], [-0.3, 0.0, 1.0], [0.0, 0.1, 1.5], [0.0, -0.1, 0.5]]], dtype=torch.float64)
    valid = torch.ones(2, 4, dtype=torch.bool)
    moved = X.clone()
    moved[0, 0, 2] += 0.05  # a wrist rising 5 cm, the centre with it by 1.25 cm: within a 10 cm margin
    pair = torch.cat([X, moved]).requires_grad_(True)
    loss = losses.temporal_loss(pair, valid, margin_m=0.1)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(pair.grad) == 0
    assert losses.temporal_loss(torch.cat([X, moved]), valid).item() > 0  # without the margin it is charged
    swapped = torch.cat([X, X[:, [1, 0, 2, 3]]])  # the two hands trade places: 60 cm each
    expected = 2 * (np.sqrt(0.5**2 + 1e-4) - 1e-2) / 4
    assert losses.temporal_loss(swapped, valid, margin_m=0.1).item() == pytest.approx(expected, rel=1e-9)


def test_temporal_term_needs_paired_batches_and_gives_gradients():
    torch.manual_seed(0)
    model = DiscoveryModel(ModelConfig(crop_size=32, num_keypoints=5, width=8, decoder_width=16))
    ds = TemporalPairs(SyntheticDataset(4, 3, 32, seed=3), 1)
    batch = flatten_pairs(torch.utils.data.default_collate([ds[0], ds[2]]))
    cfg = LossConfig(temporal=1.0)
    terms = losses.unsupervised_losses(model(batch), batch, cfg, 32)
    assert terms["temporal"] > 0
    terms["temporal"].backward()
    grads = [p.grad for p in model.keypoint_net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    plain = {k: v for k, v in batch.items() if k != "temporal_pairs"}
    with pytest.raises(ValueError, match="temporal"):
        losses.unsupervised_losses(model(plain), plain, cfg, 32)


def test_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="train.batch_size"):
        config_from_dict({"loss": {"temporal": 1.0}, "train": {"batch_size": 3}})
    with pytest.raises(ConfigError, match="loss.temporal_offset"):
        config_from_dict({"loss": {"temporal_offset": 0}})


def test_training_with_the_temporal_term(tmp_path):
    from kp3d_core.checkpoint import load_checkpoint
    from kp3d_core.train import train

    cfg = load_config("training/configs/tiny.yaml")
    cfg.loss.temporal = 1.0
    cfg.train.out_dir, cfg.train.tensorboard, cfg.train.steps, cfg.train.preview_every = str(tmp_path), False, 3, 0
    ck = load_checkpoint(train(cfg))
    assert ck["step"] == 3 and ck["samples"] == 3 * cfg.train.batch_size
