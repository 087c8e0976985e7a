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


def test_parameters_are_declared_with_descriptions_and_validated(tmp_path, ros_env):
    import rclpy
    from rclpy.parameter import Parameter

    from kp3d_ros.node import PARAMETERS, MultiCamNode

    studio = tiny_bag(tmp_path / "s", frames=1)
    model = fresh_checkpoint(tmp_path / "m.pt")
    base = [Parameter("cameras", value=["cam0", "cam1", "cam2"]), Parameter("rig_file", value=str(studio / "rig.yaml")),
            Parameter("model.path", value=str(model))]
    rclpy.init()
    try:
        node = MultiCamNode(parameter_overrides=base)
        try:
            for name in PARAMETERS:
                desc = node.describe_parameter(name)
                assert desc.description, name
            # runtime changes are validated; start-up settings are read-only
            ok = node.set_parameters([Parameter("publish.marker_lifetime_s", value=1.5)])[0]
            assert ok.successful and node.p["publish.marker_lifetime_s"] == 1.5
            bad = node.set_parameters([Parameter("publish.marker_lifetime_s", value=-1.0)])[0]
            assert not bad.successful and "publish.marker_lifetime_s" in bad.reason and "> 0" in bad.reason
            ro = node.set_parameters([Parameter("sync.min_cameras", value=3)])[0]
            assert not ro.successful
            smooth = node.set_parameters([Parameter("smoothing.enabled", value=True)])[0]
            assert smooth.successful and node.estimator.smoothing is not None
        finally:
            node.destroy_node()
        with pytest.raises(ValueError, match="parameter 'image_qos'"):
            MultiCamNode(parameter_overrides=base + [Parameter("image_qos", value="fast")])
        with pytest.raises(ValueError, match="parameter 'sync.min_cameras': 4 > number of cameras 3"):
            MultiCamNode(parameter_overrides=base + [Parameter("sync.min_cameras", value=4)])
        with pytest.raises(FileNotFoundError, match="parameter 'rig_file' 'nope.yaml' not found"):
            MultiCamNode(parameter_overrides=base + [Parameter("rig_file", value="nope.yaml")])
    finally:
        rclpy.shutdown()
