"""``kp3d bench NAME``: benchmarks that print their figures as JSON lines (the last line is the summary)."""
from __future__ import annotations

import argparse
import importlib

from kp3d_core.cli_args import CommandParser

# benchmark -> (module providing add_arguments(parser) and main(args), one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "triangulation": ("kp3d_core.bench.triangulation", "batched DLT vs a per-point NumPy SVD loop"),
    "synth": ("kp3d_core.bench.synth", "studio rendering speed and peak memory"),
    "inference": ("kp3d_core.bench.inference", "per-set latency of every available inference backend"),
    "accuracy": ("kp3d_core.bench.accuracy", "train and evaluate on studio-bench (ablations, labels, views)"),
    "node": ("kp3d_ros.bench_node", "publisher and node in separate processes over real rclpy"),
    "field": ("kp3d_core.bench.field", "run-time estimator on studio-field sessions: stored vs learnt backgrounds"),
    "lift": ("kp3d_core.bench.lift", "single-view lifter: ablation, single- beside multi-view figures"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lines = "\n".join(f"  {n:<14} {h}" for n, (_, h) in BENCHMARKS.items())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"benchmarks:\n{lines}\n\n`kp3d bench NAME --help` lists a benchmark's options."
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of the benchmark")


def main(args: argparse.Namespace) -> int:
    module_name, help_text = BENCHMARKS[args.benchmark]
    module = importlib.import_module(module_name)
    parser = CommandParser(prog=f"kp3d bench {args.benchmark}", description=help_text)
    module.add_arguments(parser)
    return int(module.main(parser.parse_args(args.options)) or 0)
