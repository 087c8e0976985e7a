"""Anipose / aniposelib calibration TOML (``calibration.toml``), read and written.

One table per camera, ``[cam_0]``, ``[cam_1]``, ... (a ``[metadata]`` table is ignored)::

    [cam_0]
    name = "A"
    size = [1280, 1024]                         # width, height, pixels
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]          # OpenCV order (4 values: k3 = 0)
    rotation = [rx, ry, rz]                     # Rodrigues vector, world -> camera
    translation = [tx, ty, tz]                  # world -> camera, in the calibration board's unit

``X_cam = R(rotation) @ X_world + translation``. The file has no unit: it is the board's
(``square_length``), often millimetres. aniposelib's fisheye cameras (``fisheye = true``) are refused.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np

from ..rig import Rig
from .errors import RigFormatError
from .fields import Where, build_camera
from .poses import rodrigues_to_rotation, rotation_to_rodrigues

_CAM_KEY = re.compile(r"^cam_(\d+)$")


def read(paths: list[Path]) -> Rig:
    """One calibration TOML -> rig in the calibration's world, in the file's (board) unit."""
    if len(paths) != 1:
        raise RigFormatError(f"anipose: expected one calibration TOML, got {len(paths)} files")
    path = paths[0]
    where = Where(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise where.error(None, "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise where.error(None, f"not valid TOML: {exc}") from None
    keys = sorted((int(m.group(1)), k) for k in data if (m := _CAM_KEY.match(k)))
    if not keys:
        raise where.error("cam_0", "missing (no [cam_N] table: not an anipose calibration)")
    cams = []
    for _, key in keys:
        entry = data[key]
        name = str(where.at(key).require(entry, "name"))
        w = where.at(name)
        if entry.get("fisheye", False):
            raise w.error("fisheye", "aniposelib fisheye cameras are not supported: plumb_bob cannot hold them")
        width, height = (w.positive_int(v, "size") for v in w.array(w.require(entry, "size"), "size", 2))
        K = w.array(w.require(entry, "matrix"), "matrix", (3, 3))
        raw = w.require(entry, "distortions")
        n = len(raw) if isinstance(raw, list) else 0
        if n not in (4, 5):
            raise w.error("distortions", f"expected a list of 4 or 5 numbers (k1 k2 p1 p2 [k3]), got {raw!r}")
        dist = np.pad(w.array(raw, "distortions", n), (0, 5 - n))
        rvec = w.array(w.require(entry, "rotation"), "rotation", 3)
        tvec = w.array(w.require(entry, "translation"), "translation", 3)
        cams.append(build_camera(w, name, K, dist, width, height, rodrigues_to_rotation(rvec), tvec))
    return Rig(tuple(cams))


def _numbers(values) -> str:
    return "[" + ", ".join(repr(float(v)) for v in np.asarray(values).reshape(-1)) + "]"


def write(rig: Rig, out: Path, metres_per_unit: float = 0.001) -> list[Path]:
    """A calibration TOML with translations in units of ``metres_per_unit`` (default millimetres)."""
    lines = []
    for i, cam in enumerate(rig):
        lines += [
            f"[cam_{i}]",
            f"name = {json.dumps(cam.name)}",
            f"size = [{int(cam.width)}, {int(cam.height)}]",
            "matrix = [" + ", ".join(_numbers(row) for row in cam.K) + "]",
            f"distortions = {_numbers(cam.dist)}",
            f"rotation = {_numbers(rotation_to_rodrigues(cam.R))}",
            f"translation = {_numbers(cam.t / metres_per_unit)}",
            "",
        ]
    lines += ["[metadata]", "adjusted = false", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    return [out]
