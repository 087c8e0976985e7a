"""Your own rig, end to end: a studio recording written out as video files plus a calibration in each supported
format, brought in with `kp3d rig import` and `kp3d bag from-videos`, gives the poses of the direct studio path.

The direct path runs the run-time estimator (what the node runs per synchronised set) on the bag `kp3d synth`
wrote, with the rig it rendered; the journey runs it on the bag made from lossless videos of the same frames,
with the rig exported to the format and imported back. Both use the recording's stored empty-scene backgrounds
(the node's `model.backgrounds`), so that a handful of frames is enough.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_rigio_formats import write_qca

from kp3d_core.bagio import read_camera_frames
from kp3d_core.inference.pipeline import EstimatorSettings, build_estimator
from kp3d_core.rig import load_rig, ring_rig, save_rig
from kp3d_ros import cli as kp3d_cli

ROOT = Path(__file__).resolve().parent.parent
FRAMES = 12
# plumb_bob without k3: the one distortion every format (Kalibr's radtan included) holds exactly
DIST = (-0.12, 0.02, 0.001, -0.0015, 0.0)


def _run(argv: list[str]) -> None:
    rc = kp3d_cli.main([str(a) for a in argv])
    assert rc == 0, f"kp3d {' '.join(map(str, argv))} exited {rc}"


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Path:
    """A 4-camera studio recording with lens distortion, as a dataset folder with its bag."""
    root = tmp_path_factory.mktemp("journey")
    rig_file = root / "rig.yaml"
    save_rig(ring_rig(4, radius=3.5, width=320, height=240, dist=DIST), rig_file)
    out = root / "studio"
    subprocess.run([sys.executable, "-m", "kp3d_ros.cli", "synth", "--out", str(out), "--rig", str(rig_file),
                    "--motion", "procedural", "--frames", str(FRAMES), "--seed", "4", "--bag", "--no-progress"],
                   check=True, cwd=ROOT, capture_output=True)
    return out


@pytest.fixture(scope="module")
def videos(studio) -> list[Path]:
    """One lossless (FFV1) video per camera, holding the bag's frames exactly."""
    frames = {}
    for frame in read_camera_frames(studio / "bag"):
        for cam, rgb in frame.images.items():
            frames.setdefault(cam, []).append(rgb)
    paths = []
    for cam, images in frames.items():
        path = studio.parent / "videos" / f"take_{cam}.mkv"
        path.parent.mkdir(exist_ok=True)
        h, w = images[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, (w, h))
        for rgb in images:
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        writer.release()
        paths.append(path)
    return paths


def _poses(bag: Path, rig, backgrounds: Path) -> np.ndarray:
    """(T, 17, 3) metres: the estimator's pose of every synchronised set of the bag's cameras of ``rig``, in order
    (NaN: no pose)."""
    est = build_estimator(EstimatorSettings(backend="onnxruntime", backgrounds=backgrounds), rig)
    out = []
    for frame in read_camera_frames(bag, rig.names):
        e = est.process(frame.images, frame.stamp_ns)
        out.append(np.full((17, 3), np.nan) if e.pose is None else e.pose)
    return np.asarray(out)


def _calibration(fmt: str, rig_file: Path, folder: Path) -> tuple[list[Path], list[str]]:
    """The rig written in ``fmt`` (by `kp3d rig export`, or the test's QTM writer: QTM makes those files) and the
    import options that place its world where the studio's is."""
    rig = load_rig(rig_file)
    T0 = " ".join(repr(float(v)) for v in rig[0].T_world_cam.ravel())
    if fmt == "qualisys":
        return [write_qca(rig, folder / "lab.qca.txt")], []  # the QTM lab frame is z up, floor at 0, mm
    _run(["rig", "export", fmt, rig_file, "--out", folder / fmt,
          *(["--cameras", "cam0,cam1"] if fmt == "opencv-stereo" else [])])
    written = sorted((folder / fmt).iterdir()) if (folder / fmt).is_dir() else [folder / fmt]
    options = {
        "ros": [],
        "kalibr": ["--T-world-source", T0],  # camchains hold no world: the user says where cam0 is
        "anipose": ["--units", "mm", "--up", "z"],
        "colmap": ["--units", "m", "--up", "z"],
        "opencv-stereo": ["--units", "m", "--T-world-source", T0],
    }[fmt]
    return written, options


@pytest.fixture(scope="module")
def direct(studio) -> np.ndarray:
    poses = _poses(studio / "bag", load_rig(studio / "rig.yaml"), studio / "backgrounds")
    assert np.isfinite(poses).all(axis=(1, 2)).sum() >= FRAMES // 2, "the direct path gives too few poses to compare"
    return poses


@pytest.mark.parametrize("fmt", ["ros", "kalibr", "anipose", "qualisys", "colmap", "opencv-stereo"])
def test_videos_and_each_calibration_format_give_the_direct_poses(studio, videos, direct, fmt, tmp_path):
    files, options = _calibration(fmt, studio / "rig.yaml", tmp_path)
    rig_file = tmp_path / "imported.yaml"
    _run(["rig", "import", fmt, *files, "--out", rig_file, *options])
    cameras = ["cam0", "cam1"] if fmt == "opencv-stereo" else ["cam0", "cam1", "cam2", "cam3"]
    bag = tmp_path / "bag"
    _run(["bag", "from-videos", *[v for v in videos if v.stem.split("_")[-1] in cameras], "--rig", rig_file,
          "--out", bag, "--no-progress"])
    rig = load_rig(rig_file)
    assert rig.names == cameras
    poses = _poses(bag, rig, studio / "backgrounds")
    if fmt == "opencv-stereo":  # two cameras: compare with the direct path on the same two
        reference = _poses(studio / "bag", load_rig(studio / "rig.yaml").subset(cameras), studio / "backgrounds")
    else:
        reference = direct
    assert poses.shape == reference.shape
    both = np.isfinite(poses).all(axis=(1, 2)) & np.isfinite(reference).all(axis=(1, 2))
    assert np.array_equal(np.isfinite(poses).all(axis=(1, 2)), np.isfinite(reference).all(axis=(1, 2)))
    assert both.sum() >= 1
    assert np.abs(poses[both] - reference[both]).max() < 1e-3  # metres: within 1 mm
