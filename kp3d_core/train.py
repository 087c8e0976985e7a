"""Train the keypoint model: ``kp3d train --config training/configs/NAME.yaml [--resume] [--supervised]``.

Unsupervised by default (multi-view discovery, :mod:`kp3d_core.losses`); ``--supervised`` trains the
same keypoint network on the same frames with ground-truth 2D joints (the upper bound).
Multi-process with ``torchrun --nproc_per_node N -m kp3d_core.train --config ...`` (DDP; gloo on CPU,
nccl on GPU; torch.distributed is used only when WORLD_SIZE > 1).

Run folder (``train.out_dir``): ``ckpt.pt`` (atomic, loads with weights_only=True), ``tb/`` TensorBoard
scalars and previews, ``previews/step_NNNNNN.png``. Python API: ``train(cfg) -> Path`` of the checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from . import losses
from .augment import Augmenter
from .checkpoint import CheckpointError, load_checkpoint, load_state_checked, save_checkpoint
from .config import Config, config_from_dict, config_to_dict, load_config
from .data.bag import build_bag_cache
from .data.cache import DEFAULT_ROOT, CachedDataset
from .data.pairs import TemporalWindows, flatten_windows
from .data.studio import SampleParams
from .models.discovery import DiscoveryModel
from .models.synthetic import SyntheticDataset


# --------------------------------------------------------------------------------------------- data
def build_dataset(cfg: Config) -> torch.utils.data.Dataset:
    """The training samples named by ``cfg.data``: a studio folder, a rosbag2 bag (+ rig file) or synthetic tensors."""
    d = cfg.data
    if d.source == "synthetic":

        return SyntheticDataset(d.num_synthetic, d.num_views, cfg.model.crop_size, seed=cfg.train.seed)

    params = SampleParams(size=cfg.model.crop_size)
    cameras = list(d.views) or None
    root = d.cache_dir or DEFAULT_ROOT
    if d.source == "bag":

        if not Path(d.path, "metadata.yaml").is_file():
            raise FileNotFoundError(f"data.path: '{d.path}' is not a rosbag2 bag directory (no metadata.yaml)")
        if not Path(d.rig).is_file():
            raise FileNotFoundError(f"data.rig: rig file '{d.rig}' not found")
        cache = build_bag_cache(d.path, d.rig, params, cameras, slop_ns=int(d.bag_slop_ms * 1e6),
                                stride=d.bag_stride, root=root)
        return CachedDataset(cache, params, cameras)
    if not Path(d.path, "manifest.yaml").is_file():
        raise FileNotFoundError(f"data.path: '{d.path}' is not a studio dataset folder (no manifest.yaml)")
    return CachedDataset(d.path, params, cameras, root=root)


def infinite_batches(loader, sampler):
    """Yield batches forever, advancing the DistributedSampler's epoch so each epoch reshuffles."""
    epoch = 0
    while True:
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors to ``device``; float64 images stay float64 only for calibration (geometry casts as needed)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


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


def compute_losses(model, batch: dict, cfg: Config) -> tuple[torch.Tensor, dict[str, float], dict]:
    """Forward + loss terms. Returns (total loss, terms as floats, model outputs)."""
    if cfg.train.supervised:
        out = model(batch, decode=False)
        if not bool(torch.as_tensor(batch.get("has_labels", True)).all()):
            raise ValueError("--supervised needs labelled samples (has_labels False in the batch)")
        term = losses.supervised_loss(out["kp"], batch["joints2d_crop"], batch["visible"], cfg.model.crop_size)
        terms = {"supervised": term}
        total = cfg.loss.supervised * term
    else:
        out = model(batch)
        terms = losses.unsupervised_losses(out, batch, cfg.loss, cfg.model.crop_size)
        total = losses.total_loss(terms, cfg.loss)
    return total, {k: float(v.detach()) for k, v in terms.items()}, out


# --------------------------------------------------------------------------------------- preview
def preview_figure(batch: dict, out: dict, index: int = 0):
    """Matplotlib figure: per view, the crop with detected (dots) and reprojected 3D (crosses) keypoints,
    and the reconstruction when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = batch["image"][index].detach().float().cpu().numpy()  # (V, 3, S, S)
    kp = out["kp"][index].detach().cpu().numpy()
    kp_hat = out["kp_hat"][index].detach().cpu().numpy()
    recon = out["recon"][index].detach().float().cpu().numpy() if "recon" in out else None
    V, K = kp.shape[:2]
    rows = 2 if recon is not None else 1
    fig, axes = plt.subplots(rows, V, figsize=(2.2 * V, 2.2 * rows), squeeze=False)
    colours = plt.cm.hsv(np.linspace(0, 1, K, endpoint=False))
    for v in range(V):
        ax = axes[0, v]
        ax.imshow(image[v].transpose(1, 2, 0).clip(0, 1))
        ax.scatter(kp[v, :, 0], kp[v, :, 1], s=8, c=colours, marker="o")
        ax.scatter(kp_hat[v, :, 0], kp_hat[v, :, 1], s=14, c=colours, marker="x", linewidths=0.8)
        ax.set_title(f"view {v}", fontsize=7)
        ax.axis("off")
        if recon is not None:
            axes[1, v].imshow(recon[v].transpose(1, 2, 0).clip(0, 1))
            axes[1, v].set_title("reconstruction", fontsize=7)
            axes[1, v].axis("off")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ train
def train(cfg: Config, resume: bool = False) -> Path:
    """Train from ``cfg``; returns the path of the final checkpoint (``out_dir/ckpt.pt``).

    With ``resume`` and an existing checkpoint in ``out_dir``, model, optimiser, step and sample count
    continue from it (the data order restarts from the seed).
    """
    # -- processes: DDP only when launched with WORLD_SIZE > 1 (torchrun sets RANK/WORLD_SIZE/LOCAL_RANK)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device: 'cuda' requested but no CUDA device is available")
    device = torch.device(f"cuda:{local_rank}" if want_cuda else "cpu")
    if world > 1:
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    if want_cuda:
        torch.cuda.set_device(device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    master = rank == 0
    torch.manual_seed(cfg.train.seed + rank)
    np.random.seed(cfg.train.seed + rank)
    out_dir = Path(cfg.train.out_dir)
    ckpt_path = out_dir / "ckpt.pt"

    try:
        # -- data
        dataset = build_dataset(cfg)
        if len(dataset) < cfg.train.batch_size:
            raise ValueError(f"train.batch_size {cfg.train.batch_size} exceeds the {len(dataset)} samples of the dataset")
        # With the temporal term each item is a window of frames, and a step draws batch_size / window of them.
        window = cfg.loss.temporal_order + 1 if cfg.loss.temporal > 0 and not cfg.train.supervised else 1
        if window > 1:
            dataset = TemporalWindows(dataset, cfg.loss.temporal_offset, window)
        sampler = (
            torch.utils.data.distributed.DistributedSampler(dataset, world, rank, shuffle=True, seed=cfg.train.seed)
            if world > 1 else None
        )
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=cfg.train.batch_size // window, shuffle=sampler is None, sampler=sampler,
            drop_last=True, num_workers=cfg.data.num_workers, pin_memory=want_cuda,
            persistent_workers=cfg.data.num_workers > 0,
        )

        # -- model and optimiser
        # channels_last: the oneDNN (CPU) and cuDNN convolutions run faster in NHWC (-15 % step time measured on CPU).
        model = DiscoveryModel(cfg.model).to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        step, samples, elapsed_before = 0, 0, 0.0
        if resume and ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path, map_location=device)
            if ckpt["config"].get("model") != config_to_dict(cfg)["model"]:
                raise CheckpointError(f"{ckpt_path}: model config differs from the run's config; cannot resume")
            load_state_checked(model, ckpt["model"], ckpt_path)
            if "optimizer" in ckpt:
                optimizer.load_state_dict(ckpt["optimizer"])
            step, samples = int(ckpt.get("step", 0)), int(ckpt.get("samples", 0))
            elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        ddp_model = (
            torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[local_rank] if want_cuda else None,
                find_unused_parameters=cfg.train.supervised,  # the decoder is idle when supervised
            )
            if world > 1 else model
        )

        def checkpoint() -> None:
            if master:
                save_checkpoint(ckpt_path, {
                    "config": config_to_dict(cfg), "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "step": step, "samples": samples, "elapsed_s": elapsed,
                })

        writer = None
        if master and cfg.train.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out_dir / "tb"))
        if master:
            out_dir.mkdir(parents=True, exist_ok=True)
            n_params = sum(p.numel() for p in model.keypoint_net.parameters())
            print(f"[train] {cfg.name}: {len(dataset)} samples, keypoint net {n_params / 1e6:.2f} M params, "
                  f"{'supervised' if cfg.train.supervised else 'unsupervised'}, device {device}, world {world}, "
                  f"from step {step}")

        # A fresh stream per (seed, rank, resume step); mixed, since seed + rank + step would coincide across ranks.
        aug_seed = int(np.random.SeedSequence([cfg.train.seed, rank, step]).generate_state(1)[0])
        augment = Augmenter(cfg.data.augment, seed=aug_seed)
        # -- loop
        batches = infinite_batches(loader, sampler)
        budget_s = 60.0 * cfg.train.max_minutes  # 0: no time budget; the bar then counts seconds, not steps
        bar = tqdm(total=round(budget_s) if budget_s else cfg.train.steps,
                   initial=min(round(elapsed_before), round(budget_s)) if budget_s else step,
                   unit="s" if budget_s else "it", disable=not master, desc=cfg.name, dynamic_ncols=True)
        model.train()
        t_start, samples_start, first_step = time.perf_counter(), samples, True
        t_loop, elapsed, sps = time.perf_counter(), elapsed_before, 0.0

        def spent() -> float:
            """Training seconds so far, resumed runs included; under DDP the largest over the ranks."""
            e = elapsed_before + time.perf_counter() - t_loop
            if world > 1 and budget_s:  # all ranks must stop at the same step
                x = torch.tensor([e], dtype=torch.float64, device=device)
                dist.all_reduce(x, op=dist.ReduceOp.MAX)
                e = float(x)
            return e

        while step < cfg.train.steps and not (budget_s and elapsed >= budget_s):
            lr = learning_rate(step, cfg, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = next(batches)
            batch = augment(to_device(flatten_windows(batch) if window > 1 else batch, device))
            total, terms, out = compute_losses(ddp_model, batch, cfg)
            if not torch.isfinite(total):
                raise FloatingPointError(f"step {step}: loss is not finite ({terms})")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            optimizer.step()
            step += 1
            samples += cfg.train.batch_size * world

            total = total.detach()
            if first_step:  # throughput excludes the first step (allocations, lazy init)
                t_start, samples_start, first_step = time.perf_counter(), samples, False
            elif time.perf_counter() > t_start:
                sps = (samples - samples_start) / (time.perf_counter() - t_start)
            elapsed = spent()
            bar.update(min(round(elapsed), round(budget_s)) - bar.n if budget_s else 1)
            bar.set_postfix(loss=f"{float(total):.4f}", sps=f"{sps:.1f}", **({"step": step} if budget_s else {}))
            if writer is not None and (step % cfg.train.log_every == 0 or step == cfg.train.steps):
                writer.add_scalar("loss/total", float(total), step)
                for name, value in terms.items():
                    writer.add_scalar(f"loss/{name}", value, step)
                writer.add_scalar("lr", lr, step)
                writer.add_scalar("samples_per_s", sps, step)
                writer.add_scalar("confidence/mean", float(out["conf"].detach().mean()), step)
            if master and cfg.train.preview_every > 0 and (step % cfg.train.preview_every == 0 or step == 1):
                fig = preview_figure(batch, out)
                (out_dir / "previews").mkdir(parents=True, exist_ok=True)
                fig.savefig(out_dir / "previews" / f"step_{step:06d}.png", dpi=80)
                if writer is not None:
                    writer.add_figure("preview", fig, step)  # closes the figure
                else:
                    import matplotlib.pyplot as plt

                    plt.close(fig)
            if step % cfg.train.checkpoint_every == 0:
                checkpoint()
        bar.close()
        checkpoint()
        if writer is not None:
            writer.close()
        if master:
            why = f", time budget of {cfg.train.max_minutes:g} min spent" if budget_s and step < cfg.train.steps else ""
            print(f"[train] done: step {step}, {samples} samples, {sps:.1f} samples/s{why}, checkpoint {ckpt_path}")
    finally:
        if world > 1 and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
    return ckpt_path


# -------------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config (training/configs/NAME.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.pt if it exists")
    parser.add_argument("--supervised", action="store_true",
                        help="train on ground-truth 2D joints (the upper bound; needs num_keypoints 17)")
    parser.add_argument("--out-dir", default=None, help="override train.out_dir")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")


def main(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.out_dir:
        cfg.train.out_dir = args.out_dir
    if args.steps is not None:
        cfg.train.steps = args.steps
    if args.supervised:
        cfg.train.supervised = True
        cfg.model.num_keypoints = 17  # one keypoint per studio joint

    cfg = config_from_dict(dataclasses.asdict(cfg), args.config)  # re-validate after overrides
    train(cfg, resume=args.resume)
    return 0


if __name__ == "__main__":  # torchrun --nproc_per_node 2 -m kp3d_core.train --config ...
    import sys

    p = argparse.ArgumentParser(prog="python -m kp3d_core.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    sys.exit(main(p.parse_args()))
