"""Fitting the map from discovered 3D keypoints to the 17 studio joints on few labels (``kp3d map``).

Both models see the keypoints centred on their root (the keypoints' mean, or one chosen keypoint) and
predict the 17 joints relative to that same origin, so the root translation comes for free:
``joints = origin + f(keypoints - origin)``. Models: ridge regression (``linear``) and the mean of four
2-hidden-layer MLPs (``mlp``: two seeds for each of two yaw limits). While fitting, keypoints and joints are
rotated together about the vertical axis by random yaw angles, which teaches the map that a turned body is the
same body (REFERENCE section 5); half of the MLPs are
fitted without it, since the discovered keypoints' identity can depend on the heading relative to the rig
(``MappingConfig.yaw_max_deg``).

The labelled frames are a stated fraction of the TRAINING split, chosen deterministically (evenly
spaced over the split; over a sessions folder's frames all together, sessions in manifest order,
:mod:`kp3d_core.data.sessions`): never test frames. The maps work on 3D keypoints, so one map serves sessions of any
camera count.

The fitted maps are stored in the checkpoint under ``mapping`` (layout and the run-time side:
:mod:`kp3d_core.models.mapping`)::

    entry = fit_mapping(keypoints3d, joints3d, MappingConfig())   # (N, K, 3), (N, 17, 3) metres
    store_mapping("ckpt.pt", entry)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .cli_args import CommandParser, UsageError, angle_0_180, fraction, positive_int, probability
from .data.sessions import read_split, split_indices
from .data.studio import StudioFolder
from .evaluate import check_cameras, checkpoint_keypoints, default_split
from .models.mapping import MappingMLP, apply_mapping, centred_features, plain_mapping, root_origin
from .skeleton import FLIP_PERMUTATION, NUM_JOINTS
from .studio.presets import DEFAULT_MOTION_HELP


@dataclass
class MappingConfig:
    """How the keypoints -> joints maps are fitted."""

    root: int = -1
    """Origin of the centring: -1 = mean of the valid keypoints, k >= 0 = keypoint k."""
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """World vertical axis (yaw augmentation rotates about it); the studio world is z-up."""
    yaw_max_deg: tuple[float, ...] = (0.0, 180.0)
    """Largest yaw of the augmentation, degrees: keypoints and joints are rotated together by random angles
    from [-a, a] while fitting (180: any heading; ``(0,)``: no augmentation).
    The MLP map averages one MLP per value; the ridge map takes the largest. Why both: a fully
    yaw-augmented map cannot see the body's heading relative to the rig, on which the discovered
    keypoints' identity can depend, while an unaugmented one overfits few labels; their mean beat either on
    studio-bench val (docs/accuracy_journal.md)."""
    seeds_per_limit: int = 2
    """MLPs fitted per yaw limit, with seeds ``seed``, ``seed + 1``, ...; all are averaged (two per limit beat one on
    studio-bench val)."""
    ridge_alpha: float = 1e-3
    """Ridge penalty of the linear map (per augmented sample, on the centred inputs in metres)."""
    ridge_copies: int = 24
    """Yaw-rotated copies of each frame for the closed-form ridge fit (evenly spaced angles)."""
    hidden: int = 256
    """Width of the MLP's two hidden layers."""
    dropout: float = 0.1
    """Dropout after each hidden layer while fitting."""
    steps: int = 3000
    """MLP optimiser steps (Adam, cosine decay)."""
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    ridge_init: bool = True
    """Initialise the MLP's linear skip path with the ridge fit and its output layer at zero."""
    validate: bool = True
    """Choose the MLP's step count on a hold-out of the labelled frames (2 blocks, 20 %), then refit on all."""
    mirror: tuple[float, ...] = (0.0, 0.5)
    """Candidate probabilities that an MLP training sample is mirrored (the ridge fit is not): keypoints and joints
    reflected in a vertical plane and the joints' left and right swapped, which tells the map that a keypoint's label
    says nothing of the body side, so the side must come from the keypoints' geometry. With several candidates the MLP
    map takes the one whose members' mean hold-out MPJPE (``validate``, labelled frames only) is lowest; without a
    hold-out, the first. The mirror suits keypoints that keep no body side and hurts keypoints whose side is tied to
    the room; the hold-out chose the better one in every case measured (docs/accuracy_journal.md)."""


def select_fraction(num_frames: int, fraction: float) -> np.ndarray:
    """Deterministic labelled subset: round(fraction * N) (>= 1) frame indices evenly spaced over [0, N)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if num_frames <= 0:
        raise ValueError(f"select_fraction: no frames (num_frames={num_frames})")
    n = max(1, int(round(fraction * num_frames)))
    return np.unique(np.floor((np.arange(n) + 0.5) * num_frames / n).astype(np.int64))


# ------------------------------------------------------------------------------------------ geometry
def yaw_rotations(angles: torch.Tensor, up) -> torch.Tensor:
    """(N,) angles (radians) -> (N, 3, 3) rotations about the unit axis ``up`` (Rodrigues)."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    Kx = torch.tensor([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]], dtype=angles.dtype)
    s, c = torch.sin(angles)[:, None, None], torch.cos(angles)[:, None, None]
    return torch.eye(3, dtype=angles.dtype) + s * Kx + (1 - c) * (Kx @ Kx)


def mirror_matrix(up) -> torch.Tensor:
    """(3, 3) float64 reflection in a vertical plane (one containing the unit axis ``up``)."""
    u = np.asarray(up, dtype=np.float64)
    u = u / np.linalg.norm(u)
    n = np.eye(3)[int(np.argmin(np.abs(u)))]  # the world axis furthest from vertical, made horizontal
    n = n - (n @ u) * u
    n = n / np.linalg.norm(n)
    return torch.as_tensor(np.eye(3) - 2 * np.outer(n, n))


def _yaw_limit(cfg: MappingConfig) -> float:
    """The augmentation's largest yaw in degrees: the largest of ``yaw_max_deg`` (0 if it is empty)."""
    return float(max(cfg.yaw_max_deg, default=0.0))


def _member_config(cfg: MappingConfig, limit_deg: float, seed: int, mirror: float) -> MappingConfig:
    """``cfg`` with the single yaw limit ``limit_deg``, ``seed`` and mirror probability (one member of the MLP map)."""
    return replace(cfg, yaw_max_deg=(float(limit_deg),), seed=int(seed), seeds_per_limit=1, mirror=(float(mirror),))


def _yaw_grid(cfg: MappingConfig) -> torch.Tensor:
    """(ridge_copies,) evenly spaced yaw angles (radians) within the limit (a full turn at 180 degrees)."""
    c, limit = cfg.ridge_copies, _yaw_limit(cfg)
    if limit >= 180.0:
        return torch.arange(c, dtype=torch.float64) * (2 * math.pi / c) - math.pi
    return torch.linspace(-1.0, 1.0, c, dtype=torch.float64) * math.radians(limit)


def _centred_pairs(keypoints, joints, root: int):
    """Float64 tensors: centred keypoints (N, K, 3) with NaN kept, joints (N, 17, 3) relative to the origin."""
    X = torch.as_tensor(np.asarray(keypoints, dtype=np.float64))
    Y = torch.as_tensor(np.asarray(joints, dtype=np.float64))
    if X.ndim != 3 or X.shape[-1] != 3:
        raise ValueError(f"keypoints3d: expected (N, K, 3), got {tuple(X.shape)}")
    if Y.shape != (X.shape[0], NUM_JOINTS, 3):
        raise ValueError(f"joints3d: expected ({X.shape[0]}, {NUM_JOINTS}, 3), got {tuple(Y.shape)}")
    o = root_origin(X, root)
    keep = torch.isfinite(o).all(-1) & torch.isfinite(Y).all((-1, -2))
    if not bool(keep.any()):
        raise ValueError("mapping fit: no frame has valid keypoints and joints")
    o = o[keep]
    return X[keep] - o[:, None], Y[keep] - o[:, None]


# ------------------------------------------------------------------------------------------ models
def fit_linear(keypoints, joints, cfg: MappingConfig = MappingConfig()) -> dict:
    """Ridge map from (N, K, 3) keypoints to (N, 17, 3) joints (metres, world); returns the stored entry."""
    Xc, Yc = _centred_pairs(keypoints, joints, cfg.root)
    K = Xc.shape[1]
    if _yaw_limit(cfg) > 0:
        angles = _yaw_grid(cfg)
        R = yaw_rotations(angles, cfg.up)  # (C, 3, 3)
        Xc = torch.einsum("cij,nkj->cnki", R, Xc).reshape(-1, K, 3)
        Yc = torch.einsum("cij,nkj->cnki", R, Yc).reshape(-1, NUM_JOINTS, 3)
    F = centred_features(Xc, torch.zeros(Xc.shape[0], 3, dtype=Xc.dtype))
    T = Yc.flatten(-2)
    F1 = torch.cat([F, torch.ones(F.shape[0], 1, dtype=F.dtype)], 1)
    reg = cfg.ridge_alpha * F.shape[0] * torch.eye(F1.shape[1], dtype=F.dtype)
    reg[-1, -1] = 0.0  # the bias is not penalised
    W = torch.linalg.solve(F1.T @ F1 + reg, F1.T @ T)
    return {"kind": "linear", "num_keypoints": int(K), "root": int(cfg.root), "up": list(map(float, cfg.up)),
            "weight": W[:-1].float().contiguous(), "bias": W[-1].float().contiguous()}


def fit_mlp(keypoints, joints, cfg: MappingConfig = MappingConfig(), progress: bool = False) -> dict:
    """The MLP map: ``cfg.seeds_per_limit`` 2-hidden-layer MLPs per yaw limit of ``cfg.yaw_max_deg``, their
    outputs averaged, fitted with the mirror probability of ``cfg.mirror`` that the hold-out prefers.

    Returns the stored entry, ``{"kind": "mlp", ..., "mirror": p, "members": [one dict per MLP]}``. Each member
    is validated by :func:`_validate_member` (its step count chosen on a hold-out of the labelled frames), then
    fitted on all of them by :func:`_train_mlp` (Adam, random yaw per sample within its limit).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    joints = np.asarray(joints, dtype=np.float64)
    limits = sorted(set(cfg.yaw_max_deg)) or [0.0]
    mirrors = list(dict.fromkeys(cfg.mirror)) or [0.0]
    validate = cfg.validate and len(keypoints) >= 10
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small MLP: one thread is fastest, more only contend
    try:
        members = {p: [_member_config(cfg, limit, cfg.seed + s, p) for limit in limits
                       for s in range(max(1, cfg.seeds_per_limit))] for p in mirrors}
        checks = {p: [_validate_member(keypoints, joints, m, progress) if validate else {} for m in ms]
                  for p, ms in members.items()}
        holdout = {p: float(np.mean([c["holdout_mpjpe_mm"] for c in cs])) for p, cs in checks.items() if validate}
        mirror = min(holdout, key=holdout.get) if holdout else mirrors[0]
        fitted = []
        for m, check in zip(members[mirror], checks[mirror]):
            model, _ = _train_mlp(keypoints, joints, m, check.get("validated_steps", cfg.steps), progress)
            state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
            fitted.append({"yaw_max_deg": _yaw_limit(m), "seed": int(m.seed), "state": state,
                           "steps": int(check.get("validated_steps", cfg.steps)), **check})
    finally:
        torch.set_num_threads(threads)
    choice = {"mirror_holdout_mpjpe_mm": {str(p): e for p, e in holdout.items()}} if len(holdout) > 1 else {}
    return {"kind": "mlp", "num_keypoints": int(keypoints.shape[1]), "root": int(cfg.root),
            "up": list(map(float, cfg.up)), "hidden": int(cfg.hidden), "mirror": float(mirror), **choice,
            "members": fitted}


def _validate_member(keypoints, joints, cfg: MappingConfig, progress: bool) -> dict:
    """The step count of one MLP of the map, chosen on the labelled frames themselves (early stopping).

    Two contiguous blocks (20 %) of them, in the given (time) order, are held out, an MLP is trained on the rest
    for up to ``cfg.steps`` steps, and the step with the lowest held-out MPJPE is the length of the final fit on
    all labelled frames. With few labels this stops the MLP before it overfits; no test frame is involved.
    """
    n = len(keypoints)
    # Two contiguous blocks of the time-ordered labelled frames: interleaved frames would sit next to training
    # frames of the same motion and make the hold-out look better than new motion.
    hold = np.isin(np.arange(n) * 10 // n, (2, 7))
    _, curve = _train_mlp(keypoints[~hold], joints[~hold], cfg, cfg.steps, progress,
                          (keypoints[hold], joints[hold]))
    steps, err = min(curve, key=lambda c: c[1])  # step 0: the ridge start itself was best
    return {"validated_steps": int(steps), "holdout_mpjpe_mm": float(1000 * err), "holdout_frames": int(hold.sum())}


def _train_mlp(keypoints, joints, cfg: MappingConfig, steps: int, progress: bool, holdout=None):
    """Train one MLP for ``steps``; with ``holdout`` (keypoints, joints) also return [(step, mpjpe m)] every 5 %."""
    Xc, Yc = _centred_pairs(keypoints, joints, cfg.root)
    Xc, Yc = Xc.float(), Yc.float()
    N, K = Xc.shape[:2]
    limit = _yaw_limit(cfg)
    mirror, p_mirror = mirror_matrix(cfg.up).float(), float(max(cfg.mirror, default=0.0))
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = MappingMLP(K, cfg.hidden, cfg.dropout)
    if cfg.ridge_init:  # start from the ridge solution; the hidden layers then learn only what it misses
        ridge = fit_linear(keypoints, joints, cfg)
        with torch.no_grad():
            model.skip.weight.copy_(ridge["weight"].T)
            model.skip.bias.copy_(ridge["bias"])
            model.net[-1].weight.zero_()
            model.net[-1].bias.zero_()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(steps // 20, 1)  # warm-up: Adam's first steps would otherwise knock the ridge start off

    def lr_factor(i: int) -> float:
        cosine = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(i / max(steps, 1), 1.0)))
        return min(1.0, (i + 1) / warm) * cosine

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    curve = []
    if holdout is not None:
        Hx, Hy = _centred_pairs(*holdout, cfg.root)
        Hf, Hy = centred_features(Hx.float(), torch.zeros(len(Hx), 3)), Hy.float()
        every = max(steps // 20, 1)

    def holdout_error() -> float:
        model.eval()
        with torch.no_grad():
            e = (model(Hf).view(-1, NUM_JOINTS, 3) - Hy).norm(dim=-1).mean()
        model.train()
        return float(e)

    model.train()
    if holdout is not None:
        curve.append((0, holdout_error()))
    for step in tqdm(range(1, steps + 1), desc="fit mlp", disable=not progress, leave=False):
        idx = torch.randint(0, N, (cfg.batch_size,), generator=gen)
        x, y = Xc[idx], Yc[idx]
        if limit > 0:
            u = torch.rand(cfg.batch_size, generator=gen, dtype=torch.float64)
            R = yaw_rotations((2 * u - 1) * math.radians(limit), cfg.up).float()
            x, y = x @ R.transpose(1, 2), y @ R.transpose(1, 2)
        if p_mirror > 0:
            flip = torch.rand(cfg.batch_size, generator=gen) < p_mirror
            x = torch.where(flip[:, None, None], x @ mirror.T, x)
            y = torch.where(flip[:, None, None], (y @ mirror.T)[:, list(FLIP_PERMUTATION)], y)
        pred = model(centred_features(x, torch.zeros(x.shape[0], 3))).view(-1, NUM_JOINTS, 3)
        loss = ((pred - y).pow(2).sum(-1) + 1e-12).sqrt().mean()  # MPJPE itself (finite gradient at 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if holdout is not None and (step % every == 0 or step == steps):
            curve.append((step, holdout_error()))
    model.eval()
    return model, curve


def fit_mapping(keypoints, joints, cfg: MappingConfig = MappingConfig(), kinds=("linear", "mlp"),
                default: str = "mlp", info: dict | None = None, progress: bool = False) -> dict:
    """Fit the requested maps; returns the checkpoint's ``mapping`` entry (plain tensors and values)."""
    models = {}
    for kind in kinds:
        if kind == "linear":
            models[kind] = fit_linear(keypoints, joints, cfg)
        elif kind == "mlp":
            models[kind] = fit_mlp(keypoints, joints, cfg, progress)
        else:
            raise ValueError(f"mapping kind must be 'linear' or 'mlp', got {kind!r}")
    if default not in models:
        raise ValueError(f"default mapping {default!r} not among the fitted kinds {list(models)}")
    cfg_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    return {"default": default, "models": models, "config": cfg_dict, **(info or {})}


# ------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint of the keypoint model (kp3d train)")
    parser.add_argument("--data", default=None,
                        help="TRAINING studio dataset folder or sessions folder the labelled fraction is taken "
                             "from, evenly over all its frames "
                             "(default: the studio-bench train split, rendered if missing)")
    parser.add_argument("--motion-root", type=Path, default=None,
                        help=f"motion data for rendering the default split (default {DEFAULT_MOTION_HELP})")
    parser.add_argument("--fraction", type=fraction, default=0.1,
                        help="fraction of training frames whose labels are used, evenly spaced (default 0.1)")
    parser.add_argument("--out", default=None, help="write the checkpoint with its mapping here (default: in place)")
    parser.add_argument("--default", choices=("mlp", "linear"), default="mlp", help="mapping used by default at inference")
    parser.add_argument("--cameras", nargs="*", default=None, help="camera names to use (default: all)")
    parser.add_argument("--yaw-max-deg", type=angle_0_180, nargs="+", default=list(MappingConfig.yaw_max_deg),
                        help="largest yaw angle of the augmentation, degrees (180: any heading, 0: none); several: "
                             "one MLP per angle, their outputs averaged; ridge takes the largest (default: 0 180)")
    parser.add_argument("--seeds-per-limit", type=positive_int, default=MappingConfig.seeds_per_limit,
                        help="MLPs fitted per yaw angle, with different seeds, all averaged (default 2)")
    parser.add_argument("--up", type=float, nargs=3, default=(0.0, 0.0, 1.0), metavar=("X", "Y", "Z"),
                        help="world vertical axis for the yaw augmentation (default 0 0 1: z up, as in the studio)")
    parser.add_argument("--steps", type=positive_int, default=MappingConfig.steps, help="MLP optimiser steps")
    parser.add_argument("--mirror", type=probability, nargs="+", default=list(MappingConfig.mirror),
                        help="probability that an MLP training sample is mirrored, left and right joints swapped; "
                             "several: the one with the lowest hold-out error on the labelled frames (default 0 0.5)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="frames per inference batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def map_checkpoint(checkpoint: str | Path, data: str | Path, fraction: float, out: str | Path | None = None,
                   cameras: list[str] | None = None, cfg: MappingConfig = MappingConfig(), default: str = "mlp",
                   batch_size: int = 64, progress: bool = True, kinds=("linear", "mlp"), found: dict | None = None) -> dict:
    """Run the checkpoint's keypoint net on the labelled fraction of ``data``, fit, store; returns a summary.

    ``data`` is a studio folder or a sessions folder; of the latter, the fraction is taken evenly over all its frames
    (numbered across sessions in manifest order), each session's keypoints triangulated with its own rig.
    ``found``: keypoints already discovered on ALL frames of ``data`` (``evaluate.checkpoint_keypoints``; sessions
    concatenated in that order), to fit several fractions without running the net again.
    """
    split = read_split(data)
    folders = [StudioFolder(s.path, cameras) for s in split.sessions]
    sizes = [f.num_frames for f in folders]
    n = sum(sizes)
    frames = select_fraction(n, fraction)
    local = split_indices(frames, sizes)  # each session's labelled frames
    if found is None:
        X = np.concatenate([checkpoint_keypoints(checkpoint, s.path, cameras, t, batch_size, progress)[0]["X"]
                            for s, t in zip(split.sessions, local) if t.size])
    else:
        if len(found["X"]) != n:
            raise ValueError(f"found: keypoints of {len(found['X'])} frames given, {data} has {n}")
        X = found["X"][frames]
    joints = np.concatenate([f.gt["joints3d"][t] for f, t in zip(folders, local)])
    info = {"fraction": float(fraction), "num_frames": int(len(frames)), "split_frames": int(n),
            "data": str(Path(data).resolve())}
    if split.is_sessions:  # cameras differ between sessions: each session's, and its share of the labelled frames
        info.update(cameras=list(cameras) if cameras else None, sessions=[
            {"name": s.name, "cameras": list(f.rig.names), "frames": int(f.num_frames), "labelled_frames": int(t.size)}
            for s, f, t in zip(split.sessions, folders, local)])
    else:
        info["cameras"] = list(cameras or StudioFolder(data).rig.names)
    mapping = fit_mapping(X, joints, cfg, kinds=kinds, default=default, info=info, progress=progress)
    fit_err = {k: float(1000 * np.nanmean(np.linalg.norm(apply_mapping(mapping, X, k) - joints, axis=-1)))
               for k in mapping["models"]}
    target = store_mapping(checkpoint, mapping, out)
    return {"checkpoint": str(target), **info, "fit_mpjpe_mm": fit_err, "default": default, "mapping": mapping}


def store_mapping(checkpoint: str | Path, mapping: dict, out: str | Path | None = None) -> Path:
    """Write ``checkpoint`` with ``mapping`` as its ``mapping`` entry to ``out`` (default: in place, atomically)."""
    ckpt = load_checkpoint(checkpoint)
    ckpt["mapping"] = plain_mapping(mapping)
    return save_checkpoint(Path(out) if out else Path(checkpoint),
                           {k: v for k, v in ckpt.items() if k not in ("format", "version")})


def main(args: argparse.Namespace) -> int:
    if not np.any(args.up):
        raise UsageError("--up: the vertical axis must not be zero")
    progress = not args.no_progress
    load_checkpoint(args.checkpoint)  # a bad checkpoint fails now, not after rendering the default split
    data = args.data or default_split("train", motion_root=args.motion_root, progress=progress)
    check_cameras(data, args.cameras)
    cfg = MappingConfig(yaw_max_deg=tuple(args.yaw_max_deg), steps=args.steps,
                        seeds_per_limit=args.seeds_per_limit, up=tuple(args.up), mirror=tuple(args.mirror))
    summary = map_checkpoint(args.checkpoint, data, args.fraction, args.out, args.cameras, cfg, args.default,
                             args.batch_size, progress)
    summary.pop("mapping")
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    p = CommandParser(prog="kp3d map")
    add_arguments(p)
    sys.exit(main(p.parse_args()))
