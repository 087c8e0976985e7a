"""``kp3d bench accuracy``: train, map and evaluate on studio-bench; one JSON line per figure.

Runs (all trained on the studio-bench TRAIN split, mapped on a fraction of its labels, evaluated on
the TEST split; no run ever sees a test frame or labels outside its fraction):

- ``main``: the unsupervised model of the base config (4 views) for ``--budget-minutes``; mapped with
  the MLP at 1 %, 10 % and 100 % labels (and ridge at 10 %), beside a mean-pose baseline.
- ``supervised``: the same network and frames with ground-truth 2D joints (K = 17, keypoint k = joint k,
  no mapping), the upper bound; each unsupervised figure carries its ratio to it.
- ablation at an equal budget (``--side-minutes`` of training each, or ``--steps``), cumulative rows, all with 4
  views: reconstruction only; + kp3d's anti-collapse prior (fill, separation, and thin_fill where the base config
  has it: REFERENCE section 5); then the paper's terms in its order: + mask (the drawn keypoint mask against the
  label-free foreground, ``mask_to_fg``); + coverage; + centering; then + kp3d's other additions (the decoder-mask
  term ``mask``, consistency: every term on). A term on in a row takes the base config's weight, or the LossConfig
  default where the base switches it off (so a lean ``--config`` still gets a full ablation).
- views: the base config with 2 and 3 views at the same side budget (4 views = the ablation row with the
  base config's loss set, when there is one). A views row trains every N-camera subset of the rig, the seeds cycled
  over them (:func:`view_runs`), not only the first N cameras the rig file lists.

Each ablation / views row trains ``--seeds`` runs (the base seed, then +1, +2, ...; one ``{run}_seed`` line each;
a views row with more camera subsets than seeds trains one run per subset) and reports their mean, each run's MPJPE
and the standard error (its ``{run}`` line): one short run per row cannot order rows a few mm apart. The summary
gives each added loss's (each added view's) change of the mean, in mm and in standard errors of the difference, and
whether every change lowers the error.

Each line: ``{"bench": "accuracy", "run": ..., "labels_pct": ..., "mpjpe_mm": ..., ...}``; the last line
is the summary. A run given minutes trains on a time budget (``train.max_minutes``: it stops when the budget
is spent, its learning-rate decay timed to end there) and reports the steps it reached; ``--steps`` fixes the
step counts instead, for runs comparable across machines. Training minutes (the training loop's own
seconds, kept in the checkpoint) and samples/s are as measured.

``results.jsonl.partial`` grows one line at a time and becomes ``results.jsonl`` when the invocation completes (so
an interruption leaves the last complete invocation's file whole). Every line of a run carries ``part``, a digest
of that run's training config (all but bookkeeping such as checkpoint cadence and threads, and all but the fields at
their default), data folders and mapping settings (every MappingConfig field). ``--resume`` reuses the parts of an
earlier, interrupted invocation (either file) whose digest matches (their lines come back with ``"resumed": true``)
and continues a run whose training stopped midway from its last checkpoint (every 500 steps): a bench longer than
one sitting completes as one run, while a changed setting can never reuse a stale figure. A completed invocation
also writes ``results.md`` (the figures as Markdown tables) and ``rows.png`` (each ablation / views row's seeds and
mean ± standard error) beside it (:mod:`kp3d_core.bench.report`).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..config import Config, ConfigError, LossConfig, config_from_dict, config_to_dict, load_config
from ..data.cache import CachedDataset
from ..data.studio import SampleParams, StudioFolder
from ..evaluate import checkpoint_keypoints, default_split, evaluate, evaluate_mapping
from ..fit_mapping import MappingConfig, map_checkpoint, select_fraction
from ..skeleton import ROOT
from ..train import train
from .report import write_report

# The base config: the best main run so far (docs/accuracy_journal.md, "Coverage back on").
DEFAULT_CONFIG = Path("training/configs/studio64_swap_cover.yaml")
DEFAULT_OUT = Path("out/bench/accuracy")
FRACTIONS = (0.01, 0.1, 1.0)
# ``--quick``'s maps: 600 steps, one MLP per yaw limit, the mirror probability the full bench's hold-out chose at
# 1 % and 10 % (4 MLP fits a map instead of 12: the fits had taken 38 of a side run's 66 evaluation seconds, 2 cores).
QUICK_MAPPING = MappingConfig(steps=600, seeds_per_limit=1, mirror=(0.5,))

# Loss ablation: cumulative rows; every other loss weight is 0 (``structure`` belongs to reconstruction).
# Reconstruction alone; + kp3d's anti-collapse prior (fill + separation, REFERENCE section 5); then the paper's terms in
# the paper's order (seed 000's table: + mask; + coverage; + centering); then kp3d's other additions (the full row).
# The paper's mask term matches the mask drawn from the reprojected keypoints to the subject mask M the model estimated
# without labels. kp3d's label-free subject mask is the soft |I - B| foreground: that is ``mask_to_fg``. kp3d's decoder
# draws its M from the keypoints themselves, so ``mask`` (drawn mask against that M) cannot spread collapsed keypoints:
# it is one of kp3d's additions. Without the prior the paper's terms leave the keypoints collapsed in one spot
# (docs/accuracy_journal.md, "The ablation in the paper's order"). A row's name lists its loss set, not the order the
# terms came in (it names the run folder).
PAPER_TERMS = ("reconstruction", "mask_to_fg", "coverage", "centering")
ANTI_COLLAPSE = ("fill", "thin_fill", "separation")  # thin_fill: on only where the base config has it (default 0)
ADDITIONS = ANTI_COLLAPSE + ("mask", "consistency")
ABLATION = (
    ("recon", ("reconstruction",)),
    ("recon+fill+sep", ("reconstruction",) + ANTI_COLLAPSE),
    ("recon+mask_to_fg+fill+sep", ("reconstruction", "mask_to_fg") + ANTI_COLLAPSE),
    ("recon+mask_to_fg+fill+sep+coverage", ("reconstruction", "mask_to_fg", "coverage") + ANTI_COLLAPSE),
    ("recon+mask_to_fg+fill+sep+coverage+centering", PAPER_TERMS + ANTI_COLLAPSE),
    ("full", PAPER_TERMS + ADDITIONS),
)


def ablation_losses(base, terms) -> object:
    """A LossConfig with only ``terms`` (plus the structural part of reconstruction) on, at the base weights
    (the LossConfig default weight for a term the base switches off)."""

    loss, default = copy.deepcopy(base), LossConfig()
    for name in PAPER_TERMS + ADDITIONS:
        if name not in terms:
            setattr(loss, name, 0.0)
        elif getattr(loss, name) <= 0:
            setattr(loss, name, getattr(default, name))
    if "reconstruction" not in terms:
        loss.structure = 0.0
    return loss


VIEW_SUBSETS = ("all", "first")


def view_runs(names: list[str], v: int, seeds: int, subsets: str = "all") -> list[tuple[str, list[str], int]]:
    """The training runs of the ``v``-view row of a rig with cameras ``names``: (folder, cameras, seed offset) each.

    ``subsets="all"``: every ``v``-camera subset of the rig, each trained once, the seeds cycled over them (and each
    subset again at further seeds while there are fewer subsets than ``seeds``): max(seeds, C(n, v)) runs. A row of
    the first ``v`` cameras alone would measure one placement, whichever the rig file happens to list first: on
    studio-bench's ring of four, cam0 + cam1 are adjacent (90 degrees apart), while every 3-camera subset holds an
    opposite pair, so "2 views against 3" would compare the best-placed pair with an average placement. ``"first"``:
    the first ``v`` cameras at ``seeds`` seeds (``--quick``, whose budget has no room for every subset).
    Folders: ``views{v}`` for the first cameras, ``_{cam}+{cam}...`` for another subset, ``_seed{i}`` at seed offset i.
    """
    first = list(names[:v])
    combos = [list(c) for c in itertools.combinations(names, v)] if subsets == "all" else [first]
    runs = []
    for j in range(max(seeds, len(combos))):
        cams, i = combos[j % len(combos)], j % seeds
        folder = f"views{v}" + ("" if cams == first else "_" + "+".join(cams)) + (f"_seed{i}" if i else "")
        runs.append((folder, cams, i))
    return runs


def base_config(path: Path | None):

    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_CONFIG) if DEFAULT_CONFIG.is_file() else Config()


STEP_CAP = 10**9  # the step limit of a time-budgeted run: the budget ends it
CHECKPOINT_EVERY = 500  # steps between checkpoints of a bench run: how much an interruption can cost
# Train settings that do not change the weights a run ends with: a checkpoint written under other values of
# these still belongs to the same run and may be continued. ``out_dir`` among them, so a bench folder moved or
# copied elsewhere (``--out``) still resumes; the run's name (``cfg.name``, its folder) keeps runs apart.
BOOKKEEPING = ("log_every", "preview_every", "checkpoint_every", "threads", "tensorboard", "out_dir", "val_every",
               "val_samples")


def run_identity(config: dict) -> dict:
    """A ``config_to_dict`` without its bookkeeping and without the fields at their default: equal for two configs
    that train the same weights, and unchanged when a field is added to the config at the default that reproduces
    the earlier behaviour (so a resumed bench still finds the parts it finished before the field existed)."""

    def strip(values: dict, default: dict, path: tuple = ()) -> dict:
        out = {}
        for key, value in values.items():
            if (path == ("train",) and key in BOOKKEEPING) or default.get(key, object()) == value:
                continue
            ref = default.get(key)
            if isinstance(value, dict) and isinstance(ref, dict):
                value = strip(value, ref, path + (key,))
                if not value:  # every field at its default
                    continue
            out[key] = value
        return out

    return strip(config, config_to_dict(Config()))


def same_run(stored: dict, cfg) -> bool:
    """Whether a checkpoint's stored config (a ``config_to_dict``) describes the training run of ``cfg``.

    The stored config is read back through the current dataclasses first, so a field added since (at its default,
    which is the behaviour the checkpoint was trained with) does not make a finished run look different."""

    try:
        stored = config_to_dict(config_from_dict(stored, "checkpoint config"))
    except ConfigError:  # a key this version does not know: another run's
        return False
    return run_identity(stored) == run_identity(config_to_dict(cfg))


def run_config(base, name: str, out: Path, train_dir: Path, steps: int | None, cameras: list[str] | None = None,
               losses=None, supervised: bool = False, minutes: float | None = None, seed: int | None = None):
    """A validated copy of ``base`` for one bench run of ``steps`` steps, or of ``minutes`` of training (with
    ``seed`` instead of the base config's, when given)."""

    cfg = copy.deepcopy(base)
    cfg.name = name
    cfg.data.source = "studio"
    cfg.data.path = str(train_dir)
    cfg.data.views = list(cameras or [])
    cfg.data.val_path = ""  # no validation while training: it would spend the time budget; figures come from test
    cfg.train.out_dir = str(out / name / "train")
    if (steps is None) == (minutes is None):
        raise ValueError("run_config: give exactly one of steps and minutes")
    if minutes is not None:
        cfg.train.steps, cfg.train.max_minutes = STEP_CAP, float(minutes)
    else:
        cfg.train.steps, cfg.train.max_minutes = int(steps), 0.0
        cfg.train.warmup_steps = min(cfg.train.warmup_steps, max(1, steps // 10))
    cfg.train.checkpoint_every = min(cfg.train.steps, CHECKPOINT_EVERY)
    cfg.train.preview_every = 0
    cfg.train.tensorboard = False
    if losses is not None:
        cfg.loss = losses
    if seed is not None:
        cfg.train.seed = int(seed)
    if supervised:
        cfg.train.supervised = True
        cfg.model.num_keypoints = 17
    return config_from_dict(dataclasses.asdict(cfg), f"bench run '{name}'")


def timed_train(cfg, resume: bool = False) -> tuple[Path, dict]:
    """Train in a fresh run folder, or with ``resume`` continue from the checkpoint already there; returns the
    checkpoint and the training minutes (loop time, resumed runs included), steps and samples per second."""
    import shutil


    ckpt_path = Path(cfg.train.out_dir) / "ckpt.pt"
    start = 0
    if resume and ckpt_path.is_file():
        old = load_checkpoint(ckpt_path)
        start = int(old["step"]) if same_run(old.get("config", {}), cfg) else 0  # another run's: start afresh
    if not start:
        shutil.rmtree(cfg.train.out_dir, ignore_errors=True)
    ckpt = load_checkpoint(train(cfg, resume=bool(start)))
    steps, minutes = int(ckpt["step"]), float(ckpt["elapsed_s"]) / 60.0
    t = {"train_minutes": minutes, "train_steps": steps, "batch_size": cfg.train.batch_size,
         "samples_per_s": steps * cfg.train.batch_size / (60 * minutes) if minutes > 0 else float("nan")}
    if start:
        t["train_resumed_from_step"] = start
    return ckpt_path, t


def mean_pose_baseline(train_dir: Path, test_dir: Path, fraction: float) -> float:
    """Pelvis-aligned MPJPE (mm) of predicting the mean labelled training pose (root-centred) for every test frame."""

    tr = StudioFolder(train_dir).gt["joints3d"]
    tr = tr[select_fraction(len(tr), fraction)]
    mean = (tr - tr[:, ROOT:ROOT + 1]).mean(0)
    te = StudioFolder(test_dir).gt["joints3d"]
    te = te - te[:, ROOT:ROOT + 1]
    return float(1000 * np.linalg.norm(te - mean, axis=-1).mean())


KEYS = ("mpjpe_mm", "mpjpe_root_mm", "n_mpjpe_mm", "p_mpjpe_mm", "pck150_pct", "auc_pct", "error2d_pct",
        "ambiguity_ratio", "coverage_pct", "flip_corrected_mpjpe_mm_oracle", "mpjpe_by_source_mm",
        "keypoint_to_skeleton_median_mm", "keypoint_to_skeleton_p90_mm", "keypoint_spacing_median_mm",
        "body_side_kept_facing_pct", "body_side_kept_turned_pct")


def emit(line: dict, log: list, results_file: Path | None = None) -> None:
    line = {"bench": "accuracy", **line}
    log.append(line)
    print(json.dumps(line), flush=True)
    if results_file is not None:
        with open(results_file, "a") as f:
            f.write(json.dumps(line) + "\n")


def part_id(cfg, **settings) -> str:
    """Digest of one bench run: its training config (:func:`run_identity`) plus the ``settings`` its figures
    depend on."""

    blob = json.dumps({"config": run_identity(config_to_dict(cfg)), **settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def finished_parts(results_file: Path) -> dict[str, list[dict]]:
    """The lines of each part of an earlier invocation's ``results.jsonl``, by part digest (none if no file)."""
    parts: dict[str, list[dict]] = {}
    if results_file.is_file():
        for text in results_file.read_text().splitlines():
            try:
                line = json.loads(text)
            except json.JSONDecodeError:  # a line cut short by the interruption
                continue
            if line.get("part"):
                parts.setdefault(line["part"], []).append(line)
    return parts


def map_and_eval(ckpt: Path, train_dir: Path, test_dir: Path, out: Path, plan: dict, cameras,
                 mapping, figures: bool) -> dict:
    """Fit mappings on labelled fractions of the train split and evaluate them on the test split.

    ``plan``: fraction -> mapping kinds; ``mapping``: the ``MappingConfig`` of every fit. The net runs once over
    the train frames needed (all of them when 100 % is asked) and once over the test split. Returns
    {(fraction, kind): figures}.
    """

    n = StudioFolder(train_dir).num_frames
    if max(plan) >= 1.0:
        found_train, _ = checkpoint_keypoints(ckpt, train_dir, cameras, progress=False)
    else:
        found_train = None
    found_test, test_ds = checkpoint_keypoints(ckpt, test_dir, cameras, progress=False)
    results = {}
    for fraction, kinds in plan.items():
        found = found_train
        if found is None:  # only the labelled frames, placed in a full-length array
            idx = select_fraction(n, fraction)
            part, _ = checkpoint_keypoints(ckpt, train_dir, cameras, idx, progress=False)
            X = np.full((n, *part["X"].shape[1:]), np.nan)
            X[idx] = part["X"]
            found = {"X": X}
        tag = f"{fraction * 100:g}pct"
        summary = map_checkpoint(ckpt, train_dir, fraction, out / f"ckpt_{tag}.pt", cameras,
                                 mapping, default=kinds[0], progress=False,
                                 kinds=tuple(kinds), found=found)
        for kind in kinds:
            res = evaluate_mapping(found_test, summary["mapping"], test_ds, test_dir, out / f"eval_{kind}_{tag}", kind,
                                   figures=figures and kind == kinds[0] and fraction == 0.1)
            results[(fraction, kind)] = {k: res[k] for k in KEYS if k in res}
            if kind == "mlp":  # the mirror probability the hold-out chose (MappingConfig.mirror)
                results[(fraction, kind)]["mapping_mirror"] = summary["mapping"]["models"]["mlp"]["mirror"]
    return results


ROW_KEYS = ("mpjpe_mm", "mpjpe_root_mm", "n_mpjpe_mm", "p_mpjpe_mm", "pck150_pct", "auc_pct", "error2d_pct",
            "train_minutes", "samples_per_s")


def row_mean(lines: list[dict]) -> dict:
    """The figures of one ablation / views row: the mean over its seeds' lines, each seed's MPJPE, and the
    standard error of the mean MPJPE (null for one seed). Single 720-step runs of one config differ by several
    mm in MPJPE, as much as some rows differ from each other: one seed cannot order them."""
    mpjpe = np.array([l["mpjpe_mm"] for l in lines], dtype=float)
    row = {"labels_pct": 10.0, "seeds": [l["seed"] for l in lines]}
    for key in ROW_KEYS:
        values = [l[key] for l in lines if isinstance(l.get(key), (int, float))]
        if values:
            row[key] = float(np.mean(values))
    row["mpjpe_mm_per_seed"] = mpjpe.tolist()
    row["mpjpe_mm_sem"] = float(mpjpe.std(ddof=1) / np.sqrt(len(mpjpe))) if len(mpjpe) > 1 else None
    row["train_steps"] = lines[0].get("train_steps")
    return row


def paired_z(a: dict, b: dict) -> float | None:
    """The mean per-seed change from row ``a`` to row ``b`` in standard errors of that mean (null unless both rows ran
    the same two or more seeds). A seed fixes the initial weights and the batch order, so pairing the runs by seed
    takes out the part of the spread that the seed alone makes."""
    if a.get("seeds") != b.get("seeds") or len(a.get("seeds") or []) < 2:
        return None
    d = np.asarray(b["mpjpe_mm_per_seed"], dtype=float) - np.asarray(a["mpjpe_mm_per_seed"], dtype=float)
    sem = d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean() / sem) if sem > 0 else None


def side_verdicts(results: dict, num_views: int) -> dict:
    """Summary fields of the ablation and views rows: each row's mean MPJPE (and its standard error), the change
    each added loss (each added view) makes, in mm and in standard errors of that difference (unpaired, and paired
    by seed: :func:`paired_z`), and whether every change lowers the error."""
    out: dict = {}

    def steps(rows: list[tuple[str, dict]], prefix: str) -> None:
        for label, row in rows:
            out[f"{prefix}_{label}_mpjpe_mm"] = row.get("mpjpe_mm")
            out[f"{prefix}_{label}_mpjpe_mm_sem"] = row.get("mpjpe_mm_sem")
        changes = []
        for (a, ra), (b, rb) in zip(rows, rows[1:]):
            delta = rb["mpjpe_mm"] - ra["mpjpe_mm"]
            sems = [r.get("mpjpe_mm_sem") for r in (ra, rb)]
            z = delta / np.hypot(*sems) if None not in sems and np.hypot(*sems) > 0 else None
            changes.append({"from": a, "to": b, "delta_mm": delta, "delta_in_sem": z,
                            "delta_paired_in_sem": paired_z(ra, rb)})
        out[f"{prefix}_changes"] = changes
        out[f"{prefix}_each_lowers"] = bool(changes) and all(c["delta_mm"] < 0 for c in changes)

    ablation = [(name, results[("ablation", name)]) for name, _ in ABLATION if ("ablation", name) in results]
    if ablation:
        steps(ablation, "ablation")
    views = [(str(v), results[("views", v)]) for v in range(2, num_views + 1) if ("views", v) in results]
    if len(views) > 1:
        steps(views, "views")
    return out


def run_bench(train_dir: Path, test_dir: Path, out: Path, base, main_minutes: float, side_minutes: float,
              mapping=None, runs=("main", "supervised", "ablation", "views"),
              fixed_steps: tuple[int, int] | None = None, resume: bool = False, seeds: int = 1,
              fractions: tuple[float, ...] = FRACTIONS, view_subsets: str = "all") -> list[dict]:
    """Everything in the module docstring; returns the JSON lines (also printed, and written to
    ``out/results.jsonl`` as they come). ``fixed_steps`` = (main, side) step counts instead of the minutes
    (``--steps``); ``resume``: reuse the finished parts of ``out/results.jsonl`` and continue an interrupted run;
    ``seeds``: training runs per ablation / views row (``--seeds``); ``mapping``: how every map is fitted (a
    ``MappingConfig``; default ``MappingConfig()``); ``fractions``: the labelled fractions of the main run;
    ``view_subsets``: which cameras a views row trains on (:func:`view_runs`)."""
    if seeds < 1:
        raise ValueError(f"run_bench: seeds must be at least 1, got {seeds}")
    if view_subsets not in VIEW_SUBSETS:
        raise ValueError(f"run_bench: view_subsets must be one of {VIEW_SUBSETS}, got {view_subsets!r}")

    log: list[dict] = []
    out.mkdir(parents=True, exist_ok=True)
    mapping = mapping if mapping is not None else MappingConfig()
    mapping_settings = dataclasses.asdict(mapping)  # in every digest: a new default re-maps
    # This invocation's lines go to the partial file as they come (reused parts appear again, marked resumed), and it
    # replaces results.jsonl only once complete: an interruption never loses the lines of an earlier invocation.
    final_file, results_file = out / "results.jsonl", out / "results.jsonl.partial"
    done = {**finished_parts(final_file), **finished_parts(results_file)} if resume else {}
    results_file.write_text("")
    names = StudioFolder(train_dir).rig.names
    for d in (train_dir, test_dir):  # build the crop caches up front: not part of any training time
        CachedDataset(d, SampleParams(size=base.model.crop_size))
    device = "cuda" if (base.train.device != "cpu" and torch.cuda.is_available()) else "cpu"
    if fixed_steps is None:  # time budgets; null steps in the JSON
        main_steps = side_steps = None
        budget = {"main": {"minutes": main_minutes}, "side": {"minutes": side_minutes}}
    else:
        (main_steps, side_steps), main_minutes, side_minutes = fixed_steps, None, None
        budget = {"main": {}, "side": {}}
    emit({"run": "plan", "main_steps": main_steps, "side_steps": side_steps, "main_minutes": main_minutes,
          "side_minutes": side_minutes, "device": device, "train": str(train_dir), "test": str(test_dir),
          "cameras": names, "seeds": seeds, "resume": resume, "parts_found": len(done)}, log, results_file)
    results: dict = {}

    def part(cfg, compute, finish=lambda line: line) -> list[dict]:
        """The lines of one training run: reused from ``done`` when its digest matches, else ``compute(cfg)``
        (run, map, evaluate); each passes through ``finish`` and is emitted (and written) tagged with the digest."""
        pid = part_id(cfg, train=str(train_dir), test=str(test_dir), mapping=mapping_settings)
        lines = [{**l, "resumed": True} for l in done[pid]] if pid in done else compute(cfg)
        for line in map(finish, lines):
            emit({k: v for k, v in line.items() if k != "bench"} | {"part": pid}, log, results_file)
        return log[-len(lines):]

    if "main" in runs:
        plan = {f: (("mlp", "linear") if f == 0.1 else ("mlp",)) for f in fractions}

        def main_run(cfg) -> list[dict]:
            ckpt, t = timed_train(cfg, resume)
            baseline = mean_pose_baseline(train_dir, test_dir, 0.1)
            rs = map_and_eval(ckpt, train_dir, test_dir, out / "main", plan, None, mapping, figures=True)
            return [{"run": "unsupervised", "mapping": kind, "labels_pct": 100 * fraction, "views": len(names),
                     **rs[(fraction, kind)], **t, "mean_pose_baseline_root_mm": baseline}
                    for fraction, kinds in plan.items() for kind in kinds]

        for line in part(run_config(base, "main", out, train_dir, main_steps, **budget["main"]), main_run):
            if line["mapping"] == "mlp":
                results[("main", line["labels_pct"] / 100)] = line

    if "supervised" in runs:
        def supervised_run(cfg) -> list[dict]:
            ckpt, t = timed_train(cfg, resume)  # evaluated through the identity (checkpoint_mapping: supervised)
            res = evaluate(ckpt, test_dir, out / "supervised" / "eval", figures=True, progress=False)
            return [{"run": "supervised_upper_bound", "labels_pct": 100.0, "views": len(names),
                     **{k: res[k] for k in KEYS if k in res}, **t}]

        def with_ratios(line: dict) -> dict:  # against this invocation's main figures, even for a reused line
            line = {k: v for k, v in line.items() if not k.startswith("ratio_")}
            for fraction in fractions:
                if ("main", fraction) in results and line.get("mpjpe_mm"):
                    line[f"ratio_unsupervised_mlp_{100 * fraction:g}pct"] = (
                        results[("main", fraction)]["mpjpe_mm"] / line["mpjpe_mm"])
            return line

        cfg = run_config(base, "supervised", out, train_dir, main_steps, supervised=True, **budget["main"])
        results["supervised"] = part(cfg, supervised_run, with_ratios)[0]

    def side_run(folder: str, cameras, fields: dict):
        def run(cfg) -> list[dict]:
            ckpt, t = timed_train(cfg, resume)
            r = map_and_eval(ckpt, train_dir, test_dir, out / folder, {0.1: ("mlp",)}, cameras, mapping,
                             False)[(0.1, "mlp")]
            return [{**fields, "labels_pct": 10.0, **r, **t}]
        return run

    def side_row(kind: str, fields: dict, row_runs: list[tuple[str, list[str] | None, int]], losses=None) -> dict:
        """One ablation or views row: its training runs, (folder, cameras or None for all, seed offset) each, each a
        ``{kind}_seed`` line, then the row's ``kind`` line with their mean (:func:`row_mean`)."""
        lines = []
        for folder, cameras, i in row_runs:
            cfg = run_config(base, folder, out, train_dir, side_steps, cameras=cameras, losses=losses,
                             seed=base.train.seed + i, **budget["side"])
            run_fields = fields if cameras is None else {**fields, "cameras": cameras}
            tag = {"run": f"{kind}_seed", "seed": cfg.train.seed}  # also on a line reused from before seeds existed
            lines += part(cfg, side_run(folder, cameras, run_fields), lambda line: {**line, **tag})
        row = {**fields, **row_mean(lines)}
        if any(cameras is not None for _, cameras, _ in row_runs):
            row["cameras_per_run"] = [cameras for _, cameras, _ in row_runs]
        emit(row, log, results_file)
        return row

    if "ablation" in runs:
        for name, terms in ABLATION:
            fields = {"run": "ablation", "losses": name, "views": len(names)}
            row_runs = [(f"ablation_{name}" + (f"_seed{i}" if i else ""), None, i) for i in range(seeds)]
            results[("ablation", name)] = side_row("ablation", fields, row_runs,
                                                   losses=ablation_losses(base.loss, terms))

    if "views" in runs:
        # All the rig's views = the ablation row with the base config's loss set, when there is one.
        same = next((name for name, terms in ABLATION if ("ablation", name) in results
                     and ablation_losses(base.loss, terms) == base.loss), None)
        counts = [v for v in (2, 3) if v < len(names)] + ([len(names)] if same is None else [])
        for v in counts:
            fields = {"run": "views", "views": v}
            results[("views", v)] = side_row("views", fields, view_runs(names, v, seeds, view_subsets))
        if same is not None:
            row = {k: v for k, v in results[("ablation", same)].items() if k not in ("bench", "losses")}
            results[("views", len(names))] = {**row, "run": "views", "views": len(names), "cameras": names,
                                              "same_as": f"ablation {same}"}
            emit(results[("views", len(names))], log, results_file)

    minutes = {l["part"]: l["train_minutes"] for l in log if "part" in l}  # one entry per training run
    main_line = next((l for l in log if l.get("run") == "unsupervised"), {})
    summary = {"run": "summary", "device": device, "main_steps": main_line.get("train_steps", main_steps),
               "side_steps": side_steps, "main_minutes": main_minutes, "side_minutes": side_minutes,
               "total_train_minutes": float(sum(minutes.values())),
               "runs_resumed": len({l["part"] for l in log if l.get("resumed")})}
    for fraction in fractions:
        if ("main", fraction) in results:
            summary[f"unsupervised_mlp_{100 * fraction:g}pct_mpjpe_mm"] = results[("main", fraction)].get("mpjpe_mm")
    if "supervised" in results:
        sup = results["supervised"].get("mpjpe_mm")
        summary["supervised_mpjpe_mm"] = sup
        for fraction in fractions:
            if ("main", fraction) in results and sup:
                summary[f"ratio_to_supervised_{100 * fraction:g}pct"] = results[("main", fraction)]["mpjpe_mm"] / sup
    summary |= side_verdicts(results, len(names))
    emit(summary, log, results_file)
    results_file.replace(final_file)
    write_report(log, out)
    return log


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of every part in under 15 minutes on 2 CPU cores once the data are "
                             "rendered and cached (its figures are far from trained ones): 2.5-minute main and "
                             "supervised runs, 18-second ablation/views runs, one seed, 1 %% and 10 %% labels only "
                             "(100 %% needs a pass over every training frame), leaner map fits (600 steps, one MLP per "
                             "yaw limit, mirror probability 0.5), and each views row on the first cameras alone")
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="training minutes of the main unsupervised run (default 60; 2.5 with --quick); the supervised run gets the same")
    parser.add_argument("--side-minutes", type=float, default=None,
                        help="training minutes of EACH ablation / views run (equal budget; default budget/4)")
    parser.add_argument("--steps", type=int, nargs=2, default=None, metavar=("MAIN", "SIDE"),
                        help="fixed step counts of the main/supervised runs and of each ablation/views run, instead "
                             "of minutes, for figures comparable across machines (a time budget reaches more steps "
                             "on a faster one)")
    parser.add_argument("--config", type=Path, default=None, help=f"base training config (default {DEFAULT_CONFIG})")
    parser.add_argument("--train", type=Path, default=None, help="train split folder (default: studio-bench train)")
    parser.add_argument("--test", type=Path, default=None, help="test split folder (default: studio-bench test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"run folders and results.jsonl (default {DEFAULT_OUT})")
    parser.add_argument("--runs", nargs="*", default=["main", "supervised", "ablation", "views"],
                        choices=["main", "supervised", "ablation", "views"], help="which parts to run (default all)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="training runs (seeds 0, 1, ...) per ablation / views row; a row reports their mean and its "
                             "standard error (default 3; 1 with --quick): single short runs differ by several mm")
    parser.add_argument("--view-subsets", choices=VIEW_SUBSETS, default=None,
                        help="the cameras of a views row: 'all' (default) trains every N-camera subset of the rig "
                             "once, seeds cycled over them, so that the row does not measure whichever N cameras the "
                             "rig file lists first; 'first' (default with --quick) the first N cameras at each seed")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in OUT/results.jsonl whose config, data and mapping settings "
                             "match, and continue an interrupted training run from its last checkpoint")


def main(args: argparse.Namespace) -> int:

    main_minutes = args.budget_minutes if args.budget_minutes is not None else (2.5 if args.quick else 60.0)
    side_minutes = args.side_minutes if args.side_minutes is not None else (
        0.3 if args.quick else main_minutes / 4)
    train_dir = args.train or default_split("train")
    test_dir = args.test or default_split("test")
    base = base_config(args.config)
    run_bench(train_dir, test_dir, args.out, base, main_minutes, side_minutes,
              mapping=QUICK_MAPPING if args.quick else MappingConfig(), runs=tuple(args.runs),
              fixed_steps=tuple(args.steps) if args.steps else None, resume=args.resume,
              seeds=args.seeds if args.seeds is not None else (1 if args.quick else 3),
              fractions=FRACTIONS[:2] if args.quick else FRACTIONS,
              view_subsets=args.view_subsets or ("first" if args.quick else "all"))
    return 0
