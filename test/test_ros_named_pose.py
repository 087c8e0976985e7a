"""A model trained with no labels at all (Mask as Supervision, skeleton mode, issue 36) names the joints itself: the
node publishes its 17 keypoints as ``~/pose`` without a fitted mapping, names them on ``~/joint_names`` and says so
at start-up (a real training run of the skeleton config on the recording, bag replay, node in its own process, the
ONNX Runtime backend on the exported net)."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_fixtures import frame_stamp, tiny_bag  # noqa: E402

from kp3d_core.checkpoint import load_checkpoint  # noqa: E402
from kp3d_core.config import config_from_dict, load_config  # noqa: E402
from kp3d_core.models.mapping import NAMED_JOINTS_MAPPING  # noqa: E402
from kp3d_core.skeleton import JOINT_NAMES  # noqa: E402
from kp3d_core.train import train  # noqa: E402
from kp3d_ros.demo import run_pipeline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "kp3d_core" / "assets" / "model.pt"


def skeleton_model(studio: Path, out: Path) -> Path:
    """training/configs/mas.yaml on the recording itself for a few steps (cascade stages early), one thread."""
    d = dataclasses.asdict(load_config(ROOT / "training" / "configs" / "mas.yaml"))
    d["data"].update(path=str(studio))
    d["loss"].update(physique_from_step=2, arms_from_step=3)
    d["train"].update(out_dir=str(out), steps=5, max_minutes=0, batch_size=3, threads=1, tensorboard=False,
                      preview_every=0, init_encoder_from=str(SHIPPED))
    return train(config_from_dict(d, "named_pose"))


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped model kp3d_core/assets/model.pt is not in this checkout")
def test_node_publishes_the_named_joints_of_a_label_free_skeleton_model(tmp_path, ros_env, monkeypatch):
    monkeypatch.setenv("KP3D_CACHE", str(tmp_path / "cache"))
    frames = 20
    studio = tiny_bag(tmp_path / "s", frames=frames)
    ckpt = skeleton_model(studio, tmp_path / "train")
    assert not load_checkpoint(ckpt).get("mapping"), "trained without labels: no fitted mapping"
    r = run_pipeline(studio, tmp_path / "run", model=str(ckpt), backend="onnxruntime",
                     extra_params={"model.backgrounds": str(studio / "backgrounds")})
    assert r["node_exit"] == 0, r["node_log"][-3000:]
    assert f"~/pose: 17 named joints of a skeleton model, {NAMED_JOINTS_MAPPING}" in r["node_log"], r["node_log"][-2000:]
    names = r["joint_names"]
    assert names["pose"] == list(JOINT_NAMES) and names["keypoints"] == list(JOINT_NAMES)
    # every frame gives a full pose, and the pose is the 3D keypoints themselves (keypoint k is joint k)
    assert sorted(r["poses"]) == [frame_stamp(t) for t in range(frames)], r["pipeline"]
    for stamp, (pose, valid) in r["poses"].items():
        assert pose.shape == (17, 3) and valid.all(), stamp
        keypoints, kvalid = r["keypoints"][stamp]
        np.testing.assert_allclose(pose[kvalid], keypoints[kvalid], atol=1e-4)
