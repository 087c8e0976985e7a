"""ROS camera_calibration YAML (one file per camera) plus a kp3d extrinsics YAML.

Intrinsics: the camera_calibration_parsers layout that ``cameracalibrator`` writes (camera_name,
image_width, image_height, camera_matrix, distortion_model, distortion_coefficients,
rectification_matrix, projection_matrix). kp3d uses the raw image, so K and D are read;
rectification_matrix and projection_matrix describe a rectified stereo image and are ignored.
Distortion: ``plumb_bob`` (5 coefficients), ``rational_polynomial`` with k4 = k5 = k6 = 0;
``equidistant`` (fisheye) is refused: plumb_bob cannot hold it.

Extrinsics (metres, REP-103 optical frames: x right, y down, z forward)::

    world_frame: world                 # optional
    cameras:
      cam0:                            # a camera_name of an intrinsics file
        T_world_cam: [16 numbers]      # the camera's pose in the world (world <- camera), row-major
      cam1:
        T_cam_world:                   # or the inverse: world points -> camera frame
          translation: {x: 0.0, y: 0.0, z: 2.0}
          rotation: {x: 0.0, y: 0.0, z: 0.0, w: 1.0}   # unit quaternion, geometry_msgs order
        frame_id: cam1_optical_frame   # optional

Each camera gives exactly one of ``T_world_cam`` / ``T_cam_world``, as 16 numbers, 4 rows of 4, or
translation + rotation as in a geometry_msgs/Transform (what ``ros2 run tf2_ros tf2_echo`` prints).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..rig import Rig, camera_to_dict
from .errors import RigFormatError
from .fields import Where, build_camera
from .poses import invert, pose, quaternion_to_rotation, rotation_to_quaternion

EXTRINSICS_FILE = "extrinsics.yaml"
_POSE_KEYS = ("T_world_cam", "T_cam_world")


def _load_yaml(path: Path):
    where = Where(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise where.error(None, "file not found") from None
    except yaml.YAMLError as exc:
        raise where.error(None, f"not valid YAML: {' '.join(str(exc).split())}") from None


def _matrix(where: Where, entry: dict, key: str, rows: int, cols: int | None = None) -> np.ndarray:
    """A ``{rows, cols, data}`` matrix; ``cols=None`` accepts any length (distortion)."""
    m = where.require(entry, key)
    data = where.require(m, "data", f"{key}.data")
    if not isinstance(data, list):
        raise where.error(f"{key}.data", f"expected a list of numbers, got {type(data).__name__}")
    values = where.array(data, f"{key}.data", len(data))
    if cols is not None and values.size != rows * cols:
        raise where.error(key, f"expected {rows}x{cols} ({rows * cols} numbers), got {values.size}")
    for dim, expected in (("rows", rows), ("cols", cols if cols is not None else values.size // max(rows, 1))):
        if dim in m and m[dim] != expected:
            raise where.error(f"{key}.{dim}", f"is {m[dim]} but data holds {values.size} numbers ({expected} expected)")
    return values.reshape(rows, -1) if cols is not None else values


def _plumb_bob(where: Where, model, coeffs: np.ndarray) -> np.ndarray:
    """(5,) k1 k2 p1 p2 k3 from a ROS distortion model and its coefficients."""
    if coeffs.size == 0:
        return np.zeros(5)
    if model == "plumb_bob" and coeffs.size == 5:
        return coeffs
    if model == "rational_polynomial" and coeffs.size == 8:
        if np.any(coeffs[5:]):
            raise where.error("distortion_coefficients", f"rational_polynomial with k4..k6 = {coeffs[5:].tolist()} "
                                                         "cannot be held by plumb_bob (k4..k6 must be 0)")
        return coeffs[:5]
    if model in ("plumb_bob", "rational_polynomial"):
        n = 5 if model == "plumb_bob" else 8
        raise where.error("distortion_coefficients", f"{model} needs {n} coefficients, got {coeffs.size}")
    raise where.error("distortion_model", f"'{model}' is not supported: kp3d cameras hold plumb_bob "
                                          "(equidistant/fisheye cannot be converted exactly)")


def read_intrinsics(path: Path) -> tuple[str, dict]:
    """One camera_calibration YAML -> (camera name, fields for :func:`build_camera` without the pose)."""
    entry = _load_yaml(path)
    where = Where(path)
    name = where.require(entry, "camera_name")
    where = where.at(str(name))
    width = where.positive_int(where.require(entry, "image_width"), "image_width")
    height = where.positive_int(where.require(entry, "image_height"), "image_height")
    K = _matrix(where, entry, "camera_matrix", 3, 3)
    model = where.require(entry, "distortion_model")
    dist = _plumb_bob(where, model, _matrix(where, entry, "distortion_coefficients", 1))
    return str(name), {"K": K, "dist": dist, "width": width, "height": height}


def _transform(where: Where, value, field: str) -> np.ndarray:
    """(4, 4) from 16 numbers, 4 rows of 4, or {translation: {x,y,z}, rotation: {x,y,z,w}}."""
    if isinstance(value, dict):
        tr = where.require(value, "translation", f"{field}.translation")
        rot = where.require(value, "rotation", f"{field}.rotation")
        t = np.array([where.number(where.require(tr, k, f"{field}.translation.{k}"), f"{field}.translation.{k}")
                      for k in "xyz"])
        q = np.array([where.number(where.require(rot, k, f"{field}.rotation.{k}"), f"{field}.rotation.{k}")
                      for k in "xyzw"])
        norm = np.linalg.norm(q)
        # printed quaternions (tf2_echo: 3 decimals) miss unit length by ~1e-3; beyond 1 % it is not one
        if abs(norm - 1.0) > 1e-2:
            raise where.error(f"{field}.rotation", f"not a unit quaternion (norm {norm:.4g})")
        return pose(quaternion_to_rotation(q / norm), t)
    T = where.array(value, field, (4, 4))
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
        raise where.error(field, f"last row must be [0, 0, 0, 1], got {T[3].tolist()}")
    return pose(where.rotation(T[:3, :3], f"{field} (rotation)"), T[:3, 3])


def read_extrinsics(path: Path) -> tuple[str, dict[str, tuple[np.ndarray, str]]]:
    """The extrinsics YAML -> (world frame, camera name -> (T_world_cam (4, 4), frame_id))."""
    data = _load_yaml(path)
    where = Where(path)
    cams = where.require(data, "cameras")
    if not isinstance(cams, dict) or not cams:
        raise where.error("cameras", "expected a mapping camera name -> pose")
    poses = {}
    for name, entry in cams.items():
        w = where.at(str(name))
        keys = [k for k in _POSE_KEYS if isinstance(entry, dict) and k in entry]
        if len(keys) != 1:
            raise w.error("T_world_cam", "give exactly one of T_world_cam (the camera's pose in the world) "
                                         "or T_cam_world (world -> camera)" + (", got both" if len(keys) == 2 else ""))
        T = _transform(w, entry[keys[0]], keys[0])
        poses[str(name)] = (T if keys[0] == "T_world_cam" else invert(T), str(entry.get("frame_id") or ""))
    return str(data.get("world_frame") or "world"), poses


def _is_extrinsics(path: Path) -> bool:
    data = _load_yaml(path)
    return isinstance(data, dict) and "cameras" in data


def read(paths: list[Path]) -> Rig:
    """Intrinsics files (one per camera, in this order) and one extrinsics file -> rig in its world, metres."""
    extrinsics = [p for p in paths if _is_extrinsics(p)]
    intrinsics = [p for p in paths if p not in extrinsics]
    if len(extrinsics) != 1:
        found = ", ".join(map(str, extrinsics)) or "none"
        raise RigFormatError(f"ros: expected one extrinsics file (a YAML with 'cameras'), found {found}")
    if not intrinsics:
        raise RigFormatError("ros: no intrinsics file (camera_calibration YAML) given")
    world_frame, poses = read_extrinsics(extrinsics[0])
    cams = []
    for path in intrinsics:
        name, f = read_intrinsics(path)
        if name not in poses:
            raise Where(extrinsics[0], name).error("T_world_cam", f"missing: no entry for the camera of {path}")
        T_world_cam, frame_id = poses[name]
        R_cam_world = T_world_cam[:3, :3].T
        cams.append(build_camera(Where(path, name), name, f["K"], f["dist"], f["width"], f["height"],
                                 R_cam_world, -R_cam_world @ T_world_cam[:3, 3], frame_id))
    return Rig(tuple(cams), world_frame)


def write(rig: Rig, out: Path, metres_per_unit: float = 1.0) -> list[Path]:
    """``out/<camera>.yaml`` (camera_calibration layout) and ``out/extrinsics.yaml`` (T_world_cam as
    translation + quaternion, in units of ``metres_per_unit``)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    extrinsics = {}
    for cam in rig:
        entry = camera_to_dict(cam)
        entry.pop("T_world_cam")
        entry.pop("frame_id")
        path = out / f"{cam.name}.yaml"
        path.write_text(yaml.safe_dump(entry, sort_keys=False, default_flow_style=None))
        written.append(path)
        T = cam.T_world_cam
        t = T[:3, 3] / metres_per_unit
        q = rotation_to_quaternion(T[:3, :3])
        extrinsics[cam.name] = {
            "T_world_cam": {
                "translation": {k: float(v) for k, v in zip("xyz", t)},
                "rotation": {k: float(v) for k, v in zip("xyzw", q)},
            },
            "frame_id": cam.frame_id,
        }
    header = ("# kp3d extrinsics: T_world_cam is each camera optical frame's pose in the world\n"
              "# (world <- camera; REP-103 optical frame: x right, y down, z forward), translation in "
              f"{'metres' if metres_per_unit == 1.0 else f'units of {metres_per_unit:g} m'}.\n")
    path = out / EXTRINSICS_FILE
    path.write_text(header + yaml.safe_dump({"world_frame": rig.world_frame, "cameras": extrinsics},
                                            sort_keys=False, default_flow_style=False))
    return written + [path]
