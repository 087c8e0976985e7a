"""Studio outputs: dataset folder layout, never-seen cameras, preset determinism, bag, CLI."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_studio_render import standing_pose

from kp3d_core.camera import Camera, look_at
from kp3d_core.rig import Rig, load_rig, ring_rig
from kp3d_core.skeleton import JOINT_NAMES
from kp3d_core.studio.body import sample_subject
from kp3d_core.studio.dataset import Segment, render_dataset


def _segments(T=3):
    poses = np.stack([standing_pose((0.05 * t, 0.0), yaw=0.3 * t, arms_out=0.2 * t) for t in range(T)])
    return [Segment(poses, clip=0, subject=0)]


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_dataset_folder_layout_and_ground_truth(tmp_path):
    rig = ring_rig(2, width=160, height=120, dist=(-0.1, 0.01, 0.0, 0.0, 0.0))
    out = tmp_path / "ds"
    s = render_dataset(out, rig, _segments(3), ["poses"], [sample_subject(np.random.default_rng(0))],
                       seed=4, fps=25.0, preview=True, progress=False)
    assert s.num_frames == 3 and s.num_views == 6 and s.unseen_cameras == []
    m = yaml.safe_load((out / "manifest.yaml").read_text())
    for key in ("name", "split", "seed", "num_frames", "fps", "cameras", "image_size", "motion", "subjects",
                "joint_names", "generator"):
        assert key in m, key
    assert m["num_frames"] == 3 and m["cameras"] == ["cam0", "cam1"] and m["image_size"] == [160, 120]
    assert m["joint_names"] == list(JOINT_NAMES) and m["motion"] == ["poses"]
    assert load_rig(out / "rig.yaml").names == rig.names
    gt = np.load(out / "gt.npz")
    assert gt["joints3d"].shape == (3, 17, 3) and gt["joints3d"].dtype == np.float64
    assert gt["joints2d"].shape == (3, 2, 17, 2) and gt["joints2d"].dtype == np.float64
    assert gt["visible"].shape == (3, 2, 17) and gt["visible"].dtype == bool
    assert gt["in_frame"].dtype == bool and not (gt["visible"] & ~gt["in_frame"]).any()
    assert gt["stamps_ns"].dtype == np.int64 and np.all(np.diff(gt["stamps_ns"]) == 40_000_000)
    assert gt["clip"].dtype == np.int32 and gt["subject"].dtype == np.int32
    np.testing.assert_allclose(gt["joints2d"][1, 0], rig[0].project(gt["joints3d"][1]), atol=1e-9)
    for cam in rig.names:
        for t in range(3):
            img = cv2.imread(str(out / "images" / cam / f"{t:06d}.jpg"))
            mask = cv2.imread(str(out / "masks" / cam / f"{t:06d}.png"), cv2.IMREAD_UNCHANGED)
            assert img.shape == (120, 160, 3) and mask.shape == (120, 160)
            assert set(np.unique(mask)) <= {0, 255} and (mask > 0).sum() > 50
            # visible joints lie on the written mask
            v = rig.names.index(cam)
            uv = np.round(gt["joints2d"][t, v]).astype(int)
            vis = gt["visible"][t, v]
            assert mask[uv[vis, 1], uv[vis, 0]].all()
        bg = cv2.imread(str(out / "backgrounds" / f"{cam}.png"))
        assert bg.shape == (120, 160, 3) and bg.std() > 5   # textured, not flat
    assert (out / "preview.png").is_file()


def test_camera_that_never_sees_the_subject_is_reported_by_name(tmp_path):
    K = np.array([[150.0, 0, 79.5], [0, 150.0, 59.5], [0, 0, 1]])
    good = Camera.from_pose("good", K, np.zeros(5), 160, 120, look_at((4.0, 0.0, 1.5), (0.0, 0.0, 1.0)))
    away = Camera.from_pose("away", K, np.zeros(5), 160, 120, look_at((4.0, 0.5, 1.5), (8.0, 0.5, 1.0)))
    warnings = []
    s = render_dataset(tmp_path / "ds", Rig((good, away)), _segments(2), ["poses"],
                       [sample_subject(np.random.default_rng(0))], progress=False, warn=warnings.append)
    assert s.unseen_cameras == ["away"]
    assert len(warnings) == 1 and "'away'" in warnings[0]
    m = yaml.safe_load((tmp_path / "ds" / "manifest.yaml").read_text())
    assert m["cameras_never_seeing_subject"] == ["away"]


def test_studio_bench_slice_is_byte_identical_on_rerun(tmp_path):
    from kp3d_core.studio.presets import generate

    kw = dict(frames_limit=2, progress=False, log=lambda *_: None)
    a = generate("studio-bench", "test", tmp_path / "a", **kw)[0]
    b = generate("studio-bench", "test", tmp_path / "b", **kw)[0]
    fa, fb = _files(a.out), _files(b.out)
    assert len(fa) == 1 + 1 + 1 + 4 + 2 * 4 * 2   # manifest, rig, gt, backgrounds, 2 frames x 4 cams x (jpg, png)
    assert fa == fb
    m = yaml.safe_load((a.out / "manifest.yaml").read_text())
    assert m["split"] == "test" and m["num_frames"] == 2 and "procedural" in m["sources"] and "scene_seed" not in m
    # A scene seed changes the room (and its light) only: same people, motion and ground truth.
    c = generate("studio-bench", "test", tmp_path / "c", scene_seed=11, **kw)[0]
    fc = _files(c.out)
    assert fc["gt.npz"] == fa["gt.npz"] and fc["backgrounds/cam0.png"] != fa["backgrounds/cam0.png"]
    assert yaml.safe_load((c.out / "manifest.yaml").read_text())["scene_seed"] == 11


def test_preset_splits_hold_out_whole_clips():
    from kp3d_core.studio.presets import split_clips

    paths = [Path(f"clip{i:03d}.bvh") for i in range(50)]
    parts = {s: set(split_clips(paths, s)) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 50
    assert not (parts["train"] & parts["test"]) and not (parts["train"] & parts["val"])
    assert len(parts["test"]) == 10 and len(parts["val"]) == 5
    three = [Path(f"{i}.bvh") for i in range(3)]
    assert len(split_clips(three, "test")) == 1 and len(split_clips(three, "train")) == 2


def test_preset_without_motion_data_falls_back_to_procedural(tmp_path):
    from kp3d_core.studio.presets import resolve_sources

    used, notes = resolve_sources("studio-bench", None, tmp_path / "missing")
    assert used == ["procedural"] and len(notes) == 2 and "cmu" in notes[0]
    with pytest.raises(ValueError, match="unknown source 'bogus'"):
        resolve_sources("studio-bench", ["procedural", "bogus"], tmp_path)


def test_motion_root_found_from_the_working_directory_or_the_environment(tmp_path, monkeypatch):
    """The installed package lives under the venv: ../shared beside the repository (the working directory)
    must still be found, and $KP3D_MOTION_ROOT wins over both."""
    from kp3d_core.studio.presets import MOTION_ROOT_ENV, default_motion_root

    repo, motion = tmp_path / "repo", tmp_path / "shared" / "data" / "motion"
    repo.mkdir()
    motion.mkdir(parents=True)
    monkeypatch.delenv(MOTION_ROOT_ENV, raising=False)
    monkeypatch.chdir(repo)
    assert default_motion_root() == motion.resolve()
    monkeypatch.setenv(MOTION_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert default_motion_root() == tmp_path / "elsewhere"


def test_bag_written_with_jittered_header_stamps_equal_to_bag_times(tmp_path):
    bagio = pytest.importorskip("kp3d_core.bagio")
    rig = ring_rig(2, width=96, height=72)
    s = render_dataset(tmp_path / "ds", rig, _segments(3), ["poses"], [sample_subject(np.random.default_rng(0))],
                       bag_storage="mcap", jitter_ms=3.0, progress=False)
    gt = np.load(s.out / "gt.npz")
    cams = gt["camera_stamps_ns"]
    assert np.abs(cams - gt["stamps_ns"][:, None]).max() <= 3_000_000 and (cams != gt["stamps_ns"][:, None]).any()
    seen = 0
    for topic, msgtype, bag_ns, msg in bagio.read_bag(s.out / "bag"):
        assert bagio.stamp_to_ns(msg.header.stamp) == bag_ns
        if msgtype.endswith("Image"):
            cam, _ = topic.strip("/").split("/")
            t = int(np.flatnonzero(cams[:, rig.names.index(cam)] == bag_ns)[0])
            img = np.frombuffer(msg.data, np.uint8).reshape(72, 96, 3)
            assert np.abs(img.astype(int) - cv2.cvtColor(cv2.imread(str(s.out / "images" / cam / f"{t:06d}.jpg")),
                                                         cv2.COLOR_BGR2RGB)).mean() < 3   # jpg vs raw
            seen += 1
    assert seen == 6


def test_cli_synth_writes_a_dataset(tmp_path, capsys):
    from kp3d_ros.cli import main

    rc = main(["synth", "--cameras", "2", "--frames", "2", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert rc == 0
    assert (tmp_path / "cli" / "images" / "cam1" / "000001.jpg").is_file()
    assert "2 frames" in capsys.readouterr().out
    rc = main(["synth", "--cameras", "2", "--frames", "2", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert rc == 2 and "exists" in capsys.readouterr().err


def test_cli_synth_from_bvh_clips_skips_windows_orders_grounds_and_names_them(tmp_path, capsys):
    from test_studio_motion import ANKLES, _write_body_bvh, _write_map

    from kp3d_core.rig import save_rig
    from kp3d_core.studio.retarget import load_motion_dir
    from kp3d_ros.cli import main

    mocap = tmp_path / "mocap"
    mocap.mkdir()
    _write_body_bvh(mocap / "a.bvh", frames=121, hip_mm=0.0)     # 31 frames at 30 fps, origin at the hips
    _write_body_bvh(mocap / "b.bvh", frames=121, seed=1)
    joint_map = _write_map(tmp_path / "map.yaml")
    rig = tmp_path / "rig.yaml"
    save_rig(ring_rig(2, width=96, height=72), rig)
    base = ["synth", "--rig", str(rig), "--motion", str(mocap), "--joint-map", str(joint_map), "--clip-start", "6",
            "--clip-frames", "4", "--frames", "12", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "a.bvh" in err and "below the floor" in err and "b.bvh" not in err
    m = yaml.safe_load((tmp_path / "a" / "manifest.yaml").read_text())
    assert m["motion"] == ["mocap/a.bvh", "mocap/b.bvh"]     # <folder>/<file>: the folder is the motion source
    assert [(s["clip"], s["start"], s["frames"]) for s in m["subjects"]] == [("mocap/a.bvh", 6, 4),
                                                                            ("mocap/b.bvh", 6, 4), ("mocap/a.bvh", 6, 4)]
    gt = np.load(tmp_path / "a" / "gt.npz")
    assert gt["clip"].tolist() == [0] * 4 + [1] * 4 + [0] * 4 and gt["subject"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    clips = load_motion_dir(mocap, joint_map=joint_map, warn=lambda _: None)
    np.testing.assert_allclose(gt["joints3d"][4:8], clips[1].joints3d[6:10])
    assert gt["joints3d"][:4, ANKLES, 2].min() > 0.05             # the sunk clip was lifted onto the floor

    # --scene-seed: the same people and motion in another room; --clip-order shuffle (seed 0): b first
    assert main([*base, "--scene-seed", "5", "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "gt.npz")["joints3d"], gt["joints3d"])
    bg_a, bg_b = ((tmp_path / d / "backgrounds" / "cam0.png").read_bytes() for d in "ab")
    assert bg_a != bg_b and yaml.safe_load((tmp_path / "b" / "manifest.yaml").read_text())["scene_seed"] == 5
    assert main([*base, "--clip-order", "shuffle", "--out", str(tmp_path / "c")]) == 0
    assert yaml.safe_load((tmp_path / "c" / "manifest.yaml").read_text())["motion"] == ["mocap/b.bvh", "mocap/a.bvh"]
    assert (tmp_path / "c" / "backgrounds" / "cam0.png").read_bytes() == bg_a


def test_bad_options_fail_before_anything_is_written(tmp_path):
    rig = ring_rig(1, width=64, height=48)
    subj = [sample_subject(np.random.default_rng(0))]
    with pytest.raises(ValueError, match="--jitter-ms"):
        render_dataset(tmp_path / "j", rig, _segments(1), ["p"], subj, jitter_ms=20.0, fps=30.0, progress=False)
    with pytest.raises(ValueError, match="frames_limit"):
        render_dataset(tmp_path / "f", rig, _segments(1), ["p"], subj, frames_limit=0, progress=False)
    assert not (tmp_path / "j").exists() and not (tmp_path / "f").exists()


def test_bench_synth_prints_json_lines_with_rate_and_memory(capsys):
    import json

    from kp3d_ros.cli import main

    assert main(["bench", "synth", "--frames", "3", "--cameras", "2", "--width", "96", "--height", "72"]) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [line["mode"] for line in lines] == ["render", "render+write", "summary"]
    for line in lines:
        assert line["views_per_s"] > 0 and line["peak_rss_mib"] > 10
    assert lines[1]["dataset_mib"] > 0
