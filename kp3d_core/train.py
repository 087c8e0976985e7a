"""Train the keypoint model: ``kp3d train --config training/configs/NAME.yaml [--resume] [--supervised]``.

Unsupervised by default (multi-view discovery, :mod:`kp3d_core.losses`); ``--supervised`` trains the
same keypoint network on the same frames with ground-truth 2D joints (the upper bound).
Multi-process with ``torchrun --nproc_per_node N -m kp3d_core.train --config ...`` (DDP; gloo on CPU,
nccl on GPU; torch.distributed is used only when WORLD_SIZE > 1).

With ``data.val_path`` set, rank 0 computes the same loss terms (label-free unless supervised) on a fixed set of
validation samples every ``train.val_every`` steps and at the last step, under ``no_grad`` in eval mode; the other
ranks wait for it at their next gradient all-reduce, and its seconds count against ``train.max_minutes``.

Fine-tuning (``kp3d adapt``): ``train.init_from`` starts a new run from a checkpoint's weights, and ``loss.distill``
holds the keypoints near those of that checkpoint's frozen keypoint net (the teacher) on the same crops.

Run folder (``train.out_dir``): ``ckpt.pt`` (atomic, loads with weights_only=True; the latest validation under
``val``), ``tb/`` TensorBoard scalars and previews (``loss/*``, ``val/*``), ``previews/step_NNNNNN.png``.
Python API: ``train(cfg) -> Path`` of the checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from . import losses
from .augment import Augmenter
from .cascade import cascade_stage
from .checkpoint import CheckpointError, load_checkpoint, load_state_checked, save_checkpoint
from .config import Config, ConfigError, config_from_dict, config_to_dict, load_config
from .data.bag import build_bag_cache
from .data.batches import SessionBatchSampler, SessionsDataset
from .data.cache import CachedDataset
from .data.pairs import TemporalWindows, flatten_windows
from .data.sessions import read_split
from .data.studio import SampleParams
from .models.discovery import DiscoveryModel
from .models.keypoint_net import KeypointNet, load_keypoint_net
from .models.skeleton_head import SkeletonHead
from .models.synthetic import SyntheticDataset
from .rig import load_rig


# ---------------------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class Processes:
    """This process's place in the run: DDP only when launched with WORLD_SIZE > 1 (torchrun sets RANK,
    WORLD_SIZE and LOCAL_RANK)."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def master(self) -> bool:
        """Rank 0 logs, validates and writes the checkpoint."""
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def start_processes(cfg: Config) -> Processes:
    """Pick the device, join the process group (WORLD_SIZE > 1), set CPU threads and seed this rank's RNGs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device: 'cuda' requested but no CUDA device is available")
    procs = Processes(rank, world, local_rank, torch.device(f"cuda:{local_rank}" if want_cuda else "cpu"))
    if world > 1:
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    if want_cuda:
        torch.cuda.set_device(procs.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed + rank)
    np.random.seed(cfg.train.seed + rank)
    return procs


def stop_processes(procs: Processes) -> None:
    """Leave the process group once every rank is done (no-op for a single process)."""
    if procs.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# --------------------------------------------------------------------------------------------- data
def build_dataset(cfg: Config, split: str = "train") -> torch.utils.data.Dataset:
    """The samples named by ``cfg.data``: a studio folder, a sessions folder, a rosbag2 bag (+ rig file) or synthetic
    tensors.

    ``split`` 'train' reads ``data.path``, 'val' reads ``data.val_path`` (same source kind; the synthetic source
    has no validation split). A studio path is read by :func:`kp3d_core.data.sessions.read_split`: a plain folder gives
    its CachedDataset, a sessions folder a :class:`~kp3d_core.data.batches.SessionsDataset` of one CachedDataset
    (one crop cache) per session. Missing folders raise FileNotFoundError naming the config field.
    """
    d = cfg.data
    if d.source == "synthetic":
        if split != "train":
            raise ConfigError("data.val_path: the synthetic source has no validation split")
        return SyntheticDataset(d.num_synthetic, d.num_views, cfg.model.crop_size, seed=cfg.train.seed)

    key, path = ("data.path", d.path) if split == "train" else ("data.val_path", d.val_path)
    params = SampleParams(size=cfg.model.crop_size)
    cameras = list(d.views) or None
    root = d.cache_dir or None  # None: the user cache (kp3d_core.data.cache.cache_root)
    if d.source == "bag":
        if not Path(path, "metadata.yaml").is_file():
            raise FileNotFoundError(f"{key}: '{path}' is not a rosbag2 bag directory (no metadata.yaml)")
        if not Path(d.rig).is_file():
            raise FileNotFoundError(f"data.rig: rig file '{d.rig}' not found")
        if d.backgrounds and not Path(d.backgrounds).is_dir():
            raise FileNotFoundError(f"data.backgrounds: '{d.backgrounds}' is not a folder (<camera>.png per camera)")
        cache = build_bag_cache(path, d.rig, params, cameras, slop_ns=int(d.bag_slop_ms * 1e6),
                                stride=d.bag_stride, root=root, backgrounds=d.backgrounds or None)
        return CachedDataset(cache, params, cameras)
    if not Path(path, "manifest.yaml").is_file():
        raise FileNotFoundError(f"{key}: '{path}' is not a studio dataset folder (no manifest.yaml)")
    try:
        sessions = read_split(path)
    except (FileNotFoundError, ValueError) as e:
        raise type(e)(f"{key}: {e}") from e
    stored = d.backgrounds or None
    if not sessions.is_sessions:
        return CachedDataset(path, params, cameras, root=root, backgrounds=stored)
    return SessionsDataset([session_dataset(s.path, params, cameras, root, stored) for s in sessions.sessions],
                           [s.name for s in sessions.sessions])


def session_dataset(path: Path, params: SampleParams, cameras: list[str] | None, root,
                    backgrounds: str | None = None) -> CachedDataset:
    """One session's CachedDataset (its own crop cache); a camera of ``data.views`` that its rig lacks is a
    ConfigError naming the session's rig file."""
    if cameras:
        names = load_rig(path / "rig.yaml").names
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise ConfigError(f"data.views: {', '.join(unknown)} not in {path / 'rig.yaml'} "
                              f"(cameras: {', '.join(names)})")
    return CachedDataset(path, params, cameras, root=root, backgrounds=backgrounds)


def window_length(cfg: Config) -> int:
    """Frames per dataset item: temporal_order + 1 with the temporal term (a window of one clip), else 1."""
    return cfg.loss.temporal_order + 1 if cfg.loss.temporal > 0 and not cfg.train.supervised else 1


def as_windows(dataset: torch.utils.data.Dataset, cfg: Config) -> torch.utils.data.Dataset:
    """Items as temporal windows of :func:`window_length` frames with the temporal term, else ``dataset`` itself."""
    window = window_length(cfg)
    if window == 1:
        return dataset
    if isinstance(dataset, SessionsDataset):  # each session's own windows: none crosses from one session to the next
        return dataset.map(lambda d: TemporalWindows(d, cfg.loss.temporal_offset, window))
    return TemporalWindows(dataset, cfg.loss.temporal_offset, window)


def training_data(cfg: Config, procs: Processes) -> tuple[torch.utils.data.Dataset, torch.utils.data.DataLoader]:
    """The training dataset and its shuffling loader; each rank draws its own share under DDP.

    With the temporal term each item is a window of frames, and a step draws batch_size / window of them. A sessions
    folder's batches each come from one session (:class:`~kp3d_core.data.batches.SessionBatchSampler`: a batch
    stacks one view count); a plain folder's loader is the shuffling DataLoader (or DistributedSampler) it always was.
    """
    dataset = build_dataset(cfg)
    if len(dataset) < cfg.train.batch_size:
        raise ConfigError(f"train.batch_size: {cfg.train.batch_size} exceeds the {len(dataset)} samples of "
                          f"{cfg.data.path}")
    dataset = as_windows(dataset, cfg)
    per_step = cfg.train.batch_size // window_length(cfg)
    workers = dict(num_workers=cfg.data.num_workers, pin_memory=procs.cuda,
                   persistent_workers=cfg.data.num_workers > 0)
    if isinstance(dataset, SessionsDataset):
        batches = session_sampler(dataset, per_step, cfg, procs)
        return dataset, torch.utils.data.DataLoader(dataset, batch_sampler=batches, **workers)
    sampler = (
        torch.utils.data.distributed.DistributedSampler(dataset, procs.world, procs.rank, shuffle=True,
                                                        seed=cfg.train.seed)
        if procs.world > 1 else None
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=per_step, shuffle=sampler is None, sampler=sampler, drop_last=True, **workers,
    )
    return dataset, loader


def session_sampler(dataset: SessionsDataset, per_step: int, cfg: Config, procs: Processes) -> SessionBatchSampler:
    """Batches of ``per_step`` items from one session each, this rank's share; ConfigError naming a session smaller
    than a batch (its frames would never be drawn) or a split with fewer batches than ranks."""
    small = [f"{name} ({n})" for name, n in zip(dataset.names, dataset.sizes) if n < per_step]
    if small:
        raise ConfigError(f"train.batch_size: a batch of {per_step} items comes from one session, and these sessions "
                          f"of {cfg.data.path} have fewer: {', '.join(small)}")
    sampler = SessionBatchSampler(dataset.sizes, per_step, cfg.train.seed, procs.rank, procs.world)
    if len(sampler) == 0:
        raise ConfigError(f"train.batch_size: {cfg.data.path} gives fewer batches of {per_step} than the "
                          f"{procs.world} processes")
    return sampler


def infinite_batches(loader: torch.utils.data.DataLoader):
    """Yield batches forever, advancing a DistributedSampler's (or SessionBatchSampler's) epoch so each epoch
    reshuffles."""
    epoch = 0
    while True:
        for sampler in (loader.sampler, loader.batch_sampler):  # DistributedSampler, SessionBatchSampler
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors to ``device``; float64 images stay float64 only for calibration (geometry casts as needed)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def model_batch(batch: dict, window: int, device: torch.device) -> dict:
    """A collated batch as the model takes it: windows flattened to frames (window > 1), tensors on ``device``."""
    return to_device(flatten_windows(batch) if window > 1 else batch, device)


@dataclass
class ValidationSet:
    """The validation samples, the same at every validation so that the curve compares like with like."""

    dataset: torch.utils.data.Dataset
    """Items of ``data.val_path`` (temporal windows with the temporal term; a SessionsDataset for a sessions folder)."""
    batches: list[np.ndarray]
    """Item indices of each validation batch (train.batch_size frames, the last one (of each session) possibly
    fewer)."""
    samples: int
    """Frames in all (items x window)."""


def validation_set(cfg: Config) -> ValidationSet:
    """``train.val_samples`` frames of ``data.val_path`` evenly spaced over it (every part of the split, not its
    first clips), cut into batches of the training batch's size; in a sessions folder, each session's share cut
    separately (a batch stacks one view count)."""
    dataset = as_windows(build_dataset(cfg, "val"), cfg)
    window = window_length(cfg)
    n = min(len(dataset), max(1, cfg.train.val_samples // window))
    items = np.arange(n) * len(dataset) // n  # strictly increasing, since n <= len(dataset)
    per_batch = cfg.train.batch_size // window
    groups = dataset.by_session(items) if isinstance(dataset, SessionsDataset) else [items]
    batches = [g[i:i + per_batch] for g in groups for i in range(0, len(g), per_batch)]
    return ValidationSet(dataset, batches, n * window)


# ------------------------------------------------------------------------------------- model, state
@dataclass
class Progress:
    """What a run has done so far; stored in (and resumed from) the checkpoint."""

    step: int = 0
    """Optimiser steps taken."""
    samples: int = 0
    """Multi-view samples seen, all ranks together."""
    elapsed_s: float = 0.0
    """Training wall seconds spent, resumed runs included (the time budget's clock)."""
    val: dict = field(default_factory=dict)
    """The latest validation (:func:`validate`), empty before the first."""


def build_model(cfg: Config, device: torch.device) -> tuple[DiscoveryModel, torch.optim.Optimizer]:
    """A freshly initialised model (channels_last) and its AdamW optimiser; with a MaS term on (``loss.skeleton`` or
    ``loss.physique``), the model's skeleton head (and physique net) too."""
    # channels_last: the oneDNN (CPU) and cuDNN convolutions run faster in NHWC (-15 % step time measured on CPU).
    head = SkeletonHead.from_config(cfg.model, cfg.loss)
    model = DiscoveryModel(cfg.model, head, cfg.loss.view_flips).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    return model, optimizer


def start_from(path: str | Path, cfg: Config, model: DiscoveryModel) -> None:
    """Load the weights of the checkpoint at ``path`` (``train.init_from``) into ``model``; the optimiser starts fresh.
    CheckpointError naming the file if it is unreadable or its model config differs from ``cfg``'s."""
    ckpt = load_checkpoint(path, map_location=next(model.parameters()).device)
    if ckpt["config"].get("model") != config_to_dict(cfg)["model"]:
        raise CheckpointError(f"{path} (train.init_from): model config differs from the run's config")
    load_state_checked(model, ckpt["model"], path)


def shrink_head(model: DiscoveryModel, scale: float) -> None:
    """``train.head_init_scale``: scale the heatmap head's weights and zero its bias, so that every keypoint starts
    near the crop's centre (each channel still its own, so that left and right can part)."""
    with torch.no_grad():
        model.keypoint_net.head.weight.mul_(scale)
        model.keypoint_net.head.bias.zero_()


ENCODER_PREFIX = "keypoint_net.encoder."


def start_encoder_from(path: str | Path, model: DiscoveryModel) -> int:
    """Load the keypoint-net encoder of the checkpoint at ``path`` (``train.init_encoder_from``) into ``model``; the
    heatmap head, decoder and skeleton head keep their fresh weights. Returns the number of tensors loaded;
    CheckpointError naming the file if it is unreadable or its encoder does not fit (another crop size or width)."""
    ckpt = load_checkpoint(path, map_location=next(model.parameters()).device)
    theirs = {k: v for k, v in ckpt["model"].items() if k.startswith(ENCODER_PREFIX)}
    ours = {k: v for k, v in model.state_dict().items() if k.startswith(ENCODER_PREFIX)}
    bad = sorted(set(ours) ^ set(theirs)) + sorted(k for k in ours if k in theirs and ours[k].shape != theirs[k].shape)
    if bad:
        raise CheckpointError(f"{path} (train.init_encoder_from): its encoder does not fit this model "
                              f"({len(bad)} tensors differ, e.g. {bad[0]})")
    model.load_state_dict(theirs, strict=False)
    return len(theirs)


def build_teacher(cfg: Config, device: torch.device) -> KeypointNet | None:
    """The frozen keypoint net of ``train.init_from`` (eval mode, no gradients) with ``loss.distill`` on, else None."""
    if cfg.loss.distill <= 0 or cfg.train.supervised:
        return None
    teacher = load_keypoint_net(cfg.train.init_from, map_location=device)
    if config_to_dict(cfg)["model"] != dataclasses.asdict(teacher.cfg):
        raise CheckpointError(f"{cfg.train.init_from} (train.init_from): model config differs from the run's config")
    return teacher.to(device, memory_format=torch.channels_last).requires_grad_(False)


def resume_from(path: Path, cfg: Config, model: DiscoveryModel, optimizer: torch.optim.Optimizer,
                device: torch.device) -> Progress:
    """Load weights and optimiser state from the checkpoint at ``path`` into ``model`` and ``optimizer``; returns
    its progress. CheckpointError naming the file if it is unreadable or its model config differs from ``cfg``'s."""
    ckpt = load_checkpoint(path, map_location=device)
    if ckpt["config"].get("model") != config_to_dict(cfg)["model"]:
        raise CheckpointError(f"{path}: model config differs from the run's config; cannot resume")
    load_state_checked(model, ckpt["model"], path)
    if "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    return Progress(int(ckpt.get("step", 0)), int(ckpt.get("samples", 0)), float(ckpt.get("elapsed_s", 0.0)),
                    dict(ckpt.get("val", {})))


def wrap_ddp(model: DiscoveryModel, cfg: Config, procs: Processes) -> torch.nn.Module:
    """The module the training step calls: DDP around ``model`` under WORLD_SIZE > 1, else ``model`` itself."""
    if procs.world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[procs.local_rank] if procs.cuda else None,
        # the decoder is idle when supervised, the physique net before loss.physique_from_step
        find_unused_parameters=cfg.train.supervised or cfg.loss.physique > 0,
    )


def save_training_checkpoint(path: Path, cfg: Config, model: DiscoveryModel, optimizer: torch.optim.Optimizer,
                             progress: Progress) -> None:
    """Everything ``--resume`` needs, with the config, written atomically (rank 0 only)."""
    save_checkpoint(path, {
        "config": config_to_dict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "step": progress.step, "samples": progress.samples, "elapsed_s": progress.elapsed_s,
        **({"val": progress.val} if progress.val else {}),
    })


# -------------------------------------------------------------------------------------- schedule
def learning_rate(step: int, cfg: Config, elapsed_s: float = 0.0) -> float:
    """Linear warm-up, then cosine decay from lr to lr/10 at the last step, or at the end of the time budget
    (``train.max_minutes``, ``elapsed_s`` training seconds spent) if that comes first."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    if t.max_minutes > 0:
        progress = max(progress, elapsed_s / (60.0 * t.max_minutes))
    return t.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


class Clock:
    """Training seconds spent against the ``train.max_minutes`` budget, resumed runs included."""

    def __init__(self, cfg: Config, elapsed_before: float, procs: Processes) -> None:
        self.budget_s = 60.0 * cfg.train.max_minutes  # 0: no budget
        self.before = elapsed_before
        self.start = time.perf_counter()
        self.device = procs.device
        # All ranks must stop at the same step (a rank that stopped alone would hang the others' all-reduce).
        self.agree = procs.world > 1 and self.budget_s > 0

    def spent(self) -> float:
        """Seconds spent so far; under DDP with a budget, the largest over the ranks (a collective: call on all)."""
        elapsed = self.before + time.perf_counter() - self.start
        if self.agree:
            x = torch.tensor([elapsed], dtype=torch.float64, device=self.device)
            dist.all_reduce(x, op=dist.ReduceOp.MAX)
            elapsed = float(x)
        return elapsed

    def exhausted(self, elapsed_s: float) -> bool:
        return self.budget_s > 0 and elapsed_s >= self.budget_s


class Throughput:
    """Samples per second since the first step, which is left out (allocations, lazy init)."""

    def __init__(self, samples: int) -> None:
        self.t0, self.samples0, self.first, self.rate = time.perf_counter(), samples, True, 0.0

    def update(self, samples: int) -> float:
        now = time.perf_counter()
        if self.first:
            self.t0, self.samples0, self.first = now, samples, False
        elif now > self.t0:
            self.rate = (samples - self.samples0) / (now - self.t0)
        return self.rate


# ------------------------------------------------------------------------------------------ step
def distillation_term(teacher: KeypointNet, batch: dict, out: dict, crop_size: int) -> torch.Tensor:
    """``loss.distill``: the teacher's keypoints on the crops the model saw (``encoder_image`` when augmented)."""
    seen = batch.get("encoder_image", batch["image"])
    B, V = seen.shape[:2]
    with torch.no_grad():
        _, kp, conf = teacher.heatmaps(seen.reshape(B * V, *seen.shape[2:]))
    K = kp.shape[1]
    return losses.distillation_loss(out["kp"], kp.reshape(B, V, K, 2), conf.reshape(B, V, K), batch["valid_view"],
                                    crop_size)


def compute_losses(model, batch: dict, cfg: Config, teacher: KeypointNet | None = None, step: int | None = None
                   ) -> tuple[torch.Tensor, dict[str, float], dict]:
    """Forward + loss terms (with ``teacher``, :func:`build_teacher`'s, the distillation term too) at optimiser step
    ``step`` (the MaS cascade's clock; None: its final stage). Returns (total loss, terms as floats, model outputs)."""
    if cfg.train.supervised:
        out = model(batch, decode=False)
        if not bool(torch.as_tensor(batch.get("has_labels", True)).all()):
            raise ValueError("--supervised needs labelled samples (has_labels False in the batch)")
        term = losses.supervised_loss(out["kp"], batch["joints2d_crop"], batch["visible"], cfg.model.crop_size)
        terms = {"supervised": term}
        total = cfg.loss.supervised * term
    else:
        stage = cascade_stage(step, cfg.loss)
        out = model(batch, stage=stage)
        terms = losses.unsupervised_losses(out, batch, cfg.loss, cfg.model.crop_size, stage)
        if teacher is not None:
            terms["distill"] = distillation_term(teacher, batch, out, cfg.model.crop_size)
        total = losses.total_loss(terms, cfg.loss)
    return total, {k: float(v.detach()) for k, v in terms.items()}, out


def optimisation_step(ddp_model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, cfg: Config,
                      lr: float, step: int, teacher: KeypointNet | None = None
                      ) -> tuple[torch.Tensor, dict[str, float], dict]:
    """One step at learning rate ``lr``: forward, backward, gradient clipping, update. Returns (detached total loss,
    terms, model outputs); FloatingPointError naming the step if the loss is not finite."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    total, terms, out = compute_losses(ddp_model, batch, cfg, teacher, step)
    if not torch.isfinite(total):
        raise FloatingPointError(f"step {step}: loss is not finite ({terms})")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if cfg.train.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), cfg.train.grad_clip)
    optimizer.step()
    return total.detach(), terms, out


# ------------------------------------------------------------------------------------ validation
@torch.no_grad()
def validate(model: DiscoveryModel, val: ValidationSet, cfg: Config, device: torch.device,
             teacher: KeypointNet | None = None) -> tuple[dict, tuple]:
    """The training loss terms on the validation samples, in eval mode without gradients or augmentation. The MaS
    cascade's terms at its final stage (arms, physique) at every validation, so that the curve measures one objective.

    Returns ``({"total", "terms": {name: value}, "confidence", "samples", "seconds"}, (batch, outputs))``: means
    over the frames (each batch weighted by its frame count) and the first batch with its outputs, for a preview.
    Draws from no global RNG, so the training run's numbers are those it has without validation.
    """
    t0 = time.perf_counter()
    window = window_length(cfg)
    model.eval()
    sums: dict[str, float] = {}
    first = None
    for items in val.batches:
        raw = torch.utils.data.default_collate([val.dataset[int(i)] for i in items])
        batch = model_batch(raw, window, device)
        total, terms, out = compute_losses(model, batch, cfg, teacher)
        frames = batch["image"].shape[0]
        for name, value in {"total": float(total), "confidence": float(out["conf"].mean()), **terms}.items():
            sums[name] = sums.get(name, 0.0) + frames * value
        if first is None:
            first = (batch, out)
    model.train()
    means = {name: value / val.samples for name, value in sums.items()}
    result = {"total": means.pop("total"), "confidence": means.pop("confidence"), "terms": means,
              "samples": val.samples, "seconds": time.perf_counter() - t0}
    return result, first


# ------------------------------------------------------------------------------------------ logging
def open_writer(cfg: Config, procs: Processes):
    """TensorBoard writer on rank 0 with ``train.tensorboard``, else None."""
    if not (procs.master and cfg.train.tensorboard):
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(Path(cfg.train.out_dir) / "tb"))


def describe_run(cfg: Config, dataset, model: DiscoveryModel, procs: Processes, progress: Progress,
                 val: ValidationSet | None) -> str:
    """The line printed when training starts."""
    n_params = sum(p.numel() for p in model.keypoint_net.parameters())
    checks = (f", validation on {val.samples} samples of {cfg.data.val_path} every {cfg.train.val_every} steps"
              if val is not None else "")
    if cfg.train.init_from and progress.step == 0:
        checks += f", starting from {cfg.train.init_from}"
    if cfg.train.init_encoder_from and progress.step == 0:
        checks += f", encoder from {cfg.train.init_encoder_from}"
    if cfg.loss.distill > 0:
        checks += f", distillation {cfg.loss.distill:g}"
    return (f"[train] {cfg.name}: {len(dataset)} samples, keypoint net {n_params / 1e6:.2f} M params, "
            f"{'supervised' if cfg.train.supervised else 'unsupervised'}, device {procs.device}, world {procs.world}, "
            f"from step {progress.step}{checks}")


def progress_bar(cfg: Config, progress: Progress, master: bool) -> tqdm:
    """Steps, or seconds of the time budget when there is one."""
    budget_s = 60.0 * cfg.train.max_minutes
    if budget_s:
        return tqdm(total=round(budget_s), initial=min(round(progress.elapsed_s), round(budget_s)), unit="s",
                    disable=not master, desc=cfg.name, dynamic_ncols=True)
    return tqdm(total=cfg.train.steps, initial=progress.step, unit="it", disable=not master, desc=cfg.name,
                dynamic_ncols=True)


def update_bar(bar: tqdm, cfg: Config, progress: Progress, loss: float, sps: float) -> None:
    """Advance the bar by a step (or to the seconds spent) and show the loss, throughput and latest validation."""
    budget_s = 60.0 * cfg.train.max_minutes
    bar.update(min(round(progress.elapsed_s), round(budget_s)) - bar.n if budget_s else 1)
    postfix = {"loss": f"{loss:.4f}", "sps": f"{sps:.1f}"}
    if budget_s:
        postfix["step"] = progress.step
    if progress.val:
        postfix["val"] = f"{progress.val['total']:.4f}"
    bar.set_postfix(postfix)


def log_scalars(writer, step: int, total: float, terms: dict[str, float], lr: float, sps: float, out: dict) -> None:
    """The training step's loss terms, learning rate, throughput and mean keypoint confidence."""
    writer.add_scalar("loss/total", total, step)
    for name, value in terms.items():
        writer.add_scalar(f"loss/{name}", value, step)
    writer.add_scalar("lr", lr, step)
    writer.add_scalar("samples_per_s", sps, step)
    writer.add_scalar("confidence/mean", float(out["conf"].detach().mean()), step)


def preview_figure(batch: dict, out: dict, index: int = 0):
    """Matplotlib figure: per view, the crop with detected (dots) and reprojected 3D (crosses) keypoints,
    and the reconstruction when present. In skeleton mode the reprojected joints are drawn as the skeleton, each
    bone coloured by its side, and a last row shows the skeleton mask (red) over the label-free foreground (green)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import draw_sided_skeleton

    image = batch["image"][index].detach().float().cpu().numpy()  # (V, 3, S, S)
    kp = out["kp"][index].detach().cpu().numpy()
    kp_hat = out["kp_hat"][index].detach().cpu().numpy()
    panels = []  # (title, (V, S', S', 3) images)
    if "recon" in out:
        panels.append(("reconstruction", out["recon"][index].detach().float().cpu().numpy().transpose(0, 2, 3, 1)))
    if "skeleton" in out and "fg" in batch:
        sk = out["skeleton"][index, :, 0].detach().float().cpu().numpy()  # (V, h, h)
        fg = torch.nn.functional.adaptive_avg_pool2d(batch["fg"][index].detach().float().cpu(), sk.shape[-1])
        panels.append(("skeleton / foreground", np.stack([sk, fg[:, 0].numpy(), np.zeros_like(sk)], -1)))
    V, K = kp.shape[:2]
    fig, axes = plt.subplots(1 + len(panels), V, figsize=(2.2 * V, 2.2 * (1 + len(panels))), squeeze=False)
    colours = plt.cm.hsv(np.linspace(0, 1, K, endpoint=False))
    for v in range(V):
        ax = axes[0, v]
        ax.imshow(image[v].transpose(1, 2, 0).clip(0, 1))
        ax.scatter(kp[v, :, 0], kp[v, :, 1], s=8, c=colours, marker="o")
        if "skeleton" in out:
            draw_sided_skeleton(ax, kp_hat[v])
        else:
            ax.scatter(kp_hat[v, :, 0], kp_hat[v, :, 1], s=14, c=colours, marker="x", linewidths=0.8)
        ax.set_title(f"view {v}", fontsize=7)
        ax.axis("off")
        for row, (title, pictures) in enumerate(panels, start=1):
            axes[row, v].imshow(pictures[v].clip(0, 1))
            axes[row, v].set_title(title, fontsize=7)
            axes[row, v].axis("off")
    fig.tight_layout()
    return fig


def save_preview(run_dir: Path, writer, batch: dict, out: dict, step: int) -> None:
    """The first sample's preview figure: ``previews/step_NNNNNN.png`` and TensorBoard ``preview``."""
    fig = preview_figure(batch, out)
    (run_dir / "previews").mkdir(parents=True, exist_ok=True)
    fig.savefig(run_dir / "previews" / f"step_{step:06d}.png", dpi=80)
    if writer is not None:
        writer.add_figure("preview", fig, step)  # closes the figure
    else:
        import matplotlib.pyplot as plt

        plt.close(fig)


def report_validation(writer, bar: tqdm, result: dict, first: tuple, step: int) -> None:
    """One printed line per validation; TensorBoard ``val/*`` scalars and the ``val/preview`` figure of the first
    validation sample (the same frame every time)."""
    terms = ", ".join(f"{name} {value:.4f}" for name, value in result["terms"].items())
    bar.write(f"[val] step {step}: total {result['total']:.4f} ({terms}), confidence {result['confidence']:.3f}, "
              f"{result['samples']} samples in {result['seconds']:.1f} s")
    if writer is None:
        return
    writer.add_scalar("val/total", result["total"], step)
    for name, value in result["terms"].items():
        writer.add_scalar(f"val/{name}", value, step)
    writer.add_scalar("val/confidence_mean", result["confidence"], step)
    writer.add_figure("val/preview", preview_figure(*first), step)  # closes the figure


def run_validation(model: DiscoveryModel, val: ValidationSet, cfg: Config, procs: Processes, writer, bar: tqdm,
                   step: int, teacher: KeypointNet | None = None) -> dict:
    """Validate, report, and return the result with its step (what the checkpoint keeps)."""
    result, first = validate(model, val, cfg, procs.device, teacher)
    report_validation(writer, bar, result, first, step)
    return {"step": step, **result}


def due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


# ------------------------------------------------------------------------------------------ train
def train(cfg: Config, resume: bool = False) -> Path:
    """Train from ``cfg``; returns the path of the final checkpoint (``out_dir/ckpt.pt``).

    With ``resume`` and an existing checkpoint in ``out_dir``, model, optimiser, step, sample count and time spent
    continue from it (the data order restarts from the seed); otherwise ``train.init_from`` names the starting weights.
    """
    procs = start_processes(cfg)
    run_dir = Path(cfg.train.out_dir)
    ckpt_path = run_dir / "ckpt.pt"
    try:
        dataset, loader = training_data(cfg, procs)
        model, optimizer = build_model(cfg, procs.device)
        if resume and ckpt_path.is_file():
            progress = resume_from(ckpt_path, cfg, model, optimizer, procs.device)
        else:
            progress = Progress()
            if cfg.train.init_from:
                start_from(cfg.train.init_from, cfg, model)
            elif cfg.train.init_encoder_from:
                start_encoder_from(cfg.train.init_encoder_from, model)
            if cfg.train.head_init_scale < 1 and not cfg.train.init_from:
                shrink_head(model, cfg.train.head_init_scale)
        teacher = build_teacher(cfg, procs.device)
        ddp_model = wrap_ddp(model, cfg, procs)
        val = validation_set(cfg) if cfg.data.val_path else None  # on every rank, so a missing folder stops all alike
        validating = val is not None and procs.master
        writer = open_writer(cfg, procs)
        if procs.master:
            run_dir.mkdir(parents=True, exist_ok=True)
            print(describe_run(cfg, dataset, model, procs, progress, val))

        # A fresh stream per (seed, rank, resume step); mixed, since seed + rank + step would coincide across ranks.
        aug_seed = int(np.random.SeedSequence([cfg.train.seed, procs.rank, progress.step]).generate_state(1)[0])
        augment = Augmenter(cfg.data.augment, seed=aug_seed)
        window = window_length(cfg)
        batches = infinite_batches(loader)
        bar = progress_bar(cfg, progress, procs.master)
        model.train()
        throughput = Throughput(progress.samples)
        clock = Clock(cfg, progress.elapsed_s, procs)
        while progress.step < cfg.train.steps and not clock.exhausted(progress.elapsed_s):
            lr = learning_rate(progress.step, cfg, progress.elapsed_s)
            batch = augment(model_batch(next(batches), window, procs.device))
            total, terms, out = optimisation_step(ddp_model, optimizer, batch, cfg, lr, progress.step, teacher)
            progress.step += 1
            progress.samples += cfg.train.batch_size * procs.world
            sps = throughput.update(progress.samples)
            progress.elapsed_s = clock.spent()
            step = progress.step

            if writer is not None and (due(step, cfg.train.log_every) or step == cfg.train.steps):
                log_scalars(writer, step, float(total), terms, lr, sps, out)
            if procs.master and cfg.train.preview_every > 0 and (due(step, cfg.train.preview_every) or step == 1):
                save_preview(run_dir, writer, batch, out, step)
            if validating and due(step, cfg.train.val_every):
                progress.val = run_validation(model, val, cfg, procs, writer, bar, step, teacher)
            update_bar(bar, cfg, progress, float(total), sps)
            if procs.master and due(step, cfg.train.checkpoint_every):
                save_training_checkpoint(ckpt_path, cfg, model, optimizer, progress)
        if validating and progress.val.get("step") != progress.step:  # the final weights, validated
            progress.val = run_validation(model, val, cfg, procs, writer, bar, progress.step, teacher)
        bar.close()
        if procs.master:
            save_training_checkpoint(ckpt_path, cfg, model, optimizer, progress)
            budget = clock.exhausted(progress.elapsed_s) and progress.step < cfg.train.steps
            why = f", time budget of {cfg.train.max_minutes:g} min spent" if budget else ""
            print(f"[train] done: step {progress.step}, {progress.samples} samples, {throughput.rate:.1f} samples/s"
                  f"{why}, checkpoint {ckpt_path}")
        if writer is not None:
            writer.close()
    finally:
        stop_processes(procs)
    return ckpt_path


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (training/configs/NAME.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.pt if it exists")
    parser.add_argument("--supervised", action="store_true",
                        help="train on ground-truth 2D joints (the upper bound; needs num_keypoints 17)")
    parser.add_argument("--out-dir", default=None, help="override train.out_dir")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--minutes", type=float, default=None, help="override train.max_minutes (0: no time budget)")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.out_dir:
        cfg.train.out_dir = args.out_dir
    if args.steps is not None:
        cfg.train.steps = args.steps
    if args.minutes is not None:
        cfg.train.max_minutes = args.minutes
    if args.supervised:
        cfg.train.supervised = True
        cfg.model.num_keypoints = 17  # one keypoint per studio joint
        if cfg.train.init_from:  # its heatmap head names other keypoints: start from its encoder alone
            cfg.train.init_encoder_from, cfg.train.init_from = cfg.train.init_from, ""
            cfg.loss.distill = 0.0

    cfg = config_from_dict(dataclasses.asdict(cfg), args.config)  # re-validate after overrides
    train(cfg, resume=args.resume)
    return 0


if __name__ == "__main__":  # torchrun --nproc_per_node 2 -m kp3d_core.train --config ...
    import sys

    p = argparse.ArgumentParser(prog="python -m kp3d_core.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    sys.exit(main(p.parse_args()))
