"""``kp3d lift``: give a model a single-view lifter, trained from the rig's own triangulations (no labels).

The model's multi-view estimator runs over the recording (:mod:`kp3d_core.lift.tracks`); each view's keypoints and
the keypoints the views triangulate together become the lifter's training pairs (:mod:`kp3d_core.lift.fit`; the
rotation cycle and the 2D discriminator are options). No ground truth is read. Your own recording is a bag with its rig
file (as for ``kp3d adapt``); lift the model the node will run (an adapted one, if you adapted).

Outputs in ``--out`` (default ``out/lift``): ``ckpt.pt`` (the model with the lifter added, its mapping carried over:
point the node's ``model.path`` at it and a person seen by one camera still gets a pose), ``lifter.onnx`` (the
lifter alone, for other runtimes), ``lift.json`` (the last stdout line). With ``--test`` (a studio folder with
ground truth) the JSON holds the single-view figures beside the multi-view ones of the same frames, and ``lift.png``
shows a few of its frames: the multi-view pose and each camera's lifted pose beside the truth.

Examples::

    kp3d lift --bag take1_bag --rig rig.yaml --checkpoint out/adapt/ckpt.pt --out out/lift_take1
    kp3d lift --data out/studio-bench-open/train --test out/studio-bench/test   # the shipped model's lifter
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..adapt import Recording
from ..checkpoint import load_checkpoint, save_checkpoint, shipped_model_path
from ..cli_args import UsageError, non_negative_float, positive_int
from ..rig import load_rig
from .evaluate import lift_track, single_view_figures
from .fit import LiftConfig, LiftData, floor_offset, train_lifter
from .tracks import DEFAULT_CHUNK, DEFAULT_EVERY, collect_bag_tracks, collect_tracks

DEFAULT_OUT = Path("out/lift")


def export_lifter_onnx(entry: dict, path: str | Path, opset: int = 17) -> Path:
    """The lifter network alone as ONNX: input ``features`` (B, window, K*3 + 2), output ``keypoints`` (B, K, 3)."""
    from ..inference.single_view import build_lifter_net

    net = build_lifter_net(entry)
    x = torch.zeros(1, net.window, 3 * net.num_keypoints + 2)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(net, (x,), str(tmp), input_names=["features"], output_names=["keypoints"],
                      dynamic_axes={"features": {0: "batch"}, "keypoints": {0: "batch"}}, opset_version=opset,
                      dynamo=False)
    tmp.replace(path)
    return path


def draw_examples(track, lifted, mapping: dict, path: Path, frames: int = 3) -> Path:
    """Three frames of a test track: the multi-view pose and each camera's lifted one beside the truth."""
    from ..models.mapping import apply_mapping
    from ..plots import plot_pose_grid

    ok = np.flatnonzero(np.isfinite(track.poses).all((-1, -2)) & np.isfinite(track.gt).all((-1, -2)))
    rows = []
    for t in ok[np.linspace(0, len(ok) - 1, min(frames, len(ok))).astype(int)] if len(ok) else []:
        row = [(f"frame {track.frames[t]}: all views", track.poses[t], track.gt[t])]
        for v, cam in enumerate(track.cameras):
            row.append((f"{cam.name} alone", np.asarray(apply_mapping(mapping, lifted[t, v])), track.gt[t]))
        rows.append(row)
    return plot_pose_grid(rows, path, "single-view lifter")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "examples:\n\n" + "\n".join(__doc__.split("Examples::")[1].splitlines())
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bag", type=Path, help="your recording: rosbag2 folder with Image + CameraInfo per camera")
    src.add_argument("--data", type=Path, help="a studio or sessions folder instead (labels are not read)")
    parser.add_argument("--rig", type=Path, default=None, help="rig file of the bag's cameras (needed with --bag)")
    parser.add_argument("--backgrounds", type=Path, default=None,
                        help="stored empty-scene backgrounds of the bag's cameras, <camera>.png (kp3d background); "
                             "default: learnt from the first frames, as the node does")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="model whose keypoints are lifted (default: the shipped model); needs a mapping")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--steps", type=positive_int, default=LiftConfig.steps,
                        help=f"optimiser steps (default {LiftConfig.steps})")
    parser.add_argument("--window", type=positive_int, default=LiftConfig.window,
                        help="frames the lifter reads, newest last (default 1: per frame)")
    parser.add_argument("--cycle", type=non_negative_float, default=LiftConfig.cycle,
                        help="weight of the rotation cycle (default 0: off; see docs/lift.md)")
    parser.add_argument("--adversarial", type=non_negative_float, default=LiftConfig.adversarial,
                        help="weight of the 2D pose discriminator (default 0: off; needs --cycle)")
    parser.add_argument("--chunk", type=positive_int, default=DEFAULT_CHUNK,
                        help=f"consecutive frames per run of the estimator (default {DEFAULT_CHUNK})")
    parser.add_argument("--every", type=positive_int, default=DEFAULT_EVERY,
                        help=f"frames from one run's start to the next (default {DEFAULT_EVERY})")
    parser.add_argument("--test", type=Path, default=None,
                        help="a studio folder with ground truth: report single- vs multi-view figures on it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> LiftConfig:
    if args.adversarial > 0 and args.cycle <= 0:
        raise UsageError("--adversarial needs --cycle > 0 (the discriminator judges the turned projections)")
    return replace(LiftConfig(), steps=args.steps, window=args.window, cycle=args.cycle, adversarial=args.adversarial)


def main(args: argparse.Namespace) -> int:
    ckpt_path = args.checkpoint or shipped_model_path()
    ckpt = load_checkpoint(ckpt_path)
    if not ckpt.get("mapping"):
        raise FileNotFoundError(f"{ckpt_path}: no mapping to name the lifted joints (fit one with kp3d map)")
    if args.test is not None and not (args.test / "manifest.yaml").is_file():
        raise FileNotFoundError(f"--test {args.test}: not a studio folder (no manifest.yaml)")
    Recording(args.bag, args.rig, args.data, args.backgrounds).check()
    cfg = config_from_args(args)
    progress = not args.no_progress
    if args.bag is not None:
        tracks = collect_bag_tracks(args.bag, load_rig(args.rig), ckpt_path, args.chunk, args.every, args.backgrounds,
                                    progress=progress)
    else:
        tracks = collect_tracks(args.data, ckpt_path, args.chunk, args.every, progress)
    data = LiftData.from_tracks(tracks)
    entry, log = train_lifter(data, cfg, progress, floor=floor_offset(tracks))
    source = str(args.bag if args.bag is not None else args.data)
    entry["info"].update(data=source, checkpoint=str(ckpt_path))
    args.out.mkdir(parents=True, exist_ok=True)
    out_ckpt = save_checkpoint(args.out / "ckpt.pt", {**ckpt, "lifter": entry})
    onnx_path = export_lifter_onnx(entry, args.out / "lifter.onnx")
    res = {"lift": True, "checkpoint": str(out_ckpt), "onnx": str(onnx_path), "data": source,
           "frames": sum(len(t.frames) for t in tracks), "rows": len(data), "labelled": int(data.labelled.sum()),
           "config": entry["info"]["config"], "terms": {k: round(v, 5) for k, v in log.items()}}
    if args.test is not None:
        test = collect_tracks(args.test, out_ckpt, None, 1, progress)
        lifted = [lift_track(entry, t) for t in test]
        res["test"] = {"data": str(args.test), **single_view_figures(test, lifted, ckpt["mapping"])}
        res["picture"] = str(draw_examples(test[0], lifted[0], ckpt["mapping"], args.out / "lift.png"))
    (args.out / "lift.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res), flush=True)
    return 0
