"""``kp3d bench synth``: studio rendering speed (views per second) and peak memory.

Renders procedural motion from a ring of cameras twice: rendering only (images, masks, ground
truth in memory, then dropped) and the full job (the dataset folder streamed to a temporary
directory: JPEG + PNG per view, gt.npz, manifest). Set-up (room ray-casting, motion) is timed
separately. Prints one JSON line per mode, then a summary line. Peak memory is the process's
maximum resident set size (``ru_maxrss``), so it includes Python, NumPy and OpenCV themselves.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from ..rig import ring_rig
from ..studio.body import sample_subject
from ..studio.dataset import Segment, render_dataset
from ..studio.procedural import procedural_motion
from ..studio.proportions import sample_proportions
from ..studio.render import StudioRenderer
from ..studio.scene import sample_scene


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=120, help="frames per mode (default 120)")
    parser.add_argument("--cameras", type=int, default=4, help="cameras in the ring (default 4)")
    parser.add_argument("--width", type=int, default=640, help="image width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="image height (default 480)")
    parser.add_argument("--distortion", type=float, default=-0.1, help="k1 of every camera (default -0.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-write", action="store_true", help="time rendering only")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(args: argparse.Namespace) -> int:

    if args.frames < 1 or args.cameras < 1:
        raise SystemExit("kp3d bench synth: --frames and --cameras must be >= 1")
    rig = ring_rig(args.cameras, width=args.width, height=args.height, dist=(args.distortion, 0.0, 0.0, 0.0, 0.0))
    rng = np.random.default_rng(args.seed)
    props = sample_proportions(rng)
    motion = procedural_motion(args.frames, 30.0, seed=args.seed, proportions=props)
    subject = sample_subject(rng)
    t0 = time.perf_counter()
    scene = sample_scene(np.random.default_rng([args.seed, 3]), np.stack([c.center for c in rig]))
    renderer = StudioRenderer(rig, scene, seed=args.seed)
    setup_s = time.perf_counter() - t0
    base = {"bench": "synth", "cameras": args.cameras, "width": args.width, "height": args.height,
            "frames": args.frames}

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for t, joints in enumerate(motion.joints3d):
        renderer.render(joints, subject, t)
    dt, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    views = args.frames * args.cameras
    render_line = {**base, "mode": "render", "views_per_s": round(views / dt, 1),
                   "ms_per_view": round(1000 * dt / views, 2), "cpu_s_per_view": round(cpu / views, 4),
                   "setup_s": round(setup_s, 2), "peak_rss_mib": round(_peak_mib(), 1)}
    print(json.dumps(render_line), flush=True)
    lines = [render_line]
    if not args.skip_write:
        with tempfile.TemporaryDirectory(prefix="kp3d_bench_synth_") as tmp:
            cpu0 = time.process_time()
            s = render_dataset(Path(tmp) / "ds", rig, [Segment(motion.joints3d, 0, 0)], [motion.name], [subject],
                               seed=args.seed, progress=False, renderer=renderer)
            cpu = time.process_time() - cpu0
            size = sum(p.stat().st_size for p in (Path(tmp) / "ds").rglob("*") if p.is_file())
        write_line = {**base, "mode": "render+write", "views_per_s": round(s.num_views / s.seconds, 1),
                      "ms_per_view": round(1000 * s.seconds / s.num_views, 2),
                      "cpu_s_per_view": round(cpu / s.num_views, 4), "dataset_mib": round(size / 2**20, 3),
                      "peak_rss_mib": round(_peak_mib(), 1)}
        print(json.dumps(write_line), flush=True)
        lines.append(write_line)
    summary = {**base, "mode": "summary", "views_per_s": lines[-1]["views_per_s"],
               "render_only_views_per_s": render_line["views_per_s"], "peak_rss_mib": round(_peak_mib(), 1),
               "target_views_per_s": 30, "meets_target": lines[-1]["views_per_s"] >= 30}
    print(json.dumps(summary), flush=True)
    return 0
