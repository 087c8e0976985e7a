"""Choosing and building an inference backend by name.

``create_backend("auto", ...)`` picks the fastest one available, in the order TensorRT > ONNX Runtime (CUDA) >
ONNX Runtime (CPU) > PyTorch. PyTorch is the reference; ONNX Runtime and TensorRT run the exported ONNX graph
(soft-argmax included) and are tested against it (the contract: :mod:`kp3d_core.inference.interface`).

Example::

    backend = create_backend("auto", checkpoint="kp3d_core/assets/model.pt")
    kp, conf = backend.run(crops)
"""
from __future__ import annotations

import os

import torch

from .export import ensure_onnx
from .interface import Backend, BackendUnavailable, default_cache_dir
from .onnx_backend import OnnxRuntimeBackend
from .tensorrt_backend import TensorRTBackend, check_tensorrt_available
from .torch_backend import TorchBackend, load_model

BACKEND_KINDS = ("auto", "tensorrt", "onnxruntime", "onnxruntime-cuda", "onnxruntime-cpu", "pytorch", "torch")
# auto tries these in order; "onnxruntime" tries the CUDA then the CPU provider; "torch" = "pytorch"
AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu", "pytorch")


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
        check_tensorrt_available()
    path = onnx_path if onnx_path is not None else ensure_onnx(checkpoint, engine_cache_dir or default_cache_dir())
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
