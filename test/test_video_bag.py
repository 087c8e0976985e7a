"""kp3d bag from-videos: real video files of a rendered studio recording -> a real MCAP bag, checked by value.

The videos are FFV1 in Matroska (lossless in this OpenCV build), so the bag's images must equal the
rendered frames exactly. Camera c's video frame i shows studio frame ``i - offset_c + MARGIN``, so after
conversion with the same offsets every camera's frame at common index k shows studio frame ``k + MARGIN``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from kp3d_core.bagio import read_bag, read_camera_frames
from kp3d_core.camera import Camera
from kp3d_core.camera_scale import scale_pixels, scaled_camera
from kp3d_core.image_encoding import image_msg_to_rgb
from kp3d_core.rig import ring_rig, save_rig
from kp3d_core.studio.body import sample_subject
from kp3d_core.studio.dataset import DEFAULT_START_NS
from kp3d_core.studio.procedural import procedural_motion
from kp3d_core.studio.proportions import sample_proportions
from kp3d_core.studio.render import StudioRenderer
from kp3d_core.studio.scene import sample_scene
from kp3d_core.video_bag import Clock, is_resized_copy
from kp3d_core.video_sync import SyncConfig, best_lag, estimate_offset, highpass, lag_correlation
from kp3d_ros import cli as kp3d_cli

FPS = 30.0
W, H = 160, 120
MARGIN = 4            # studio frames before a video's frame 0, room for offsets up to +-MARGIN
SYNC_FRAMES = 75      # frames per video in the auto-offset tests: 2.5 s (>= 60 compared + the +-6 lag window)
NAMES = ["cam0", "cam1", "cam2", "cam3"]


# ------------------------------------------------------------------------------------- recordings
def _render(rig, seed: int, num_frames: int, static: bool) -> np.ndarray:
    """(T, V, H, W, 3) uint8 RGB studio frames from a window of procedural motion around its jumping jacks
    (whole-body motion every camera sees, the documented case for --auto-offset); ``static``: the
    subject holds the window's first pose (sensor noise and light drift still change every frame)."""
    rng = np.random.default_rng(seed)
    props = sample_proportions(rng)
    motion = procedural_motion(900, FPS, seed=seed, proportions=props)
    start = next(s for action, s, _ in motion.segments if action == "jumping_jacks")
    start = max(0, start - 10)
    scene = sample_scene(np.random.default_rng([seed, 3]), np.stack([c.center for c in rig]))
    renderer = StudioRenderer(rig, scene, seed=seed)
    subject = sample_subject(rng)
    frames = []
    for t in range(start, start + num_frames):
        joints = motion.joints3d[start if static else t]
        frames.append(renderer.render(joints, subject, t).images)
    return np.asarray(frames, dtype=np.uint8)


@pytest.fixture(scope="module")
def rig():
    return ring_rig(4, width=W, height=H)


@pytest.fixture(scope="module")
def studio(rig):
    return _render(rig, seed=30, num_frames=SYNC_FRAMES + 2 * MARGIN, static=False)


@pytest.fixture(scope="module")
def static_studio(rig):
    return _render(rig, seed=30, num_frames=SYNC_FRAMES + 2 * MARGIN, static=True)


@pytest.fixture()
def rig_file(tmp_path, rig):
    path = tmp_path / "rig.yaml"
    save_rig(rig, path)
    return path


def write_video(path: Path, frames_rgb: np.ndarray, fps: float = FPS) -> Path:
    """(T, H, W, 3) uint8 RGB -> a lossless FFV1 Matroska file."""
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write FFV1 video")
    for frame in frames_rgb:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_videos(folder: Path, studio: np.ndarray, offsets: dict[str, int] | None = None,
                 lengths: dict[str, int] | None = None, pattern: str = "take_{}.mkv") -> list[Path]:
    """One video per camera; camera c's frame i is studio frame i - offset_c + MARGIN."""
    offsets, lengths = offsets or {}, lengths or {}
    paths = []
    for v, name in enumerate(NAMES):
        n = lengths.get(name, SYNC_FRAMES)
        idx = np.arange(n) - offsets.get(name, 0) + MARGIN
        paths.append(write_video(folder / pattern.format(name), studio[idx, v]))
    return paths


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``kp3d bag ARGV`` in-process through the kp3d CLI: (exit code, stdout, stderr)."""
    try:
        rc = kp3d_cli.main(["bag", *map(str, argv), "--no-progress"])
    except SystemExit as exc:  # argparse: bad options
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def from_videos(videos, rig_file, out, *extra) -> list[str]:
    return ["from-videos", *map(str, videos), "--rig", str(rig_file), "--out", str(out), *map(str, extra)]


def bag_messages(bag: Path) -> dict[str, list]:
    """topic -> [(bag time ns, message)] in bag order."""
    out: dict[str, list] = {}
    for topic, _, t_ns, msg in read_bag(bag):
        out.setdefault(topic, []).append((t_ns, msg))
    return out


def stamp_ns(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


# --------------------------------------------------------------------------------- unit: geometry
def test_scaled_camera_is_the_exact_pixel_grid_map():
    cam = ring_rig(1, width=160, height=120, dist=(0.12, -0.05, 0.001, -0.002, 0.01))[0]
    small = scaled_camera(cam, 96, 64)        # non-uniform: sx = 0.6, sy = 0.5333
    sx, sy = 96 / 160, 64 / 120
    np.testing.assert_allclose(small.K[0], [sx * cam.K[0, 0], 0.0, sx * (cam.K[0, 2] + 0.5) - 0.5])
    np.testing.assert_allclose(small.K[1], [0.0, sy * cam.K[1, 1], sy * (cam.K[1, 2] + 0.5) - 0.5])
    np.testing.assert_array_equal(small.dist, cam.dist)
    np.testing.assert_allclose(small.T_world_cam, cam.T_world_cam)
    assert small.size == (96, 64) and small.frame_id == cam.frame_id
    points = np.random.default_rng(0).uniform([-0.5, -0.5, 0.5], [0.5, 0.5, 1.8], (50, 3))
    np.testing.assert_allclose(small.project(points), scale_pixels(cam.project(points), cam.size, small.size),
                               atol=1e-9)
    # the image edges stay the edges
    np.testing.assert_allclose(scale_pixels([[-0.5, -0.5], [159.5, 119.5]], (160, 120), (96, 64)),
                               [[-0.5, -0.5], [95.5, 63.5]])
    with pytest.raises(ValueError, match="positive"):
        scaled_camera(cam, 0, 64)


def test_is_resized_copy_allows_rounding_only():
    assert is_resized_copy((854, 480), (1920, 1080))     # 0.4448: 480.4 rounds to 480
    assert is_resized_copy((960, 540), (1920, 1080))
    assert not is_resized_copy((1920, 1080), (1920, 1088))   # 8 rows padded/cropped: not a resize
    assert not is_resized_copy((1080, 1920), (1088, 1920))
    assert not is_resized_copy((640, 480), (1920, 1080))


def test_clock_counts_and_stamps():
    clock = Clock(fps=30.0, t0_ns=10**18, start_s=1.0, end_s=2.0, stride=4)
    assert clock.first_index({"a": 0}) == 30 and clock.end_index() == 60
    assert clock.stamp_ns(45) == 10**18 + 1_500_000_000
    # camera with offset 2 and 50 frames: indices -2 .. 47 -> 30, 34, .., 46: 5 frames
    assert clock.frames_written(2, 50, 30) == 5
    assert Clock(fps=30.0).first_index({"a": 0, "b": 3, "c": -1}) == -3


# ------------------------------------------------------------------------------- unit: offsets
def test_lag_correlation_finds_a_known_shift_and_rates_it():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=200)
    signal = np.roll(reference, 3)[10:190]          # signal[i] = reference[i + 10 - 3]
    lags, r = lag_correlation(signal, reference[10:190], 8, 50)
    lag, corr, ratio = best_lag(lags, r, 2)
    assert lag == 3 and corr == pytest.approx(1.0) and ratio > 3
    flat = lag_correlation(np.ones(50), reference[:50], 4, 10)[1]
    assert not np.any(flat)                          # a flat signal correlates with nothing
    np.testing.assert_allclose(highpass(np.full(20, 5.0), 9), 0.0, atol=1e-12)


def test_estimate_offset_refuses_periodic_signals():
    t = np.arange(300)
    periodic = np.sin(2 * np.pi * t / 10)            # a period of 10 frames inside a +-15 lag window
    config = SyncConfig(max_offset_frames=15)
    _, corr, ratio = estimate_offset(periodic[2:], periodic[:-2], config, FPS)
    assert corr > 0.9 and ratio < config.min_peak_ratio


# ------------------------------------------------------------------------------------- the bag
def test_videos_to_bag_topics_counts_stamps_camera_info_and_exact_images(tmp_path, studio, rig, rig_file, capsys):
    offsets = {"cam1": 2, "cam2": -3}
    # cam3's video is shorter: it just ends that camera
    videos = write_videos(tmp_path, studio, offsets, lengths={"cam0": 60, "cam1": 60, "cam2": 60, "cam3": 40})
    out = tmp_path / "my_bag"
    rc, stdout, stderr = run(from_videos(videos, rig_file, out, "--offset", "cam1=2", "cam2=-3"), capsys)
    assert rc == 0, stderr
    report = json.loads(stdout.strip().splitlines()[-1])
    assert (out / "metadata.yaml").is_file() and len(list(out.glob("*.mcap"))) == 1   # --out is the bag folder
    assert report["bag"] == str(out.resolve()) and str(out.resolve()) in stderr
    assert report["cameras"] == NAMES and report["fps"] == FPS
    assert report["frames"] == {"cam0": 60, "cam1": 60, "cam2": 60, "cam3": 40}
    assert report["offsets_frames"] == {"cam0": 0, "cam1": 2, "cam2": -3, "cam3": 0}
    assert report["size_px"] == {n: [W, H] for n in NAMES}
    # common indices run from -2 (cam1's frame 0) to 62 (cam2's frame 59)
    assert report["duration_s"] == pytest.approx(64 / FPS, abs=1e-6)

    msgs = bag_messages(out)
    assert set(msgs) == {f"/{n}/{kind}" for n in NAMES for kind in ("image_raw", "camera_info")}
    for v, name in enumerate(NAMES):
        images, infos = msgs[f"/{name}/image_raw"], msgs[f"/{name}/camera_info"]
        assert len(images) == len(infos) == report["frames"][name]
        cam = rig[name]
        for i, ((t_ns, img), (t_info, info)) in enumerate(zip(images, infos)):
            k = i - offsets.get(name, 0)
            assert t_ns == t_info == stamp_ns(img) == stamp_ns(info) == DEFAULT_START_NS + round(k * 1e9 / FPS)
            assert img.header.frame_id == info.header.frame_id == cam.frame_id
            assert img.encoding == "rgb8"
            np.testing.assert_array_equal(image_msg_to_rgb(img), studio[k + MARGIN, v])   # lossless: exact
        np.testing.assert_allclose(np.asarray(infos[0][1].k).reshape(3, 3), cam.K)
        np.testing.assert_allclose(infos[0][1].d, cam.dist)
        assert (infos[0][1].width, infos[0][1].height) == cam.size
    all_stamps = [t for topic in msgs.values() for t, _ in topic]
    assert min(all_stamps) == DEFAULT_START_NS + round(-2 * 1e9 / FPS)


def test_bag_reads_into_synchronised_sets_of_the_same_instant(tmp_path, studio, rig_file, capsys):
    videos = write_videos(tmp_path, studio, {"cam1": 2, "cam2": -3})
    out = tmp_path / "bag"
    rc, _, stderr = run(from_videos(videos, rig_file, out, "--offset", "cam1=2", "cam2=-3", "--start", "0.1",
                                    "--end", "1", "--stride", "3"), capsys)
    assert rc == 0, stderr
    frames = list(read_camera_frames(out))
    assert len(frames) == 9                           # k = 3, 6, .., 27 (k >= 0.1 s * 30): every camera has them
    for m, frame in enumerate(frames):
        k = 3 + 3 * m
        assert set(frame.images) == set(NAMES)
        assert set(frame.stamps.values()) == {DEFAULT_START_NS + round(k * 1e9 / FPS)}
        for v, name in enumerate(NAMES):
            np.testing.assert_array_equal(frame.images[name], studio[k + MARGIN, v])


def test_scale_and_size_resize_images_and_scale_camera_info(tmp_path, studio, rig, rig_file, capsys):
    videos = write_videos(tmp_path, studio, lengths={n: 5 for n in NAMES})
    for extra, size in ((["--scale", "0.5"], (80, 60)), (["--size", "120x90"], (120, 90))):
        out = tmp_path / f"bag_{size[0]}"
        rc, stdout, stderr = run(from_videos(videos, rig_file, out, *extra), capsys)
        assert rc == 0, stderr
        assert json.loads(stdout)["size_px"]["cam2"] == list(size)
        msgs = bag_messages(out)
        info = msgs["/cam2/camera_info"][0][1]
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), scaled_camera(rig["cam2"], *size).K)
        assert (info.width, info.height) == size
        expected = cv2.resize(studio[MARGIN, 2], size, interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(image_msg_to_rgb(msgs["/cam2/image_raw"][0][1]), expected)


def _blob_image(cam: Camera, point_world: np.ndarray, sigma_px: float = 2.5) -> np.ndarray:
    """(H, W, 3) uint8: a grey image with a Gaussian spot centred on the projection of ``point_world``."""
    u, v = cam.project(point_world[None])[0]
    x, y = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    spot = np.exp(-((x - u) ** 2 + (y - v) ** 2) / (2 * sigma_px**2))
    return np.repeat(np.round(20 + 220 * spot).astype(np.uint8)[..., None], 3, axis=2)


def _spot_centre(rgb: np.ndarray) -> np.ndarray:
    weight = rgb[..., 0].astype(np.float64) - 20.0
    weight[weight < 0] = 0
    y, x = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    return np.array([(x * weight).sum(), (y * weight).sum()]) / weight.sum()


def test_resized_camera_info_projects_a_3d_point_onto_the_resized_image(tmp_path, capsys):
    """A spot drawn at a 3D point's projection in the calibrated image is, after --scale/--size, at the
    projection by the bag's CameraInfo (with the rig's pose), to a few hundredths of a pixel."""
    rig = ring_rig(1, width=W, height=H, dist=(0.1, -0.04, 0.001, 0.0015, 0.0))
    rig_file = tmp_path / "rig.yaml"
    save_rig(rig, rig_file)
    cam = rig["cam0"]
    point = np.array([0.35, -0.2, 1.3])
    video = write_video(tmp_path / "cam0.mkv", np.stack([_blob_image(cam, point)] * 3))
    for extra in (["--scale", "0.5"], ["--size", "120x90"], ["--scale", "1.5"]):
        out = tmp_path / f"bag{extra[1]}"
        rc, _, stderr = run(from_videos([video], rig_file, out, *extra), capsys)
        assert rc == 0, stderr
        frame = next(read_camera_frames(out))
        resized = Camera.from_camera_info_fields("cam0", frame.infos["cam0"], cam.T_world_cam)
        np.testing.assert_allclose(_spot_centre(frame.images["cam0"]), resized.project(point[None])[0], atol=0.05)


def test_cameras_in_video_order_and_name_matching(tmp_path, studio, rig_file, capsys):
    short = {n: 3 for n in NAMES}
    videos = write_videos(tmp_path, studio, lengths=short, pattern="clip_{}.mkv")
    renamed = [p.rename(tmp_path / f"video{i}.mkv") for i, p in enumerate(videos)]
    rc, _, stderr = run(from_videos(renamed, rig_file, tmp_path / "none"), capsys)
    assert rc == 2 and "video0.mkv: the file name names no rig camera" in stderr and "--cameras" in stderr
    order = ["cam2", "cam0", "cam3", "cam1"]          # video i shows camera order[i]
    rc, stdout, stderr = run(from_videos(renamed, rig_file, tmp_path / "bag", "--cameras", *order), capsys)
    assert rc == 0, stderr
    msgs = bag_messages(tmp_path / "bag")
    for i, name in enumerate(order):
        np.testing.assert_array_equal(image_msg_to_rgb(msgs[f"/{name}/image_raw"][0][1]), studio[MARGIN, i])
    # a whole-word match: cam1 is not in cam10; a name holding two cameras is ambiguous
    ambiguous = write_video(tmp_path / "cam1_cam2.mkv", studio[:2, 0])
    rc, _, stderr = run(from_videos([ambiguous], rig_file, tmp_path / "amb"), capsys)
    assert rc == 2 and "names several rig cameras ['cam1', 'cam2']" in stderr
    rc, _, stderr = run(from_videos([write_video(tmp_path / "cam10.mkv", studio[:2, 0])], rig_file,
                                    tmp_path / "c10"), capsys)
    assert rc == 2 and "names no rig camera" in stderr


@pytest.mark.parametrize("case", ["missing", "unknown_camera", "size", "fps", "two_for_one", "offset_camera"])
def test_user_errors_are_one_line_and_exit_2(tmp_path, studio, rig_file, capsys, case):
    videos = write_videos(tmp_path, studio, lengths={n: 3 for n in NAMES})
    extra: list[str] = []
    if case == "missing":
        videos[1] = tmp_path / "take_cam1_missing.mkv"
        expect = f"{videos[1]}: video file not found"
    elif case == "unknown_camera":
        extra = ["--cameras", "cam0", "cam1", "cam2", "cam7"]
        expect = "--cameras: camera 'cam7' is not in the rig"
    elif case == "size":
        # 160x112: eight rows short of the calibration, not a resize of it
        videos[2] = write_video(tmp_path / "take_cam2.mkv", studio[:3, 2, :112])
        expect = "camera 'cam2': " + str(videos[2]) + " is 160x112 but the calibration is 160x120"
    elif case == "fps":
        videos[3] = write_video(tmp_path / "take_cam3.mkv", studio[:3, 3], fps=25.0)
        expect = "the videos differ in frame rate"
    elif case == "two_for_one":
        videos[3] = write_video(tmp_path / "take_cam0_again.mkv", studio[:3, 0])
        expect = "camera 'cam0': two videos"
    else:
        extra = ["--offset", "cam9=2"]
        expect = "--offset: camera 'cam9' has no video"
    rc, stdout, stderr = run(from_videos(videos, rig_file, tmp_path / "bag", *extra), capsys)
    assert rc == 2 and stdout == ""
    line, = stderr.strip().splitlines()
    assert line.startswith("kp3d bag: error: ") and expect in line, line
    assert not (tmp_path / "bag").exists()


def test_a_resized_video_is_accepted_with_its_calibration_scaled(tmp_path, studio, rig, rig_file, capsys):
    videos = write_videos(tmp_path, studio, lengths={n: 3 for n in NAMES})
    half = np.stack([cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in studio[:3, 1]])
    videos[1] = write_video(tmp_path / "take_cam1.mkv", half)
    rc, stdout, stderr = run(from_videos(videos, rig_file, tmp_path / "bag"), capsys)
    assert rc == 0, stderr
    assert json.loads(stdout)["size_px"]["cam1"] == [W // 2, H // 2]
    info = bag_messages(tmp_path / "bag")["/cam1/camera_info"][0][1]
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), scaled_camera(rig["cam1"], W // 2, H // 2).K)


def test_fps_override_t0_and_sqlite3(tmp_path, studio, rig_file, capsys):
    """Videos whose containers disagree on the rate are one clock with --fps; --t0 sets the stamp of k = 0."""
    videos = write_videos(tmp_path, studio, lengths={n: 4 for n in NAMES})
    videos[3] = write_video(tmp_path / "take_cam3.mkv", studio[MARGIN:MARGIN + 4, 3], fps=25.0)
    out = tmp_path / "bag"
    rc, stdout, stderr = run(from_videos(videos, rig_file, out, "--fps", "20", "--t0", "100", "--storage", "sqlite3"),
                             capsys)
    assert rc == 0, stderr
    assert json.loads(stdout)["fps"] == 20.0 and (out / "metadata.yaml").is_file()
    stamps = [f.stamp_ns for f in read_camera_frames(out)]
    assert stamps == [100 * 10**9 + k * 50_000_000 for k in range(4)]


def test_out_is_refused_when_not_empty_and_overwrite_replaces_only_a_bag(tmp_path, studio, rig_file, capsys):
    videos = write_videos(tmp_path, studio, lengths={n: 2 for n in NAMES})
    out = tmp_path / "bag"
    out.mkdir()                                       # an empty folder is fine: it becomes the bag
    assert run(from_videos(videos, rig_file, out), capsys)[0] == 0
    rc, _, stderr = run(from_videos(videos, rig_file, out), capsys)
    assert rc == 2 and "exists and is not empty (use --overwrite" in stderr
    assert run(from_videos(videos, rig_file, out, "--overwrite"), capsys)[0] == 0
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    rc, _, stderr = run(from_videos(videos, rig_file, other, "--overwrite"), capsys)
    assert rc == 2 and "replaces only a bag folder" in stderr and (other / "keep.txt").exists()


# ---------------------------------------------------------------------------------- auto offset
def test_auto_offset_recovers_known_offsets_with_confidence(tmp_path, studio, rig_file, capsys):
    offsets = {"cam1": 2, "cam2": -3, "cam3": 1}
    videos = write_videos(tmp_path, studio, offsets)
    out = tmp_path / "bag"
    rc, stdout, stderr = run(from_videos(videos, rig_file, out, "--auto-offset", "--max-offset", "6"), capsys)
    assert rc == 0, stderr
    report = json.loads(stdout)
    assert report["offsets_frames"] == {"cam0": 0, **offsets} and report["offset_reference"] == "cam0"
    assert set(report["offset_confidence"]) == set(offsets)
    for name in offsets:
        assert f"auto offset camera {name}: offset {offsets[name]:+d} frames" in stderr
        assert report["offset_confidence"][name]["correlation"] >= SyncConfig.min_correlation
    # the bag is the one the explicit offsets give: every camera at k shows studio frame k + MARGIN
    frame = next(read_camera_frames(out))
    k = round((frame.stamp_ns - DEFAULT_START_NS) * FPS / 1e9)
    for v, name in enumerate(NAMES):
        np.testing.assert_array_equal(frame.images[name], studio[k + MARGIN, v])


def test_auto_offset_refuses_a_static_scene(tmp_path, static_studio, rig_file, capsys):
    """The subject stands still: only sensor noise and the light drift change. No estimate may pass."""
    videos = write_videos(tmp_path, static_studio, {"cam1": 2, "cam2": -3})
    rc, stdout, stderr = run(from_videos(videos, rig_file, tmp_path / "bag", "--auto-offset", "--max-offset", "6"),
                             capsys)
    assert rc == 2 and stdout == "" and not (tmp_path / "bag").exists()
    for name in ("cam1", "cam2", "cam3"):
        assert f"auto offset camera {name}: " in stderr and f"{name} (" in stderr.splitlines()[-1]
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("kp3d bag: error: --auto-offset: no reliable offset for ")
    assert "--offset CAMERA=FRAMES" in error
    # identical frames (a lossless still): the motion energy is flat, the correlation 0
    still = np.repeat(static_studio[:1], SYNC_FRAMES + 2 * MARGIN, axis=0)
    videos = write_videos(tmp_path, still, pattern="still_{}.mkv")
    rc, _, stderr = run(from_videos(videos, rig_file, tmp_path / "bag", "--auto-offset", "--max-offset", "6"), capsys)
    assert rc == 2 and "correlation 0.00" in stderr
    # the default window (+-1 s) needs 60 + 30 + 1 frames
    rc, _, stderr = run(from_videos(videos, rig_file, tmp_path / "bag", "--auto-offset"), capsys)
    assert rc == 2 and f"has {SYNC_FRAMES} frames in the --start/--end window, the estimate needs 91" in stderr


# --------------------------------------------------------------------------------------- replay
def test_the_bag_plays_with_kp3d_replay(tmp_path, studio, rig_file, capsys, ros_env):
    rclpy = pytest.importorskip("rclpy")
    from sensor_msgs.msg import CameraInfo, Image

    videos = write_videos(tmp_path, studio, {"cam1": 2}, lengths={n: 8 for n in NAMES})
    out = tmp_path / "bag"
    assert run(from_videos(videos, rig_file, out, "--offset", "cam1=2"), capsys)[0] == 0
    expected = {(t, topic): image_msg_to_rgb(m).copy() for topic, ms in bag_messages(out).items()
                if topic.endswith("image_raw") for t, m in ms}
    rclpy.init()
    node = rclpy.create_node("video_bag_replay_test")
    got, infos = [], []
    try:
        for name in NAMES:
            node.create_subscription(Image, f"/{name}/image_raw",
                                     lambda m, n=name: got.append((n, m)), rclpy.qos.qos_profile_sensor_data)
            node.create_subscription(CameraInfo, f"/{name}/camera_info", infos.append, 50)
        proc = subprocess.Popen([sys.executable, "-m", "kp3d_ros.cli", "replay", str(out), "--rate", "4",
                                 "--wait-subscribers", "20", "--delay", "0.5", "-q"],
                                env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (proc.poll() is None or len(got) < len(expected)):
            rclpy.spin_once(node, timeout_sec=0.05)
        output = proc.communicate(timeout=10)[0]
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert proc.returncode == 0, output
    assert f"{2 * len(expected)} messages" in output
    assert len(got) == len(expected)
    for name, msg in got:
        t = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        rgb = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
        np.testing.assert_array_equal(rgb, expected[(t, f"/{name}/image_raw")])
    assert len(infos) == len(expected) and infos[0].k[0] > 0
