"""``kp3d adapt``: fine-tune a model on your own recording without labels, keeping what its keypoints mean.

A model trained in one studio loses accuracy in another room, on other clothes, with another rig. ``kp3d adapt``
continues training a checkpoint (the shipped model by default) on your recording with the unsupervised losses it was
trained with, plus a label-free distillation term: the keypoints of the net being adapted are held near those of the
original net (frozen) on the same crops, weighted by its confidence (``loss.distill``). So each keypoint keeps the
body part it had, and the checkpoint's mapping (keypoints -> 17 named joints, fitted once by ``kp3d map``) still
names the joints: it is carried over unchanged, and the node publishes ``~/pose`` with the adapted model as before.
No ground truth is read anywhere.

It is :func:`kp3d_core.train.train` with a config built from the checkpoint's own (its model, losses and
augmentation) plus ``train.init_from`` (the checkpoint), ``loss.distill``, the recording as ``data`` and a time budget.

Examples::

    kp3d adapt --bag take1_bag --rig rig.yaml                           # the shipped model, 20 minutes -> out/adapt
    kp3d adapt --bag take1_bag --rig rig.yaml --minutes 10 --out out/adapt_take1
    kp3d adapt --bag take1_bag --rig rig.yaml --minutes 30 --out out/adapt_take1 --resume   # 20 more minutes
    kp3d adapt --data out/studio-field-new/train --steps 2000 --out out/adapt_field   # a studio or sessions folder

Outputs in ``--out`` (default ``out/adapt``): ``ckpt.pt`` (the adapted checkpoint with the mapping; point the node's
``model.path`` at it), ``model.onnx`` (its keypoint net; an ONNX file carries no mapping, so no ``~/pose`` from it
alone), ``before_after.png`` (frames of the recording, each camera, the original's and the adapted model's keypoints,
and the label-free figures of ``kp3d check`` before and after), ``adapt.json``; the last stdout line is that JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .bagio import BagError, camera_topics
from .camera import CalibrationError
from .check.run import build_estimator, run_check
from .check.summary import summarise
from .checkpoint import load_checkpoint, model_config_of, save_checkpoint, shipped_model_path
from .cli_args import UsageError, non_negative_float, non_negative_int, positive_float, positive_int
from .config import Config, config_from_dict
from .data.sessions import read_split
from .inference.export import export_onnx, verify_onnx
from .inference.interface import file_sha256
from .inference.torch_backend import load_model
from .rig import load_rig
from .train import train

DEFAULT_OUT = Path("out/adapt")
DEFAULT_MINUTES = 20.0
"""Training minutes when neither --minutes nor --steps is given."""
DEFAULT_LR = 3e-4
"""Fine-tuning learning rate: a third of the shipped recipe's 1e-3 (weights that are already good)."""
DEFAULT_DISTILL = 1.0
"""Weight of the distillation term, of the order of the other terms at the start of a run."""
WARMUP_STEPS = 20
"""Learning-rate warm-up of an adaptation run: Adam's moments start empty on weights that are already good."""
UNBOUNDED_STEPS = 10**7
"""train.steps of a run bounded by time alone."""


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class Recording:
    """What to adapt on: a rosbag2 bag with its rig file, or a studio / sessions folder (benchmarks)."""

    bag: Path | None = None
    rig: Path | None = None
    data: Path | None = None
    backgrounds: Path | None = None
    """Stored empty-scene backgrounds of the bag's cameras (``kp3d background``), for the training crops and the
    check; None: estimated from the recording."""

    def check(self) -> None:
        """Before any work: FileNotFoundError naming the option when the bag, the rig file or the folder is missing;
        CalibrationError for a malformed rig file or a camera of the bag it lacks; BagError for a bag without
        cameras."""
        if self.backgrounds is not None and not self.backgrounds.is_dir():
            raise FileNotFoundError(f"--backgrounds {self.backgrounds}: not a folder (<camera>.png per camera)")
        if self.bag is None:
            if self.data is None or not (self.data / "manifest.yaml").is_file():
                raise FileNotFoundError(f"--data {self.data}: not a studio or sessions folder (no manifest.yaml)")
            return
        if not (self.bag / "metadata.yaml").is_file():
            raise FileNotFoundError(f"--bag {self.bag}: not a rosbag2 bag directory (no metadata.yaml)")
        if self.rig is None or not self.rig.is_file():
            raise FileNotFoundError(f"--rig {self.rig}: rig file not found")
        names = load_rig(self.rig).names
        cameras = list(camera_topics(self.bag))
        if not cameras:
            raise BagError(f"--bag {self.bag}: no camera (an Image topic with a CameraInfo beside it)")
        missing = [c for c in cameras if c not in names]
        if missing:
            raise CalibrationError(f"--rig {self.rig}: no camera {', '.join(missing)} of the bag (rig cameras: "
                                   f"{', '.join(names)})")

    def data_config(self) -> dict:
        """The ``data`` fields of the run (the rest stay the source checkpoint's: crops, augmentation)."""
        stored = str(self.backgrounds) if self.backgrounds is not None else ""
        if self.bag is not None:
            return {"source": "bag", "path": str(self.bag), "rig": str(self.rig), "backgrounds": stored}
        return {"source": "studio", "path": str(self.data), "rig": "", "backgrounds": ""}

    def check_bag(self) -> tuple[Path, Path] | None:
        """(bag, rig file) that the label-free check runs over: the bag itself, or the bag a studio folder was
        rendered with (``kp3d synth --bag``: ``bag/`` beside ``rig.yaml``; in a sessions folder, the first session's
        that has one); None when there is none."""
        if self.bag is not None:
            return self.bag, self.rig
        for session in read_split(self.data).sessions:
            if (session.path / "bag" / "metadata.yaml").is_file() and (session.path / "rig.yaml").is_file():
                return session.path / "bag", session.path / "rig.yaml"
        return None


def adapt_config(source: dict, source_path: str | Path, recording: Recording, out: str | Path, *,
                 minutes: float | None = None, steps: int | None = None, lr: float = DEFAULT_LR,
                 distill: float = DEFAULT_DISTILL) -> Config:
    """The run's config: the source checkpoint's stored config (model, losses, augmentation, batch) with the
    recording as data, no validation split, ``train.init_from`` = the source, ``loss.distill`` and the budget.

    ``minutes`` and ``steps`` None: :data:`DEFAULT_MINUTES`. ConfigError naming the source file if its stored config
    is invalid.
    """
    if minutes is None and steps is None:
        minutes = DEFAULT_MINUTES
    d = copy.deepcopy(source["config"])
    d["name"] = f"adapt-{d.get('name', 'model')}"
    d["data"] = {**d.get("data", {}), **recording.data_config(), "val_path": "", "views": []}
    d["loss"] = {**d.get("loss", {}), "distill": float(distill)}
    d["train"] = {
        **d.get("train", {}), "out_dir": str(out), "init_from": str(Path(source_path).resolve()),
        "steps": int(steps) if steps is not None else UNBOUNDED_STEPS, "max_minutes": float(minutes or 0.0),
        "lr": float(lr), "warmup_steps": WARMUP_STEPS, "supervised": False,
    }
    return config_from_dict(d, f"{source_path} (stored config, adapted)")


# ------------------------------------------------------------------------------------------ outputs
def carry_mapping(ckpt_path: Path, source: dict, source_path: Path) -> dict:
    """Write the source's ``mapping`` (unchanged) into the adapted checkpoint, with ``adapted_from`` (the source
    file, its sha256 and step); returns the checkpoint. Atomic, like every checkpoint write."""
    ckpt = load_checkpoint(ckpt_path)
    keep = {k: v for k, v in ckpt.items() if k not in ("format", "version", "mapping")}
    keep["adapted_from"] = {"checkpoint": str(source_path), "sha256": file_sha256(source_path),
                            "step": int(source.get("step", 0))}
    if source.get("mapping"):
        keep["mapping"] = source["mapping"]
    save_checkpoint(ckpt_path, keep)
    return keep


def write_onnx(ckpt_path: Path, out_path: Path) -> dict:
    """Export the checkpoint's keypoint net to ONNX and compare ONNX Runtime with PyTorch on random crops."""
    model, info = load_model(ckpt_path)
    export_onnx(model, info, out_path)
    return verify_onnx(model, out_path)


# ------------------------------------------------------------------------------------------ label-free figures
FIGURES = (
    ("views agree: reprojection median (box sides)", ("reprojection", "median_box"), "lower"),
    ("reprojection / shuffled null", ("reprojection", "ratio_to_null"), "lower"),
    ("keypoints on the foreground", ("cameras", "on_foreground_frac"), "higher"),
    ("frames with a pose", ("frames", "with_pose_frac"), "higher"),
    ("bone-length CV, median", ("pose", "bone_cv_median"), "lower"),
)
"""The rows of the before/after table: label, where in :func:`kp3d_core.check.summary.summarise`'s figures (a
camera figure is averaged over the cameras), which way is better."""


def headline(figs: dict) -> dict[str, float | None]:
    """The :data:`FIGURES` of one check run, by label (None where a figure does not exist)."""
    out = {}
    for label, (group, key), _ in FIGURES:
        if group == "cameras":
            values = [c[key] for c in figs["cameras"].values() if c.get(key) is not None]
            out[label] = round(float(np.mean(values)), 4) if values else None
        else:
            out[label] = figs[group].get(key)
    return out


def bag_images(bag: Path) -> int | None:
    """Images of the camera with the fewest in the bag (its metadata.yaml); None when the metadata does not say."""
    try:
        info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
        counts = [int(t["message_count"]) for t in info["topics_with_message_count"]
                  if t["topic_metadata"]["type"] == "sensor_msgs/msg/Image"]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return None
    return min(counts) if counts else None


def check_models(bag: Path, rig_path: Path, models: dict[str, Path], frames: int, slop_ms: float,
                 backgrounds: Path | None = None, montage_frames: int = 3) -> dict:
    """Each model over the same ``frames`` frames of the bag, spread over all of it, as ``kp3d check`` runs it
    (backgrounds learnt from the first of them unless ``backgrounds``): name -> (figures, kept frames, cameras)."""
    rig = load_rig(rig_path)
    stride = max(1, (bag_images(bag) or frames) // frames)
    runs = {}
    for name, model in models.items():
        estimator = build_estimator(rig, model, backend="pytorch", backgrounds=backgrounds)
        run = run_check(bag, rig, estimator, max_frames=frames, stride=stride, slop_ns=int(round(slop_ms * 1e6)),
                        montage_frames=montage_frames, progress=False, rig_source=str(rig_path))
        runs[name] = (summarise(run), run.samples, run.cameras)
    return runs


def table_lines(before: dict, after: dict) -> list[str]:
    """The before/after table as text lines."""
    def fmt(x):
        return "-" if x is None else f"{x:.4g}"

    width = max(len(label) for label, _, _ in FIGURES)
    lines = [f"{'label-free figure':<{width}}  {'before':>8}  {'after':>8}  better"]
    for label, _, better in FIGURES:
        lines.append(f"{label:<{width}}  {fmt(before[label]):>8}  {fmt(after[label]):>8}  {better}")
    return lines


def _crop(image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The square region of ``box`` [cx, cy, side] (grown by 10 %, clipped to the image) and its top-left corner."""
    H, W = image.shape[:2]
    if not np.isfinite(box).all():
        return image, np.zeros(2)
    cx, cy, side = box
    half = 0.55 * side
    x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    x1, y1 = int(min(W, np.ceil(cx + half))), int(min(H, np.ceil(cy + half)))
    if x1 <= x0 or y1 <= y0:
        return image, np.zeros(2)
    return image[y0:y1, x0:x1], np.array([x0, y0], np.float64)


def before_after_figure(runs: dict, lines: list[str], path: Path, max_frames: int = 3) -> Path:
    """``path``: for a few frames, one row per model (before, after) and a column per camera, the image around the
    person with that model's keypoints (one colour per keypoint, the same in both rows: a kept identity keeps its
    colour on the same body part); the label-free table below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (_, before, cameras), (_, after, _) = runs["before"], runs["after"]
    by_index = {s.index: s for s in after}
    pairs = [(s, by_index[s.index]) for s in before if s.index in by_index][:max_frames]
    V, rows = len(cameras), 2 * max(len(pairs), 1)
    fig = plt.figure(figsize=(1.9 * V, 1.9 * rows + 0.22 * len(lines) + 0.4))
    grid = fig.add_gridspec(rows + 1, V, height_ratios=[1.9] * rows + [0.22 * len(lines) + 0.2])
    for r, (sb, sa) in enumerate(pairs):
        for k, (sample, name) in enumerate(((sb, "before"), (sa, "after"))):
            for v in range(V):
                ax = fig.add_subplot(grid[2 * r + k, v])
                view = sample.views[v]
                img, corner = _crop(view.image, sb.views[v].box)  # the same region in both rows
                ax.imshow(img)
                kp = view.keypoints2d - corner
                ok = np.isfinite(kp).all(1) & (view.confidence > 0)
                colours = plt.cm.hsv(np.linspace(0, 1, len(kp), endpoint=False))
                ax.scatter(kp[ok, 0], kp[ok, 1], s=9, c=colours[ok], edgecolors="black", linewidths=0.3)
                ax.set_xlim(0, img.shape[1])
                ax.set_ylim(img.shape[0], 0)
                ax.set_xticks([])
                ax.set_yticks([])
                if v == 0:
                    ax.set_ylabel(f"frame {sb.index}\n{name}", fontsize=7)
                if r == 0 and k == 0:
                    ax.set_title(cameras[v], fontsize=8)
    text = fig.add_subplot(grid[rows, :])
    text.axis("off")
    text.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=7, va="top")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ driver
def load_source(checkpoint: str | Path | None) -> tuple[Path, dict]:
    """(path, checkpoint) of the model to adapt (None: the shipped one); CheckpointError naming the file."""
    path = Path(checkpoint) if checkpoint is not None else shipped_model_path()
    ckpt = load_checkpoint(path)
    model_config_of(ckpt, path)  # its stored config must be valid
    return path, ckpt


def adapt(recording: Recording, out: str | Path = DEFAULT_OUT, checkpoint: str | Path | None = None, *,
          minutes: float | None = None, steps: int | None = None, lr: float = DEFAULT_LR,
          distill: float = DEFAULT_DISTILL, resume: bool = False, check_frames: int = 200,
          backgrounds: Path | None = None, log=print) -> dict:
    """Adapt ``checkpoint`` (None: the shipped model) on ``recording``; writes ``out`` (see the module docstring)
    and returns the summary (also ``out/adapt.json``).

    Raises FileNotFoundError (bag, rig file, folder), CheckpointError (the source), FileExistsError (``out`` holds a
    run and ``resume`` is off), BagError / CalibrationError / ConfigError from the data.
    """
    out = Path(out)
    recording.check()
    source_path, source = load_source(checkpoint)
    cfg = adapt_config(source, source_path, recording, out, minutes=minutes, steps=steps, lr=lr, distill=distill)
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists() and not resume:
        raise FileExistsError(f"{ckpt_path}: an adaptation run is there (--resume continues it; or another --out)")
    if not source.get("mapping"):
        log(f"note: {source_path} has no mapping: the adapted model gives keypoints but no named pose "
            f"(fit one with `kp3d map`)")
    t0 = time.perf_counter()
    train(cfg, resume=resume)
    train_s = time.perf_counter() - t0
    adapted = carry_mapping(ckpt_path, source, source_path)
    onnx = write_onnx(ckpt_path, out / "model.onnx")

    summary = {
        "checkpoint": str(ckpt_path), "onnx": str(out / "model.onnx"), "source": str(source_path),
        "data": recording.data_config(), "steps": adapted["step"], "samples": adapted["samples"],
        "train_minutes": round(adapted["elapsed_s"] / 60.0, 2), "lr": cfg.train.lr, "distill": cfg.loss.distill,
        "mapping": bool(adapted.get("mapping")), "onnx_vs_pytorch": onnx, "seconds": round(train_s, 1),
    }
    target = recording.check_bag() if check_frames > 0 else None
    if target is None:
        log("note: no bag to run the label-free check over (a folder without bag/): no before/after figures")
    else:
        bag, rig = target
        runs = check_models(bag, rig, {"before": source_path, "after": ckpt_path}, check_frames,
                            cfg.data.bag_slop_ms, backgrounds)
        figures = {name: headline(figs) for name, (figs, _, _) in runs.items()}
        lines = [f"label-free, {bag}: {runs['after'][0]['frames']['processed']} frames"]
        lines += table_lines(figures["before"], figures["after"])
        before_after_figure(runs, lines, out / "before_after.png")
        for line in lines:
            log(line)
        summary.update(check_bag=str(bag), figures=figures, picture=str(out / "before_after.png"))
    (out / "adapt.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "examples:" + __doc__.split("Examples::", 1)[1].split("Outputs", 1)[0]
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--bag", type=Path, metavar="DIR", help="your recording: rosbag2 folder with Image + CameraInfo "
                     "per camera (kp3d bag from-videos makes one)")
    src.add_argument("--data", type=Path, metavar="DIR", help="a studio or sessions folder instead (benchmarks)")
    parser.add_argument("--rig", type=Path, metavar="FILE", help="rig file of the bag's cameras (needed with --bag)")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                        help="model to adapt (default: the shipped model); its mapping is carried over")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"ckpt.pt, model.onnx, before_after.png, adapt.json (default {DEFAULT_OUT})")
    parser.add_argument("--minutes", type=positive_float, default=None, metavar="N",
                        help=f"training minutes, resumed runs included (default {DEFAULT_MINUTES:g} unless --steps)")
    parser.add_argument("--steps", type=positive_int, default=None, metavar="N", help="optimiser steps at most")
    parser.add_argument("--lr", type=positive_float, default=DEFAULT_LR,
                        help=f"learning rate, cosine-decayed to a tenth over the run (default {DEFAULT_LR:g})")
    parser.add_argument("--distill", type=non_negative_float, default=DEFAULT_DISTILL, metavar="W",
                        help=f"weight of the term holding the keypoints near the original model's (default "
                             f"{DEFAULT_DISTILL:g}; 0: off)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--check-frames", type=non_negative_int, default=200, metavar="N",
                        help="frames of the label-free before/after check, spread over the bag (default 200; 0: none)")
    parser.add_argument("--backgrounds", type=Path, default=None, metavar="DIR",
                        help="stored empty-scene backgrounds, <camera>.png per camera (kp3d background), for the "
                             "training crops and the check (default: estimated from the recording; the check "
                             "learns them from its first frames, as the node does)")


def main(args: argparse.Namespace) -> int:
    if args.bag is not None and args.rig is None:
        raise UsageError("--rig: needed with --bag (the cameras' poses)")
    if args.data is not None and args.rig is not None:
        raise UsageError("--rig: only with --bag (a studio folder has its own rig.yaml)")
    if not args.distill >= 0:
        raise UsageError(f"--distill: must be >= 0, got {args.distill}")
    recording = Recording(args.bag, args.rig, args.data, args.backgrounds if args.bag else None)
    summary = adapt(recording, args.out, args.checkpoint, minutes=args.minutes,
                    steps=args.steps, lr=args.lr, distill=args.distill, resume=args.resume,
                    check_frames=args.check_frames, backgrounds=args.backgrounds)
    print(json.dumps(summary), flush=True)
    return 0
