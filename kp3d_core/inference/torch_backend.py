"""The PyTorch backend, the reference the others are tested against, and loading the keypoint net from a checkpoint."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..models.keypoint_net import load_keypoint_net
from .interface import Backend, BackendUnavailable, ModelFileError, ModelInfo, default_threads, file_sha256


def state_sha256(model) -> str:
    """Hex sha256 of a module's parameters and buffers (for models that do not come from a file)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def model_info(model, model_sha256: str = "") -> ModelInfo:
    """Read K and S from the network's config (``model.cfg.num_keypoints``, ``model.cfg.crop_size``)."""
    cfg = getattr(model, "cfg", model)
    try:
        k, s = int(cfg.num_keypoints), int(cfg.crop_size)
    except AttributeError:
        raise ValueError(
            f"{type(model).__name__}: the keypoint network must expose cfg.num_keypoints and cfg.crop_size"
        ) from None
    return ModelInfo(num_keypoints=k, crop_size=s, model_sha256=model_sha256 or state_sha256(model))


def load_model(checkpoint: str | os.PathLike):
    """Checkpoint file -> (keypoint network in eval mode on the CPU, :class:`ModelInfo`).

    Raises :class:`ModelFileError` naming the file when it is missing, corrupt or not a kp3d model.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise ModelFileError(f"checkpoint '{path}': file not found")
    try:
        model = load_keypoint_net(path)
    except ModelFileError:
        raise
    except Exception as exc:  # unpickling / state_dict errors come in many types
        raise ModelFileError(f"checkpoint '{path}': cannot load a keypoint network ({type(exc).__name__}: {exc})") from None
    model = model.eval()
    return model, model_info(model, file_sha256(path))


class TorchBackend(Backend):
    """The reference: the PyTorch module in eval mode under ``torch.inference_mode`` (CPU or CUDA)."""

    def __init__(self, model, info: ModelInfo, device: str = "cpu", threads: int | None = None):
        import torch

        self._torch = torch
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("pytorch: device 'cuda' requested but torch.cuda.is_available() is False")
        if device == "cpu":
            # torch's thread count is process-wide; only lower it, never raise it behind the caller's back
            torch.set_num_threads(min(torch.get_num_threads(), threads or default_threads()))
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.info = info
        self.name = f"pytorch-{self.device.type}"

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(crops).to(self.device, non_blocking=True)
            kp, conf = self.model(x)
            return kp.float().cpu().numpy(), conf.float().cpu().numpy()
