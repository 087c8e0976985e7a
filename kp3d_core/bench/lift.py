"""``kp3d bench lift``: the single-view lifter's ablation, single- beside multi-view figures of the same model.

The model's multi-view estimator runs once over the training recording (pseudo-labels, no ground truth) and once
over the test recording; the tracks are kept in ``--cache`` (keyed by the model file and the folders) so that a
rerun only trains. Each row trains a lifter and prints one JSON line: per camera and averaged, the single-view
MPJPE / P-MPJPE / N-MPJPE of the lifted pose (mapped with the model's mapping) and the multi-view figures of the same
frames, and their P-MPJPE ratio (target: at most 1.5). Rows, each adding one thing: pseudo-labels only; + rotation
cycle; + discriminator; + temporal window. The last line is the summary.

Example::

    kp3d bench lift                                   # shipped model, studio-bench-open train -> studio-bench test
    kp3d bench lift --steps 1000 --rows pseudo cycle  # a quick look
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint, shipped_model_path
from ..cli_args import positive_int
from ..lift.evaluate import lift_track, single_view_figures
from ..lift.fit import LiftConfig, LiftData, floor_offset, train_lifter
from ..lift.tracks import DEFAULT_CHUNK, DEFAULT_EVERY, collect_tracks, load_tracks, save_tracks

DEFAULT_TRAIN = Path("out/studio-bench-open/train")
DEFAULT_TEST = Path("out/studio-bench/test")
DEFAULT_CACHE = Path("out/bench_lift")
TEMPORAL_WINDOW = 5
"""Frames of the temporal row (a sixth of a second at 30 fps)."""


def ablation_rows(base: LiftConfig) -> dict[str, LiftConfig]:
    """The rows, each adding one thing to the one before."""
    pseudo = replace(base, cycle=0.0, adversarial=0.0, window=1)
    cycle = replace(pseudo, cycle=0.1)
    disc = replace(cycle, adversarial=0.003)
    return {"pseudo": pseudo, "cycle": cycle, "discriminator": disc,
            "temporal": replace(disc, window=TEMPORAL_WINDOW)}


def cached_tracks(cache: Path, model: Path, data: Path, chunk: int | None, every: int, progress: bool):
    """The tracks of ``data`` under ``model``, from ``cache`` when the same model, folder and sampling made them."""
    h = hashlib.sha1(model.read_bytes())
    h.update(f"{data.resolve()};{chunk};{every}".encode())
    path = cache / f"tracks-{data.resolve().name}-{h.hexdigest()[:12]}.npz"
    if path.is_file():
        return load_tracks(path)
    tracks = collect_tracks(data, model, chunk, every, progress)
    save_tracks(path, tracks)
    return tracks


def _round(d):
    if isinstance(d, dict):
        return {k: _round(v) for k, v in d.items()}
    return round(d, 2) if isinstance(d, float) else d


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=None, help="model (default: the shipped model)")
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help=f"training recording (default {DEFAULT_TRAIN})")
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help=f"test studio folder (default {DEFAULT_TEST})")
    parser.add_argument("--steps", type=positive_int, default=LiftConfig.steps, help="optimiser steps per row")
    parser.add_argument("--rows", nargs="*", default=None, choices=list(ablation_rows(LiftConfig())),
                        help="only these rows (default: all)")
    parser.add_argument("--seeds", type=positive_int, default=1, help="seeds per row (mean and spread reported)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"tracks cache (default {DEFAULT_CACHE})")
    parser.add_argument("--no-progress", action="store_true")


def main(args: argparse.Namespace) -> int:
    model = args.checkpoint or shipped_model_path()
    mapping = load_checkpoint(model).get("mapping")
    if not mapping:
        raise FileNotFoundError(f"{model}: no mapping (fit one with kp3d map)")
    for name, folder in (("--train", args.train), ("--test", args.test)):
        if not (folder / "manifest.yaml").is_file():
            raise FileNotFoundError(f"{name} {folder}: not a studio or sessions folder (no manifest.yaml)")
    progress = not args.no_progress
    train = cached_tracks(args.cache, model, args.train, DEFAULT_CHUNK, DEFAULT_EVERY, progress)
    test = cached_tracks(args.cache, model, args.test, None, 1, progress)
    data = LiftData.from_tracks(train)
    floor = floor_offset(train)
    rows = ablation_rows(replace(LiftConfig(), steps=args.steps))
    summary = {"bench": "lift", "summary": True, "model": str(model), "train": str(args.train),
               "test": str(args.test), "train_rows": len(data), "labelled": int(data.labelled.sum()), "rows": {}}
    for name, cfg in rows.items():
        if args.rows and name not in args.rows:
            continue
        runs = []
        for seed in range(args.seeds):
            entry, log = train_lifter(data, replace(cfg, seed=seed), progress, floor=floor)
            figs = single_view_figures(test, [lift_track(entry, t) for t in test], mapping)
            runs.append(figs)
            print(json.dumps(_round({"bench": "lift", "row": name, "seed": seed, "window": cfg.window,
                                     "cycle": cfg.cycle, "adversarial": cfg.adversarial, **figs,
                                     "train_seconds": log["seconds"]})), flush=True)
        sv = [r["single_view"]["p_mpjpe_mm"] for r in runs]
        summary["rows"][name] = {
            "single_view_p_mpjpe_mm": float(np.mean(sv)), "single_view_p_mpjpe_sd_mm": float(np.std(sv)),
            "single_view_mpjpe_mm": float(np.mean([r["single_view"]["mpjpe_mm"] for r in runs])),
            "multi_view_p_mpjpe_mm": runs[0]["multi_view"]["p_mpjpe_mm"],
            "multi_view_mpjpe_mm": runs[0]["multi_view"]["mpjpe_mm"],
            "ratio_p_mpjpe": float(np.mean([r["ratio_p_mpjpe"] for r in runs])),
            "worst_camera_ratio": float(max(
                f["single_view"]["p_mpjpe_mm"] / f["multi_view"]["p_mpjpe_mm"]
                for r in runs for f in r["cameras"].values() if f["single_view"]["frames"])),
        }
        if progress:
            r = summary["rows"][name]
            print(f"{name}: single view P-MPJPE {r['single_view_p_mpjpe_mm']:.1f} mm, multi view "
                  f"{r['multi_view_p_mpjpe_mm']:.1f} mm, ratio {r['ratio_p_mpjpe']:.2f}", file=sys.stderr, flush=True)
    print(json.dumps(_round(summary)), flush=True)
    return 0
