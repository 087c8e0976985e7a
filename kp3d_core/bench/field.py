"""``kp3d bench field``: the run-time estimator on studio-field sessions, with stored and with learnt backgrounds.

Each session of a studio-field split (default ``out/studio-field/test``) goes through the node's code path
(:func:`kp3d_core.inference.pipeline.build_estimator`, then
:meth:`~kp3d_core.inference.estimator.MultiViewEstimator.process` over its frames in order), once per ROW.
The rows today:

- ``stored``: the session's stored empty-scene backgrounds (``<session>/backgrounds/``, the node's
  ``model.backgrounds``);
- ``learnt``: nothing stored, the cold start: the background is learnt from the frames themselves, the person
  in view from the first frame.

A row is a :class:`Row` (a name, a checkpoint, stored or learnt backgrounds); rows for other models (a new shipped
model against today's, a supervised upper bound) are more entries of :func:`default_rows`' list. Ground truth only
scores, never enters the estimator.

Figures, per session and over all sessions (pooled frames):

- ``mpjpe_mm`` per row over the frames after the learnt row's warm-up where EVERY row has a pose (the same
  frames for all rows), and each row's ratio to the first row (``ratio_to_stored``; the acceptance is
  learnt / stored <= 1.15);
- ``pose_pct`` per row: the frames after the warm-up with a pose;
- ``box_holds_pct`` per row: over the (frame, camera) pairs after the warm-up whose truth shows at least two
  joints in the image, the share where the crop box holds at least 90 % of the true joints' 2D box (the box of
  the joints in the image; a view without a box fails), overall and per camera (``box_holds_pct_per_camera``,
  its worst camera ``box_holds_worst_camera_pct``); bystander sessions (manifest ``bystanders``) are also pooled
  apart (``bystanders`` / ``no_bystanders`` in the summary);
- ``contaminated_views``: per row, the cameras the predictor flagged as holding a contaminated background at
  the end of the session (:attr:`~kp3d_core.inference.predictor.Predictor.contamination`).

One JSON line per session, then the summary line (last). ``--quick``: the first 2 sessions, 120 frames each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cli_args import UsageError, positive_int
from ..data.sessions import read_split
from ..data.studio import StudioFolder

DEFAULT_DATA = Path("out/studio-field/test")
HOLD_FRACTION = 0.9
"""A crop box holds the subject when it holds this fraction of the true joints' 2D box (area)."""


@dataclass(frozen=True)
class Row:
    """One configuration of the run-time estimator to bench."""

    name: str
    """The row's name in the JSON (``stored``, ``learnt``, ...)."""
    backgrounds: str = "learnt"
    """``stored`` (the session's ``backgrounds/``, the true empty room) or ``learnt`` (cold start)."""
    checkpoint: Path | None = None
    """Checkpoint or ONNX file; None: the shipped model."""


def default_rows(checkpoint: Path | None = None) -> list[Row]:
    """The rows of ``kp3d bench field``: stored empty-scene backgrounds first (the reference), the cold start."""
    return [Row("stored", "stored", checkpoint), Row("learnt", "learnt", checkpoint)]


@dataclass
class SessionRun:
    """One row over one session's frames (T frames, V cameras)."""

    poses: np.ndarray
    """(T, 17, 3) metres, NaN where the estimator gave no pose."""
    boxes: np.ndarray
    """(T, V, 3) crop boxes [cx, cy, side] px, NaN where no person was found."""
    ready: np.ndarray
    """(T,) the predictor's background was ready for the frame (past the warm-up)."""
    contamination: list = field(default_factory=list)
    """Cameras flagged contaminated at the end (names)."""
    seconds: float = 0.0


def run_session(folder: StudioFolder, row: Row, frames: int | None = None, predictor_config=None) -> SessionRun:
    """``row``'s estimator over the first ``frames`` frames of ``folder`` (all: None), in order, as the node does.

    ``predictor_config``: a :class:`~kp3d_core.inference.predictor.PredictorConfig` other than the node's
    (ablations); None: the node's.
    """
    from ..inference.estimator import MultiViewEstimator
    from ..inference.pipeline import EstimatorSettings, build_estimator

    if row.backgrounds not in ("stored", "learnt"):
        raise ValueError(f"Row.backgrounds must be 'stored' or 'learnt', got {row.backgrounds!r}")
    stored = folder.path / "backgrounds" if row.backgrounds == "stored" else None
    settings = EstimatorSettings(model=row.checkpoint, backgrounds=stored)
    est: MultiViewEstimator = build_estimator(settings, folder.rig)
    if predictor_config is not None:
        from ..inference.predictor import Predictor

        p = est.predictor
        est.predictor = Predictor(p.backend, p.cameras, predictor_config, p._stored_backgrounds)
    T = len(folder) if frames is None else min(frames, len(folder))
    V = len(folder.cameras)
    poses, boxes, ready = np.full((T, 17, 3), np.nan), np.full((T, V, 3), np.nan), np.zeros(T, bool)
    stamps = folder.gt.get("stamps_ns", np.arange(T, dtype=np.int64) * 33_333_333)
    t0 = time.perf_counter()
    for t in range(T):
        ready[t] = est.predictor.background_ready
        out = est.process(folder.read_images(t), int(stamps[t]))
        if out.pose is not None:
            poses[t] = out.pose
        boxes[t] = out.boxes
    flagged = [c.name for c, f in zip(folder.cameras, getattr(est.predictor, "contamination", [])) if f]
    return SessionRun(poses, boxes, ready, flagged, time.perf_counter() - t0)


def holds(boxes: np.ndarray, joints2d: np.ndarray, in_frame: np.ndarray, fraction: float = HOLD_FRACTION):
    """Whether each crop box holds the subject: ((..., V) bool holds, (..., V) bool counted).

    ``boxes`` (..., V, 3) [cx, cy, side] px (NaN: none); ``joints2d`` (..., V, J, 2) px; ``in_frame`` (..., V, J).
    Counted where at least two joints are in the image; holds where the box covers at least ``fraction`` of the
    area of those joints' 2D box (each side at least 1 px). A missing box never holds.
    """
    pts = np.where(in_frame[..., None], joints2d, np.nan)
    counted = in_frame.sum(-1) >= 2
    with np.errstate(invalid="ignore"), _quiet():
        lo, hi = np.nanmin(pts, axis=-2), np.nanmax(pts, axis=-2)  # (..., V, 2)
    mid = (lo + hi) / 2
    lo, hi = np.minimum(lo, mid - 0.5), np.maximum(hi, mid + 0.5)
    half = boxes[..., 2:3] / 2
    blo, bhi = boxes[..., :2] - half, boxes[..., :2] + half
    inter = np.clip(np.minimum(hi, bhi) - np.maximum(lo, blo), 0, None).prod(-1)
    share = inter / (hi - lo).prod(-1)
    ok = counted & np.isfinite(share) & (np.nan_to_num(share) >= fraction)
    return ok, counted


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def score(runs: dict[str, SessionRun], folder: StudioFolder, warmup_row: str = "learnt") -> dict:
    """Per-frame figures of every row on one session (arrays, for pooling): see the module docstring. Frames
    count from the end of ``warmup_row``'s warm-up (all frames when there is no such row)."""
    names = list(runs)
    T = len(next(iter(runs.values())).ready)
    gt = folder.gt
    joints3d = np.asarray(gt["joints3d"][:T], np.float64)
    j2d = np.asarray(gt["joints2d"][:T], np.float64)
    in_frame = np.asarray(gt["in_frame"][:T] if "in_frame" in gt else gt["visible"][:T], bool)
    after = runs[warmup_row].ready if warmup_row in runs else np.ones(T, bool)
    has_pose = {n: np.isfinite(r.poses).all(axis=(1, 2)) for n, r in runs.items()}
    common = after & np.all([has_pose[n] for n in names], axis=0)
    out = {"frames": T, "after_warmup": int(after.sum()), "common": common, "after": after, "rows": {}}
    for n, r in runs.items():
        err = np.linalg.norm(r.poses - joints3d, axis=-1).mean(-1) * 1e3  # (T,) mm
        ok, counted = holds(r.boxes, j2d, in_frame)
        out["rows"][n] = {"err": err, "pose": has_pose[n], "ok": ok & after[:, None],
                          "counted": counted & after[:, None], "contaminated": r.contamination}
    return out


def figures(parts: list[dict], cameras: list[list[str]] | None = None) -> dict:
    """JSON figures of one or more scored sessions pooled (frames pooled; per camera only for one session)."""
    rows = parts[0]["rows"].keys()
    res = {"frames": int(sum(p["frames"] for p in parts)), "after_warmup": int(sum(p["after_warmup"] for p in parts)),
           "common_frames": int(sum(p["common"].sum() for p in parts)), "rows": {}}
    first = None
    for n in rows:
        err = np.concatenate([p["rows"][n]["err"][p["common"]] for p in parts])
        pose = sum(int((p["rows"][n]["pose"] & p["after"]).sum()) for p in parts)
        ok = sum(int(p["rows"][n]["ok"].sum()) for p in parts)
        counted = sum(int(p["rows"][n]["counted"].sum()) for p in parts)
        r = {"mpjpe_mm": round(float(err.mean()), 1) if err.size else None,
             "pose_pct": round(100.0 * pose / max(res["after_warmup"], 1), 1),
             "box_holds_pct": round(100.0 * ok / counted, 2) if counted else None}
        per_cam = []
        for p in parts:
            c, k = p["rows"][n]["ok"].sum(0), p["rows"][n]["counted"].sum(0)
            per_cam += [100.0 * a / b for a, b in zip(c, k) if b]
        r["box_holds_worst_camera_pct"] = round(float(min(per_cam)), 2) if per_cam else None
        if cameras is not None and len(parts) == 1:
            c, k = parts[0]["rows"][n]["ok"].sum(0), parts[0]["rows"][n]["counted"].sum(0)
            r["box_holds_pct_per_camera"] = {name: round(100.0 * a / b, 2) if b else None
                                             for name, a, b in zip(cameras[0], c, k)}
            r["contaminated_views"] = parts[0]["rows"][n]["contaminated"]
        if first is None:
            first = r["mpjpe_mm"]
        elif first and r["mpjpe_mm"] is not None:
            r["ratio_to_stored"] = round(r["mpjpe_mm"] / first, 3)
        res["rows"][n] = r
    return res


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"a studio-field split (a sessions folder, or one session folder; default {DEFAULT_DATA})")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="checkpoint (.pt) or ONNX file to bench (default: the shipped model)")
    parser.add_argument("--sessions", nargs="*", default=None, help="only these sessions (names)")
    parser.add_argument("--frames-limit", type=positive_int, default=None, help="the first N frames of each session")
    parser.add_argument("--quick", action="store_true", help="the first 2 sessions, 120 frames each")
    parser.add_argument("--no-progress", action="store_true", help="no per-session line on stderr")


def main(args: argparse.Namespace) -> int:
    if not (args.data / "manifest.yaml").is_file():
        raise FileNotFoundError(
            f"{args.data}: no studio-field split there (render it: kp3d synth --preset studio-field --split test "
            f"--out {args.data.parent})")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such file")
    split = read_split(args.data)
    sessions = list(split.sessions)
    if args.sessions:
        unknown = sorted(set(args.sessions) - {s.name for s in sessions})
        if unknown:
            raise UsageError(f"--sessions: {', '.join(unknown)} not in {args.data} "
                             f"(sessions: {', '.join(s.name for s in sessions)})")
        sessions = [s for s in sessions if s.name in args.sessions]
    frames = args.frames_limit
    if args.quick:
        sessions, frames = sessions[:2], min(frames or 120, 120)
    rows = default_rows(args.checkpoint)
    scored, cams, bystanders = [], [], []
    for s in sessions:
        folder = StudioFolder(s.path)
        if not (folder.path / "backgrounds").is_dir():
            raise FileNotFoundError(f"{folder.path}: no backgrounds/ (the stored empty-scene row needs them)")
        runs = {row.name: run_session(folder, row, frames) for row in rows}
        part = score(runs, folder)
        walkers = len(folder.manifest.get("bystanders") or [])
        scored.append(part)
        cams.append(folder.rig.names)
        bystanders.append(walkers > 0)
        line = {"bench": "field", "session": s.name, "cameras": len(folder.cameras),
                "stay_in_place": bool(folder.manifest.get("stay_in_place")), "bystanders": walkers,
                **figures([part], [folder.rig.names]),
                "seconds": {n: round(r.seconds, 1) for n, r in runs.items()}}
        print(json.dumps(line), flush=True)
        if not args.no_progress:
            r = line["rows"]
            print(f"{s.name}: " + ", ".join(f"{n} {v['mpjpe_mm']} mm, box {v['box_holds_pct']} %" for n, v in r.items()),
                  file=sys.stderr, flush=True)
    summary = {"bench": "field", "summary": True, "data": str(args.data), "sessions": len(scored),
               "model": str(args.checkpoint) if args.checkpoint else "shipped", "frames_limit": frames,
               **figures(scored)}
    with_b = [p for p, b in zip(scored, bystanders) if b]
    without = [p for p, b in zip(scored, bystanders) if not b]
    summary["bystanders"] = figures(with_b)["rows"] if with_b else None
    summary["no_bystanders"] = figures(without)["rows"] if without else None
    learnt = summary["rows"].get("learnt", {})
    summary["acceptance"] = {
        "learnt_over_stored": learnt.get("ratio_to_stored"),
        "ratio_at_most_1_15": None if learnt.get("ratio_to_stored") is None else learnt["ratio_to_stored"] <= 1.15,
        "box_holds_at_least_99": None if learnt.get("box_holds_pct") is None else learnt["box_holds_pct"] >= 99.0,
    }
    print(json.dumps(summary), flush=True)
    return 0
