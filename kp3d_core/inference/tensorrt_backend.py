"""TensorRT backend through its Python API (TensorRT 10 / 11), built from the exported ONNX file.

Engines are not portable across TensorRT versions or GPUs, so a built engine is cached under a key of
TensorRT version, GPU name, the ONNX file's sha256 and the precision; a changed key means a new build
(first builds take minutes). Reduced precision: TensorRT 10 takes ``BuilderFlag.FP16`` on a float32
network; TensorRT 11 removed that flag, so reduced precision must come from the ONNX itself (e.g. ModelOpt
AutoCast) and is built as a strongly typed network. A reduced-precision ONNX is built strongly typed on
both. Buffers are torch CUDA tensors (no pycuda dependency).

TensorRT is not installable on the project's CI machines; everything here raises
:class:`BackendUnavailable` naming the missing package or device, and its tests skip with that reason.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from .interface import (
    INPUT_NAME,
    OUTPUT_NAMES,
    Backend,
    BackendUnavailable,
    ModelFileError,
    default_cache_dir,
    file_sha256,
    onnx_model_info,
)

MAX_BATCH = 16  # optimisation profile upper bound: one crop per camera
OPT_BATCH = 4
WORKSPACE_BYTES = 1 << 30


def check_tensorrt_available():
    """Import tensorrt and check for a CUDA GPU; :class:`BackendUnavailable` says which is missing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailable(f"tensorrt: Python package 'tensorrt' is not installed ({exc})") from None
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("tensorrt: no CUDA GPU visible (torch.cuda.is_available() is False)")
    return trt


def engine_key(onnx_path: str | os.PathLike, precision: str) -> dict:
    """The fields an engine depends on: TensorRT version, GPU name, ONNX sha256, precision."""
    import torch

    trt = check_tensorrt_available()
    return {
        "tensorrt": trt.__version__,
        "gpu": torch.cuda.get_device_name(),
        "onnx_sha256": file_sha256(onnx_path),
        "precision": precision,
    }


def _key_name(key: dict) -> str:
    raw = f"trt{key['tensorrt']}-{key['gpu']}-{key['onnx_sha256'][:16]}-{key['precision']}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def _onnx_is_reduced_precision(onnx_path) -> bool:
    import onnx

    model = onnx.load(str(onnx_path))
    low = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    return any(t.data_type in low for t in model.graph.initializer)


def build_engine(
    onnx_path: str | os.PathLike, out_path: str | os.PathLike, precision: str = "fp32", max_batch: int = MAX_BATCH
) -> Path:
    """Build a serialized engine from the ONNX file; writes ``out_path`` and ``out_path.json`` (its key)."""
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"tensorrt: precision must be 'fp32' or 'fp16', got {precision!r}")
    trt = check_tensorrt_available()
    info = onnx_model_info(onnx_path)
    key = engine_key(onnx_path, precision)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    reduced = _onnx_is_reduced_precision(onnx_path)
    flags = 0
    config = builder.create_builder_config()
    if reduced and major < 11:
        # TensorRT 10: opt in to strong typing so the ONNX's own fp16/bf16 types are obeyed
        # (TensorRT 11: always strongly typed; the flag is deprecated and ignored).
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    elif precision == "fp16" and not reduced:
        if major >= 11 or not hasattr(trt.BuilderFlag, "FP16"):
            raise ValueError(
                f"tensorrt {trt.__version__} removed BuilderFlag.FP16: reduced precision must come from the ONNX "
                f"model (e.g. ModelOpt AutoCast), but '{onnx_path}' holds float32 weights; use precision fp32 "
                "or build from a reduced-precision ONNX"
            )
        config.set_flag(trt.BuilderFlag.FP16)  # TensorRT 10 weak typing: fp16 kernels where faster
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"ONNX model '{onnx_path}': TensorRT parser failed: {errors}")
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    s = info.crop_size
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (1, 3, s, s), (min(OPT_BATCH, max_batch), 3, s, s), (max_batch, 3, s, s))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ModelFileError(f"ONNX model '{onnx_path}': TensorRT engine build failed (see the log above)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    tmp.write_bytes(bytes(serialized))
    os.replace(tmp, out_path)
    Path(str(out_path) + ".json").write_text(json.dumps({**key, "max_batch": max_batch}))
    return out_path


def cached_engine(onnx_path, cache_dir=None, precision: str = "fp32") -> Path:
    """The engine for this ONNX file, TensorRT version, GPU and precision; built when not cached."""
    key = engine_key(onnx_path, precision)
    path = Path(cache_dir or default_cache_dir()) / f"{_key_name(key)}.engine"
    sidecar = Path(str(path) + ".json")
    if path.is_file() and sidecar.is_file():
        stored = json.loads(sidecar.read_text())
        if all(stored.get(k) == v for k, v in key.items()):
            return path
    return build_engine(onnx_path, path, precision)


class TensorRTBackend(Backend):
    """Runs a cached TensorRT engine on torch CUDA buffers (batches above the profile are chunked)."""

    def __init__(self, onnx_path, cache_dir=None, precision: str = "fp32"):
        import torch

        trt = check_tensorrt_available()
        self._torch = torch
        self.info = onnx_model_info(onnx_path)
        self.engine_path = cached_engine(onnx_path, cache_dir, precision)
        self.max_batch = int(json.loads(Path(str(self.engine_path) + ".json").read_text()).get("max_batch", MAX_BATCH))
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise ModelFileError(
                f"TensorRT engine '{self.engine_path}': cannot be deserialized by tensorrt {trt.__version__}; "
                "delete it to rebuild"
            )
        self.context = self.engine.create_execution_context()
        self._dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        if sorted(names) != sorted([INPUT_NAME, *OUTPUT_NAMES]):
            raise ModelFileError(f"TensorRT engine '{self.engine_path}': unexpected I/O tensors {names}")
        self.device = torch.device("cuda")
        self.name = "tensorrt"

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [self._run_chunk(crops[i:i + self.max_batch]) for i in range(0, len(crops), self.max_batch)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _run_chunk(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(crops).to(self.device, self._dtypes[self.engine.get_tensor_dtype(INPUT_NAME)])
        self.context.set_input_shape(INPUT_NAME, tuple(x.shape))
        self.context.set_tensor_address(INPUT_NAME, x.data_ptr())
        outputs = []
        for name in OUTPUT_NAMES:
            shape = tuple(self.context.get_tensor_shape(name))
            out = torch.empty(shape, dtype=self._dtypes[self.engine.get_tensor_dtype(name)], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT engine '{self.engine_path}': execute_async_v3 failed")
        stream.synchronize()
        return outputs[0].float().cpu().numpy(), outputs[1].float().cpu().numpy()
