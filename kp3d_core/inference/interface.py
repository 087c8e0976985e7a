"""The contract every inference backend keeps, and what they share (no backend imports another).

Every backend maps a batch of crops to keypoints and confidences exactly as the PyTorch model does::

    backend.run(crops (N, 3, S, S) float32 RGB in [0, 1]) -> (keypoints (N, K, 2) crop px float32,
                                                              confidence (N, K) float32)

The exported ONNX graph has one input ``crops`` and outputs ``keypoints`` and ``confidence``; its
``metadata_props`` carry ``kp3d.num_keypoints``, ``kp3d.crop_size`` and ``kp3d.model_sha256``.
"""
from __future__ import annotations

import abc
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INPUT_NAME = "crops"
OUTPUT_NAMES = ("keypoints", "confidence")


class ModelFileError(ValueError):
    """A model file (checkpoint, ONNX, engine) is missing, corrupt or does not match; names the file."""


class BackendUnavailable(RuntimeError):
    """A backend cannot run here; the message names the missing package or device."""


@dataclass(frozen=True)
class ModelInfo:
    """What a backend's model expects and returns.

    Attributes:
        num_keypoints: K, keypoints per crop.
        crop_size: S, crop side in pixels (input is (N, 3, S, S)).
        model_sha256: hash identifying the weights (of the checkpoint file), "" if unknown.
    """

    num_keypoints: int
    crop_size: int
    model_sha256: str = ""


def default_threads() -> int:
    """Intra-op threads of the network: one core less than the machine has (at least 1, at most 4).

    The node's other threads (ROS executor, image callbacks, this worker's pre-processing) need a core;
    measured on the shared 2-core machine (4-view set, shipped model, load ~5.5): ONNX Runtime set p50
    17.6 ms with 1 thread vs 28.4 ms with 2, PyTorch network 13 ms vs 46 ms. ``KP3D_THREADS`` overrides.
    """
    env = os.environ.get("KP3D_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def default_cache_dir() -> Path:
    """``$KP3D_CACHE`` or ``~/.cache/kp3d``: exported ONNX files and TensorRT engines (never committed)."""
    return Path(os.environ.get("KP3D_CACHE", Path.home() / ".cache" / "kp3d"))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def onnx_model_info(path: str | os.PathLike) -> ModelInfo:
    """Read and check the kp3d metadata of an exported ONNX file; :class:`ModelFileError` names the file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"ONNX model '{path}': file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types on garbage
        raise ModelFileError(f"ONNX model '{path}': cannot be parsed ({type(exc).__name__}: {exc})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        return ModelInfo(
            num_keypoints=int(meta["kp3d.num_keypoints"]),
            crop_size=int(meta["kp3d.crop_size"]),
            model_sha256=meta.get("kp3d.model_sha256", ""),
        )
    except (KeyError, ValueError):
        raise ModelFileError(
            f"ONNX model '{path}': no kp3d metadata (kp3d.num_keypoints, kp3d.crop_size); "
            "export it with `kp3d export`"
        ) from None


class Backend(abc.ABC):
    """One way of running the keypoint network. Subclasses set ``name`` and ``info``."""

    name: str = "backend"
    info: ModelInfo

    def run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3, S, S) float32 crops in [0, 1] -> ((N, K, 2) crop px, (N, K) confidence), float32."""
        crops = self._check_crops(crops)
        if crops.shape[0] == 0:
            k = self.info.num_keypoints
            return np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32)
        kp, conf = self._run(crops)
        return np.asarray(kp, dtype=np.float32), np.asarray(conf, dtype=np.float32)

    @abc.abstractmethod
    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run a checked, non-empty, C-contiguous float32 batch."""

    def _check_crops(self, crops: np.ndarray) -> np.ndarray:
        s = self.info.crop_size
        if not isinstance(crops, np.ndarray):
            raise TypeError(f"{self.name}: crops must be a numpy array, got {type(crops).__name__}")
        if crops.ndim != 4 or crops.shape[1:] != (3, s, s):
            raise ValueError(f"{self.name}: crops must have shape (N, 3, {s}, {s}), got {crops.shape}")
        if crops.dtype != np.float32:
            raise TypeError(f"{self.name}: crops must be float32, got {crops.dtype}")
        return np.ascontiguousarray(crops)

    def __repr__(self) -> str:
        i = self.info
        return f"{type(self).__name__}(name={self.name!r}, K={i.num_keypoints}, S={i.crop_size})"
