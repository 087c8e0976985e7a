"""Kalibr camchain YAML (``kalibr_calibrate_cameras`` output), read and written.

Per camera ``camN`` (N = 0, 1, ... without gaps): ``camera_model: pinhole``, ``intrinsics: [fu, fv,
pu, pv]`` (pixels), ``distortion_model: radtan`` with ``distortion_coeffs: [k1, k2, r1, r2]`` (OpenCV's
k1 k2 p1 p2; Kalibr's radtan has no k3), ``resolution: [width, height]``, and for N >= 1
``T_cn_cnm1``: the 4x4 transform taking points from camera N-1's frame to camera N's (metres).
The world is cam0's optical frame (x right, y down, z forward). ``equidistant`` (fisheye), ``fov``
and non-pinhole models are refused: plumb_bob cannot hold them exactly. Other keys (``rostopic``,
``T_cam_imu``, ``cam_overlaps``, ...) are ignored.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from ..rig import Rig
from .errors import RigFormatError
from .fields import Where, build_camera
from .poses import invert, pose

_CAM_KEY = re.compile(r"^cam(\d+)$")


def read(paths: list[Path]) -> Rig:
    """One camchain YAML -> rig in cam0's optical frame, metres."""
    if len(paths) != 1:
        raise RigFormatError(f"kalibr: expected one camchain YAML, got {len(paths)} files")
    path = paths[0]
    where = Where(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise where.error(None, "file not found") from None
    except yaml.YAMLError as exc:
        raise where.error(None, f"not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise where.error("cam0", "missing (not a Kalibr camchain)")
    indices = sorted(int(m.group(1)) for k in data if (m := _CAM_KEY.match(str(k))))
    if not indices:
        raise where.error("cam0", "missing (not a Kalibr camchain)")
    if indices != list(range(len(indices))):
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        raise where.error(f"cam{missing[0]}", "missing: the chain needs cam0, cam1, ... without gaps")
    cams = []
    T_c0_cn = np.eye(4)
    for n in indices:
        name = f"cam{n}"
        w = where.at(name)
        entry = w.require(data, name)
        model = w.require(entry, "camera_model")
        if model != "pinhole":
            raise w.error("camera_model", f"'{model}' is not supported: kp3d cameras are pinhole")
        fu, fv, pu, pv = w.array(w.require(entry, "intrinsics"), "intrinsics", 4)
        resolution = w.array(w.require(entry, "resolution"), "resolution", 2)
        width, height = (w.positive_int(v, "resolution") for v in resolution)
        dist_model = w.require(entry, "distortion_model")
        if dist_model == "radtan":
            k1, k2, p1, p2 = w.array(w.require(entry, "distortion_coeffs"), "distortion_coeffs", 4)
            dist = np.array([k1, k2, p1, p2, 0.0])
        elif dist_model == "none":
            dist = np.zeros(5)
        else:
            raise w.error("distortion_model", f"'{dist_model}' is not supported: only radtan (and none) convert "
                                              "exactly to plumb_bob; recalibrate with radtan")
        if n > 0:
            T_cn_cnm1 = w.array(w.require(entry, "T_cn_cnm1"), "T_cn_cnm1", (4, 4))
            if not np.allclose(T_cn_cnm1[3], [0.0, 0.0, 0.0, 1.0]):
                raise w.error("T_cn_cnm1", f"last row must be [0, 0, 0, 1], got {T_cn_cnm1[3].tolist()}")
            T_cn_cnm1 = pose(w.rotation(T_cn_cnm1[:3, :3], "T_cn_cnm1 (rotation)"), T_cn_cnm1[:3, 3])
            T_c0_cn = T_c0_cn @ invert(T_cn_cnm1)
        K = np.array([[fu, 0.0, pu], [0.0, fv, pv], [0.0, 0.0, 1.0]])
        T_cn_c0 = invert(T_c0_cn)
        cams.append(build_camera(w, name, K, dist, width, height, T_cn_c0[:3, :3], T_cn_c0[:3, 3]))
    return Rig(tuple(cams))


def write(rig: Rig, out: Path, metres_per_unit: float = 1.0) -> list[Path]:
    """A camchain YAML: the rig's cameras as cam0, cam1, ... in order (their names kept only in
    ``rostopic: /<name>/image_raw``); the world is lost (Kalibr's world is cam0)."""
    chain = {}
    for n, cam in enumerate(rig):
        if cam.dist[4] != 0.0:
            raise RigFormatError(f"{out}: camera '{cam.name}': field 'distortion_coeffs': Kalibr's radtan holds "
                                 f"k1 k2 p1 p2 only; k3 = {cam.dist[4]:g} would be lost")
        entry = {}
        if n > 0:
            T = invert(cam.T_world_cam) @ rig[n - 1].T_world_cam
            T[:3, 3] /= metres_per_unit
            entry["T_cn_cnm1"] = [[float(v) for v in row] for row in T]
        entry.update({
            "camera_model": "pinhole",
            "intrinsics": [float(cam.K[0, 0]), float(cam.K[1, 1]), float(cam.K[0, 2]), float(cam.K[1, 2])],
            "distortion_model": "radtan",
            "distortion_coeffs": [float(v) for v in cam.dist[:4]],
            "resolution": [int(cam.width), int(cam.height)],
            "rostopic": f"/{cam.name}/image_raw",
        })
        chain[f"cam{n}"] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(chain, sort_keys=False, default_flow_style=None))
    return [out]
