"""Rig files: N calibrated cameras in one YAML file, and a generator for rings of cameras.

Layout (per camera, the camera_calibration_parsers fields plus the pose)::

    world_frame: world
    cameras:
      - camera_name: cam0
        frame_id: cam0_optical_frame
        image_width: 640
        image_height: 480
        camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
        distortion_model: plumb_bob
        distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
        rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
        projection_matrix: {rows: 3, cols: 4, data: [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0]}
        T_world_cam: [16 values, row-major, world <- camera optical frame, metres]

Flat 16 values rather than nested lists, so the same numbers can live in a ROS parameter file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .camera import CalibrationError, Camera, look_at

_MATRICES = {
    "camera_matrix": (3, 3),
    "distortion_coefficients": (1, 5),
    "rectification_matrix": (3, 3),
    "projection_matrix": (3, 4),
}


@dataclass(frozen=True)
class Rig:
    """Cameras of one capture rig, in a fixed order, and the world frame id."""

    cameras: tuple[Camera, ...]
    world_frame: str = "world"

    def __post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise CalibrationError(f"rig: duplicate camera names {names}")

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self):
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            for cam in self.cameras:
                if cam.name == key:
                    return cam
            raise KeyError(f"rig has no camera '{key}' (cameras: {self.names})")
        return self.cameras[key]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def projection_matrices(self) -> np.ndarray:
        """(V, 3, 4) ideal projection matrices, world -> undistorted pixels."""
        return np.stack([c.P for c in self.cameras])

    def subset(self, names: list[str]) -> "Rig":
        return Rig(tuple(self[n] for n in names), self.world_frame)


def _matrix_entry(data: np.ndarray) -> dict:
    rows, cols = data.shape
    return {"rows": int(rows), "cols": int(cols), "data": [float(v) for v in data.reshape(-1)]}


def camera_to_dict(cam: Camera) -> dict:
    """One camera as a rig-file entry."""
    P = np.hstack([cam.K, np.zeros((3, 1))])
    return {
        "camera_name": cam.name,
        "frame_id": cam.frame_id,
        "image_width": int(cam.width),
        "image_height": int(cam.height),
        "camera_matrix": _matrix_entry(cam.K),
        "distortion_model": "plumb_bob",
        "distortion_coefficients": _matrix_entry(cam.dist.reshape(1, 5)),
        "rectification_matrix": _matrix_entry(np.eye(3)),
        "projection_matrix": _matrix_entry(P),
        "T_world_cam": [float(v) for v in cam.T_world_cam.reshape(-1)],
    }


def _read_matrix(name: str, entry: dict, key: str) -> np.ndarray:
    if key not in entry:
        raise CalibrationError(f"camera '{name}': field '{key}': missing")
    m = entry[key]
    if not isinstance(m, dict) or "data" not in m:
        raise CalibrationError(f"camera '{name}': field '{key}': expected a mapping with rows, cols and data")
    rows, cols = _MATRICES[key]
    data = m["data"]
    if not isinstance(data, (list, tuple)):
        raise CalibrationError(f"camera '{name}': field '{key}.data': expected a list, got {type(data).__name__}")
    if key == "distortion_coefficients" and len(data) == 0:
        data = [0.0] * 5
    if len(data) != rows * cols or (m.get("rows", rows), m.get("cols", cols)) != (rows, cols):
        raise CalibrationError(
            f"camera '{name}': field '{key}': expected {rows}x{cols} ({rows * cols} values), "
            f"got rows={m.get('rows')} cols={m.get('cols')} with {len(data)} values"
        )
    try:
        return np.asarray(data, dtype=np.float64).reshape(rows, cols)
    except (TypeError, ValueError):
        raise CalibrationError(f"camera '{name}': field '{key}.data': not numeric") from None


def camera_from_dict(entry: dict, index: int = 0) -> Camera:
    """Parse one rig-file entry; errors name the camera and the field."""
    if not isinstance(entry, dict):
        raise CalibrationError(f"camera #{index}: expected a mapping, got {type(entry).__name__}")
    name = entry.get("camera_name")
    if not name:
        raise CalibrationError(f"camera #{index}: field 'camera_name': missing")
    for key in ("image_width", "image_height", "T_world_cam"):
        if key not in entry:
            raise CalibrationError(f"camera '{name}': field '{key}': missing")
    model = entry.get("distortion_model", "plumb_bob")
    if model != "plumb_bob":
        raise CalibrationError(f"camera '{name}': field 'distortion_model': only plumb_bob is supported, got '{model}'")
    K = _read_matrix(name, entry, "camera_matrix")
    dist = _read_matrix(name, entry, "distortion_coefficients").reshape(5)
    T = entry["T_world_cam"]
    if not isinstance(T, (list, tuple)) or len(T) != 16:
        raise CalibrationError(f"camera '{name}': field 'T_world_cam': expected 16 values (4x4 row-major)")
    try:
        width, height = int(entry["image_width"]), int(entry["image_height"])
    except (TypeError, ValueError):
        raise CalibrationError(f"camera '{name}': field 'image_width/image_height': not integers") from None
    return Camera.from_pose(str(name), K, dist, width, height, T, str(entry.get("frame_id", "")))


def rig_to_dict(rig: Rig) -> dict:
    return {"world_frame": rig.world_frame, "cameras": [camera_to_dict(c) for c in rig.cameras]}


def rig_from_dict(data: dict, source: str = "rig") -> Rig:
    if not isinstance(data, dict) or "cameras" not in data:
        raise CalibrationError(f"{source}: field 'cameras': missing")
    if not isinstance(data["cameras"], list) or not data["cameras"]:
        raise CalibrationError(f"{source}: field 'cameras': expected a non-empty list")
    cams = tuple(camera_from_dict(e, i) for i, e in enumerate(data["cameras"]))
    return Rig(cams, str(data.get("world_frame", "world")))


def load_rig(path: str | Path) -> Rig:
    """Read a rig file; a malformed file raises :class:`CalibrationError` naming the file, camera and field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"{path}: rig file not found") from None
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: not valid YAML: {exc}") from None
    try:
        return rig_from_dict(data, str(path))
    except CalibrationError as exc:
        raise CalibrationError(f"{path}: {exc}") from None


def save_rig(rig: Rig, path: str | Path) -> None:
    """Write a rig file (atomically: a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(rig_to_dict(rig), sort_keys=False, default_flow_style=None))
    tmp.replace(path)


def ring_rig(
    num_cameras: int = 4,
    radius: float = 4.0,
    heights: float | list[float] = 1.8,
    target=(0.0, 0.0, 1.0),
    width: int = 640,
    height: int = 480,
    hfov_deg: float = 60.0,
    dist=(0.0, 0.0, 0.0, 0.0, 0.0),
    start_angle_deg: float = 45.0,
    world_frame: str = "world",
) -> Rig:
    """Cameras evenly spaced on a horizontal ring (world z up), each looking at ``target``.

    ``heights`` is one height (metres) or one per camera. Focal length from the horizontal field of view.
    """
    hs = np.broadcast_to(np.asarray(heights, dtype=np.float64), (num_cameras,))
    f = 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2)
    K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    cams = []
    for i in range(num_cameras):
        a = np.deg2rad(start_angle_deg) + 2 * np.pi * i / num_cameras
        eye = np.array([radius * np.cos(a), radius * np.sin(a), hs[i]])
        cams.append(Camera.from_pose(f"cam{i}", K, dist, width, height, look_at(eye, target)))
    return Rig(tuple(cams), world_frame)
