"""multicam_node under faults, each replayed from a bag into the node in its own process: the node
stays up, says what went wrong in /diagnostics, and never publishes NaN."""
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_fixtures import frame_stamp, fresh_checkpoint, raw_image, tiny_bag  # noqa: E402

from kp3d_ros.demo import run_pipeline  # noqa: E402

SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(fresh_checkpoint(tmp_path_factory.mktemp("model") / "model.pt"))


def _consistent(r):
    """Node up to the end, clean exit, and published == synchronised - counted node drops."""
    assert r["node_exit"] == 0, r["node_log"][-3000:]
    pipe = r["pipeline"]
    node_drops = sum(int(v) for k, v in pipe.items() if k.startswith("drops.") and not k.startswith("drops.sync_"))
    assert r["published_count"] == int(pipe["sets_in"]) - node_drops
    assert all(p.finite for p in r["raw_keypoints"]) and all(p.finite for p in r["raw_poses"])
    return pipe


def test_camera_stops_mid_bag(tmp_path, ros_env, model):
    """A camera dying mid-stream at 30 fps, default synchroniser settings (sync.queue_size 30 outlasts its 0.5 s
    dead-camera timeout): no set of the live cameras is lost to a queue overflow."""
    stop, frames = 25, 75
    studio = tiny_bag(tmp_path / "s", frames=frames, mutate=lambda t, cam, rgb: [] if cam == "cam2" and t >= stop else None)
    r = run_pipeline(studio, tmp_path / "run", model=model, backend="onnxruntime",
                     extra_params={"diagnostics.camera_timeout_s": 0.3})
    pipe = _consistent(r)
    # the node goes on with cam0 + cam1: the synchroniser forms a partial set for every later frame
    # and the node publishes every one (worker.every_set, as for any bag replay)
    assert int(pipe["sets_in"]) == frames and int(pipe["partial_sets"]) == frames - stop
    assert int(pipe["drops_total"]) == 0, pipe
    assert sorted(r["poses"]) == [frame_stamp(t) for t in range(frames)]
    # ... and its diagnostics name the camera that stopped, with its topic
    stopped = [s for s in r["diagnostics"] if s.levels.get("camera cam2") == 1
               and s.messages["camera cam2"].startswith("not alive: no image for ")]
    assert stopped and all(s.messages["camera cam2"].endswith(" s on /cam2/image_raw") for s in stopped)
    assert any(s.levels["camera cam0"] == s.levels["camera cam1"] == 0 for s in stopped)  # while the others go on


def test_stamps_jump_back(tmp_path, ros_env, model):
    from kp3d_core.bagio import image_message

    half = 30

    def mutate(t, cam, rgb):  # first half 5 s later than the second: a clock reset / bag loop
        stamp = frame_stamp(t) + 5 * SECOND if t < half else frame_stamp(t - half)
        return [(stamp, image_message(stamp, f"{cam}_optical_frame", rgb))]

    studio = tiny_bag(tmp_path / "s", frames=2 * half, mutate=mutate)
    r = run_pipeline(studio, tmp_path / "run", model=model, backend="onnxruntime")
    pipe = _consistent(r)
    assert int(pipe["sync_resets"]) >= 1
    assert int(pipe["drops.sync_time_jump_back"]) <= 3 * 2  # at most the queued messages at the jump
    # sets before and after the jump are formed (2 * half - the last one) and published
    assert int(pipe["sets_in"]) >= 2 * half - 2
    before = [s for s in r["poses"] if s >= 5 * SECOND]
    after = [s for s in r["poses"] if s < 5 * SECOND]
    assert len(before) >= 5 and len(after) >= 5, (len(before), len(after), pipe)


def test_unknown_encoding_and_size_mismatch(tmp_path, ros_env, model):
    def mutate(t, cam, rgb):
        s = frame_stamp(t)
        if cam == "cam1" and 20 <= t < 25:
            return [(s, raw_image(s, "cam1_optical_frame", 120, 160, "yuv422", np.zeros(120 * 160 * 2)))]
        if cam == "cam2" and 30 <= t < 35:
            return [(s, raw_image(s, "cam2_optical_frame", 60, 80, "rgb8", np.zeros(60 * 80 * 3)))]
        return None

    studio = tiny_bag(tmp_path / "s", frames=45, mutate=mutate)
    r = run_pipeline(studio, tmp_path / "run", model=model, backend="onnxruntime")
    pipe = _consistent(r)
    for cam, problem in (("cam1", "unsupported image encoding 'yuv422'"),
                         ("cam2", "image 80x60 does not match the calibration 160x120")):
        key = f"camera {cam}"
        errors = [s for s in r["diagnostics"] if s.levels.get(key) == 2]  # ERROR, naming topic and problem
        assert errors and all(f"/{cam}/image_raw: {problem}" in s.messages[key] for s in errors), cam
        assert all(s.hardware_ids[key] == cam for s in errors)
    last = r["diagnostics"][-1].values
    assert last["camera cam1"]["errors.unsupported_encoding"] == "5" and last["camera cam2"]["errors.size_mismatch"] == "5"
    # bad images never reach the synchroniser: those frames become partial sets of the two good views
    assert int(pipe["sets_in"]) >= 44 and int(pipe["partial_sets"]) == 10


def test_model_outputting_nan_publishes_no_nan(tmp_path, ros_env):
    studio = tiny_bag(tmp_path / "s", frames=30)
    nan_model = fresh_checkpoint(tmp_path / "nan.pt", nan=True)
    r = run_pipeline(studio, tmp_path / "run", model=str(nan_model), backend="onnxruntime")
    _consistent(r)
    assert r["published_count"] >= 5
    assert r["keypoints"] and all(not v.any() for _, v in r["keypoints"].values())  # all marked missing
    assert all(p.finite for p in r["raw_keypoints"]) and all(p.finite for p in r["raw_poses"])
    assert r["markers"] and all(finite for _, finite in r["markers"])


def test_no_calibration_for_a_camera_is_a_clear_startup_error(tmp_path, ros_env, model):
    import subprocess
    import sys

    from kp3d_ros.harness import write_params

    studio = tiny_bag(tmp_path / "s", frames=2)
    params = write_params(tmp_path / "p.yaml", cameras=["cam0", "cam1", "cam7"],
                          rig_file=str(studio / "rig.yaml"), **{"model.path": model})
    r = subprocess.run([sys.executable, "-m", "kp3d_ros.node", "--ros-args", "--params-file", str(params)],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "no calibration for camera(s) ['cam7']" in r.stderr and str(studio / "rig.yaml") in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_model_file_is_a_clear_startup_error(tmp_path, ros_env):
    import subprocess
    import sys

    from kp3d_ros.harness import write_params

    studio = tiny_bag(tmp_path / "s", frames=1)
    params = write_params(tmp_path / "p.yaml", cameras=["cam0", "cam1"], rig_file=str(studio / "rig.yaml"),
                          **{"model.path": str(tmp_path / "missing.pt")})
    r = subprocess.run([sys.executable, "-m", "kp3d_ros.node", "--ros-args", "--params-file", str(params)],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "missing.pt" in r.stderr and "Traceback" not in r.stderr, r.stderr
