"""``kp3d export``: checkpoint -> ONNX (opset 17, dynamic batch, soft-argmax in the graph) [-> TensorRT engine].

The ONNX graph maps ``crops (N, 3, S, S) float32 RGB [0, 1]`` to ``keypoints (N, K, 2)`` crop pixels and
``confidence (N, K)``, the same as the PyTorch model. Its ``metadata_props`` carry ``kp3d.num_keypoints``,
``kp3d.crop_size`` and ``kp3d.model_sha256`` (sha256 of the checkpoint file) so that a backend can
check that a file matches what it is given. After writing, the file is checked with ``onnx.checker``
and compared with PyTorch on random crops through ONNX Runtime.

Example::

    kp3d export --onnx out/model.onnx                          # the shipped model
    kp3d export --checkpoint out/runs/mine/ckpt.pt --onnx out/mine.onnx
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from ..checkpoint import shipped_model_path
from ..cli_args import UsageError, positive_int
from .interface import (
    INPUT_NAME,
    OUTPUT_NAMES,
    BackendUnavailable,
    ModelFileError,
    ModelInfo,
    file_sha256,
    onnx_model_info,
)
from .onnx_backend import OnnxRuntimeBackend
from .tensorrt_backend import build_engine
from .torch_backend import TorchBackend, load_model

OPSET = 17
METADATA_VERSION = "1"


def export_onnx(model, info: ModelInfo, out_path: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write ``model`` as ONNX with dynamic batch and kp3d metadata; checked with onnx.checker.

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    if opset < 17:
        raise ValueError(f"opset must be 17 or newer, got {opset}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.rand(2, 3, info.crop_size, info.crop_size)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript
            # (not installed); it still produces a standard opset-17 graph.
            warnings.simplefilter("ignore", DeprecationWarning)
            # GroupNorm's batch-size guard is traced as a constant; harmless for N >= 1
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(
                model, (dummy,), tmp, dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
            )
        proto = onnx.load(tmp)
        for key, value in {
            "kp3d.format_version": METADATA_VERSION,
            "kp3d.num_keypoints": str(info.num_keypoints),
            "kp3d.crop_size": str(info.crop_size),
            "kp3d.model_sha256": info.model_sha256,
        }.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "kp3d"
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the export is an ordinary file
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_path


def verify_onnx(model, onnx_path: str | os.PathLike, batch: int = 3, seed: int = 0) -> dict:
    """Run PyTorch and ONNX Runtime on the same random crops: max abs differences (px, confidence)."""
    ort_backend = OnnxRuntimeBackend(onnx_path)
    ref = TorchBackend(model, ort_backend.info)
    s = ort_backend.info.crop_size
    crops = np.random.default_rng(seed).random((batch, 3, s, s), dtype=np.float32)
    kp_t, conf_t = ref.run(crops)
    kp_o, conf_o = ort_backend.run(crops)
    return {
        "max_keypoint_diff_px": float(np.abs(kp_t - kp_o).max()),
        "max_confidence_diff": float(np.abs(conf_t - conf_o).max()),
    }


def ensure_onnx(checkpoint: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """The ONNX export of ``checkpoint`` in ``cache_dir``, exported once per checkpoint content."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ModelFileError(f"checkpoint '{path}': file not found")
    sha = file_sha256(path)
    out = Path(cache_dir) / f"kp3d-{sha[:16]}.onnx"
    if out.is_file():
        try:
            if onnx_model_info(out).model_sha256 == sha:
                return out
        except ModelFileError:
            pass  # a damaged cache entry is simply rebuilt
    model, info = load_model(path)
    return export_onnx(model, info, out)


# ------------------------------------------------------------------------------------------- CLI
def opset_arg(text: str) -> int:
    """``--opset``: an ONNX opset of at least :data:`OPSET`."""
    value = positive_int(text)
    if value < OPSET:
        raise argparse.ArgumentTypeError(f"must be {OPSET} or newer, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="kp3d checkpoint (.pt) holding the keypoint network "
                        "(default: the shipped model kp3d_core/assets/model.pt)")
    parser.add_argument("--onnx", required=True, help="output ONNX file")
    parser.add_argument("--engine", default=None, help="also build a TensorRT engine here (needs tensorrt + a GPU)")
    parser.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                        help="TensorRT precision (fp16 on TensorRT 11 needs a reduced-precision ONNX)")
    parser.add_argument("--opset", type=opset_arg, default=OPSET, help=f"ONNX opset (>= {OPSET}, default {OPSET})")
    parser.add_argument("--no-verify", action="store_true", help="skip the PyTorch vs ONNX Runtime comparison")


def main(args: argparse.Namespace) -> int:
    model, info = load_model(args.checkpoint or shipped_model_path())
    out = export_onnx(model, info, args.onnx, opset=args.opset)
    report = {"onnx": str(out), "opset": args.opset, "num_keypoints": info.num_keypoints,
              "crop_size": info.crop_size, "model_sha256": info.model_sha256}
    if not args.no_verify:
        report.update(verify_onnx(model, out))
    if args.engine:
        try:
            report["engine"] = str(build_engine(out, args.engine, precision=args.precision))
        except BackendUnavailable as exc:
            raise BackendUnavailable(f"TensorRT engine {args.engine} not built ({out} was written): {exc}") from None
        except ValueError as exc:  # build_engine's only ValueErrors: a --precision this TensorRT cannot build
            raise UsageError(f"--precision {args.precision}: {exc}") from None
    print(json.dumps(report))
    return 0
