"""Checkpoints: a dict of plain types and tensors, written atomically, read with ``weights_only=True``.

Layout::

    {"format": "kp3d-checkpoint", "version": 1,
     "config": {...},            # config_to_dict(Config), plain types
     "model": state_dict,        # DiscoveryModel: "keypoint_net.*" (exported) and "decoder.*" (training only;
                                 # with loss.physique > 0 also "skeleton_head.physique.*", kp3d_core.mas)
     "optimizer": state_dict,    # optional, for --resume
     "step": int, "samples": int,
     "elapsed_s": float,         # training seconds spent (train.max_minutes budgets resume from it)
     "val": {...},               # optional, the latest label-free validation (kp3d_core.train.validate)
     "mapping": {...}}           # optional, added by `kp3d map` (keypoints -> 17 joints)

Example::

    save_checkpoint(path, {"config": ..., "model": model.state_dict(), "step": 10})
    ckpt = load_checkpoint(path)          # CheckpointError naming the file if corrupt
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .config import ConfigError, config_from_dict

FORMAT = "kp3d-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, of another format, or does not fit the model; names the file."""


def shipped_model_path() -> Path:
    """The default model committed with the package: kp3d_core/assets/model.pt."""
    return Path(__file__).resolve().parent / "assets" / "model.pt"


def save_checkpoint(path: str | Path, ckpt: dict) -> Path:
    """Write ``ckpt`` (plus format/version tags) to ``path`` atomically: temp file in the same folder, then os.replace.

    A crash mid-write leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": VERSION, **ckpt}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)``; CheckpointError naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle of a forbidden type, random bytes ...
        # torch's message runs over paragraphs of advice about pickles; its first line says what failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot read checkpoint (corrupt or not a kp3d checkpoint): {first}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a kp3d checkpoint (missing format tag '{FORMAT}')")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')} unsupported (expected {VERSION})")
    for key in ("config", "model"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint has no '{key}' entry")
    return data


def model_config_of(ckpt: dict, path: str | Path = "checkpoint"):
    """The :class:`ModelConfig` stored in a checkpoint (CheckpointError naming the file if invalid)."""

    try:
        return config_from_dict(ckpt["config"], f"{path} (stored config)").model
    except ConfigError as exc:
        raise CheckpointError(f"{path}: stored config invalid: {exc}") from None


def load_state_checked(module: torch.nn.Module, state: dict, path: str | Path = "checkpoint") -> None:
    """``module.load_state_dict(state)`` with a CheckpointError naming the file on missing/unexpected keys
    or shape mismatches."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the model: {exc}") from None


def strip_for_release(src: str | Path, dst: str | Path) -> Path:
    """Copy a checkpoint without its optimiser state (what ships as kp3d_core/assets/model.pt).

    Keeps config, model weights, step/samples and the mapping; the result still loads everywhere a
    checkpoint does, but cannot ``--resume`` its optimiser.
    """
    ckpt = load_checkpoint(src)
    keep = {k: v for k, v in ckpt.items() if k not in ("format", "version", "optimizer")}
    return save_checkpoint(dst, keep)


if __name__ == "__main__":  # python -m kp3d_core.checkpoint strip SRC DST
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "strip":
        print("usage: python -m kp3d_core.checkpoint strip SRC DST   (drop the optimiser state)", file=sys.stderr)
        sys.exit(2)
    out = strip_for_release(sys.argv[2], sys.argv[3])
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB")
