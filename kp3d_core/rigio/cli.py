"""``kp3d rig``: import a calibration into a kp3d rig file, export a rig to other tools, and show a rig.

Examples::

    kp3d rig import qualisys lab.qca.txt --out rig.yaml --floor-points "0,0,0;1000,0,0;0,1000,0"
    kp3d rig import kalibr camchain.yaml --out rig.yaml --camera-height cam0=2.1
    kp3d rig import anipose calibration.toml --units mm --up=-y --out rig.yaml
    kp3d rig import ros cam0.yaml cam1.yaml extrinsics.yaml --out rig.yaml
    kp3d rig import colmap sparse/0 --scale 0.37 --image-map "a.jpg=cam0,b.jpg=cam1" --out rig.yaml
    kp3d rig import opencv-stereo stereo.yaml --units mm --names left,right --out rig.yaml
    kp3d rig export anipose rig.yaml --out calibration.toml
    kp3d rig show rig.yaml --bag out/studio/bag --out out/rig

Formats, units and conventions: docs/rig_formats.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..rig import load_rig, save_rig
from .errors import RigOptionError
from .formats import FORMATS, UNITS, export_rig, import_rig
from .summary import rig_summary
from .world import UP_CHOICES, WorldSpec


def _numbers(text: str, what: str) -> np.ndarray:
    """Numbers from a string (commas, semicolons, spaces) or from a text file of them ('#' comments)."""
    path = Path(text)
    if path.is_file():
        text = " ".join(line.split("#", 1)[0] for line in path.read_text().splitlines())
    try:
        return np.array([float(v) for v in text.replace(",", " ").replace(";", " ").split()])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: expected numbers or a file of numbers, got '{text}'") from None


def _floor_points(text: str) -> np.ndarray:
    values = _numbers(text, "--floor-points")
    if values.size < 9 or values.size % 3:
        raise argparse.ArgumentTypeError(f"--floor-points: need three or more x,y,z points, got {values.size} numbers")
    return values.reshape(-1, 3)


def _transform(text: str) -> np.ndarray:
    values = _numbers(text, "--T-world-source")
    if values.size != 16:
        raise argparse.ArgumentTypeError(f"--T-world-source: need 16 numbers (4x4 row-major), got {values.size}")
    return values.reshape(4, 4)


def _camera_height(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError(text)
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--camera-height: expected CAMERA=METRES, got '{text}'") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _image_map(text: str) -> dict[str, str]:
    out = {}
    for pair in _names(text):
        image, sep, camera = pair.partition("=")
        if not sep or not image.strip() or not camera.strip():
            raise argparse.ArgumentTypeError(f"--image-map: expected IMAGE=CAMERA pairs, got '{pair}'")
        out[image.strip()] = camera.strip()
    return out


def _unit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--units", choices=list(UNITS), help="length unit of the calibration files")
    g.add_argument("--scale", type=float, metavar="METRES_PER_UNIT",
                   help="metres per unit of the files (COLMAP's arbitrary scale, or any unit)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("Examples::", 1)[1]
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    imp = sub.add_parser("import", help="a calibration -> a kp3d rig file (world z up, metres)",
                         formatter_class=argparse.RawDescriptionHelpFormatter,
                         epilog="formats:\n" + "\n".join(f"  {f.name:14s} {f.files}; world: {f.world}"
                                                          for f in FORMATS.values()))
    imp.add_argument("format", choices=list(FORMATS), metavar="FORMAT", help=", ".join(FORMATS))
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--out", required=True, type=Path, help="rig file to write (kp3d_core.rig YAML)")
    _unit_options(imp)
    w = imp.add_argument_group("world (default: the format's up direction, floor unknown)")
    w.add_argument("--up", choices=UP_CHOICES, metavar="AXIS",
                   help="source direction that points up: x, -x, y, -y, z, -z (write --up=-y: a leading '-' "
                        "needs the '='), or 'camera' (the first camera's image-up, -y of its optical frame)")
    w.add_argument("--floor-points", type=_floor_points, metavar="POINTS",
                   help="three or more points on the floor in the source frame and unit: 'x,y,z;x,y,z;...' or a "
                        "file with one point per line; sets up (towards the cameras unless --up) and z = 0")
    w.add_argument("--camera-height", type=_camera_height, metavar="CAMERA=METRES",
                   help="height of one camera above the floor, when no floor points are at hand")
    w.add_argument("--T-world-source", type=_transform, metavar="16_NUMBERS",
                   help="the source -> world transform itself (4x4 row-major, metres; or a file of 16 numbers)")
    w.add_argument("--world-frame", default=None, help="world frame id of the rig (default: the source's, else world)")
    c = imp.add_argument_group("cameras")
    c.add_argument("--names", type=_names, metavar="A,B,...", help="rename the cameras, in the order read")
    c.add_argument("--cameras", type=_names, metavar="A,B,...", help="keep only these cameras, in this order")
    c.add_argument("--image-map", type=_image_map, metavar="IMAGE=CAMERA,...",
                   help="COLMAP: images to import and their camera names (default: one camera per image, "
                        "named by its folder or file stem)")

    exp = sub.add_parser("export", help="a kp3d rig file -> another tool's format")
    exp.add_argument("format", choices=[n for n, f in FORMATS.items() if f.write is not None], metavar="FORMAT",
                     help=", ".join(n for n, f in FORMATS.items() if f.write is not None))
    exp.add_argument("rig", type=Path, metavar="RIG")
    exp.add_argument("--out", required=True, type=Path,
                     help="file (kalibr, anipose, opencv-stereo) or folder (ros, colmap) to write")
    _unit_options(exp)
    exp.add_argument("--cameras", type=_names, metavar="A,B,...", help="export only these cameras (opencv-stereo: two)")

    show = sub.add_parser("show", help="pictures of a rig (and of each camera's first bag image) and its figures")
    show.add_argument("rig", type=Path, metavar="RIG")
    show.add_argument("--bag", type=Path, help="rosbag2 folder with /<camera>/image_raw topics")
    show.add_argument("--out", type=Path, default=Path("out/rig"), help="folder for the PNGs (default out/rig)")


def _metres_per_unit(args) -> float | None:
    return UNITS[args.units] if args.units else args.scale


def main(args: argparse.Namespace) -> int:
    """User errors (CalibrationError, RigOptionError, BagError, missing files) propagate to the kp3d CLI, which
    prints them as one line with exit code 2."""
    return {"import": _import, "export": _export, "show": _show}[args.action](args)


def _import(args) -> int:
    world = WorldSpec(args.up, args.floor_points, args.camera_height, args.T_world_source)
    result = import_rig(args.format, args.files, metres_per_unit=_metres_per_unit(args), world=world,
                        names=args.names, cameras=args.cameras, image_map=args.image_map,
                        world_frame=args.world_frame)
    rig, a = result.rig, result.alignment
    unit = next((n for n, v in UNITS.items() if v == result.metres_per_unit), f"{result.metres_per_unit:g} m")
    print(f"read {len(rig)} cameras from {args.format} {' '.join(map(str, args.files))} (unit: {unit})")
    print(f"world '{rig.world_frame}': up = {a.up}; floor z = 0: {a.floor or 'unknown (z = 0 is the source origin)'}")
    print(f"{'camera':12s} {'x [m]':>9s} {'y [m]':>9s} {'z [m]':>9s}  height above floor [m]")
    for cam in rig:
        x, y, z = cam.center
        print(f"{cam.name:12s} {x:9.3f} {y:9.3f} {z:9.3f}  {f'{z:.3f}' if a.floor else '? (floor unknown)'}")
    for note in result.notes:
        print(f"note: {note}")
    save_rig(rig, args.out)
    print(f"wrote {args.out}")
    return 0


def _export(args) -> int:
    rig = load_rig(args.rig)
    if args.cameras:
        missing = [c for c in args.cameras if c not in rig.names]
        if missing:
            raise RigOptionError(f"--cameras: {', '.join(missing)} not in {args.rig} "
                                 f"(cameras: {', '.join(rig.names)})")
        rig = rig.subset(args.cameras)
    for path in export_rig(args.format, rig, args.out, _metres_per_unit(args)):
        print(f"wrote {path}")
    if args.format in ("kalibr", "opencv-stereo"):
        print(f"note: {args.format} has no world of its own: camera '{rig[0].name}' becomes it")
    return 0


def _show(args) -> int:
    rig = load_rig(args.rig)
    from .show import draw_rig, draw_view, first_images  # matplotlib only for this action

    summary = rig_summary(rig)
    pngs = [draw_rig(rig, summary, args.out / "rig.png")]
    drawn = []
    if args.bag is not None:
        images = first_images(args.bag, rig.names)
        for cam in rig:
            if cam.name not in images:
                print(f"note: no /{cam.name}/image_raw in {args.bag}")
                continue
            image = images[cam.name]
            if image.shape[:2] != (cam.height, cam.width):
                print(f"note: {cam.name}: the bag's image is {image.shape[1]}x{image.shape[0]} but the calibration is "
                      f"for {cam.width}x{cam.height}; the overlay uses the calibration's pixels as they are")
            path, _ = draw_view(rig, cam.name, image, summary["meeting_point_m"], args.out / f"view_{cam.name}.png")
            pngs.append(path)
            drawn.append(cam.name)
    behind = [c["name"] for c in summary["cameras"] if (c["meeting_point_depth_m"] or 0.0) <= 0.0]
    if summary["meeting_point_m"] is None:
        print("note: the optical axes are parallel: they meet nowhere")
    elif behind:
        print(f"note: the optical axes meet behind camera(s) {', '.join(behind)}: a camera looking the wrong way "
              "(a flipped axis or an inverted pose)?")
    for path in pngs:
        print(path)
    print(json.dumps({"rig": str(args.rig), **summary, "bag_views": drawn, "pngs": [str(p) for p in pngs]}))
    return 0
