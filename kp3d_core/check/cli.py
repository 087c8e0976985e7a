"""``kp3d check``: is the output right on this recording? Label-free quality figures and a verdict per camera.

Runs the run-time estimator over a bag exactly as the node would and measures, without ground truth: how well
the views agree on each 3D keypoint against an identity-shuffled null, how many keypoints lie on the
foreground, the frames with a pose (and why not), bone-length stability, root speed, crop size against image
size, and each camera's disagreement with the others. Guide: docs/check.md.

Examples::

    kp3d check --bag out/take1 --rig rig.yaml
    kp3d check --bag out/take1 --rig rig.yaml --backgrounds empty_scene/ --max-frames 300 --stride 2
    kp3d check --bag out/take1 --rig rig.yaml --checkpoint runs/mine/model.pt --out out/check_mine

Prints a short report, then one JSON line last (every figure, the verdicts and what to do, the montage PNGs);
also writes it to OUT/check.json. Exit status 0 whatever the verdict; user errors print one line and exit 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli_args import non_negative_int, positive_int
from ..inference.backends import BACKEND_KINDS
from ..rig import load_rig
from .montage import write_montages
from .run import build_estimator, run_check
from .summary import summarise
from .verdict import judge

DEFAULT_OUT = Path("out/check")


def _slop_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds, got {text!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "examples:" + __doc__.split("Examples::", 1)[1].split("Prints", 1)[0]
    parser.add_argument("--bag", type=Path, required=True, metavar="DIR",
                        help="rosbag2 folder with Image + CameraInfo per camera")
    parser.add_argument("--rig", type=Path, required=True, metavar="FILE",
                        help="rig file (kp3d_core.rig YAML) of the cameras")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                        help="checkpoint (.pt, with its mapping) or ONNX file (no pose figures); default: the "
                             "shipped model")
    parser.add_argument("--backgrounds", type=Path, default=None, metavar="DIR",
                        help="folder of stored backgrounds, <camera>.png per camera (as the node's model.backgrounds); "
                             "default: learnt from the first frames, as the node does")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"montages and check.json (default {DEFAULT_OUT})")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="process at most N frames")
    parser.add_argument("--stride", type=positive_int, default=1, metavar="N",
                        help="process every N-th synchronised frame (default 1)")
    parser.add_argument("--slop-ms", type=_slop_ms, default=0.0, metavar="MS",
                        help="largest stamp spread within a synchronised frame, ms (default 0: exact stamps)")
    parser.add_argument("--backend", choices=BACKEND_KINDS, default="auto", help="inference backend (default auto)")
    parser.add_argument("--montage-frames", type=non_negative_int, default=6, metavar="N",
                        help="frames per camera montage, 0 for none (default 6)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def report_lines(result: dict) -> list[str]:
    """The human-readable report: the headline figures, then each camera's verdict and what to do."""
    f, r, p = result["frames"], result["reprojection"], result["pose"]
    without = ", ".join(f"{k} {v}" for k, v in f["without_pose"].items() if v) or "none"
    lines = [
        f"verdict: {result['verdict'].upper()}",
        f"frames: {f['processed']} processed, {f['after_warmup']} after the background warm-up, {f['with_pose']} "
        f"with a pose; without: {without}",
        f"reprojection: median {r['median_px']} px ({r['median_box']} box), p90 {r['p90_px']} px; shuffled null "
        f"{r['null_median_px']} px; ratio to null {r['ratio_to_null']}",
        f"pose: bone-length CV median {p['bone_cv_median']} (max {p['bone_cv_max']}); root speed median "
        f"{p['root_speed_median_m_s']} m/s, p90 {p['root_speed_p90_m_s']}",
    ]
    for name, c in result["cameras"].items():
        lines.append(
            f"{name}: {c['verdict'].upper()}: box {c['box_median_frac']} (max {c['box_max_frac']}) of the image side, "
            f"foreground {c['foreground_area_frac']} of the image, keypoints on it {c['on_foreground_frac']}, "
            f"outside the box {c['outside_box_frac']}, reprojection {c['reprojection_median_px']} px, "
            f"leave-one-out bias {c['loo_bias_box']} box")
        for fd in c["findings"]:
            lines.append(f"    {fd['figure']} = {fd['value']} ({fd['level']}: {fd['limits']})"
                         + (f"; {fd['note']}" if fd.get("note") else ""))
        if c.get("note"):
            lines.append(f"    note: {c['note']}")
    for fd in result["findings"]:
        lines.append(f"recording: {fd['figure']} = {fd['value']} ({fd['level']}: {fd['limits']})")
    lines += [f"to do: {t}" for t in result["todo"]]
    return lines


def check(args: argparse.Namespace) -> dict:
    """Run the check for parsed arguments; returns the JSON result (also written to OUT/check.json)."""
    rig = load_rig(args.rig)
    estimator = build_estimator(rig, args.checkpoint, args.backend, args.backgrounds)
    run = run_check(args.bag, rig, estimator, max_frames=args.max_frames, stride=args.stride,
                    slop_ns=int(round(args.slop_ms * 1e6)), montage_frames=args.montage_frames,
                    progress=not args.no_progress, rig_source=str(args.rig))
    figs = summarise(run)
    verdicts = judge(figs)
    montages = write_montages(run.samples, run.cameras, args.out)
    cameras = {name: {**figs["cameras"][name], **verdicts["cameras"][name]} for name in run.cameras}
    for name, note in run.notes.items():
        cameras[name]["note"] = note
    result = {
        "bag": str(args.bag), "rig": str(args.rig), "model": str(args.checkpoint or "shipped"),
        "backgrounds": str(args.backgrounds) if args.backgrounds else "learnt",
        "verdict": verdicts["verdict"], "findings": verdicts["findings"], "todo": verdicts["todo"],
        "frames": figs["frames"], "reprojection": figs["reprojection"], "pose": figs["pose"], "cameras": cameras,
        "timing": figs["timing"], "montages": [str(p) for p in montages],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "check.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(args: argparse.Namespace) -> int:
    result = check(args)
    print("\n".join(report_lines(result)), flush=True)
    print(json.dumps(result), flush=True)
    return 0
