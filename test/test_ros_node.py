"""multicam_node end to end: a studio bag replayed into the node (own process), outputs checked from a
separate subscriber."""
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_fixtures import frame_stamp, fresh_checkpoint, tiny_bag  # noqa: E402

from kp3d_core.inference.predictor import PredictorConfig  # noqa: E402
from kp3d_ros.demo import run_pipeline  # noqa: E402


def _node_drops(pipe):
    return sum(int(v) for k, v in pipe.items() if k.startswith("drops.") and not k.startswith("drops.sync_"))


def test_published_sets_equal_synchronised_sets_minus_counted_drops(tmp_path, ros_env):
    frames = 60
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
    # no keypoint is published while the learnt background warms up (its median of the first frames holds the
    # moving subject): those sets go out empty and are counted; afterwards keypoints are triangulated (an
    # untrained net still outputs finite keypoints inside the subject's crop, consistent across the views)
    cfg = PredictorConfig()
    warmup = (cfg.background_warmup - 1) * cfg.background_warmup_stride + 1
    assert int(pipe["rejected.background_warmup"]) == warmup and int(pipe["rejected_total"]) == warmup
    ordered = [r["keypoints"][s][1] for s in sorted(r["keypoints"])]
    assert not any(v.any() for v in ordered[:warmup])
    assert sum(v.all() for v in ordered[warmup:]) >= (frames - warmup) // 2
    # diagnostics: every camera alive while the bag played, each status with a hardware id, latency measured
    for cam in ("cam0", "cam1", "cam2"):
        key = f"camera {cam}"
        assert any(s.levels.get(key) == 0 and s.messages[key] == "alive" for s in r["diagnostics"]), key
        assert all(s.hardware_ids[key] == cam for s in r["diagnostics"] if key in s.levels)
    assert all(s.hardware_ids["pipeline"] == "/multicam_node" for s in r["diagnostics"])
    assert any(s.levels["pipeline"] == 0 for s in r["diagnostics"])
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
            assert smooth.successful and node.pipeline.estimator.smoothing is not None
        finally:
            node.destroy_node()
        with pytest.raises(ValueError, match="parameter 'image_qos'"):
            MultiCamNode(parameter_overrides=base + [Parameter("image_qos", value="fast")])
        with pytest.raises(ValueError, match="parameter 'sync.min_cameras': 4 > number of cameras 3"):
            MultiCamNode(parameter_overrides=base + [Parameter("sync.min_cameras", value=4)])
        with pytest.raises(FileNotFoundError, match="parameter 'rig_file' 'nope.yaml' not found; looked in: .*"
                                                    "Pass an absolute path"):
            MultiCamNode(parameter_overrides=base + [Parameter("rig_file", value="nope.yaml")])
    finally:
        rclpy.shutdown()


def _eval_poses(checkpoint, studio, cache_root):
    """The `kp3d eval` pipeline (kp3d_core.evaluate) on the bag the node receives: ({stamp_ns: (17, 3) pose}
    metres, backgrounds dir).

    Evaluation reads the bag (kp3d_core.data.bag), not the folder's JPEGs, so that both see the same pixels
    (JPEG compression alone moves an untrained-looking model's keypoints). The backgrounds dir holds the
    label-free backgrounds evaluation estimated for its crops.
    """
    from kp3d_core.bagio import read_camera_frames
    from kp3d_core.checkpoint import load_checkpoint, model_config_of
    from kp3d_core.data.bag import build_bag_cache
    from kp3d_core.data.cache import CachedDataset
    from kp3d_core.data.studio import SampleParams
    from kp3d_core.evaluate import discover_keypoints, load_net
    from kp3d_core.models.mapping import apply_mapping

    ckpt = load_checkpoint(checkpoint)
    params = SampleParams(size=model_config_of(ckpt, checkpoint).crop_size)
    cache = build_bag_cache(studio / "bag", studio / "rig.yaml", params, slop_ns=5_000_000, root=cache_root,
                            progress=False)
    ds = CachedDataset(cache, params, progress=False)
    stamps = [f.stamp_ns for f in read_camera_frames(studio / "bag", slop_ns=5_000_000)]  # the cache's frame order
    found = discover_keypoints(load_net(checkpoint), ds, progress=False)
    pred = np.asarray(apply_mapping(ckpt["mapping"], found["X"]), dtype=np.float64)
    return {stamps[int(f)]: p for f, p in zip(found["frame"], pred) if np.isfinite(p).all()}, cache / "backgrounds"


def published_vs_eval(checkpoint, tmp_path, frames=36, rate=0.1):
    """Render a studio bag, replay it into the node, and compare the published pose with kp3d eval's."""
    import subprocess
    import sys

    from kp3d_core.metrics import mpjpe
    from kp3d_ros.demo import pose_errors

    studio = tmp_path / "studio"
    subprocess.run([sys.executable, "-m", "kp3d_ros.cli", "synth", "--out", str(studio), "--cameras", "4",
                    "--motion", "procedural", "--frames", str(frames), "--seed", "11", "--bag", "--no-progress"],
                   check=True, capture_output=True, timeout=300)
    ev, backgrounds = _eval_poses(checkpoint, studio, tmp_path / "cache")
    # The node is given the backgrounds evaluation estimated (both label-free), as a deployment is given the
    # ones estimated from its training recording, and keeps them fixed as evaluation does: then both crop
    # alike from the first frame (tracking still narrows the node's search region).
    r = run_pipeline(studio, tmp_path / "run", model=str(checkpoint), backend="onnxruntime", rate=rate,
                     extra_params={"model.backgrounds": str(backgrounds), "model.background_rate": 0.0})
    assert r["node_exit"] == 0, r["node_log"][-3000:]
    idx, pred, gt = pose_errors(r, studio)
    # the node holds no maths: its poses are the estimator's for the sets it processed
    offline = estimator_poses(checkpoint, studio, stamps=set(r["poses"]), backgrounds=backgrounds, background_rate=0.0)
    stamps = np.load(studio / "gt.npz")["stamps_ns"]
    assert all(np.abs(p - offline[int(stamps[f])]).max() < 1e-5 for f, p in zip(idx, pred))
    common = [i for i, f in enumerate(idx) if int(stamps[f]) in ev]
    node_mm = 1000 * mpjpe(pred[common], gt[common])
    eval_mm = 1000 * mpjpe(np.stack([ev[int(stamps[idx[i]])] for i in common]), gt[common])
    return r, len(common), node_mm, eval_mm


SHIPPED = Path(__file__).resolve().parent.parent / "kp3d_core" / "assets" / "model.pt"


@pytest.mark.skipif(not SHIPPED.exists(), reason="the shipped model kp3d_core/assets/model.pt is not in this checkout")
def test_published_pose_mpjpe_is_within_5mm_of_kp3d_eval(tmp_path, ros_env):
    # the node processes every set in order (worker.every_set): its estimator state (running background,
    # tracking) evolves as in a sequential offline run, at any replay rate
    r, n, node_mm, eval_mm = published_vs_eval(SHIPPED, tmp_path, rate=1.0)
    print(f"published pose MPJPE {node_mm:.1f} mm, kp3d eval {eval_mm:.1f} mm, {n} frames")
    assert n >= 20, (n, r["pipeline"])
    assert abs(node_mm - eval_mm) <= 5.0, (node_mm, eval_mm, n)


def test_overlays_and_markers_in_process(tmp_path, ros_env):
    """Images handed to the node's callbacks come out as overlays (2D keypoints drawn) and markers."""
    import time

    import cv2
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import Marker, MarkerArray

    from kp3d_ros import convert
    from kp3d_ros.node import MultiCamNode

    studio = tiny_bag(tmp_path / "s", frames=25)
    model = fresh_checkpoint(tmp_path / "m.pt")
    rclpy.init()
    try:
        node = MultiCamNode(parameter_overrides=[
            Parameter("cameras", value=["cam0", "cam1", "cam2"]), Parameter("rig_file", value=str(studio / "rig.yaml")),
            Parameter("model.path", value=str(model)), Parameter("publish.overlays", value=True),
            Parameter("model.backgrounds", value=str(studio / "backgrounds"))])
        sub = rclpy.create_node("overlay_sub")
        overlays, markers = [], []
        sub.create_subscription(Image, "/multicam_node/overlay/cam1", overlays.append, 50)
        sub.create_subscription(MarkerArray, "/multicam_node/markers", markers.append, 50)
        ex = SingleThreadedExecutor()
        ex.add_node(sub)
        ex.add_node(node)
        originals = {}
        for t in range(25):
            for cam in ("cam0", "cam1", "cam2"):
                rgb = cv2.cvtColor(cv2.imread(str(studio / "images" / cam / f"{t:06d}.jpg")), cv2.COLOR_BGR2RGB)
                originals[(cam, frame_stamp(t))] = rgb
                node._on_image(cam, convert.rgb_to_image_msg(rgb, frame_stamp(t), f"{cam}_optical_frame", "bgr8"))
            deadline = time.monotonic() + 5
            while not node.pipeline.idle and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.02)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        assert overlays and markers
        last = overlays[-1]
        stamp = convert.stamp_to_ns(last.header.stamp)
        img = convert.image_msg_to_rgb(last)
        assert last.header.frame_id == "cam1_optical_frame" and img.shape == (120, 160, 3)
        changed = np.any(img != originals[("cam1", stamp)], axis=2)
        assert 0 < changed.sum() < img.shape[0] * img.shape[1] // 4  # keypoints drawn, the rest untouched
        # the last set has a person: DELETEALL first, then the keypoint spheres, all in the world frame
        kinds = [(m.action, m.type, m.ns) for m in markers[-1].markers]
        assert kinds[0][0] == Marker.DELETEALL
        assert (Marker.ADD, Marker.SPHERE_LIST, "person0/keypoints") in kinds
        assert all(m.header.frame_id == "world" for m in markers[-1].markers)
        node.destroy_node()
        sub.destroy_node()
    finally:
        rclpy.shutdown()


def estimator_poses(checkpoint, studio, stamps=None, backgrounds=None, background_rate=None):
    """The same estimator run offline over the bag (kp3d_core.bagio frames): {stamp: (17, 3) pose}.

    ``stamps``: only these sets, e.g. the ones the node published (every set it processed is published,
    with an empty pose if none), so that the estimator's state (background, tracking) evolves the same.
    ``backgrounds``: a folder of stored <camera>.png backgrounds, as the node's 'model.backgrounds';
    ``background_rate``: as the node's 'model.background_rate' (None: the default).
    """
    from kp3d_core.background import load_stored_backgrounds
    from kp3d_core.bagio import read_camera_frames
    from kp3d_core.inference.estimator import MultiViewEstimator
    from kp3d_core.inference.predictor import PredictorConfig
    from kp3d_core.rig import load_rig

    rig = load_rig(studio / "rig.yaml")
    bgs = None if backgrounds is None else load_stored_backgrounds(backgrounds, rig.cameras)
    cfg = PredictorConfig() if background_rate is None else PredictorConfig(background_rate=background_rate)
    est = MultiViewEstimator.load(checkpoint, rig, backend="onnxruntime", backgrounds=bgs, predictor_config=cfg)
    out = {}
    for frame in read_camera_frames(studio / "bag", slop_ns=5_000_000, min_cameras=2):
        if stamps is not None and frame.stamp_ns not in stamps:
            continue
        e = est.process(frame.images, frame.stamp_ns)
        if e.pose is not None:
            out[frame.stamp_ns] = e.pose
    return out


def test_published_pose_equals_the_offline_estimator(tmp_path, ros_env):
    """The node adds no maths: every complete published pose is the estimator's pose for that set."""
    from ros_fixtures import mapped_checkpoint

    studio = tiny_bag(tmp_path / "s", frames=40)
    model = mapped_checkpoint(tmp_path / "m.pt", studio)
    r = run_pipeline(studio, tmp_path / "run", model=str(model), backend="onnxruntime",
                     extra_params={"model.backgrounds": str(studio / "backgrounds")})
    assert r["node_exit"] == 0, r["node_log"][-3000:]
    # the sets the node processed (it publishes every one, an empty pose when there is none)
    offline = estimator_poses(model, studio, stamps=set(r["poses"]), backgrounds=studio / "backgrounds")
    published = {s: p for s, (p, v) in r["poses"].items() if len(v) == 17 and v.all()}
    assert set(published) == set(offline) and len(published) >= 10, (len(published), len(offline), r["pipeline"])
    diff_mm = 1000 * np.array([np.abs(published[s] - offline[s]).max() for s in published])
    assert diff_mm.max() < 0.01, diff_mm  # same sets, same order: the same numbers


def test_intrinsics_from_camera_info(tmp_path, ros_env):
    """With intrinsics_from_camera_info the node waits for every CameraInfo, then uses their K (the rig
    file's deliberately wrong K is ignored) with the rig file's extrinsics."""
    import time

    import cv2
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from kp3d_core.camera import Camera
    from kp3d_core.rig import Rig, load_rig, save_rig
    from kp3d_ros import convert
    from kp3d_ros.node import MultiCamNode

    studio = tiny_bag(tmp_path / "s", frames=20)
    true_rig = load_rig(studio / "rig.yaml")
    wrong = Rig(tuple(Camera.from_pose(c.name, c.K * np.array([[1.2], [1.2], [1]]), c.dist, c.width, c.height,
                                       c.T_world_cam) for c in true_rig))
    save_rig(wrong, tmp_path / "wrong_k.yaml")
    model = fresh_checkpoint(tmp_path / "m.pt")
    names = ["cam0", "cam1", "cam2"]
    rclpy.init()
    try:
        node = MultiCamNode(parameter_overrides=[
            Parameter("cameras", value=names), Parameter("rig_file", value=str(tmp_path / "wrong_k.yaml")),
            Parameter("model.path", value=str(model)), Parameter("intrinsics_from_camera_info", value=True)])
        ex = SingleThreadedExecutor()
        ex.add_node(node)

        def feed(t):
            for cam in names:
                rgb = cv2.cvtColor(cv2.imread(str(studio / "images" / cam / f"{t:06d}.jpg")), cv2.COLOR_BGR2RGB)
                node._on_image(cam, convert.rgb_to_image_msg(rgb, frame_stamp(t), f"{cam}_optical_frame"))
            deadline = time.monotonic() + 5
            while not node.pipeline.idle and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.02)

        health = node.pipeline.health
        for t in range(3):
            feed(t)
        assert health.drops["waiting_camera_info"] >= 1 and health.sets_out == 0
        for cam in names:
            node._on_camera_info(cam, convert.camera_info_msg(true_rig[cam], frame_stamp(3)))
        for t in range(3, 20):
            feed(t)
        assert health.sets_out >= 1
        for cam, used in zip(names, node.pipeline.estimator.cameras):
            np.testing.assert_allclose(used.K, true_rig[cam].K)
            np.testing.assert_allclose(used.T_world_cam, true_rig[cam].T_world_cam, atol=1e-12)
        # an uncalibrated CameraInfo is refused with an error naming the camera
        bad = convert.camera_info_msg(true_rig["cam1"], 0)
        bad.k = [0.0] * 9
        node._on_camera_info("cam1", bad)
        assert health.errors.get("cam1: camera_info_invalid") == 1
        node.destroy_node()
    finally:
        rclpy.shutdown()


# ------------------------------------------------------------------------------ process life cycle
def test_help_lists_the_parameters_and_exits_without_ros(ros_env):
    import subprocess
    import sys

    from kp3d_ros.node import PARAMETERS

    env = dict(ros_env, ROS_DOMAIN_ID="not-a-number")  # rclpy.init would fail on this: --help must not init
    r = subprocess.run([sys.executable, "-m", "kp3d_ros.node", "--help"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    for name, (default, desc, _) in PARAMETERS.items():
        assert f"  {name} = {default!r}" in r.stdout and desc in r.stdout, name
    assert "usage: multicam_node" in r.stdout and not r.stderr.strip()


def _collector(node_ns="/multicam_node"):
    import rclpy

    from kp3d_ros.harness import OutputCollector

    rclpy.init()
    return OutputCollector(node_ns)


def test_sigint_while_sets_flow_exits_cleanly(tmp_path, ros_env):
    """Ctrl-C while the worker publishes: exit 0, no '[ERROR]' (publisher's context is invalid) and no traceback."""
    import subprocess
    import sys

    import rclpy

    from kp3d_ros.harness import NodeProcess, write_params

    studio = tiny_bag(tmp_path / "s", frames=20)
    model = fresh_checkpoint(tmp_path / "m.pt")
    params = write_params(tmp_path / "p.yaml", cameras=["cam0", "cam1", "cam2"], rig_file=str(studio / "rig.yaml"),
                          **{"model.path": str(model), "model.backgrounds": str(studio / "backgrounds"),
                             "image_qos": "reliable", "diagnostics.period_s": 0.2})
    collector = _collector()
    node = NodeProcess(params, tmp_path / "node.log", env=ros_env)
    replay = None
    try:
        assert collector.wait_for_node(120.0), node.log()[-3000:]
        replay = subprocess.Popen([sys.executable, "-m", "kp3d_ros.cli", "replay", str(studio / "bag"), "--loop",
                                   "--wait-subscribers", "30", "--delay", "0.5", "-q"], env=ros_env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert collector.spin_until(lambda: len(collector.pose) >= 15, 60.0), node.log()[-3000:]
        code = node.stop()
    finally:
        node.stop()
        if replay is not None:
            replay.terminate()
            replay.wait(10)
        collector.close()
        rclpy.try_shutdown()
    log = node.log()
    assert code == 0, log[-3000:]
    assert "[ERROR]" not in log and "Traceback" not in log and "context is invalid" not in log, log[-3000:]


def test_without_input_the_pipeline_warns_from_any_directory_and_sigterm_exits_cleanly(tmp_path, ros_env):
    """Started from an empty directory with the default rig_file (config/studio_rig.yaml, found in the source
    checkout): every status has a hardware id; with no camera publishing, the pipeline WARNs naming the topics."""
    import signal

    import rclpy

    from kp3d_ros.harness import NodeProcess, write_params

    model = fresh_checkpoint(tmp_path / "m.pt")
    params = write_params(tmp_path / "p.yaml", **{"model.path": str(model), "diagnostics.period_s": 0.2,
                                                  "diagnostics.output_timeout_s": 0.5})
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    collector = _collector()
    node = NodeProcess(params, tmp_path / "node.log", env=ros_env, cwd=cwd)
    try:
        assert collector.wait_for_node(120.0), node.log()[-3000:]
        assert collector.spin_until(lambda: any(s.levels.get("pipeline") == 1 for s in collector.diagnostics), 20.0)
        code = node.stop(sig=signal.SIGTERM)
    finally:
        node.stop()
        collector.close()
        rclpy.try_shutdown()
    log = node.log()
    assert code == 0 and "Traceback" not in log and "[ERROR]" not in log, log[-3000:]
    from kp3d_ros.paths import share_dirs

    # the installed share/kp3d_ros (sys.prefix) or the source checkout, whichever comes first
    assert f"rig {share_dirs()[0] / 'config' / 'studio_rig.yaml'}," in log, log
    last = [s for s in collector.diagnostics if s.levels.get("pipeline") == 1][-1]
    waiting = ", ".join(f"/cam{i}/image_raw (no image yet)" for i in range(4))
    assert last.messages["pipeline"] == f"no synchronised set published in the last 0.5 s: waiting for {waiting}"
    assert last.hardware_ids["pipeline"] == "/multicam_node"
    assert {k: v for k, v in last.hardware_ids.items() if k != "pipeline"} == {f"camera cam{i}": f"cam{i}" for i in range(4)}
    assert all(last.levels[f"camera cam{i}"] == 1 for i in range(4))
