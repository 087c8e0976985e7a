"""``kp3d synth``: render a synthetic multi-camera studio dataset folder (and optionally a rosbag2 bag).

Examples::

    kp3d synth --cameras 4 --motion procedural --frames 300 --out out/studio --preview
    kp3d synth --rig my_rig.yaml --motion ../shared/data/motion/cmu_131 --frames 600 --out out/cmu --bag
    kp3d synth --preset studio-bench --split all --out data/studio-bench          # -> data/studio-bench/<split>/
    kp3d synth --preset studio-bench-open --split train --out data/open            # procedural + CMU only
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..camera import CalibrationError
from ..rig import load_rig, ring_rig
from .body import sample_subject
from .bvh import BvhError
from .dataset import Segment, render_dataset
from .presets import DEFAULT_MOTION_HELP, PRESETS, SOURCES, SPLITS, generate
from .procedural import procedural_motion
from .proportions import sample_proportions
from .retarget import JointMapError, load_motion_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("Examples::", 1)[1]
    parser.add_argument("--out", required=True, help="output folder (a preset writes OUT/<split>/)")
    g = parser.add_argument_group("custom datasets")
    cams = g.add_mutually_exclusive_group()
    cams.add_argument("--rig", type=Path, help="rig file (kp3d_core.rig YAML) with the cameras to render")
    cams.add_argument("--cameras", type=int, default=None,
                      help="a ring of N cameras (ring_rig: radius 4 m, height 1.8 m, 640x480); default 4")
    g.add_argument("--motion", default="procedural",
                   help="'procedural' (built-in generator) or a folder of BVH clips (retargeted, joint map detected)")
    g.add_argument("--joint-map", type=Path, default=None, help="joint map YAML for BVH clips of another skeleton")
    g.add_argument("--frames", type=int, default=300, help="number of frames (default 300)")
    g.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    g.add_argument("--seed", type=int, default=0, help="seed of motion, subject, room and noise (default 0)")
    g.add_argument("--volume-radius", type=float, default=1.5, help="capture volume radius in metres (default 1.5)")
    g.add_argument("--lr-cue", action="store_true",
                   help="tint the subject's left limbs (an artificial left/right cue; off by default)")
    p = parser.add_argument_group("presets")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="studio-bench (all sources) or studio-bench-open (procedural + CMU, licence-clean)")
    p.add_argument("--split", default="all", choices=[*SPLITS, "all"], help="preset split (default all)")
    p.add_argument("--sources", default=None,
                   help=f"comma-separated motion sources for a preset, from {','.join(SOURCES)}")
    p.add_argument("--motion-root", type=Path, default=None,
                   help=f"folder with the BVH datasets (default {DEFAULT_MOTION_HELP})")
    p.add_argument("--frames-limit", type=int, default=None,
                   help="render only the first N frames of each split (a reproducible slice)")
    o = parser.add_argument_group("outputs")
    o.add_argument("--bag", action="store_true", help="also write OUT/bag, a rosbag2 bag with Image + CameraInfo")
    o.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="bag storage (default mcap)")
    o.add_argument("--jitter-ms", type=float, default=0.0,
                   help="per-camera uniform +- jitter of the bag stamps, milliseconds (default 0)")
    o.add_argument("--preview", action="store_true", help="write OUT/preview.png: the views with joints drawn")
    o.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output folder")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")


def _report(summary) -> None:
    rate = summary.num_views / max(summary.seconds, 1e-9)
    print(f"wrote {summary.out}: {summary.num_frames} frames x {summary.num_views // max(summary.num_frames, 1)} "
          f"views in {summary.seconds:.1f} s ({rate:.1f} views/s)")


def main(args: argparse.Namespace) -> int:
    bag = args.storage if args.bag else None
    progress = not args.no_progress
    if args.preset:

        if args.rig is not None or args.cameras is not None or args.motion != "procedural":
            print("error: --preset fixes the rig and the motion; drop --rig/--cameras/--motion", file=sys.stderr)
            return 2
        sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
        try:
            summaries = generate(args.preset, args.split, args.out, sources=sources, motion_root=args.motion_root,
                                 frames_limit=args.frames_limit, bag_storage=bag, jitter_ms=args.jitter_ms,
                                 preview=args.preview, overwrite=args.overwrite, progress=progress)
        except (ValueError, FileExistsError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for s in summaries:
            _report(s)
        return 0
    return _custom(args, bag, progress)


def _custom(args: argparse.Namespace, bag: str | None, progress: bool) -> int:

    if args.frames < 1:
        print(f"error: --frames must be >= 1, got {args.frames}", file=sys.stderr)
        return 2
    try:
        rig = load_rig(args.rig) if args.rig is not None else ring_rig(args.cameras or 4)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng([args.seed, 5])
    segments, clips, subjects, info = [], [], [], []
    if args.motion == "procedural":
        props = sample_proportions(rng)
        motion = procedural_motion(args.frames, args.fps, seed=args.seed, proportions=props,
                                   volume_radius=args.volume_radius)
        subjects.append(sample_subject(rng, lr_cue=args.lr_cue))
        info.append({"id": 0, "height_m": round(props.height, 4)})
        clips.append(motion.name)
        segments.append(Segment(motion.joints3d, 0, 0))
    else:

        try:
            motions = load_motion_dir(args.motion, joint_map=args.joint_map, fps=args.fps,
                                      volume_radius=args.volume_radius)
        except (FileNotFoundError, BvhError, JointMapError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        total, k = 0, 0
        # Clips in order (cycled if needed) until --frames; each clip played by a new subject.
        while total < args.frames:
            m = motions[k % len(motions)]
            n = min(m.num_frames, args.frames - total)
            subjects.append(sample_subject(rng, lr_cue=args.lr_cue))
            info.append({"id": k, "clip": m.name})
            if m.source not in clips:
                clips.append(m.source)
            segments.append(Segment(m.joints3d[:n], clips.index(m.source), k))
            total += n
            k += 1
    try:
        summary = render_dataset(args.out, rig, segments, clips, subjects, seed=args.seed, fps=args.fps,
                                 name="studio", split="custom", subject_info=info, bag_storage=bag,
                                 jitter_ms=args.jitter_ms, preview=args.preview, progress=progress,
                                 overwrite=args.overwrite, frames_limit=args.frames)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _report(summary)
    return 0
