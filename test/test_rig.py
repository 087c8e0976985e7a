"""Rig files: round trip, ring generator, malformed files name the file, camera and field."""
import numpy as np
import pytest
import yaml

from kp3d_core.camera import CalibrationError
from kp3d_core.rig import load_rig, ring_rig, save_rig


def test_round_trip(tmp_path):
    rig = ring_rig(4, radius=4.0, heights=[1.5, 1.8, 2.1, 1.6], dist=(-0.1, 0.01, 0.0, 0.0, 0.0))
    path = tmp_path / "rig.yaml"
    save_rig(rig, path)
    back = load_rig(path)
    assert back.names == ["cam0", "cam1", "cam2", "cam3"]
    for a, b in zip(rig, back):
        np.testing.assert_allclose(a.P, b.P, atol=1e-9)
        np.testing.assert_allclose(a.dist, b.dist)
        assert (a.width, a.height, a.frame_id) == (b.width, b.height, b.frame_id)
    entry = yaml.safe_load(path.read_text())["cameras"][0]
    for key in ("camera_matrix", "distortion_coefficients", "rectification_matrix", "projection_matrix"):
        assert set(entry[key]) == {"rows", "cols", "data"}
    assert len(entry["T_world_cam"]) == 16


def test_ring_cameras_look_at_target():
    rig = ring_rig(6, radius=3.0, heights=2.0, target=(0.0, 0.0, 1.0))
    uv = np.stack([c.project(np.array([[0.0, 0.0, 1.0]]))[0] for c in rig])
    np.testing.assert_allclose(uv, np.tile([319.5, 239.5], (6, 1)), atol=1e-6)
    np.testing.assert_allclose([np.linalg.norm(c.center[:2]) for c in rig], 3.0)


def _write(tmp_path, mutate):
    """A valid two-camera rig file with camera 'cam1' damaged by ``mutate``."""
    good = tmp_path / "good.yaml"
    save_rig(ring_rig(2), good)
    data = yaml.safe_load(good.read_text())
    mutate(data["cameras"][1])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda c: c.pop("camera_matrix"), "camera_matrix"),
        (lambda c: c["camera_matrix"].update(data=[1.0, 2.0]), "camera_matrix"),
        (lambda c: c["camera_matrix"]["data"].__setitem__(0, 0.0), "camera_matrix"),
        (lambda c: c["camera_matrix"]["data"].__setitem__(0, -400.0), "camera_matrix"),
        (lambda c: c.update(T_world_cam=[1.0] * 16), "T_world_cam"),
        (lambda c: c.update(T_world_cam=[1.0] * 9), "T_world_cam"),
        (lambda c: c.pop("image_width"), "image_width"),
    ],
)
def test_malformed_rig_names_file_camera_field(tmp_path, mutate, field):
    path = _write(tmp_path, mutate)
    with pytest.raises(CalibrationError) as err:
        load_rig(path)
    msg = str(err.value)
    assert "bad.yaml" in msg and "'cam1'" in msg and field in msg


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        load_rig(tmp_path / "nope.yaml")
    (tmp_path / "x.yaml").write_text("cameras: [\n")
    with pytest.raises(CalibrationError, match="YAML"):
        load_rig(tmp_path / "x.yaml")
