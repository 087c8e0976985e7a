"""COLMAP text models (``cameras.txt`` + ``images.txt``), read and written.

``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`` with MODEL one of
SIMPLE_PINHOLE (f cx cy), PINHOLE (fx fy cx cy), SIMPLE_RADIAL (f cx cy k), RADIAL (f cx cy k1 k2),
OPENCV (fx fy cx cy k1 k2 p1 p2) or FULL_OPENCV (... k1 k2 p1 p2 k3 k4 k5 k6, with k4 = k5 = k6 = 0).
``images.txt``: two lines per image, ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` (Hamilton
quaternion and translation, world -> camera) and the image's 2D points (ignored).

COLMAP puts the centre of the top-left pixel at (0.5, 0.5), OpenCV and ROS at (0, 0): ``cx`` and ``cy``
are shifted by 0.5 pixel on the way in and out. The model's scale is arbitrary (``--scale``). Each
image is one kp3d camera, named by the first folder of its NAME (``cam0/000001.jpg`` -> ``cam0``) or,
without a folder, the file stem (``cam0.png`` -> ``cam0``); an explicit image -> camera mapping
replaces that rule and imports only the images it names.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from ..rig import Rig
from .errors import RigFormatError
from .fields import Where, build_camera
from .poses import quaternion_to_rotation, rotation_to_quaternion

#: model -> parameter names, in file order
MODELS = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}
#: COLMAP's pixel-centre offset: u_colmap = u_opencv + 0.5
PIXEL_CENTRE = 0.5


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        raise Where(path).error(None, "file not found") from None


def _intrinsics(where: Where, model: str, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) OpenCV pixel convention, plumb_bob dist (5,)) of one COLMAP camera."""
    p = dict(zip(MODELS[model], params))
    fx, fy = (p["f"], p["f"]) if "f" in p else (p["fx"], p["fy"])
    K = np.array([[fx, 0.0, p["cx"] - PIXEL_CENTRE], [0.0, fy, p["cy"] - PIXEL_CENTRE], [0.0, 0.0, 1.0]])
    if model == "FULL_OPENCV" and (p["k4"] or p["k5"] or p["k6"]):
        raise where.error("PARAMS", f"FULL_OPENCV with k4 k5 k6 = {p['k4']:g} {p['k5']:g} {p['k6']:g} cannot be held "
                                    "by plumb_bob (they must be 0)")
    dist = np.array([p.get("k1", p.get("k", 0.0)), p.get("k2", 0.0), p.get("p1", 0.0), p.get("p2", 0.0),
                     p.get("k3", 0.0)])
    return K, dist


def read_cameras(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray, int, int]]:
    """``cameras.txt`` -> CAMERA_ID -> (K, dist, width, height)."""
    cams = {}
    for lineno, line in enumerate(_lines(path), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens = line.split()
        w = Where(path, tokens[0])
        if len(tokens) < 4:
            raise w.error("MODEL", f"line {lineno}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS...")
        model = tokens[1]
        if model not in MODELS:
            raise w.error("MODEL", f"'{model}' is not supported (supported: {', '.join(MODELS)})")
        width, height = w.positive_int(tokens[2], "WIDTH"), w.positive_int(tokens[3], "HEIGHT")
        names = MODELS[model]
        if len(tokens) - 4 != len(names):
            raise w.error("PARAMS", f"line {lineno}: {model} has {len(names)} parameters ({' '.join(names)}), "
                                    f"got {len(tokens) - 4}")
        params = np.array([w.number(v, f"PARAMS.{n}") for n, v in zip(names, tokens[4:])])
        camera_id = int(w.number(tokens[0], "CAMERA_ID"))
        if camera_id in cams:
            raise w.error("CAMERA_ID", f"line {lineno}: defined twice")
        cams[camera_id] = (*_intrinsics(w, model, params), width, height)
    if not cams:
        raise Where(path).error("cameras", "no camera line")
    return cams


def read_images(path: Path) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """``images.txt`` -> [(NAME, R_cam_world (3, 3), t_cam_world (3,), CAMERA_ID)] in file order."""
    lines = _lines(path)
    images, i = [], 0
    while i < len(lines):
        line, lineno = lines[i], i + 1
        i += 1
        # like COLMAP's reader: skip blank and comment lines before an image line; the line after it
        # holds the 2D points and is consumed even when empty
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        i += 1
        tokens = line.split()
        w = Where(path, " ".join(tokens[9:]) or (tokens[0] if tokens else "?"))
        if len(tokens) < 10:
            raise w.error("NAME", f"line {lineno}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        q_wxyz = np.array([w.number(v, f) for v, f in zip(tokens[1:5], ("QW", "QX", "QY", "QZ"))])
        t = np.array([w.number(v, f) for v, f in zip(tokens[5:8], ("TX", "TY", "TZ"))])
        norm = np.linalg.norm(q_wxyz)
        if abs(norm - 1.0) > 1e-2:
            raise w.error("QW QX QY QZ", f"not a unit quaternion (norm {norm:.4g})")
        qw, qx, qy, qz = q_wxyz / norm
        images.append((w.camera, quaternion_to_rotation([qx, qy, qz, qw]), t, int(w.number(tokens[8], "CAMERA_ID"))))
    if not images:
        raise Where(path).error("images", "no image line")
    return images


def default_camera_name(image_name: str) -> str:
    """``cam0/000001.jpg`` -> ``cam0``; ``cam0.png`` -> ``cam0``."""
    p = PurePosixPath(image_name.replace("\\", "/"))
    return p.parts[0] if len(p.parts) > 1 else p.stem


def _model_files(paths: list[Path]) -> tuple[Path, Path]:
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        if not (folder / "cameras.txt").exists() and (folder / "cameras.bin").exists():
            raise RigFormatError(f"{folder}: a binary COLMAP model; convert it with "
                                 "'colmap model_converter --input_path M --output_path M --output_type TXT'")
        paths = [folder / "cameras.txt", folder / "images.txt"]
    by_name = {p.name: p for p in paths}
    missing = [n for n in ("cameras.txt", "images.txt") if n not in by_name]
    if missing:
        raise RigFormatError("colmap: give the model folder or its cameras.txt and images.txt "
                             f"(missing {', '.join(missing)})")
    return by_name["cameras.txt"], by_name["images.txt"]


def read(paths: list[Path], image_map: dict[str, str] | None = None) -> Rig:
    """A COLMAP text model -> rig in the model's frame and (arbitrary) unit.

    Args:
        paths: the model folder, or its ``cameras.txt`` and ``images.txt`` (``points3D.txt`` ignored).
        image_map: image NAME -> camera name; only these images are imported (default: all, named by
            :func:`default_camera_name`).
    """
    cameras_txt, images_txt = _model_files(paths)
    intrinsics = read_cameras(cameras_txt)
    images = read_images(images_txt)
    if image_map is not None:
        known = {name for name, *_ in images}
        unknown = [n for n in image_map if n not in known]
        if unknown:
            raise Where(images_txt, unknown[0]).error("NAME", "not in images.txt (named by the image map)")
        images = [im for im in images if im[0] in image_map]
    cams, source = [], {}
    for image_name, R, t, camera_id in images:
        w = Where(images_txt, image_name)
        name = image_map[image_name] if image_map is not None else default_camera_name(image_name)
        if name in source:
            raise w.error("NAME", f"images '{source[name]}' and '{image_name}' both give camera '{name}': "
                                  "keep one image per camera or pass an image map")
        source[name] = image_name
        if camera_id not in intrinsics:
            raise w.error("CAMERA_ID", f"{camera_id} is not in {cameras_txt}")
        K, dist, width, height = intrinsics[camera_id]
        cams.append(build_camera(w, name, K, dist, width, height, R, t))
    return Rig(tuple(cams))


def _model(cam) -> tuple[str, list[float]]:
    """The smallest COLMAP model that holds ``cam`` exactly, and its parameters (COLMAP pixels)."""
    fx, fy = cam.K[0, 0], cam.K[1, 1]
    cx, cy = cam.K[0, 2] + PIXEL_CENTRE, cam.K[1, 2] + PIXEL_CENTRE
    k1, k2, p1, p2, k3 = cam.dist
    if not np.any(cam.dist):
        return "PINHOLE", [fx, fy, cx, cy]
    if k3 == 0.0:
        return "OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2]
    return "FULL_OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2, k3, 0.0, 0.0, 0.0]


def write(rig: Rig, out: Path, metres_per_unit: float = 1.0) -> list[Path]:
    """``out/cameras.txt``, ``out/images.txt`` (image NAME ``<camera>.png``) and an empty ``out/points3D.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
                 f"# Number of cameras: {len(rig)}"]
    img_lines = ["# Image list with two lines of data per image:",
                 "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)",
                 f"# Number of images: {len(rig)}, mean observations per image: 0"]
    for i, cam in enumerate(rig, 1):
        model, params = _model(cam)
        cam_lines.append(" ".join([str(i), model, str(int(cam.width)), str(int(cam.height))]
                                  + [repr(float(v)) for v in params]))
        qx, qy, qz, qw = rotation_to_quaternion(cam.R)
        values = [qw, qx, qy, qz, *(cam.t / metres_per_unit)]
        img_lines += [" ".join([str(i)] + [repr(float(v)) for v in values] + [str(i), f"{cam.name}.png"]), ""]
    files = {"cameras.txt": cam_lines, "images.txt": img_lines,
             "points3D.txt": ["# 3D point list with one line of data per point:",
                              "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)",
                              "# Number of points: 0, mean track length: 0"]}
    written = []
    for name, lines in files.items():
        (out / name).write_text("\n".join(lines) + "\n")
        written.append(out / name)
    return written
