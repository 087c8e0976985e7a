"""``kp3d rig import|export|show`` end to end: files written and read, printed figures, the JSON line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_rigio_formats import assert_same_pixels, write_qca

from kp3d_core.bagio import BagWriter
from kp3d_core.rig import load_rig, ring_rig, save_rig
from kp3d_core.rigio import export_rig
from kp3d_ros import cli as kp3d_cli

ROOT = Path(__file__).resolve().parent.parent


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``kp3d rig ARGV`` through the kp3d CLI (which turns user errors into one line and exit code 2)."""
    try:
        rc = kp3d_cli.main(["rig", *[str(a) for a in argv]])
    except SystemExit as exc:  # argparse: bad options
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_import_qualisys_with_floor_points(tmp_path, capsys):
    """A QTM lab frame with its floor 0.5 m below z = 0, imported with three floor points (mm)."""
    rig = ring_rig(4, heights=[1.5, 1.8, 2.1, 1.6], dist=(-0.1, 0.01, 0.0, 0.0, 0.001))
    lowered = [c.with_pose(c.T_world_cam + np.r_[np.zeros((2, 4)), [[0, 0, 0, -0.5]], np.zeros((1, 4))]) for c in rig]
    qca = write_qca(type(rig)(tuple(lowered)), tmp_path / "lab.qca.txt", serials=["101", "102", "103", "104"])
    rc, out, err = run(["import", "qualisys", qca, "--out", tmp_path / "rig.yaml",
                        "--floor-points", "0,0,-500; 2000,0,-500; 0,3000,-500"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("read 4 cameras from qualisys") and "unit: mm" in lines[0]
    assert "floor points" in lines[1]
    rows = {ln.split()[0]: [float(v) for v in ln.split()[1:5]] for ln in lines[3:7]}
    assert list(rows) == ["cam101", "cam102", "cam103", "cam104"]
    np.testing.assert_allclose([r[3] for r in rows.values()], [1.5, 1.8, 2.1, 1.6], atol=1e-3)  # height column
    assert lines[-1] == f"wrote {tmp_path / 'rig.yaml'}"
    back = load_rig(tmp_path / "rig.yaml")
    renamed = type(rig)(tuple(back[f"cam10{i + 1}"] for i in range(4)))
    np.testing.assert_allclose([c.center for c in renamed], [c.center for c in rig], atol=1e-9)


def test_import_renames_selects_and_warns(tmp_path, capsys):
    rig = ring_rig(3)
    files = [tmp_path / "cal.toml"]
    export_rig("anipose", rig, files[0])
    rc, out, err = run(["import", "anipose", files[0], "--units", "mm", "--up", "z", "--names", "a,b,3c",
                        "--cameras", "3c,a", "--out", tmp_path / "rig.yaml"], capsys)
    assert rc == 0, err
    assert load_rig(tmp_path / "rig.yaml").names == ["3c", "a"]
    assert "note: camera name(s) 3c are not valid ROS names" in out
    assert "? (floor unknown)" in out


@pytest.mark.parametrize("argv, message", [
    (["import", "anipose", "{d}/cal.toml", "--out", "{d}/rig.yaml"], "carry no length unit"),
    (["import", "anipose", "{d}/cal.toml", "--units", "mm", "--up", "z",
      "--T-world-source", "1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1", "--out", "{d}/rig.yaml"],
     "T_world_source sets the world by itself"),
    (["import", "anipose", "{d}/missing.toml", "--units", "mm", "--out", "{d}/rig.yaml"],
     "missing.toml: file not found"),
    (["import", "kalibr", "{d}/cal.toml", "--out", "{d}/rig.yaml"], "cal.toml: not valid YAML"),
    (["export", "opencv-stereo", "{d}/rig3.yaml", "--out", "{d}/s.yaml"], "two cameras"),
    (["show", "{d}/nope.yaml"], "rig file not found"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    export_rig("anipose", ring_rig(2), tmp_path / "cal.toml")
    save_rig(ring_rig(3), tmp_path / "rig3.yaml")
    rc, out, err = run([a.format(d=tmp_path) for a in argv], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("kp3d rig: error: ") and message in err, err


def test_export_then_import_every_writable_format(tmp_path, capsys):
    rig_path = ROOT / "config" / "studio_rig.yaml"
    rig = load_rig(rig_path)
    for fmt, out, back_args in [
        ("ros", tmp_path / "ros", ["{out}/cam0.yaml", "{out}/cam1.yaml", "{out}/cam2.yaml", "{out}/cam3.yaml",
                                   "{out}/extrinsics.yaml"]),
        ("anipose", tmp_path / "calibration.toml", ["{out}", "--units", "mm", "--up", "z"]),
        ("colmap", tmp_path / "colmap", ["{out}", "--scale", "1", "--up", "z"]),
    ]:
        rc, printed, err = run(["export", fmt, rig_path, "--out", out], capsys)
        assert rc == 0 and "wrote" in printed, err
        rc, _, err = run(["import", fmt, *[a.format(out=out) for a in back_args], "--out", tmp_path / f"{fmt}.yaml"],
                         capsys)
        assert rc == 0, err
        assert_same_pixels(rig, load_rig(tmp_path / f"{fmt}.yaml"))
    rc, printed, _ = run(["export", "opencv-stereo", rig_path, "--cameras", "cam0,cam2", "--out", tmp_path / "s.xml"],
                         capsys)
    assert rc == 0 and "camera 'cam0' becomes it" in printed


def test_show_studio_rig(tmp_path, capsys):
    rc, out, err = run(["show", ROOT / "config" / "studio_rig.yaml", "--out", tmp_path], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    summary = json.loads(lines[-1])
    assert lines[0] == str(tmp_path / "rig.png") and (tmp_path / "rig.png").stat().st_size > 10_000
    np.testing.assert_allclose(summary["meeting_point_m"], [0.0, 0.0, 1.0], atol=1e-4)  # ring_rig's target
    assert [c["height_m"] for c in summary["cameras"]] == [1.8] * 4
    assert [c["others_in_image"] for c in summary["cameras"]] == [1, 1, 1, 1]
    assert summary["bag_views"] == [] and summary["pngs"] == [str(tmp_path / "rig.png")]


def test_show_with_bag(tmp_path, capsys):
    """Each camera's first image with the others drawn on it; a camera missing from the bag is named."""
    rig = ring_rig(4, width=80, height=60, dist=(-0.05, 0.0, 0.0, 0.0, 0.0))
    save_rig(rig, tmp_path / "rig.yaml")
    with BagWriter(tmp_path / "bag") as bag:
        for cam in rig.cameras[:2]:
            bag.add_camera(cam.name)
        for t in range(2):
            for i, cam in enumerate(rig.cameras[:2]):
                rgb = np.full((60, 80, 3), 40 * (i + 1) + t, np.uint8)
                bag.write_image(cam.name, 1_000_000_000 + t * 33_000_000, rgb, cam)
    rc, out, err = run(["show", tmp_path / "rig.yaml", "--bag", tmp_path / "bag", "--out", tmp_path / "show"], capsys)
    assert rc == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["bag_views"] == ["cam0", "cam1"]
    assert "note: no /cam2/image_raw in" in out and "note: no /cam3/image_raw in" in out
    for name in ("cam0", "cam1"):
        png = tmp_path / "show" / f"view_{name}.png"
        assert str(png) in out.splitlines() and png.stat().st_size > 0
    # four cameras on a ring, 60 deg field of view: each sees the opposite one, not its neighbours
    assert [c["others_seen"] for c in summary["cameras"]] == [["cam2"], ["cam3"], ["cam0"], ["cam1"]]
    np.testing.assert_allclose(summary["meeting_point_m"], [0.0, 0.0, 1.0], atol=1e-4)
    assert all(c["meeting_point_px"] == [39.5, 29.5] for c in summary["cameras"])


def test_import_world_options_from_the_command_line(tmp_path, capsys):
    """--up=-y (a leading '-' needs '='), --camera-height, and floor points / a transform read from files."""
    rig = ring_rig(2, dist=(0.0,) * 5)
    chain = export_rig("kalibr", rig, tmp_path / "camchain.yaml")[0]
    rc, out, err = run(["import", "kalibr", chain, "--up=-y", "--camera-height", "cam0=2.5", "--out", tmp_path / "a.yaml"],
                       capsys)
    assert rc == 0, err
    assert abs(load_rig(tmp_path / "a.yaml")["cam0"].center[2] - 2.5) < 1e-12
    assert "2.5 m below camera 'cam0'" in out
    # cam0's frame: the floor 1.8 m below cam0 along the world's -z, written as points in cam0's frame
    floor_world = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    floor_cam0 = rig[0].world_to_camera(floor_world)
    (tmp_path / "floor.txt").write_text("# x y z in cam0's frame, metres\n"
                                        + "\n".join(" ".join(map(repr, p)) for p in floor_cam0.tolist()))
    (tmp_path / "T.txt").write_text(" ".join(map(repr, rig[0].T_world_cam.reshape(-1).tolist())))
    for extra in (["--floor-points", tmp_path / "floor.txt"], ["--T-world-source", tmp_path / "T.txt"]):
        rc, out, err = run(["import", "kalibr", chain, *extra, "--out", tmp_path / "b.yaml"], capsys)
        assert rc == 0, err
        np.testing.assert_allclose([c.center[2] for c in load_rig(tmp_path / "b.yaml")], [1.8, 1.8], atol=1e-9)
