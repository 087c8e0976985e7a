"""``kp3d eval``: accuracy of a checkpoint (keypoint net + mapping) on a studio dataset folder.

Pipeline, with no oracle anywhere: the dataset's label-free crops (:mod:`kp3d_core.data.cache`) ->
keypoint net -> crop px -> image px -> undistorted px -> confidence-weighted DLT (views without a
detected person get weight 0) -> discovered 3D keypoints -> the checkpoint's mapping (a skeleton model without
one: the identity, its keypoints being the named joints; reported as ``"mapping": "identity (named joints, no
labels)"``) -> 17 joints, compared with the ground truth by :mod:`kp3d_core.metrics`. Left/right is never chosen by its error;
a flip-corrected MPJPE (an oracle) is printed beside the raw one, labelled as such, for diagnosis only.

Frames where no keypoint could be triangulated (a person found in fewer than 2 views) have no
prediction: they are counted (``coverage_pct``) and left out of the error means.

A sessions folder (:mod:`kp3d_core.data.sessions`) is evaluated session by session, each with its own rig and
cameras exactly as ``--data <split>/<name>`` would (its files under ``--out``/sessions/<name>/), and the figures over
all its frames are those of the sessions' frames pooled (the mean figures are the frame-weighted means of the
sessions'), with the same figures per camera count and per image orientation (:func:`evaluate_sessions`).

The crops are cached once per dataset in the user cache (:func:`kp3d_core.data.cache.cache_root`), never under
the working directory. Without ``--data``, the studio-bench test split (:func:`default_split`: without the motion
data a procedural stand-in, whose figures are marked as not comparable with the benchmark's).

Outputs in ``--out`` (default ``out/eval``): metrics.json, metrics.md (with MPJPE per joint, per motion
source and per subject), views.png, skeleton3d.png, per_joint.png; the last stdout line is one JSON line of
the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import metrics, plots
from .checkpoint import CheckpointError, load_checkpoint, model_config_of, shipped_model_path
from .cli_args import UsageError, positive_int
from .crop import crop_to_image
from .data.cache import CachedDataset
from .data.sessions import Split, read_split
from .data.studio import SampleParams, StudioFolder
from .geometry import triangulate, undistort_pixels
from .models.keypoint_net import load_keypoint_net
from .models.mapping import apply_mapping, checkpoint_mapping
from .rig import load_rig
from .skeleton import JOINT_NAMES, LEFT_RIGHT_PAIRS, ROOT
from .studio import presets

DEFAULT_OUT = Path("out/eval")
FALLBACK_WARNING = ("a preset split rendered without its motion data (procedural motion stands in): its figures are "
                    "not comparable with the README's studio-bench figures")


# ------------------------------------------------------------------------------------------ data
def fallback_name(preset: str, sources: list[str]) -> str:
    """Folder name of a preset rendered with only ``sources`` (its motion data missing), e.g.
    ``studio-bench-only-procedural``: never the preset's own name, which stands for the benchmark."""
    return f"{preset}-only-{'-'.join(sources)}"


def default_split(split: str, preset: str = "studio-bench", motion_root: str | Path | None = None,
                  progress: bool = True) -> Path:
    """The folder of the preset's ``split`` ('train', 'val', 'test'), rendered with the preset if missing.

    Looked for under ``$KP3D_STUDIO_BENCH``, ``out/<preset>`` and ``data/<preset>``; rendered into
    ``out/<preset>/<split>`` otherwise (the preset is byte-reproducible, so this is the same data).
    Without the preset's motion data (under ``motion_root``, default :func:`presets.default_motion_root`)
    the preset falls back to procedural motion: that split is not the benchmark, so it is looked for in and
    rendered into ``out/<fallback_name>`` instead, with a warning (its manifest lists the missing sources).
    """
    import os

    root_motion = Path(motion_root) if motion_root is not None else presets.default_motion_root()
    used, missing = presets.resolve_sources(preset, None, root_motion)
    roots = [Path(os.environ["KP3D_STUDIO_BENCH"])] if os.environ.get("KP3D_STUDIO_BENCH") else []
    roots += [Path("out") / preset, Path("data") / preset]
    out = roots[0] if os.environ.get("KP3D_STUDIO_BENCH") else Path("out") / preset
    if missing:
        name = fallback_name(preset, used)
        roots += [Path("out") / name, Path("data") / name]
        out = Path("out") / name
    for root in roots:
        if (root / split / "manifest.yaml").is_file():
            return root / split
    print(f"{preset} {split} split not found (looked in {', '.join(map(str, roots))}): rendering it with the "
          f"{preset} preset into {out / split} (one-off; takes a while)", file=sys.stderr, flush=True)
    if missing:
        print(f"warning: the {preset} motion data is not under {root_motion} (set --motion-root or "
              f"${presets.MOTION_ROOT_ENV}): rendering {out / split} with {', '.join(used)} motion only; it is not "
              f"{preset}, and figures on it are not comparable with the README's", file=sys.stderr, flush=True)

    presets.generate(preset, split, out, motion_root=root_motion, progress=progress,
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    if not (out / split / "manifest.yaml").is_file():
        raise FileNotFoundError(f"{out / split}: the {preset} preset did not write a '{split}' split")
    return out / split


def check_cameras(data: str | Path, cameras: list[str] | None) -> None:
    """UsageError naming ``--cameras`` and the dataset's rig file (a session's, in a sessions folder) unless every
    camera name is in it."""
    if cameras:
        for session in read_split(data).sessions:
            names = load_rig(session.path / "rig.yaml").names
            unknown = [c for c in cameras if c not in names]
            if unknown:
                raise UsageError(f"--cameras: {', '.join(unknown)} not in {session.path / 'rig.yaml'} (cameras: "
                                 f"{', '.join(names)})")


def motion_fallback(manifest: dict) -> list[str]:
    """The motion sources a preset split was rendered without (manifest ``missing_sources``; [] for a
    complete preset split or a custom dataset): a split with any is not the benchmark its preset names."""
    return [str(n) for n in manifest.get("missing_sources") or []] if manifest.get("preset") else []


# ------------------------------------------------------------------------------------------ model
def load_net(checkpoint: str | Path | None):
    """The checkpoint's keypoint net in eval mode (None: the shipped model)."""

    return load_keypoint_net(checkpoint)


@torch.no_grad()
def discover_keypoints(net, dataset, batch_size: int = 64, progress: bool = True) -> dict:
    """Run the keypoint net over a dataset of the sample contract and triangulate.

    Returns NumPy arrays: ``X`` (N, K, 3) float64 world metres (NaN where invalid), ``valid`` (N, K),
    ``kp_crop`` (N, V, K, 2) crop px, ``kp_image`` (N, V, K, 2) raw image px, ``conf`` (N, V, K),
    ``valid_view`` (N, V), ``frame`` (N,).
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = {k: [] for k in ("X", "valid", "kp_crop", "kp_image", "conf", "valid_view", "frame")}
    for batch in tqdm(loader, desc="keypoints", disable=not progress, leave=False, unit="batch"):
        B, V = batch["image"].shape[:2]
        kp, conf = net(batch["image"].reshape(B * V, *batch["image"].shape[2:]))
        kp = kp.reshape(B, V, -1, 2).double()
        conf = conf.reshape(B, V, -1).double()
        uv = crop_to_image(kp, batch["crop_to_image"].double())
        ideal = undistort_pixels(uv, batch["K"].double(), batch["dist"].double())
        w = conf * batch["valid_view"].reshape(B, V, 1).double()
        X, valid = triangulate(ideal, w, batch["P"].double())
        for k, v in (("X", X), ("valid", valid), ("kp_crop", kp), ("kp_image", uv), ("conf", conf),
                     ("valid_view", batch["valid_view"]), ("frame", batch["frame"])):
            out[k].append(v.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


# ------------------------------------------------------------------------------------------ metrics
def project_joints(joints3d: np.ndarray, cameras) -> np.ndarray:
    """(N, 17, 3) world metres -> (N, V, 17, 2) raw image px (distortion applied); NaN stays NaN."""
    out = np.full((joints3d.shape[0], len(cameras), joints3d.shape[1], 2), np.nan)
    ok = np.isfinite(joints3d).all((-1, -2))
    for v, cam in enumerate(cameras):
        if ok.any():
            out[ok, v] = cam.project(joints3d[ok])
    return out


def compute_metrics(pred: np.ndarray, gt: np.ndarray, pred2d: np.ndarray | None = None,
                    gt2d: np.ndarray | None = None, visible: np.ndarray | None = None,
                    image_size: np.ndarray | None = None) -> dict:
    """All figures of the protocol (REFERENCE section 2) over frames with a prediction.

    Args:
        pred, gt: (N, 17, 3) metres (pred NaN where no prediction).
        pred2d, gt2d: optional (N, V, 17, 2) raw image px; visible (N, V, 17); image_size (V, 2) [W, H].
    Returns:
        dict: mpjpe_mm (world), mpjpe_root_mm (both pelvis-centred), n_mpjpe_mm, p_mpjpe_mm, pck150_pct,
        auc_pct, ambiguity_ratio, error2d_pct, per_joint_mm (17,), coverage_pct, frames, and the
        labelled oracle ``flip_corrected_mpjpe_mm_oracle``.
    """
    ok = np.isfinite(pred).all((-1, -2))
    n = int(ok.sum())
    res: dict = {"frames": int(pred.shape[0]), "frames_evaluated": n, "coverage_pct": 100.0 * n / max(pred.shape[0], 1)}
    if n == 0:
        return res
    p, g = pred[ok], gt[ok]
    res.update(metrics.summarise(p, g))
    res["mpjpe_root_mm"] = 1000.0 * metrics.mpjpe(p - p[:, ROOT:ROOT + 1], g - g[:, ROOT:ROOT + 1])
    res["per_joint_mm"] = (1000.0 * metrics.joint_errors(p, g).mean(0)).tolist()
    # Oracle, labelled: each left/right pair swapped whenever that lowers its error (diagnosis only).
    flip = metrics.flipped_pairs(p, g)
    fixed = p.copy()
    for i, (l, r) in enumerate(LEFT_RIGHT_PAIRS):
        fixed[flip[:, i], l], fixed[flip[:, i], r] = p[flip[:, i], r], p[flip[:, i], l]
    res["flip_corrected_mpjpe_mm_oracle"] = 1000.0 * metrics.mpjpe(fixed, g)
    if pred2d is not None and gt2d is not None:
        errs, counts = error2d_terms(pred2d, gt2d, visible, image_size, ok)
        if counts:
            res["error2d_pct"] = float(np.average(errs, weights=counts))
    return res


def error2d_terms(pred2d: np.ndarray, gt2d: np.ndarray, visible: np.ndarray | None, image_size: np.ndarray,
                  ok: np.ndarray) -> tuple[list[float], list[int]]:
    """Per view with any visible joint in the frames ``ok`` (N,) bool: the mean 2D error (% of its image size,
    :func:`metrics.error_2d_pct`) over those joints, and their count; the counts weight the views' means into one
    figure (also across sessions of other image sizes). pred2d, gt2d (N, V, 17, 2) px, visible (N, V, 17),
    image_size (V, 2) [W, H]."""
    errs, counts = [], []
    for v in range(gt2d.shape[1]):
        m = visible[ok, v] if visible is not None else np.ones(gt2d[ok, v].shape[:2], bool)
        if m.any():
            errs.append(metrics.error_2d_pct(pred2d[ok, v][m], gt2d[ok, v][m], tuple(image_size[v])))
            counts.append(int(m.sum()))
    return errs, counts


def grouped_mpjpe(frame_err: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """MPJPE (mm) per group of frames with a prediction: frame_err (N,) metres (NaN: no prediction), groups (N,)."""
    ok = np.isfinite(frame_err)
    return {str(g): float(1000.0 * frame_err[ok & (groups == g)].mean()) for g in sorted(set(groups[ok].tolist()))}


def clip_source(clip: str) -> str:
    """The motion source of a manifest clip name: its folder (procedural, cmu_131, bandai_namco_1, ...).

    Clip names are ``<source>/<clip>`` (``kp3d synth`` and the presets); an absolute path (custom datasets
    written before ``kp3d synth`` named clips that way) gives its parent folder, a name without a folder
    itself, and an empty name ``unknown``: never an empty key.
    """
    parts = [p for p in str(clip).split("/") if p]
    if not parts:
        return "unknown"
    return parts[-2] if str(clip).startswith("/") and len(parts) >= 2 else parts[0]


def frame_labels(folder, frames: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each frame's clip name (manifest motion entry, e.g. ``cmu_131/131_02.bvh``) and subject id, from the
    dataset's own bookkeeping; None where the folder does not record it (or a clip id is out of range)."""
    clips = subjects = None
    names = [str(m) for m in folder.manifest.get("motion") or []]
    if "clip" in folder.gt and names:
        clip = folder.gt["clip"][frames]
        if len(clip) and clip.min() >= 0 and clip.max() < len(names):
            clips = np.asarray(names, dtype=object)[clip]
    if "subject" in folder.gt:
        subjects = folder.gt["subject"][frames]
    return clips, subjects


def breakdowns(frame_err: np.ndarray, clips: np.ndarray | None, subjects: np.ndarray | None) -> dict:
    """MPJPE by motion source and by subject; frame_err (N,) metres, clips / subjects (N,) from :func:`frame_labels`."""
    res = {}
    if clips is not None:
        res["mpjpe_by_source_mm"] = grouped_mpjpe(frame_err, np.array([clip_source(c) for c in clips], dtype=object))
    if subjects is not None:
        res["mpjpe_by_subject_mm"] = grouped_mpjpe(frame_err, subjects)
    return res


def write_per_frame(path: Path, frame_err: np.ndarray, frames: np.ndarray, clips: np.ndarray | None,
                    subjects: np.ndarray | None, sessions: np.ndarray | None = None) -> Path:
    """``per_frame.csv``: one row per evaluated frame (frame index, clip, motion source, subject, MPJPE mm;
    empty where unknown or where there is no prediction), so errors can be traced to clips and subjects; with
    ``sessions`` (N,) a first column names each frame's session (a sessions folder's frame indices are its
    session's)."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow((["session"] if sessions is not None else []) + ["frame", "clip", "source", "subject", "mpjpe_mm"])
        for i, (t, e) in enumerate(zip(frames, frame_err)):
            clip = clips[i] if clips is not None else ""
            w.writerow(([sessions[i]] if sessions is not None else []) + [
                int(t), clip, clip_source(clip) if clip else "", int(subjects[i]) if subjects is not None else "",
                f"{1000.0 * e:.2f}" if np.isfinite(e) else ""])
    return path


def markdown_table(res: dict, title: str = "kp3d eval") -> str:
    rows = [
        ("MPJPE (mm, world)", "mpjpe_mm"), ("MPJPE (mm, pelvis-aligned)", "mpjpe_root_mm"),
        ("N-MPJPE (mm)", "n_mpjpe_mm"), ("P-MPJPE (mm)", "p_mpjpe_mm"), ("3D-PCK@150mm (%)", "pck150_pct"),
        ("AUC 0-150mm (%)", "auc_pct"), ("2D error (% of image)", "error2d_pct"),
        ("Ambiguity ratio", "ambiguity_ratio"), ("Coverage (% frames)", "coverage_pct"),
        ("Keypoints: distance to the true skeleton, median (mm)", "keypoint_to_skeleton_median_mm"),
        ("Keypoints: distance to the true skeleton, 90th percentile (mm)", "keypoint_to_skeleton_p90_mm"),
        ("Keypoints: distance to the nearest keypoint, median (mm)", "keypoint_spacing_median_mm"),
        ("Lateral keypoints on their body side, body facing its usual way (%)", "body_side_kept_facing_pct"),
        ("Lateral keypoints on their body side, body turned (%)", "body_side_kept_turned_pct"),
        ("MPJPE flip-corrected (mm, ORACLE, not a result)", "flip_corrected_mpjpe_mm_oracle"),
    ]
    lines = [f"## {title}", ""]
    if res.get("procedural_fallback"):
        lines += [f"**Not the benchmark**: {FALLBACK_WARNING}", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {res[key]:.3f} |" if key in res else f"| {name} | n/a |" for name, key in rows]
    if "per_joint_mm" in res:
        lines += ["", "| joint | error (mm) |", "|---|---|"]
        lines += [f"| {n} | {e:.1f} |" for n, e in zip(JOINT_NAMES, res["per_joint_mm"])]
    for key, head in (("mpjpe_by_source_mm", "motion source"), ("mpjpe_by_subject_mm", "subject")):
        if res.get(key):
            lines += ["", f"| {head} | MPJPE (mm) |", "|---|---|"]
            lines += [f"| {g} | {e:.1f} |" for g, e in res[key].items()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ driver
def mapped_checkpoint(checkpoint: str | Path | None) -> tuple[Path, dict, dict]:
    """(path, loaded checkpoint, its mapping) of ``checkpoint`` (None: the shipped model). The mapping is the fitted
    one, or the identity for a skeleton model (:func:`kp3d_core.models.mapping.checkpoint_mapping`: raw named joints,
    no labels); CheckpointError naming the file when it cannot be read or has neither."""
    ckpt_path = Path(checkpoint) if checkpoint else shipped_model_path()
    ckpt = load_checkpoint(ckpt_path)
    mapping = checkpoint_mapping(ckpt)
    if mapping is None:
        raise CheckpointError(f"{ckpt_path}: no 'mapping' entry and not a skeleton model (17 named joints, "
                              f"loss.skeleton or loss.physique > 0): fit one first with "
                              f"`kp3d map --checkpoint {ckpt_path}`")
    return ckpt_path, ckpt, mapping


def evaluate(checkpoint: str | Path | None, data: str | Path, out: str | Path = DEFAULT_OUT,
             cameras: list[str] | None = None, kind: str | None = None, batch_size: int = 64,
             figures: bool = True, progress: bool = True) -> dict:
    """Evaluate ``checkpoint`` (None: the shipped model) on a studio folder or a sessions folder
    (:func:`evaluate_sessions`); writes ``out``; returns the figures."""

    ckpt_path, _, mapping = mapped_checkpoint(checkpoint)
    split = read_split(data)
    if split.is_sessions:
        res = evaluate_sessions(ckpt_path, mapping, split, out, cameras, kind, batch_size, figures, progress)
    else:
        found, ds = checkpoint_keypoints(ckpt_path, data, cameras, batch_size=batch_size, progress=progress)
        res = evaluate_mapping(found, mapping, ds, data, out, kind, figures)
    res["checkpoint"] = str(ckpt_path)
    (Path(out) / "metrics.json").write_text(json.dumps(res, indent=1))
    return res


def checkpoint_keypoints(checkpoint: str | Path, data: str | Path, cameras: list[str] | None = None, frames=None,
                         batch_size: int = 64, progress: bool = True) -> tuple[dict, object]:
    """Discovered keypoints of a checkpoint's net on a studio folder (its crop cache, built if needed).

    Returns (:func:`discover_keypoints` output, the CachedDataset); ``frames`` selects frame indices.
    """

    mcfg = model_config_of(load_checkpoint(checkpoint), checkpoint)
    params = SampleParams(size=mcfg.crop_size)
    CachedDataset(data, params, progress=progress)  # build once for all cameras
    ds = CachedDataset(data, params, cameras=cameras, frames=frames, build=False)
    return discover_keypoints(load_net(checkpoint), ds, batch_size, progress), ds


@dataclass
class Predictions:
    """One studio folder's mapped joints beside its ground truth, N frames of V views: what its figures come from."""

    folder: StudioFolder
    """The folder, with the evaluated cameras."""
    found: dict
    """:func:`discover_keypoints` output on it: X (N, K, 3) m, valid (N, K), kp_image (N, V, K, 2) px, frame (N,),
    valid_view (N, V) ..."""
    pred: np.ndarray
    """(N, 17, 3) m world: the mapped joints (NaN: no prediction)."""
    gt: np.ndarray
    """(N, 17, 3) m world."""
    pred2d: np.ndarray
    """(N, V, 17, 2) raw image px: ``pred`` projected."""
    gt2d: np.ndarray
    """(N, V, 17, 2) raw image px."""
    visible: np.ndarray
    """(N, V, 17) bool."""
    boxes: np.ndarray
    """(N, V, 3) label-free crop boxes [cx, cy, side] px."""
    frame_err: np.ndarray
    """(N,) m: each frame's mean joint error (NaN: no prediction)."""
    clips: np.ndarray | None
    """(N,) clip names (:func:`frame_labels`), None where unknown."""
    subjects: np.ndarray | None
    """(N,) subject ids, None where unknown."""

    @property
    def frames(self) -> np.ndarray:
        """(N,) frame indices in the folder."""
        return np.asarray(self.found["frame"])

    @property
    def image_size(self) -> np.ndarray:
        """(V, 2) [W, H] px of the evaluated cameras."""
        return np.array([[c.width, c.height] for c in self.folder.cameras])


def predictions(found: dict, mapping: dict, ds, data: str | Path, kind: str | None = None) -> Predictions:
    """The ``kind`` map (None: the mapping's default) of keypoints ``found`` on ``ds``, the CachedDataset of the studio
    folder ``data``, beside its ground truth."""
    pred = np.asarray(apply_mapping(mapping, found["X"], kind), dtype=np.float64)
    gt = ds.labels("joints3d")
    folder = StudioFolder(data, ds.cameras)
    clips, subjects = frame_labels(folder, np.asarray(found["frame"]))
    return Predictions(folder, found, pred, gt, project_joints(pred, folder.cameras), ds.labels("joints2d"),
                       ds.labels("visible"), ds.labels("box"), metrics.joint_errors(pred, gt).mean(-1), clips, subjects)


def keypoint_figures(found: dict, gt: np.ndarray, mapping: dict) -> dict:
    """Where the discovered keypoints sit (:func:`metrics.keypoint_placement`) and whether they keep their body side
    (:func:`metrics.body_side_keeping`, about the mapping's vertical axis)."""
    return {**metrics.keypoint_placement(found["X"], found["valid"], gt),
            **metrics.body_side_keeping(found["X"], found["valid"], gt, up=mapping.get("up", (0.0, 0.0, 1.0)))}


def mapping_info(mapping: dict, kind: str | None) -> dict:
    """The evaluated map (a named one, e.g. a skeleton model's identity, by its name) and the labelled frames it was
    fitted on."""
    return {"mapping": kind or mapping.get("name", mapping["default"]), "mapping_fraction": mapping.get("fraction"),
            "mapping_frames": mapping.get("num_frames")}


def evaluate_mapping(found: dict, mapping: dict, ds, data: str | Path, out: str | Path = DEFAULT_OUT,
                     kind: str | None = None, figures: bool = True) -> dict:
    """Metrics (and files in ``out``) of one mapping applied to keypoints already discovered on ``ds``."""
    return report_folder(predictions(found, mapping, ds, data, kind), mapping, data, out, kind, figures)


def report_folder(p: Predictions, mapping: dict, data: str | Path, out: str | Path, kind: str | None,
                  figures: bool) -> dict:
    """One folder's figures, written to ``out`` (metrics.json, metrics.md, per_frame.csv, figures) and returned."""
    res = compute_metrics(p.pred, p.gt, p.pred2d, p.gt2d, p.visible, p.image_size)
    res.update(breakdowns(p.frame_err, p.clips, p.subjects))
    res.update(keypoint_figures(p.found, p.gt, mapping))
    missing = motion_fallback(p.folder.manifest)
    res.update(procedural_fallback=bool(missing), **({"missing_sources": missing} if missing else {}))
    cameras = list(p.folder.rig.names)
    res.update(data=str(Path(data)), cameras=cameras, views=len(cameras), **mapping_info(mapping, kind),
               person_found_pct=100.0 * float(p.found["valid_view"].mean()))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_per_frame(out / "per_frame.csv", p.frame_err, p.frames, p.clips, p.subjects)
    if figures and res.get("frames_evaluated", 0) > 0:
        res["figures"] = draw_figures(p, res["per_joint_mm"], out)
    (out / "metrics.json").write_text(json.dumps(res, indent=1))
    (out / "metrics.md").write_text(markdown_table(res, f"kp3d eval: {Path(data).name} ({len(cameras)} views)"))
    return res


def draw_figures(p: Predictions, per_joint_mm: list[float], out: Path) -> dict:
    """views.png and skeleton3d.png of a typical frame (the median error), per_joint.png; their paths."""
    i = int(np.nanargmin(np.abs(p.frame_err - np.nanmedian(p.frame_err))))
    t = int(p.frames[i])
    return {
        "views": str(plots.plot_views(p.folder.read_images(t), p.pred2d[i], p.gt2d[i], p.found["kp_image"][i],
                                      out / "views.png", title=f"frame {t}: predicted (red) vs true (green), "
                                      "discovered keypoints (yellow), label-free crop (dashed)", boxes=p.boxes[i])),
        "skeleton3d": str(plots.plot_skeleton_3d(p.pred[i], p.gt[i], out / "skeleton3d.png", title=f"frame {t}")),
        "per_joint": str(plots.plot_per_joint(per_joint_mm, out / "per_joint.png")),
    }


# ------------------------------------------------------------------------------------------ sessions
def evaluate_sessions(checkpoint: str | Path, mapping: dict, split: Split, out: str | Path = DEFAULT_OUT,
                      cameras: list[str] | None = None, kind: str | None = None, batch_size: int = 64,
                      figures: bool = True, progress: bool = True) -> dict:
    """Evaluate a sessions folder: each session alone with its own rig (``out``/sessions/<name>/, the figures of
    ``--data <split>/<name>``), then the figures over all frames (:func:`pooled_figures`), per camera count
    (``by_cameras``) and per image orientation (``by_orientation``, :func:`orientation`), written to ``out``."""
    out = Path(out)
    parts: dict[str, Predictions] = {}
    sessions: dict[str, dict] = {}
    for s in split.sessions:
        found, ds = checkpoint_keypoints(checkpoint, s.path, cameras, batch_size=batch_size, progress=progress)
        parts[s.name] = predictions(found, mapping, ds, s.path, kind)
        sessions[s.name] = report_folder(parts[s.name], mapping, s.path, out / "sessions" / s.name, kind, figures)
    res = pooled_figures(parts, mapping)
    # each session's manifest names the motion sources it lacks (the split's own notes are free text)
    missing = sorted({m for r in sessions.values() for m in r.get("missing_sources", [])})
    res.update(procedural_fallback=bool(missing), **({"missing_sources": missing} if missing else {}))
    res.update(data=str(split.path), **mapping_info(mapping, kind))
    res["by_cameras"] = grouped_figures(parts, mapping, lambda p: str(len(p.folder.cameras)))
    res["by_orientation"] = grouped_figures(parts, mapping, lambda p: orientation(p.image_size))
    res["sessions"] = sessions
    out.mkdir(parents=True, exist_ok=True)
    cat = lambda f: np.concatenate([f(p) for p in parts.values()])  # noqa: E731
    names = np.concatenate([np.full(len(p.frames), n, dtype=object) for n, p in parts.items()])
    known = lambda key: all(getattr(p, key) is not None for p in parts.values())  # noqa: E731
    write_per_frame(out / "per_frame.csv", cat(lambda p: p.frame_err), cat(lambda p: p.frames),
                    cat(lambda p: p.clips) if known("clips") else None,
                    cat(lambda p: p.subjects) if known("subjects") else None, sessions=names)
    if figures and res.get("frames_evaluated", 0) > 0:
        res["figures"] = {"per_joint": str(plots.plot_per_joint(res["per_joint_mm"], out / "per_joint.png"))}
    (out / "metrics.json").write_text(json.dumps(res, indent=1))
    (out / "metrics.md").write_text(report_markdown(res, f"kp3d eval: {split.path.name} ({len(parts)} sessions)"))
    return res


def session_subjects(parts: dict[str, Predictions]) -> np.ndarray | None:
    """(N,) each pooled frame's subject as '<session>/<id>' (ids are numbered per session), None if any is unknown."""
    if any(p.subjects is None for p in parts.values()):
        return None
    return np.concatenate([np.array([f"{n}/{int(s)}" for s in p.subjects], dtype=object) for n, p in parts.items()])


def pooled_figures(parts: dict[str, Predictions], mapping: dict) -> dict:
    """The figures over all frames of several sessions (name -> :class:`Predictions`), their frames pooled.

    Figures that are means over frames (MPJPE in all its forms, 3D-PCK, AUC, per joint, per motion source, coverage)
    are thus the frame-weighted means of the sessions' own; the 2D error weights each session's views by their
    visible joints (each in % of its own image size); the ambiguity ratio, the keypoint medians and percentiles and
    the body-side figures are those of the pooled frames. Subjects are keyed '<session>/<id>'.
    """
    ps = list(parts.values())
    cat = lambda f: np.concatenate([f(p) for p in ps])  # noqa: E731
    pred, gt = cat(lambda p: p.pred), cat(lambda p: p.gt)
    res = compute_metrics(pred, gt)
    if res["frames_evaluated"] > 0:
        errs, counts = [], []
        for p in ps:
            e, c = error2d_terms(p.pred2d, p.gt2d, p.visible, p.image_size, np.isfinite(p.pred).all((-1, -2)))
            errs, counts = errs + e, counts + c
        if counts:
            res["error2d_pct"] = float(np.average(errs, weights=counts))
    clips = cat(lambda p: p.clips) if all(p.clips is not None for p in ps) else None
    res.update(breakdowns(cat(lambda p: p.frame_err), clips, session_subjects(parts)))
    found = {k: cat(lambda p: p.found[k]) for k in ("X", "valid")}
    res.update(keypoint_figures(found, gt, mapping))
    views = [p.found["valid_view"] for p in ps]
    res["person_found_pct"] = 100.0 * sum(float(v.sum()) for v in views) / max(sum(v.size for v in views), 1)
    return res


def grouped_figures(parts: dict[str, Predictions], mapping: dict, key) -> dict[str, dict]:
    """:func:`pooled_figures` of the sessions grouped by ``key(predictions) -> str``, with each group's sessions."""
    groups: dict[str, dict[str, Predictions]] = {}
    for name, p in parts.items():
        groups.setdefault(key(p), {})[name] = p
    return {g: {"sessions": list(ps), **pooled_figures(ps, mapping)} for g, ps in sorted(groups.items())}


def orientation(image_size: np.ndarray) -> str:
    """'portrait' (every view taller than wide), 'landscape' (every view wider than tall), 'square', or 'mixed';
    image_size (V, 2) [W, H] px, from the session's rig."""
    kinds = {"portrait" if h > w else "landscape" if w > h else "square" for w, h in np.asarray(image_size)}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def report_markdown(res: dict, title: str = "kp3d eval") -> str:
    """:func:`markdown_table`, and for a sessions folder its sessions, camera counts and orientations as tables."""
    text = markdown_table(res, title)
    if "sessions" not in res:
        return text
    cols = (("frames", "frames", "{:d}"), ("coverage (%)", "coverage_pct", "{:.1f}"),
            ("MPJPE (mm)", "mpjpe_mm", "{:.1f}"), ("P-MPJPE (mm)", "p_mpjpe_mm", "{:.1f}"),
            ("3D-PCK@150mm (%)", "pck150_pct", "{:.1f}"), ("2D error (% of image)", "error2d_pct", "{:.2f}"))

    def table(head: str, rows: dict, extra) -> list[str]:
        lines = ["", f"| {head} | {' | '.join(h for h, _, _ in extra)} | {' | '.join(h for h, _, _ in cols)} |",
                 "|---" * (1 + len(extra) + len(cols)) + "|"]
        for name, r in rows.items():
            cells = [f(r) for _, f, _ in extra] + [fmt.format(r[k]) if k in r else "n/a" for _, k, fmt in cols]
            lines.append(f"| {name} | {' | '.join(str(c) for c in cells)} |")
        return lines

    lines = table("session", res["sessions"], [("views", lambda r: r["views"], None)])
    for key, head in (("by_cameras", "cameras"), ("by_orientation", "orientation")):
        lines += table(head, res[key], [("sessions", lambda r: ", ".join(r["sessions"]), None)])
    return text + "\n".join(lines) + "\n"


def without_per_joint(res: dict) -> dict:
    """``res`` without its ``per_joint_mm`` lists (also those of its sessions and groups): the final JSON line."""
    return {k: without_per_joint(v) if isinstance(v, dict) else v for k, v in res.items() if k != "per_joint_mm"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint with a mapping, or a skeleton model "
                        "(its 17 keypoints are the named joints: evaluated raw, identity mapping) (default: the "
                        "shipped model kp3d_core/assets/model.pt)")
    parser.add_argument("--data", default=None, help="studio dataset folder or sessions folder, each session "
                        "evaluated with its own rig and all pooled (default: the studio-bench test split, "
                        "rendered with the preset if missing; without the motion data, a procedural stand-in in "
                        "out/studio-bench-only-procedural, marked as not comparable)")
    parser.add_argument("--motion-root", type=Path, default=None,
                        help=f"motion data for rendering the default split (default {presets.DEFAULT_MOTION_HELP})")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default out/eval)")
    parser.add_argument("--cameras", nargs="*", default=None, help="camera names to use (default: all)")
    parser.add_argument("--mapping", choices=("mlp", "linear"), default=None, help="mapping model (default: the stored default)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="frames per inference batch")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (the crop cache, built once per dataset under $KP3D_CACHE or "
                             "~/.cache/kp3d, shows one)")


def main(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    mapped_checkpoint(args.checkpoint)  # a bad checkpoint fails now, not after rendering the default split
    data = args.data or default_split("test", motion_root=args.motion_root, progress=progress)
    check_cameras(data, args.cameras)
    res = evaluate(args.checkpoint, data, args.out, args.cameras, args.mapping, args.batch_size, not args.no_figures,
                   progress)
    print(report_markdown(res), flush=True)
    if res["procedural_fallback"]:
        print(f"warning: {data}: {FALLBACK_WARNING} (missing: {'; '.join(res['missing_sources'])})",
              file=sys.stderr, flush=True)
    print(json.dumps(without_per_joint(res)), flush=True)
    return 0
