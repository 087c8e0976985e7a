"""Every bad input through the real ``kp3d`` command gives exit code 2 and one line naming the culprit.

Each case runs ``python -m kp3d_ros.cli ...`` in a subprocess from an empty working folder (the working
tree on PYTHONPATH, so the checkout is tested, not the installed copy). The cases run concurrently: most
of their time is each process importing torch.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_export import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# A BVH skeleton no shipped joint map fits (one joint, no limbs), and one that is not BVH at all.
ALIEN_BVH = """HIERARCHY
ROOT Blob
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  End Site
  {
    OFFSET 0 1 0
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 0 0 0 0 0
0 0 0 0 0 0
"""

# id: (kp3d arguments, text the error line must contain: the file, field, folder or option at fault)
CASES = {
    "eval-corrupt-checkpoint": (["eval", "--checkpoint", "corrupt.pt", "--data", "studio"], "corrupt.pt"),
    "map-corrupt-checkpoint": (["map", "--checkpoint", "corrupt.pt", "--data", "studio"], "corrupt.pt"),
    "export-corrupt-checkpoint": (["export", "--checkpoint", "corrupt.pt", "--onnx", "m.onnx"], "corrupt.pt"),
    "train-unknown-config-key": (["train", "--config", "unknown_key.yaml"], "model.bogus_width"),
    "train-missing-config": (["train", "--config", "no_such_config.yaml"], "no_such_config.yaml"),
    "train-missing-data-folder": (["train", "--config", "no_data.yaml"], "no_such_studio"),
    "eval-missing-data-folder": (["eval", "--data", "no_such_studio"], "no_such_studio"),
    "map-missing-data-folder": (["map", "--checkpoint", "tiny.pt", "--data", "no_such_studio"], "no_such_studio"),
    "synth-malformed-rig": (["synth", "--rig", "bad_rig.yaml", "--out", "o"], "bad_rig.yaml"),
    "synth-no-joint-map-fits": (["synth", "--motion", "alien", "--out", "o"], "alien.bvh"),
    "synth-not-a-bvh": (["synth", "--motion", "garbage", "--out", "o"], "garbage.bvh"),
    "synth-missing-joint-map": (["synth", "--motion", "alien", "--joint-map", "no_map.yaml", "--out", "o"], "no_map.yaml"),
    "synth-output-not-empty": (["synth", "--frames", "1", "--cameras", "1", "--out", "full"], "full"),
    "synth-zero-frames": (["synth", "--frames", "0", "--out", "o"], "--frames"),
    "synth-preset-with-rig": (["synth", "--preset", "studio-bench", "--rig", "bad_rig.yaml", "--out", "o"], "--rig"),
    "replay-missing-bag": (["replay", "no_such_bag"], "no_such_bag"),
    "bench-node-bad-size": (["bench", "node", "--size", "640by480"], "--size"),
    "unknown-command": (["fly"], "'fly'"),
}


def _write_inputs(folder: Path) -> None:
    (folder / "corrupt.pt").write_bytes(os.urandom(512))
    tiny_checkpoint(folder / "tiny.pt")
    (folder / "unknown_key.yaml").write_text("model:\n  bogus_width: 3\n")
    (folder / "no_data.yaml").write_text("data:\n  source: studio\n  path: no_such_studio\ntrain:\n  device: cpu\n")
    (folder / "bad_rig.yaml").write_text("cameras:\n  - camera_name: cam0\n    image_width: 640\n")
    (folder / "alien").mkdir()
    (folder / "alien" / "alien.bvh").write_text(ALIEN_BVH)
    (folder / "garbage").mkdir()
    (folder / "garbage" / "garbage.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET zero\n")
    (folder / "full").mkdir()
    (folder / "full" / "keep.txt").write_text("not a dataset")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               KP3D_MOTION_ROOT=str(cwd / "no_motion"), KP3D_STUDIO_BENCH=str(cwd / "no_bench"))
    return subprocess.run([sys.executable, "-m", "kp3d_ros.cli", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("cli_errors")
    _write_inputs(folder)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        runs = {name: pool.submit(_run, argv, folder) for name, (argv, _) in CASES.items()}
    return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_code_2(case, results):
    argv, culprit = CASES[case]
    r = results[case]
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kp3d"), lines[0]
    assert culprit in lines[0], lines[0]


def test_every_user_error_type_named_by_the_cli_exists():
    """``kp3d_ros.cli.USER_ERRORS`` names classes by string (so catching them imports nothing): each must resolve."""
    import importlib

    from kp3d_ros.cli import USER_ERRORS

    for module, names in USER_ERRORS.items():
        for name in names:
            assert issubclass(getattr(importlib.import_module(module), name), Exception), f"{module}.{name}"


def test_a_message_of_several_lines_is_printed_on_one(tmp_path, capsys):
    """YAML parser messages span several lines; the error stays one line (in-process: the same CLI code)."""
    from kp3d_ros.cli import main

    (tmp_path / "broken.yaml").write_text("model: [32,\n  width: 3\n")
    assert main(["train", "--config", str(tmp_path / "broken.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kp3d train: error: ") and "broken.yaml: invalid YAML" in err
