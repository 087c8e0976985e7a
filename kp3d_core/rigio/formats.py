"""The calibration formats, and the import pipeline: read, rename, select, scale to metres, place the world.

Example::

    result = import_rig("qualisys", ["lab.qca.txt"], world=WorldSpec(floor_points=pts_mm))
    save_rig(result.rig, "rig.yaml")                     # kp3d world: z up, floor at z = 0, metres
    export_rig("anipose", result.rig, Path("calibration.toml"))
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..rig import Rig
from . import anipose, colmap, kalibr, opencv_stereo, qualisys, ros
from .errors import RigOptionError
from .poses import move_rig
from .world import Alignment, WorldSpec, align_world

#: length units by name, metres per unit
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001}


@dataclass(frozen=True)
class Format:
    """One calibration format.

    Attributes:
        name: the CLI name.
        files: what the FILE arguments are, in words.
        read: ``read(paths) -> Rig`` with the cameras in the source frame and unit.
        write: ``write(rig, out, metres_per_unit) -> written paths``; ``None`` for import-only formats.
        metres_per_unit: the unit of the files; ``None`` when they carry none (``--units`` required).
        export_metres_per_unit: the unit :func:`export_rig` writes by default.
        up: the source direction that points up by default (see :data:`world.UP_CHOICES`).
        world: the source frame, in words.
        floor: where the source's own floor is, in words (``None``: unknown).
    """

    name: str
    files: str
    read: Callable[..., Rig]
    write: Callable[[Rig, Path, float], list[Path]] | None
    metres_per_unit: float | None
    export_metres_per_unit: float
    up: str
    world: str
    floor: str | None = None


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("ros", "one camera_calibration YAML per camera and one extrinsics YAML", ros.read, ros.write,
           1.0, 1.0, "z", "the extrinsics file's world (ROS: z up, metres)", "z = 0 of the extrinsics' world"),
    Format("kalibr", "one camchain YAML", kalibr.read, kalibr.write, 1.0, 1.0, "camera", "cam0's optical frame"),
    Format("anipose", "one calibration TOML", anipose.read, anipose.write, None, 0.001, "camera",
           "the calibration's world (aniposelib: the first camera's or the board's frame)"),
    Format("qualisys", "one QTM calibration (.qca.txt / .qca)", qualisys.read, None, 0.001, 0.001, "z",
           "the QTM lab frame (z up, millimetres)", "z = 0 of the QTM lab frame (the L-frame's plane)"),
    Format("colmap", "the text model folder, or its cameras.txt and images.txt", colmap.read, colmap.write,
           None, 1.0, "camera", "the COLMAP model's frame (arbitrary scale)"),
    Format("opencv-stereo", "one or two OpenCV FileStorage files (YAML, XML, JSON)", opencv_stereo.read,
           opencv_stereo.write, None, 1.0, "camera", "camera 1's optical frame"),
)}

_ROS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ImportResult:
    """An imported rig and how it got its world.

    Attributes:
        rig: cameras in the kp3d world (z up, metres).
        alignment: where up and the floor came from, and ``T_world_source``.
        metres_per_unit: the unit the source was read in.
        notes: lines worth a user's attention (ignored fields, suspicious values).
    """

    rig: Rig
    alignment: Alignment
    metres_per_unit: float
    notes: tuple[str, ...] = ()


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise RigOptionError(f"unknown format '{name}' (formats: {', '.join(FORMATS)})")
    return FORMATS[name]


def rename(rig: Rig, names: list[str]) -> Rig:
    """The rig with its cameras renamed in order; a frame id derived from the old name follows the new one."""
    if len(names) != len(rig):
        raise RigOptionError(f"names: {len(names)} given for {len(rig)} cameras ({', '.join(rig.names)})")
    cams = []
    for cam, name in zip(rig, names):
        frame_id = "" if cam.frame_id == f"{cam.name}_optical_frame" else cam.frame_id
        cams.append(dataclasses.replace(cam, name=name, frame_id=frame_id))
    return Rig(tuple(cams), rig.world_frame)


def import_rig(
    fmt: str,
    paths,
    *,
    metres_per_unit: float | None = None,
    world: WorldSpec = WorldSpec(),
    names: list[str] | None = None,
    cameras: list[str] | None = None,
    image_map: dict[str, str] | None = None,
    world_frame: str | None = None,
) -> ImportResult:
    """Read a calibration in ``fmt`` and place it in a kp3d world.

    Args:
        fmt: a name in :data:`FORMATS`.
        paths: the files (see ``FORMATS[fmt].files``).
        metres_per_unit: the files' unit in metres (default: the format's; required where it has none).
        world: how to place the world (up, floor points in the source frame and unit, camera height,
            or ``T_world_source``).
        names: new camera names, in the order read.
        cameras: keep only these cameras (names after renaming), in this order.
        image_map: COLMAP only: image NAME -> camera name.
        world_frame: the rig's world frame id (default: the source's, else ``world``).

    Raises:
        RigFormatError: a missing or malformed field (one line: file, camera, field).
        RigOptionError: contradicting or missing options.
    """
    spec = get_format(fmt)
    paths = [Path(p) for p in paths]
    if not paths:
        raise RigOptionError(f"{fmt}: no file given ({spec.files})")
    if image_map is not None and fmt != "colmap":
        raise RigOptionError("an image map is for COLMAP models only")
    rig = spec.read(paths, image_map) if fmt == "colmap" else spec.read(paths)
    if names is not None:
        rig = rename(rig, names)
    if cameras is not None:
        missing = [c for c in cameras if c not in rig.names]
        if missing:
            raise RigOptionError(f"cameras: {', '.join(missing)} not in the calibration (cameras: {', '.join(rig.names)})")
        rig = rig.subset(list(cameras))
    if metres_per_unit is None:
        metres_per_unit = spec.metres_per_unit
    if metres_per_unit is None:
        raise RigOptionError(f"{fmt} files carry no length unit: give it with --units m|cm|mm or "
                             "--scale METRES_PER_UNIT")
    if not metres_per_unit > 0:
        raise RigOptionError(f"metres per unit must be positive, got {metres_per_unit}")
    rig_m = move_rig(rig, None, metres_per_unit)
    if world.floor_points is not None:
        floor_m = np.asarray(world.floor_points, dtype=np.float64) * metres_per_unit
        world = dataclasses.replace(world, floor_points=floor_m)
    alignment = align_world(rig_m, world, spec.up, spec.floor)
    out = move_rig(rig_m, alignment.T_world_source, 1.0, world_frame or rig.world_frame)
    return ImportResult(out, alignment, metres_per_unit, tuple(_notes(out, alignment)))


def _notes(rig: Rig, alignment: Alignment) -> list[str]:
    notes = []
    bad = [n for n in rig.names if not _ROS_NAME.match(n)]
    if bad:
        notes.append(f"camera name(s) {', '.join(bad)} are not valid ROS names (topics /<name>/image_raw): "
                     "rename with --names")
    if alignment.floor is not None:
        below = [c.name for c in rig if c.center[2] < 0]
        if below:
            notes.append(f"camera(s) {', '.join(below)} are below the floor: is up the right way round?")
    centres = np.array([c.center for c in rig])
    if len(rig) > 1:
        spread = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1)))
        if spread < 0.05 or spread > 1000.0:
            notes.append(f"the cameras lie within {spread:.3g} m of their mean: is the unit right (--units/--scale)?")
    return notes


def export_rig(fmt: str, rig: Rig, out, metres_per_unit: float | None = None) -> list[Path]:
    """Write ``rig`` in ``fmt`` at ``out`` (a file or a folder, per format); returns the written paths."""
    spec = get_format(fmt)
    if spec.write is None:
        raise RigOptionError(f"{fmt} is import-only (formats that export: "
                         f"{', '.join(n for n, f in FORMATS.items() if f.write is not None)})")
    return spec.write(rig, Path(out), spec.export_metres_per_unit if metres_per_unit is None else metres_per_unit)
