"""``kp3d background``: backgrounds for the node from an empty-scene bag, a warning when the capture is not empty,
the picture, learning them from the recording itself (``--person``), and one-line errors."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kp3d_core.background import load_stored_backgrounds
from kp3d_core.bagio import BagWriter
from kp3d_core.rig import ring_rig, save_rig
from kp3d_ros.cli import main as kp3d


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """A tiny studio recording with its bag, rig and true backgrounds (3 cameras, 160x120, 80 frames: past the 45-frame warm-up)."""
    root = tmp_path_factory.mktemp("background")
    save_rig(ring_rig(3, width=160, height=120), root / "rig.yaml")
    assert kp3d(["synth", "--rig", str(root / "rig.yaml"), "--frames", "80", "--out", str(root / "rec"), "--bag",
                 "--no-progress"]) == 0
    return root / "rec"


@pytest.fixture(scope="module")
def empty_bag(recording, tmp_path_factory) -> Path:
    """A few seconds of the empty room: the true backgrounds with camera noise, 20 frames per camera."""
    rig = ring_rig(3, width=160, height=120)
    bag = tmp_path_factory.mktemp("empty") / "bag"
    rng = np.random.default_rng(0)
    with BagWriter(bag) as writer:
        for cam in rig:
            writer.add_camera(cam.name)
        for t in range(20):
            for cam in rig:
                bg = cv2.cvtColor(cv2.imread(str(recording / "backgrounds" / f"{cam.name}.png")), cv2.COLOR_BGR2RGB)
                noisy = np.clip(bg.astype(np.int16) + rng.integers(-3, 4, bg.shape), 0, 255).astype(np.uint8)
                writer.write_image(cam.name, 1_000_000_000 + t * 33_333_333, noisy, cam)
    return bag


def run(argv, capsys):
    try:
        code = kp3d(["background", *argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_empty_scene_gives_the_room_the_node_loads_and_a_picture(recording, empty_bag, tmp_path, capsys):
    out = tmp_path / "bg"
    code, stdout, err = run(["--bag", str(empty_bag), "--out", str(out), "--check-bag", str(recording / "bag"),
                             "--rig", str(recording / "rig.yaml"), "--no-progress"], capsys)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["mode"] == "empty" and summary["warnings"] == 0 and "warning" not in err
    names = ["cam0", "cam1", "cam2"]
    loaded = load_stored_backgrounds(out, list(ring_rig(3, width=160, height=120).cameras))  # what the node's model.backgrounds reads
    for name, bg in zip(names, loaded):
        true = cv2.cvtColor(cv2.imread(str(recording / "backgrounds" / f"{name}.png")), cv2.COLOR_BGR2RGB)
        assert np.abs(bg.astype(int) - true).max() <= 3  # the room, the noise gone
        cam = summary["cameras"][name]
        assert cam["moving_frames_pct"] == 0.0
        assert 0.0 < cam["foreground_pct"] < 30.0 and 0.1 < cam["box_side_frac"] <= 1.0  # the person, boxed
    picture = cv2.imread(str(out / "background.png"))
    assert picture.shape[0] > 3 * 100 and picture.shape[1] == 3 * 320  # a row per camera: background, frame, mask


def test_a_capture_with_the_person_in_it_is_not_empty_and_says_what_to_do(recording, tmp_path, capsys):
    code, stdout, err = run(["--bag", str(recording / "bag"), "--out", str(tmp_path / "bg"), "--no-progress"], capsys)
    assert code == 0
    assert json.loads(stdout.strip().splitlines()[-1])["warnings"] >= 1
    assert "the capture is not empty" in err and "--person" in err


def test_person_mode_learns_the_backgrounds_as_the_node_does(recording, tmp_path, capsys):
    out = tmp_path / "bg"
    code, stdout, err = run(["--bag", str(recording / "bag"), "--rig", str(recording / "rig.yaml"), "--person",
                             "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["mode"] == "person"
    for name in ("cam0", "cam1", "cam2"):
        cam = summary["cameras"][name]
        assert cam["frames"] > 0 and 0.0 <= cam["never_free_of_person_pct"] <= 100.0
        assert (out / f"{name}.png").is_file()
    assert (out / "background.png").is_file()


@pytest.mark.parametrize("case, culprit", [
    ("no-bag", "metadata.yaml"), ("person-without-rig", "--rig"), ("end-before-start", "--end"),
    ("checkpoint-without-person", "--checkpoint"), ("window-without-frames", "no synchronised frame"),
])
def test_bad_input_is_one_line(case, culprit, recording, empty_bag, tmp_path, capsys):
    base = ["--bag", str(empty_bag), "--out", str(tmp_path / "bg")]
    argv = {
        "no-bag": ["--bag", str(tmp_path / "nowhere"), "--out", str(tmp_path / "bg")],
        "person-without-rig": base + ["--person"],
        "end-before-start": base + ["--start", "2", "--end", "1"],
        "checkpoint-without-person": base + ["--checkpoint", str(tmp_path / "x.pt")],
        "window-without-frames": base + ["--start", "100"],
    }[case]
    code, _, err = run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and culprit in err, err
