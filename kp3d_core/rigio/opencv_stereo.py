"""OpenCV stereo calibration results in FileStorage files (YAML, XML or JSON), read and written.

Nodes (one file, or two, e.g. the intrinsics and extrinsics files of OpenCV's stereo sample)::

    K1, D1, K2, D2    camera matrices and distortion of camera 1 and 2 (M1, M2 accepted for K1, K2)
    R, T              camera 1 -> camera 2: X_2 = R @ X_1 + T (what cv2.stereoCalibrate returns);
                      R as 3x3 or a Rodrigues vector, T in the calibration board's unit
    image_width, image_height   (or image_size: [w, h]) the size both cameras were calibrated at

    camera1, camera2  optional: the cameras' names (default cam0 and cam1)

D1, D2: 4 or 5 coefficients (k1 k2 p1 p2 [k3]), or more with every further term 0. The world is camera
1's optical frame.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..rig import Rig
from .errors import RigFormatError
from .fields import Where, build_camera
from .poses import invert, rodrigues_to_rotation

NAMES = ("cam0", "cam1")
_ALIASES = {"K1": ("K1", "M1"), "K2": ("K2", "M2")}


def _open(path: Path):
    if not path.is_file():
        raise Where(path).error(None, "file not found")
    try:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as exc:
        detail = " ".join(str(exc.__cause__ or exc).split())
        raise Where(path).error(None, f"not a readable OpenCV FileStorage file: {detail[-160:]}") from None
    if not fs.isOpened():
        raise Where(path).error(None, "not a readable OpenCV FileStorage file")
    return fs


class _Nodes:
    """Top-level nodes of one or two FileStorage files, each remembered with its file."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.nodes: dict[str, tuple[Path, object]] = {}
        self._storages = []  # keep the FileStorage objects alive while their nodes are read
        for path in paths:
            fs = _open(path)
            self._storages.append(fs)
            root = fs.root()
            for key in root.keys():
                if key in self.nodes:
                    raise Where(path).error(key, f"also in {self.nodes[key][0]}: give each node once")
                self.nodes[key] = (path, root.getNode(key))

    def find(self, camera: str, key: str):
        """(Where, node) of ``key`` or an alias; missing names every file."""
        for k in _ALIASES.get(key, (key,)):
            if k in self.nodes:
                path, node = self.nodes[k]
                return Where(path, camera), node, k
        where = Where(Path(", ".join(map(str, self.paths))), camera)
        raise where.error(key, "missing")

    def matrix(self, camera: str, key: str) -> tuple[Where, np.ndarray, str]:
        where, node, k = self.find(camera, key)
        m = node.mat() if node.isMap() else None
        if m is None:
            if node.isSeq():
                m = np.array([node.at(i).real() for i in range(node.size())])
            else:
                raise where.error(k, "expected an opencv-matrix or a list of numbers")
        return where, where.array(np.asarray(m, dtype=np.float64).reshape(-1), k, int(np.size(m))), k

    def size(self) -> tuple[int, int]:
        if "image_size" in self.nodes:
            where, node, _ = self.find(None, "image_size")
            if node.isSeq():
                values = [node.at(i).real() for i in range(node.size())]
            else:
                values = np.asarray(node.mat()).reshape(-1)
            if len(values) != 2:
                raise where.error("image_size", f"expected [width, height], got {list(values)}")
            return where.positive_int(values[0], "image_size"), where.positive_int(values[1], "image_size")
        out = []
        for key in ("image_width", "image_height"):
            where, node, _ = self.find(None, key)
            out.append(where.positive_int(node.real() if node.isInt() or node.isReal() else None, key))
        return out[0], out[1]


def _dist(where: Where, d: np.ndarray, key: str) -> np.ndarray:
    if d.size < 4:
        raise where.error(key, f"expected 4 or more coefficients (k1 k2 p1 p2 ...), got {d.size}")
    if d.size > 5 and np.any(d[5:]):
        raise where.error(key, f"terms beyond k3 ({d[5:].tolist()}) cannot be held by plumb_bob (they must be 0)")
    return np.pad(d[:5], (0, 5 - min(d.size, 5)))


def read(paths: list[Path]) -> Rig:
    """One or two FileStorage files -> two-camera rig in camera 1's optical frame, the board's unit."""
    if not 1 <= len(paths) <= 2:
        raise RigFormatError(f"opencv-stereo: expected one or two FileStorage files, got {len(paths)}")
    nodes = _Nodes(list(paths))
    width, height = nodes.size()
    cams = []
    for i, name in enumerate(NAMES, 1):
        if f"camera{i}" in nodes.nodes and nodes.nodes[f"camera{i}"][1].isString():
            name = nodes.nodes[f"camera{i}"][1].string()
        where, K, k_key = nodes.matrix(name, f"K{i}")
        if K.size != 9:
            raise where.error(k_key, f"expected 3x3 (9 numbers), got {K.size}")
        where_d, d, d_key = nodes.matrix(name, f"D{i}")
        dist = _dist(where_d, d, d_key)
        if i == 1:
            R, t = np.eye(3), np.zeros(3)
        else:
            where_r, r, _ = nodes.matrix(name, "R")
            if r.size == 3:
                R = rodrigues_to_rotation(r)
            elif r.size == 9:
                R = where_r.rotation(r.reshape(3, 3), "R")
            else:
                raise where_r.error("R", f"expected 3x3 or a Rodrigues vector (3 numbers), got {r.size} numbers")
            where_t, t, _ = nodes.matrix(name, "T")
            if t.size != 3:
                raise where_t.error("T", f"expected 3 numbers, got {t.size}")
        cams.append(build_camera(where, name, K.reshape(3, 3), dist, width, height, R, t))
    return Rig(tuple(cams))


def write(rig: Rig, out: Path, metres_per_unit: float = 1.0) -> list[Path]:
    """One FileStorage file (format from the suffix: .yaml/.yml, .xml, .json) for a two-camera rig."""
    if len(rig) != 2:
        raise RigFormatError(f"{out}: opencv-stereo holds two cameras, the rig has {len(rig)} "
                             f"({', '.join(rig.names)}): choose two")
    a, b = rig
    if a.size != b.size:
        raise RigFormatError(f"{out}: opencv-stereo has one image size; '{a.name}' is {a.size}, '{b.name}' {b.size}")
    T_b_a = invert(b.T_world_cam) @ a.T_world_cam
    out.parent.mkdir(parents=True, exist_ok=True)
    fs = cv2.FileStorage(str(out), cv2.FILE_STORAGE_WRITE)
    try:
        fs.write("camera1", a.name)
        fs.write("camera2", b.name)
        fs.write("image_width", int(a.width))
        fs.write("image_height", int(a.height))
        fs.write("K1", a.K)
        fs.write("D1", a.dist.reshape(1, 5))
        fs.write("K2", b.K)
        fs.write("D2", b.dist.reshape(1, 5))
        fs.write("R", T_b_a[:3, :3])
        fs.write("T", (T_b_a[:3, 3] / metres_per_unit).reshape(3, 1))
    finally:
        fs.release()
    return [out]
