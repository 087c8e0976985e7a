"""kp3d_core.inference.pipeline and .health, ROS-free: real images (rosbags Image messages of a tiny studio),
a real network (fresh weights), the real synchroniser and worker thread."""
import threading
import time

import cv2
import numpy as np
import pytest
from ros_fixtures import frame_stamp, fresh_checkpoint
from studio_fixture import write_tiny_studio

from kp3d_core.bagio import image_message
from kp3d_core.inference.health import ERROR, OK, WARN, HealthConfig, PipelineHealth
from kp3d_core.inference.pipeline import (
    EstimatorSettings,
    Pipeline,
    PipelineConfig,
    build_estimator,
    camera_info_mismatch,
    image_problem,
)
from kp3d_core.rig import load_rig, ring_rig

CAMS = ["cam0", "cam1", "cam2"]
TOPICS = {c: f"/{c}/image_raw" for c in CAMS}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    path = write_tiny_studio(root / "s", num_frames=30, num_cameras=3)
    model = fresh_checkpoint(root / "m.pt")
    rig = load_rig(path / "rig.yaml")
    images = {(c, t): image_message(frame_stamp(t), f"{c}_optical_frame", cv2.cvtColor(
        cv2.imread(str(path / "images" / c / f"{t:06d}.jpg")), cv2.COLOR_BGR2RGB)) for c in CAMS for t in range(30)}
    return path, model, rig, images


def _pipeline(studio, published, **config):
    path, model, rig, _ = studio
    est = build_estimator(EstimatorSettings(model=model, backend="onnxruntime", backgrounds=path / "backgrounds"), rig)
    return Pipeline(est, PipelineConfig(**config), published.append, TOPICS)


def _wait_idle(pipe, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pipe.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pipe.idle


def test_every_set_mode_processes_every_set_in_order_and_stop_joins_the_worker(studio):
    _, _, _, images = studio
    published = []
    pipe = _pipeline(studio, published, every_set=True)
    pipe.start()
    for t in range(30):  # faster than the worker: sets queue up, none is replaced
        for c in CAMS:
            pipe.add_image(c, frame_stamp(t), images[(c, t)])
    _wait_idle(pipe)
    assert [r.stamp_ns for r in published] == [frame_stamp(t) for t in range(30)]
    rep = pipe.report("node")
    assert rep.sets_in == rep.sets_out == 30 and not any(rep.drops.values())
    # stored backgrounds: nothing waits for a warm-up; a fresh net's keypoints are consistent across views
    assert all(r.estimate.rejected is None and r.estimate.reprojection_error < 0.08 for r in published)
    assert pipe.stop() and not pipe._worker.is_alive()
    n = len(published)
    for c in CAMS:  # after stop nothing is published any more
        pipe.add_image(c, frame_stamp(40), images[(c, 0)])
    time.sleep(0.3)
    assert len(published) == n


def test_latest_mode_counts_every_replaced_set(studio):
    _, _, _, images = studio
    published = []
    pipe = _pipeline(studio, published)
    pipe.start()
    for t in range(30):
        for c in CAMS:
            pipe.add_image(c, frame_stamp(t), images[(c, t)])
    _wait_idle(pipe)
    pipe.stop()
    rep = pipe.report("node")
    assert rep.sets_in == 30 and rep.sets_out == len(published) >= 1
    assert rep.sets_out + rep.drops["slot_superseded_by_newer"] == 30
    assert published[-1].stamp_ns == frame_stamp(29)  # the newest set is never lost


def test_overlays_are_drawn_when_asked(studio):
    _, _, rig, images = studio
    published = []
    pipe = _pipeline(studio, published, every_set=True)
    pipe.draw_overlays = True
    pipe.start()
    for c in CAMS:
        pipe.add_image(c, frame_stamp(3), images[(c, 3)])
    _wait_idle(pipe)
    pipe.stop()
    (r,) = published
    assert set(r.overlays) == set(CAMS) and r.frame_ids == {c: rig[c].frame_id for c in CAMS}
    raw = images[("cam1", 3)]
    original = np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.width, 3)
    changed = np.any(r.overlays["cam1"] != original, axis=2)
    assert 0 < changed.sum() < changed.size // 4  # keypoints drawn, the rest untouched


def test_bad_images_are_input_errors_of_their_camera(studio):
    from ros_fixtures import raw_image

    _, _, _, images = studio
    published = []
    pipe = _pipeline(studio, published, every_set=True)
    pipe.start()
    pipe.add_image("cam1", frame_stamp(0), raw_image(frame_stamp(0), "f", 120, 160, "yuv422", np.zeros(120 * 160 * 2)))
    pipe.add_image("cam2", frame_stamp(0), raw_image(frame_stamp(0), "f", 60, 80, "rgb8", np.zeros(60 * 80 * 3)))
    rep = pipe.report("node")
    pipe.stop()
    status = {s.name: s for s in rep.statuses}
    assert status["camera cam1"].level == ERROR and "/cam1/image_raw" in status["camera cam1"].message
    assert "yuv422" in status["camera cam1"].message and status["camera cam1"].values["errors.unsupported_encoding"] == 1
    assert "80x60 does not match the calibration 160x120" in status["camera cam2"].message
    assert status["camera cam0"].level != ERROR and rep.sets_in == 0


def test_image_problem_and_camera_info_mismatch():
    cam = ring_rig(1, width=4, height=2)[0]
    msg = image_message(0, "f", np.zeros((2, 4, 3), np.uint8))
    assert image_problem(msg, cam) is None
    msg.encoding = "16UC1"
    assert image_problem(msg, cam)[0] == "unsupported_encoding"
    msg.encoding, msg.width = "rgb8", 3
    assert image_problem(msg, cam) == ("size_mismatch", "image 3x2 does not match the calibration 4x2")
    msg.width, msg.step = 4, 13
    assert image_problem(msg, cam)[0] == "bad_buffer"

    cam = ring_rig(1)[0]
    fields = dict(cam.camera_info_fields())
    assert camera_info_mismatch(fields, cam) is None
    fields["k"] = [0.0] * 9  # uncalibrated CameraInfo: the rig file rules, no complaint
    assert camera_info_mismatch(fields, cam) is None
    k = cam.K.copy()
    k[0, 0] *= 1.1
    fields["k"] = k.reshape(-1).tolist()
    assert "differs from the calibration" in camera_info_mismatch(fields, cam)
    fields["width"] = 320
    assert "320x480 != calibration 640x480" in camera_info_mismatch(fields, cam)


# ------------------------------------------------------------------------------------------ health
class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


SYNC = {"dropped": {"queue_overflow": 0}, "partial_sets": 0, "resets": 0}


def test_health_warns_naming_what_is_missing_and_every_status_has_a_hardware_id():
    clock = Clock()
    h = PipelineHealth(CAMS, TOPICS, HealthConfig(camera_timeout_s=1.0, output_timeout_s=2.0), clock)
    rep = h.report(SYNC, {}, "/multicam_node")
    assert [s.level for s in rep.statuses] == [OK, WARN, WARN, WARN]  # just started: the pipeline waits 2 s
    assert [s.hardware_id for s in rep.statuses] == ["/multicam_node", *CAMS]
    assert rep.statuses[1].message == "not alive: no image yet on /cam0/image_raw"
    clock.t += 2.5
    h.image_arrived("cam0")
    h.image_arrived("cam1")
    pipe = h.report(SYNC, {}, "/multicam_node").statuses[0]
    assert pipe.level == WARN and pipe.name == "pipeline"
    assert pipe.message == ("no synchronised set published in the last 2 s: waiting for /cam2/image_raw (no image yet)")
    assert pipe.values["output_rate_hz"] == 0.0
    h.image_arrived("cam2")
    pipe = h.report(SYNC, {}, "/multicam_node", slop_s=0.01).statuses[0]
    assert "images arrive from every camera but form no set" in pipe.message and "10 ms" in pipe.message
    h.sets_synchronised(3)
    h.dropped("bad_images", 3)
    assert "3 sets synchronised but not published (drops: bad_images 3)" in h.report(SYNC, {}, "n").statuses[0].message
    for _ in range(5):
        h.sets_synchronised(1)
        h.published(clock.t - 0.02, 15.0, rejected="reprojection")
        clock.t += 0.1
    rep = h.report(SYNC, {"superseded_by_newer": 2}, "n")
    assert rep.statuses[0].level == OK and rep.statuses[0].message == "10.0 Hz"
    assert abs(rep.output_rate_hz - 10.0) < 1e-6 and rep.rejected == {"reprojection": 5}
    assert rep.statuses[0].values["rejected.reprojection"] == 5 and rep.drops["slot_superseded_by_newer"] == 2
    assert 19.0 < rep.latency_p50_ms < 21.0 and rep.estimator_p50_ms == 15.0
    assert rep.statuses[0].values["mode"] == "multi_view" and rep.statuses[0].values["single_view_sets"] == 0
    h.published(clock.t - 0.02, 15.0, single_view="cam1")  # one camera alone saw the person: lifted
    single = h.report(SYNC, {}, "n").statuses[0]
    assert single.level == OK and single.message.endswith("single view: only cam1 sees the person")
    assert (single.values["mode"], single.values["single_view_camera"], single.values["single_view_sets"]) == (
        "single_view", "cam1", 1)
    h.published(clock.t - 0.02, 15.0)  # the views see the person again
    back = h.report(SYNC, {}, "n").statuses[0].values
    assert (back["mode"], back["single_view_camera"], back["last_single_view_camera"]) == ("multi_view", "", "cam1")
    clock.t += 1.5  # cameras silent past their timeout, output still recent enough
    rep = h.report(SYNC, {}, "n")
    assert rep.statuses[1].level == WARN and rep.statuses[1].message.startswith("not alive: no image for 2.0 s")
    h.error("pipeline", "exception", "RuntimeError: boom")
    assert h.report(SYNC, {}, "n").statuses[0].level == ERROR
    clock.t += 6.0  # errors are held 5 s
    assert h.report(SYNC, {}, "n").statuses[0].level == WARN


def test_health_config_rejects_bad_values():
    with pytest.raises(ValueError, match="output_timeout_s"):
        HealthConfig(output_timeout_s=0)
    with pytest.raises(ValueError, match="queue_size"):
        PipelineConfig(queue_size=0)


def test_the_pipeline_reports_no_set_while_a_camera_is_silent(studio):
    """Only two of three cameras send: with min_cameras 3 no set forms, and the report says which topic it waits for."""
    _, _, _, images = studio
    clock = Clock()
    pipe = Pipeline(build_estimator(EstimatorSettings(model=studio[1], backend="onnxruntime",
                                                      backgrounds=studio[0] / "backgrounds"), studio[2]),
                    PipelineConfig(min_cameras=3, health=HealthConfig(output_timeout_s=1.0)), lambda r: None,
                    TOPICS, clock=clock)
    clock.t += 1.5
    for t in range(3):
        for c in ("cam0", "cam1"):
            pipe.add_image(c, frame_stamp(t), images[(c, t)])
    msg = pipe.report("n").statuses[0].message
    assert msg == "no synchronised set published in the last 1 s: waiting for /cam2/image_raw (no image yet)"


def test_stop_is_prompt_while_sets_flow(studio):
    _, _, _, images = studio
    published = []
    pipe = _pipeline(studio, published)
    pipe.start()
    done = threading.Event()

    def feed():
        t = 0
        while not done.is_set():
            for c in CAMS:
                pipe.add_image(c, frame_stamp(t), images[(c, t % 30)])
            t += 1
            time.sleep(0.005)

    th = threading.Thread(target=feed)
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    assert pipe.stop(timeout=5.0)
    assert time.monotonic() - t0 < 2.0 and published
    done.set()
    th.join()
