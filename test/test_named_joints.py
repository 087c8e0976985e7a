"""A skeleton-mode model (Mask as Supervision, issue 36) is evaluated and run raw: its 17 keypoints are the named
joints, so ``kp3d eval`` and the estimator use the identity mapping when the checkpoint has none (no labels)."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
import torch
from studio_fixture import write_tiny_studio

from kp3d_core import evaluate as ev
from kp3d_core.checkpoint import CheckpointError, save_checkpoint
from kp3d_core.config import Config, LossConfig, ModelConfig, config_to_dict
from kp3d_core.inference.estimator import MultiViewEstimator
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.models.mapping import (
    NAMED_JOINTS_MAPPING,
    SUPERVISED_MAPPING,
    checkpoint_mapping,
    describe_mapping,
    identity_mapping,
    is_skeleton_model,
    named_joints,
)
from kp3d_core.rig import load_rig


def _config(num_keypoints: int = 17, **loss) -> Config:
    return Config(model=ModelConfig(crop_size=32, num_keypoints=num_keypoints, width=8), loss=LossConfig(**loss))


def _checkpoint(path, cfg: Config, **extra):
    """A checkpoint of an untrained net of ``cfg`` (keypoint net weights only matter), no mapping unless given."""
    torch.manual_seed(0)
    state = {k: v for k, v in DiscoveryModel(cfg.model).state_dict().items() if k.startswith("keypoint_net.")}
    return save_checkpoint(path, {"config": config_to_dict(cfg), "model": state, **extra})


def test_skeleton_model_is_read_from_the_stored_config_dict():
    assert is_skeleton_model(config_to_dict(_config(skeleton=5.0)))
    assert is_skeleton_model(config_to_dict(_config(physique=1.0)))
    assert not is_skeleton_model(config_to_dict(_config()))  # 17 keypoints, no MaS pixel term: not named
    assert not is_skeleton_model(config_to_dict(_config(num_keypoints=32)))
    assert not is_skeleton_model({}) and not is_skeleton_model(None)
    fitted = identity_mapping(info={"note": "fitted"})
    named = checkpoint_mapping({"config": config_to_dict(_config(skeleton=1.0))})
    assert named["name"] == NAMED_JOINTS_MAPPING and named["fraction"] == 0.0 and named["num_frames"] == 0
    assert checkpoint_mapping({"config": config_to_dict(_config(skeleton=1.0)), "mapping": fitted}) is fitted
    assert checkpoint_mapping({"config": config_to_dict(_config(num_keypoints=32))}) is None
    supervised = _config()
    supervised.train.supervised = True  # the upper bound: its keypoints are the joints too
    assert checkpoint_mapping({"config": config_to_dict(supervised)})["name"] == SUPERVISED_MAPPING
    assert describe_mapping(checkpoint_mapping({"config": config_to_dict(supervised)})).startswith("17 joints of a")
    # what the node's start-up log says ~/pose is
    assert named_joints(named) and not named_joints(fitted) and not named_joints(None)
    assert describe_mapping(named).startswith("17 named joints of a skeleton model")
    assert "kp3d map" in describe_mapping(None)
    fitted = {"default": "mlp", "models": {}, "fraction": 0.1, "num_frames": 1200}
    assert describe_mapping(fitted) == "mapping 'mlp' fitted on 1200 labelled frames (10 % of its data)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("named")
    return root, write_tiny_studio(root / "tiny", num_frames=6)


def test_eval_runs_a_skeleton_model_raw_with_the_identity(tiny, monkeypatch, capsys):
    root, data = tiny
    monkeypatch.setenv("KP3D_CACHE", str(root / "cache"))
    ck = _checkpoint(root / "skel.pt", _config(skeleton=5.0))
    res = ev.evaluate(ck, data, root / "out", batch_size=4, figures=False, progress=False)
    assert res["mapping"] == NAMED_JOINTS_MAPPING and res["mapping_frames"] == 0
    assert res["frames"] == 6 and np.isfinite(res["mpjpe_mm"]) and 0 <= res["ambiguity_ratio"] <= 0.5
    p = argparse.ArgumentParser()
    ev.add_arguments(p)
    assert ev.main(p.parse_args(["--checkpoint", str(ck), "--data", str(data), "--out", str(root / "out2"),
                                 "--no-figures", "--no-progress"])) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mapping"] == NAMED_JOINTS_MAPPING and last["mpjpe_mm"] == pytest.approx(res["mpjpe_mm"])
    # Not a skeleton model and no mapping: still refused, naming `kp3d map`.
    with pytest.raises(CheckpointError, match="kp3d map"):
        ev.evaluate(_checkpoint(root / "plain.pt", _config()), data, root / "out3", progress=False)


def test_estimator_publishes_named_joints_of_a_skeleton_model(tiny, monkeypatch):
    root, data = tiny
    monkeypatch.setenv("KP3D_CACHE", str(root / "cache"))
    rig = load_rig(data / "rig.yaml")
    bgs = [cv2.cvtColor(cv2.imread(str(data / "backgrounds" / f"{c.name}.png")), cv2.COLOR_BGR2RGB)
           for c in rig.cameras]
    est = MultiViewEstimator.load(_checkpoint(root / "skel_node.pt", _config(skeleton=5.0)), rig, backend="torch",
                                  backgrounds=bgs, pose_min_valid=0.0, max_reprojection_error=None)
    assert est.mapping is not None and est.mapping["name"] == NAMED_JOINTS_MAPPING
    images = [cv2.cvtColor(cv2.imread(str(sorted((data / "images" / c.name).iterdir())[0])), cv2.COLOR_BGR2RGB)
              for c in rig.cameras]
    e = est.process(images, 0)
    assert e.valid.any() and e.pose is not None and e.pose.shape == (17, 3)
    np.testing.assert_allclose(e.pose[e.valid], e.keypoints3d[e.valid], atol=1e-5)  # keypoint k is joint k
    plain = MultiViewEstimator.load(_checkpoint(root / "plain_node.pt", _config()), rig, backend="torch",
                                    backgrounds=bgs)
    assert plain.mapping is None
