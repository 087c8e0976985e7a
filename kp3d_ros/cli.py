"""The ``kp3d`` command: one subcommand per job, each implemented in its own module.

Each module named below provides ``add_arguments(parser)`` and ``main(args) -> int``; modules are
imported only when their subcommand runs, so ``kp3d synth`` never imports rclpy.
The CLI lives in kp3d_ros because it composes both packages (kp3d_core never imports kp3d_ros).

Errors: a user error (a missing or malformed file or folder, a bad option) is one line on stderr,
``kp3d <command>: error: <message>``, and exit code 2, whichever subcommand raised it; the message names
the file, field or option. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import importlib
import sys

from kp3d_core.cli_args import CommandParser

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("kp3d_core.studio.cli", "render a synthetic multi-camera studio dataset and/or rosbag2 bag"),
    "train": ("kp3d_core.train", "train the keypoint model from a config (unsupervised or --supervised)"),
    "eval": ("kp3d_core.evaluate", "evaluate a checkpoint on a studio dataset (default: shipped model, studio-bench test)"),
    "map": ("kp3d_core.fit_mapping", "fit the keypoints -> 17-joint pose mapping on a fraction of labelled frames"),
    "export": ("kp3d_core.inference.export", "export a checkpoint (default: the shipped model) to ONNX (and a TensorRT engine)"),
    "bench": ("kp3d_ros.bench", "benchmarks that print JSON lines (triangulation, synth, inference, accuracy, node, field, "
              "lift)"),
    "replay": ("kp3d_ros.replay", "play a rosbag2 bag through rclpy publishers, with /clock"),
    "demo": ("kp3d_ros.demo", "the main job: studio bag -> node -> summary and out/demo/summary.png"),
    "rig": ("kp3d_core.rigio.cli", "import a calibration (ROS, Kalibr, Anipose, Qualisys, COLMAP, OpenCV stereo) "
            "as a rig, export it, show it"),
    "bag": ("kp3d_core.bag_cli", "bag tools: from-videos turns one video per camera + a rig file into an MCAP bag"),
    "check": ("kp3d_core.check.cli", "label-free quality figures of a recording: a verdict per camera, what to do, "
              "montages"),
    "background": ("kp3d_core.background_cli", "per-camera backgrounds for the node from an empty-scene bag (or the "
                   "recording itself), with a picture"),
    "adapt": ("kp3d_core.adapt", "fine-tune a model on your own recording without labels, keeping its mapping"),
    "lift": ("kp3d_core.lift.cli", "add a single-view lifter to a model, trained from its own triangulations (no labels)"),
}

# The project's user-error types, by defining module. Looked up only in modules already imported when the
# error is raised (a module that was never imported cannot have raised its error), so that catching them
# imports nothing: torch stays out of `kp3d synth`.
USER_ERRORS: dict[str, tuple[str, ...]] = {
    "kp3d_core.cli_args": ("UsageError",),
    "kp3d_core.config": ("ConfigError",),
    "kp3d_core.checkpoint": ("CheckpointError",),
    "kp3d_core.camera": ("CalibrationError",),
    "kp3d_core.inference.interface": ("ModelFileError", "BackendUnavailable"),
    "kp3d_core.bagio": ("BagError",),
    "kp3d_core.video_bag": ("VideoBagError",),
    "kp3d_core.data.sessions": ("SplitError",),
    "kp3d_core.studio.bvh": ("BvhError",),
    "kp3d_core.studio.retarget": ("JointMapError",),
}
# Files and folders that are missing, in the way or unreadable: the OS message names the path.
OS_USER_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types reported as one line with exit code 2 (see the module docstring)."""
    found = [getattr(sys.modules[m], n) for m, names in USER_ERRORS.items() if m in sys.modules for n in names]
    return (*OS_USER_ERRORS, *found)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (YAML parser messages, for one, span several)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="kp3d", description="Unsupervised multi-camera 3D human keypoints: train offline, deploy on ROS 2."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added lazily (below) so that --help of one command imports only its module.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # prints help or the "invalid choice" error and exits
        return 2
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    sub = CommandParser(prog=f"kp3d {name}", description=help_text)
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except user_errors() as exc:  # evaluated when an error arrives, over the modules imported by then
        print(f"kp3d {name}: error: {one_line(exc)}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
