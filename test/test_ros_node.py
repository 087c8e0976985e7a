"""multicam_node end to end: a studio bag replayed into the node (own process), outputs checked from a
separate subscriber."""
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_fixtures import fresh_checkpoint, frame_stamp, tiny_bag  # noqa: E402

from kp3d_ros.demo import run_pipeline  # noqa: E402


def _node_drops(pipe):
    return sum(int(v) for k, v in pipe.items() if k.startswith("drops.") and not k.startswith("drops.sync_"))


def test_published_sets_equal_synchronised_sets_minus_counted_drops(tmp_path, ros_env):
    frames = 40
    studio = tiny_bag(tmp_path / "studio", frames=frames)
    model = fresh_checkpoint(tmp_path / "model.pt", num_keypoints=8)
    r = run_pipeline(studio, tmp_path / "run", model=str(model), backend="onnxruntime")
    assert r["node_exit"] == 0, r["node_log"][-3000:]
    pipe = r["pipeline"]
    sets_in = int(pipe["sets_in"])
    # every frame has all 3 cameras at one stamp: the synchroniser forms one set per frame (the last
    # may wait for a successor that never comes), none partial, nothing dropped by the synchroniser
    assert frames - 1 <= sets_in <= frames
    assert int(pipe["partial_sets"]) == 0 and int(pipe.get("drops.sync_no_match", 0)) == 0
    assert r["published_count"] == sets_in - _node_drops(pipe) == int(pipe["sets_out"])
    assert len(r["keypoints"]) == r["published_count"]
    # outputs carry the set stamps (bag header stamps), in order, each once
    stamps = sorted(r["poses"])
    assert set(stamps) <= {frame_stamp(t) for t in range(frames)} and len(stamps) == r["published_count"]
    # the latched joint names describe both arrays; K keypoints of the model
    names = r["joint_names"]
    assert names["frame_id"] == "world" and len(names["pose"]) == 17 and len(names["keypoints"]) == 8
    for pts, valid in r["keypoints"].values():
        assert pts.shape == (8, 3) and np.isfinite(pts[valid]).all()
    # once the background is learnt (15 frames of warm-up), keypoints are triangulated from the views
    # (an untrained net still outputs finite keypoints inside the subject's crop)
    assert sum(v.any() for _, v in r["keypoints"].values()) >= (frames - 15) // 2
    # diagnostics: cameras alive while the bag played, latency measured
    cams = [s for s in r["diagnostics"] if "cameras" in s.levels]
    assert any(s.levels["cameras"] == 0 and s.messages["cameras"] == "all cameras alive" for s in cams)
    assert 0 < float(pipe["latency_p50_ms"]) <= float(pipe["latency_p95_ms"]) < 5000
