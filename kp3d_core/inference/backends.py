"""Inference backends for the keypoint network, all behind one interface.

Every backend maps a batch of crops to keypoints and confidences exactly as the PyTorch model does::

    backend.run(crops (N, 3, S, S) float32 RGB in [0, 1]) -> (keypoints (N, K, 2) crop px float32,
                                                              confidence (N, K) float32)

PyTorch is the reference; ONNX Runtime and TensorRT run the exported ONNX graph (soft-argmax included)
and are tested against it. ``create_backend("auto", ...)`` picks the fastest one available, in the
order TensorRT > ONNX Runtime (CUDA) > ONNX Runtime (CPU) > PyTorch.

Example::

    backend = create_backend("auto", checkpoint="kp3d_core/assets/model.pt")
    kp, conf = backend.run(crops)
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKEND_KINDS = ("auto", "tensorrt", "onnxruntime", "onnxruntime-cuda", "onnxruntime-cpu", "pytorch", "torch")
# auto tries these in order; "onnxruntime" tries the CUDA then the CPU provider; "torch" = "pytorch"
AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu", "pytorch")

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


# ----------------------------------------------------------------------------------------- PyTorch
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


# ------------------------------------------------------------------------------------ ONNX Runtime
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


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU or, with ``device='cuda'``, the CUDA execution provider."""

    def __init__(self, onnx_path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(f"onnxruntime: package not importable ({exc}); pip install onnxruntime") from None
        self.info = onnx_model_info(onnx_path)
        self.path = Path(onnx_path)
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    "onnxruntime-cuda: CUDAExecutionProvider not available "
                    f"(providers: {ort.get_available_providers()}); install onnxruntime-gpu"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise ValueError(f"onnxruntime: device must be 'cpu' or 'cuda', got {device!r}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1  # the graph is a chain; parallel branches buy nothing
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # No busy-waiting between ops: on a small shared CPU (ROS executor, image callbacks) spinning threads
        # steal the cores the other thread needs; measured here (4 crops, 2 threads, loaded 2-core machine):
        # CPU time 26 ms with spinning vs 15 ms without, and a lower wall-clock p95.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:
            raise ModelFileError(f"ONNX model '{self.path}': ONNX Runtime cannot load it ({exc})") from None
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if [i.name for i in inputs] != [INPUT_NAME] or outputs != list(OUTPUT_NAMES):
            raise ModelFileError(
                f"ONNX model '{self.path}': expected input {INPUT_NAME!r} and outputs {list(OUTPUT_NAMES)}, "
                f"got {[i.name for i in inputs]} -> {outputs}"
            )
        shape = inputs[0].shape
        if list(shape[1:]) != [3, self.info.crop_size, self.info.crop_size]:
            raise ModelFileError(
                f"ONNX model '{self.path}': input shape {shape} does not match its metadata crop_size "
                f"{self.info.crop_size}"
            )
        self.name = "onnxruntime-cuda" if device == "cuda" else "onnxruntime-cpu"

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kp, conf = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: crops})
        return kp, conf


# ----------------------------------------------------------------------------------------- factory
def create_backend(
    kind: str = "auto",
    *,
    checkpoint: str | os.PathLike | None = None,
    onnx_path: str | os.PathLike | None = None,
    engine_cache_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    precision: str = "fp32",
    device: str | None = None,
) -> Backend:
    """Build a backend by name (one of :data:`BACKEND_KINDS`).

    ``checkpoint`` is needed for ``pytorch``; the ONNX backends use ``onnx_path``, or export the
    checkpoint once into ``engine_cache_dir`` (default ``~/.cache/kp3d``) when it is not given.
    ``auto`` returns the first of :data:`AUTO_ORDER` that builds; a missing or corrupt model file is
    raised, never skipped over (that is a fault, not an unavailable backend). ``device`` ("cpu" or
    "cuda") is the PyTorch backend's device; default: CUDA when available.
    """
    if kind not in BACKEND_KINDS:
        raise ValueError(f"backend must be one of {BACKEND_KINDS}, got {kind!r}")
    if checkpoint is None and onnx_path is None:
        raise ValueError("create_backend: give a checkpoint or an onnx_path")
    common = dict(checkpoint=checkpoint, onnx_path=onnx_path, engine_cache_dir=engine_cache_dir, threads=threads,
                  precision=precision, device=device)
    if kind in ("auto", "onnxruntime"):
        reasons = []
        for candidate in AUTO_ORDER if kind == "auto" else ("onnxruntime-cuda", "onnxruntime-cpu"):
            if candidate == "pytorch" and checkpoint is None:
                reasons.append("pytorch: needs a checkpoint")
                continue
            try:
                return create_backend(candidate, **common)
            except BackendUnavailable as exc:
                reasons.append(str(exc))
        raise BackendUnavailable(f"no '{kind}' inference backend available: " + "; ".join(reasons))

    if kind in ("pytorch", "torch"):
        if checkpoint is None:
            raise ValueError("backend 'pytorch' needs a checkpoint")
        from .export import load_model

        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("pytorch: device 'cuda' requested but torch.cuda.is_available() is False")
        model, info = load_model(checkpoint)
        return TorchBackend(model, info, device=device, threads=threads)

    # packages checked before any export, so that auto moves on quickly where they are missing
    try:
        import onnx  # noqa: F401  (export and metadata)

        if kind != "tensorrt":
            import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailable(f"{kind}: package not importable ({exc}); pip install onnx onnxruntime") from None
    if kind == "onnxruntime-cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("onnxruntime-cuda: CUDAExecutionProvider not available; install onnxruntime-gpu")
    if kind == "tensorrt":
        from .tensorrt_backend import TensorRTBackend, check_tensorrt_available

        check_tensorrt_available()
    path = onnx_path if onnx_path is not None else _cached_onnx(checkpoint, engine_cache_dir)
    if kind == "tensorrt":
        return TensorRTBackend(path, cache_dir=engine_cache_dir, precision=precision)
    return OnnxRuntimeBackend(path, device="cuda" if kind == "onnxruntime-cuda" else "cpu", threads=threads)


def available_backends(
    checkpoint: str | os.PathLike | None = None, onnx_path: str | os.PathLike | None = None, **kwargs
) -> tuple[list[Backend], dict[str, str]]:
    """Every concrete backend that builds here: (backends, {kind: why unavailable})."""
    built, missing = [], {}
    for kind in AUTO_ORDER:
        if kind == "pytorch" and checkpoint is None:
            missing[kind] = "needs a checkpoint"
            continue
        try:
            built.append(create_backend(kind, checkpoint=checkpoint, onnx_path=onnx_path, **kwargs))
        except BackendUnavailable as exc:
            missing[kind] = str(exc)
    return built, missing


def default_cache_dir() -> Path:
    """``$KP3D_CACHE`` or ``~/.cache/kp3d``: exported ONNX files and TensorRT engines (never committed)."""
    return Path(os.environ.get("KP3D_CACHE", Path.home() / ".cache" / "kp3d"))


def _cached_onnx(checkpoint, cache_dir) -> Path:
    from .export import ensure_onnx

    return ensure_onnx(checkpoint, cache_dir or default_cache_dir())
