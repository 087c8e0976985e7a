"""``kp3d synth``: render a synthetic multi-camera studio dataset folder (and optionally a rosbag2 bag).

Examples::

    kp3d synth --cameras 4 --motion procedural --frames 300 --out out/studio --preview
    kp3d synth --rig my_rig.yaml --motion ../shared/data/motion/cmu_131 --frames 600 --out out/cmu --bag
    kp3d synth --preset studio-bench --split all --out data/studio-bench          # -> data/studio-bench/<split>/
    kp3d synth --preset studio-bench-open --split train --out data/open            # procedural + CMU only
    kp3d synth --preset studio-field --split all --out out/studio-field           # sessions: varied rigs, rooms, people
    kp3d synth --preset studio-field --split test --sessions-limit 2 --frames-limit 10 --out /tmp/slice --preview
    kp3d synth --motion my_bvh/ --clip-start 30 --clip-frames 90 --clip-order shuffle --frames 900 --out out/mine
    kp3d synth --motion procedural --seed 3 --scene-seed 11 --out out/room11     # same person, another room
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..cli_args import UsageError, non_negative_int, positive_float, positive_int
from ..rig import load_rig, ring_rig
from .body import sample_subject
from .dataset import Segment, render_dataset
from .field_preset import FIELD_PRESETS, generate_field
from .presets import DEFAULT_MOTION_HELP, PRESETS, SOURCES, SPLITS, generate
from .procedural import procedural_motion
from .proportions import sample_proportions
from .retarget import load_motion_dir

# Custom-dataset options a preset fixes itself: with --preset they are an error, not silently ignored.
CUSTOM_ONLY = ("rig", "cameras", "motion", "joint_map", "seed", "clip_start", "clip_frames", "clip_order")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("Examples::", 1)[1]
    parser.add_argument("--out", required=True, help="output folder (a preset writes OUT/<split>/)")
    parser.add_argument("--scene-seed", type=int, default=None,
                        help="seed of the room and its lighting alone (default: --seed; with --preset: the preset's "
                             "room), so the same people and motion can be rendered in another room")
    g = parser.add_argument_group("custom datasets")
    cams = g.add_mutually_exclusive_group()
    cams.add_argument("--rig", type=Path, help="rig file (kp3d_core.rig YAML) with the cameras to render")
    cams.add_argument("--cameras", type=positive_int, default=None,
                      help="a ring of N cameras (ring_rig: radius 4 m, height 1.8 m, 640x480); default 4")
    g.add_argument("--motion", default=None,
                   help="'procedural' (built-in generator, the default) or a folder of BVH clips (retargeted, joint "
                        "map detected; a clip whose feet go below the floor is lifted onto it, with a warning)")
    g.add_argument("--joint-map", type=Path, default=None, help="joint map YAML for BVH clips of another skeleton")
    g.add_argument("--frames", type=positive_int, default=300, help="number of frames (default 300)")
    g.add_argument("--fps", type=positive_float, default=30.0, help="frame rate (default 30)")
    g.add_argument("--clip-start", type=non_negative_int, default=None, metavar="N",
                   help="BVH clips: skip the first N frames (at --fps) of every clip, e.g. a T-pose (default 0)")
    g.add_argument("--clip-frames", type=positive_int, default=None, metavar="N",
                   help="BVH clips: play at most N frames of each clip, so that several clips fit in --frames "
                        "(default: whole clips)")
    g.add_argument("--clip-order", choices=("name", "shuffle"), default=None,
                   help="BVH clips: play them in file name order or shuffled with --seed (default name); they "
                        "repeat in that order until --frames")
    g.add_argument("--seed", type=int, default=None,
                   help="seed of the motion, the subjects and the sensor noise, and of the room unless --scene-seed "
                        "(default 0)")
    g.add_argument("--volume-radius", type=positive_float, default=1.5,
                   help="capture volume radius in metres (default 1.5)")
    g.add_argument("--lr-cue", action="store_true",
                   help="tint the subject's left limbs (an artificial left/right cue; off by default)")
    p = parser.add_argument_group("presets")
    p.add_argument("--preset", choices=sorted(PRESETS) + sorted(FIELD_PRESETS),
                   help="studio-bench (all sources) or studio-bench-open (procedural + CMU, licence-clean): one rig "
                        "and room, only --scene-seed changes its room; studio-field (sessions, each with its own "
                        "rig, room, people, light and camera settings, like real rigs) or studio-field-new (styles "
                        "held out of studio-field, for adaptation); a preset fixes rig, motion and seeds")
    p.add_argument("--split", default="all", choices=[*SPLITS, "all"], help="preset split (default all)")
    p.add_argument("--sources", default=None,
                   help=f"comma-separated motion sources for a preset, from {','.join(SOURCES)}")
    p.add_argument("--motion-root", type=Path, default=None,
                   help=f"folder with the BVH datasets (default {DEFAULT_MOTION_HELP})")
    p.add_argument("--frames-limit", type=positive_int, default=None,
                   help="render only the first N frames of each split (of each session for studio-field presets): "
                        "a reproducible slice")
    p.add_argument("--sessions-limit", type=positive_int, default=None,
                   help="studio-field presets: render only the first N sessions of each split (a reproducible slice)")
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
        given = [f"--{k.replace('_', '-')}" for k in CUSTOM_ONLY if getattr(args, k) is not None]
        if given:
            raise UsageError(f"--preset fixes the rig, the motion and the seeds; drop {', '.join(given)} "
                             "(--scene-seed alone changes its room)")
        sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
        if args.preset in FIELD_PRESETS:
            return _field(args, sources, bag, progress)
        if args.sessions_limit is not None:
            raise UsageError(f"--sessions-limit: only for the sessions presets ({', '.join(sorted(FIELD_PRESETS))})")
        summaries = generate(args.preset, args.split, args.out, sources=sources, motion_root=args.motion_root,
                             frames_limit=args.frames_limit, bag_storage=bag, jitter_ms=args.jitter_ms,
                             preview=args.preview, overwrite=args.overwrite, progress=progress,
                             scene_seed=args.scene_seed, log=lambda m: print(m, file=sys.stderr, flush=True))
        for s in summaries:
            _report(s)
        return 0
    if args.sessions_limit is not None:
        raise UsageError(f"--sessions-limit: only with --preset {' or '.join(sorted(FIELD_PRESETS))}")
    return _custom(args, bag, progress)


def _field(args: argparse.Namespace, sources: list[str] | None, bag: str | None, progress: bool) -> int:
    if args.scene_seed is not None:
        raise UsageError(f"--scene-seed: {args.preset} draws a room per session from its seed; drop --scene-seed")
    summaries = generate_field(args.preset, args.split, args.out, sources=sources, motion_root=args.motion_root,
                               sessions_limit=args.sessions_limit, frames_limit=args.frames_limit, preview=args.preview,
                               overwrite=args.overwrite, progress=progress, bag_storage=bag, jitter_ms=args.jitter_ms,
                               log=lambda m: print(m, file=sys.stderr, flush=True))
    for s in summaries:
        _report(s)
    frames = sum(s.num_frames for s in summaries)
    views = sum(s.num_views for s in summaries)
    seconds = sum(s.seconds for s in summaries)
    print(f"{args.preset}/{args.split}: {len(summaries)} sessions, {frames} frames, {views} views in {seconds:.1f} s "
          f"({views / max(seconds, 1e-9):.1f} views/s, session setup included)")
    return 0


def clip_schedule(lengths: list[int], frames: int, start: int = 0, window: int | None = None,
                  order: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """Which frames of which clips a custom dataset plays: (clip index, first frame, end frame exclusive).

    Clips go in ``order`` (default: as given), each from frame ``start`` for at most ``window`` frames (whole
    otherwise), repeating in that order until ``frames`` frames; clips no longer than ``start`` are left out.
    Raises UsageError when no clip is longer than ``start``.
    """
    order = np.arange(len(lengths)) if order is None else np.asarray(order)
    usable = [int(k) for k in order if lengths[k] > start]
    if not usable:
        raise UsageError(f"--clip-start {start}: every clip is at most {max(lengths)} frames long")
    plan, total, i = [], 0, 0
    while total < frames:
        k = usable[i % len(usable)]
        n = min(lengths[k] - start, window or lengths[k], frames - total)
        plan.append((k, start, start + n))
        total += n
        i += 1
    return plan


def _custom(args: argparse.Namespace, bag: str | None, progress: bool) -> int:
    seed = 0 if args.seed is None else args.seed
    motion = args.motion or "procedural"
    if motion == "procedural":
        given = [f"--{k.replace('_', '-')}" for k in ("joint_map", "clip_start", "clip_frames", "clip_order")
                 if getattr(args, k) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: options for BVH clips (--motion DIR), not procedural motion")
    rig = load_rig(args.rig) if args.rig is not None else ring_rig(args.cameras or 4)
    rng = np.random.default_rng([seed, 5])
    segments, clips, subjects, info = [], [], [], []
    if motion == "procedural":
        props = sample_proportions(rng)
        m = procedural_motion(args.frames, args.fps, seed=seed, proportions=props, volume_radius=args.volume_radius)
        subjects.append(sample_subject(rng, lr_cue=args.lr_cue))
        info.append({"id": 0, "height_m": round(props.height, 4)})
        clips.append(f"procedural/seed{seed}")
        segments.append(Segment(m.joints3d, 0, 0))
    else:
        motions = load_motion_dir(motion, joint_map=args.joint_map, fps=args.fps, volume_radius=args.volume_radius)
        shuffle = args.clip_order == "shuffle"
        order = np.random.default_rng([seed, 6]).permutation(len(motions)) if shuffle else None
        plan = clip_schedule([m.num_frames for m in motions], args.frames, args.clip_start or 0, args.clip_frames,
                             order)
        # Each played stretch gets a new subject; the manifest's clip names are <folder>/<file>, as a preset's.
        for k, (c, first, end) in enumerate(plan):
            m = motions[c]
            name = f"{Path(m.source).parent.name}/{Path(m.source).name}"
            subjects.append(sample_subject(rng, lr_cue=args.lr_cue))
            info.append({"id": k, "clip": name, "start": first, "frames": end - first})
            if name not in clips:
                clips.append(name)
            segments.append(Segment(m.joints3d[first:end], clips.index(name), k))
    extra = {"scene_seed": args.scene_seed} if args.scene_seed is not None else None
    summary = render_dataset(args.out, rig, segments, clips, subjects, seed=seed, fps=args.fps,
                             name="studio", split="custom", subject_info=info, bag_storage=bag,
                             jitter_ms=args.jitter_ms, preview=args.preview, progress=progress,
                             overwrite=args.overwrite, frames_limit=args.frames, scene_seed=args.scene_seed,
                             extra_manifest=extra)
    _report(summary)
    return 0
