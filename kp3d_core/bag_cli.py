"""``kp3d bag``: tools that make rosbag2 bags. ``kp3d bag from-videos``: one video per camera + a rig file ->
an MCAP bag with Image (rgb8) + CameraInfo per camera on a common clock (docs/own_rig.md).

Examples::

    kp3d bag from-videos videos/take1_cam*.mp4 --rig rig.yaml --out out/take1
    kp3d bag from-videos a.mkv b.mkv --rig rig.yaml --cameras left right --scale 0.5 --out out/half
    kp3d bag from-videos videos/*.mp4 --rig rig.yaml --offset cam1=3 cam2=-1 --start 2 --end 12 --out out/bag
    kp3d bag from-videos videos/*.mp4 --rig rig.yaml --auto-offset --max-offset 10 --out out/bag

Prints the bag folder (metadata.yaml at its top level) and one JSON line: bag, cameras, frames per
camera, fps, offsets, sizes, duration. User errors raise typed exceptions; the kp3d CLI prints them as
``kp3d bag: error: ...`` and returns 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .bagio import STORAGES
from .cli_args import positive_float, positive_int
from .rig import load_rig
from .video_bag import ConvertOptions, videos_to_bag
from .video_sync import SyncConfig


def _size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 640x480, got '{text}'") from None
    return w, h


def _offset(text: str) -> tuple[str, int]:
    """'cam1=3' -> ('cam1', 3)."""
    name, sep, value = text.rpartition("=")
    if sep and name:
        try:
            return name, int(value)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(f"expected CAMERA=FRAMES, e.g. cam1=3 or cam2=-1, got '{text}'")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("from-videos", help="one video per camera + a rig file -> an MCAP bag",
                       description="One video per camera + a rig file -> an MCAP bag with Image (rgb8) + "
                                   "CameraInfo per camera on a common clock. Guide: docs/own_rig.md.",
                       epilog="examples:" + __doc__.split("Examples::", 1)[1].split("Prints", 1)[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files, one per camera")
    p.add_argument("--rig", type=Path, required=True, help="rig file (kp3d_core.rig YAML) with the cameras")
    p.add_argument("--out", type=Path, required=True,
                   help="the bag folder to create (metadata.yaml lands directly in it)")
    p.add_argument("--cameras", nargs="+", metavar="NAME",
                   help="rig camera of each video, in video order (default: the camera named in the file name)")
    g = p.add_argument_group("images")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--scale", type=positive_float, metavar="FACTOR",
                      help="resize by this factor (CameraInfo scaled exactly with it)")
    size.add_argument("--size", type=_size, metavar="WxH", help="resize to this size (every video's aspect)")
    c = p.add_argument_group("clock")
    c.add_argument("--fps", type=positive_float, metavar="HZ",
                   help="frame rate of every video (default: theirs, which must agree)")
    c.add_argument("--start", type=float, metavar="SECONDS", help="first time written on the common clock")
    c.add_argument("--end", type=float, metavar="SECONDS", help="write times before this (default: to the end)")
    c.add_argument("--stride", type=positive_int, default=1, metavar="N", help="keep every N-th frame (default 1)")
    c.add_argument("--t0", type=float, metavar="SECONDS",
                   help="stamp of the common clock's zero, seconds since the epoch (default 1700000000)")
    o = p.add_argument_group("offsets (frame i of camera c is stamped t0 + (i - offset_c) / fps)")
    how = o.add_mutually_exclusive_group()
    how.add_argument("--offset", type=_offset, nargs="+", metavar="CAMERA=FRAMES",
                     help="per camera frame offsets, e.g. --offset cam1=3 cam2=-1 (others 0)")
    how.add_argument("--auto-offset", action="store_true",
                     help="estimate the offsets from motion energy; refuses (exit 2) unless confident")
    o.add_argument("--reference", metavar="NAME", help="camera the auto offsets refer to (default: first video's)")
    o.add_argument("--max-offset", type=positive_int, metavar="FRAMES",
                   help="auto offsets searched within +-FRAMES (default: one second of frames)")
    o.add_argument("--min-correlation", type=float, default=SyncConfig.min_correlation, metavar="R",
                   help=f"auto offset: fewest correlation at the best lag (default {SyncConfig.min_correlation})")
    o.add_argument("--min-peak-ratio", type=positive_float, default=SyncConfig.min_peak_ratio, metavar="RATIO",
                   help=f"auto offset: fewest best/second-best peak ratio (default {SyncConfig.min_peak_ratio})")
    w = p.add_argument_group("output")
    w.add_argument("--storage", choices=STORAGES, default="mcap", help="bag storage (default mcap)")
    w.add_argument("--overwrite", action="store_true", help="replace an existing bag folder at --out")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")


def _options(args: argparse.Namespace) -> ConvertOptions:
    sync = None
    if args.auto_offset:
        sync = SyncConfig(max_offset_frames=args.max_offset, min_correlation=args.min_correlation,
                          min_peak_ratio=args.min_peak_ratio)
    kwargs = {} if args.t0 is None else {"t0_ns": round(args.t0 * 1e9)}
    return ConvertOptions(
        cameras=tuple(args.cameras) if args.cameras else None, scale=args.scale, size_px=args.size, fps=args.fps,
        offsets_frames=dict(args.offset) if args.offset else None, auto_offset=sync, reference=args.reference,
        start_s=args.start, end_s=args.end, stride=args.stride, storage=args.storage, overwrite=args.overwrite,
        **kwargs)


def from_videos(args: argparse.Namespace) -> int:
    """User errors (VideoBagError, CalibrationError, BagError) propagate to the kp3d CLI: one line, exit code 2."""
    options = _options(args)
    rig = load_rig(args.rig)
    summary = videos_to_bag(rig, args.videos, args.out, options, progress=not args.no_progress)
    bag = summary.bag.resolve()
    print(f"bag: {bag} (metadata.yaml at its top level; play it with: kp3d replay {bag})", file=sys.stderr)
    print(json.dumps(summary.to_json()))
    return 0


def main(args: argparse.Namespace) -> int:
    if args.bag_command == "from-videos":
        return from_videos(args)
    raise AssertionError(f"unknown bag subcommand {args.bag_command}")  # argparse allows only the above
