"""Backends behind one interface: ONNX Runtime against the PyTorch reference, auto selection, faults."""
import os

import numpy as np
import onnx
import pytest
import torch

from kp3d_core.config import ModelConfig
from kp3d_core.inference.backends import available_backends, create_backend
from kp3d_core.inference.export import export_onnx
from kp3d_core.inference.interface import BackendUnavailable, ModelFileError, default_threads
from kp3d_core.inference.onnx_backend import OnnxRuntimeBackend
from kp3d_core.inference.torch_backend import TorchBackend, model_info
from kp3d_core.models import KeypointNet


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A real, randomly initialised KeypointNet and its ONNX export."""
    torch.manual_seed(0)
    net = KeypointNet(ModelConfig(crop_size=32, num_keypoints=6, width=8)).eval()
    info = model_info(net)
    path = export_onnx(net, info, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return net, info, path


def crops(n, s=32, seed=0):
    return np.random.default_rng(seed).random((n, 3, s, s), dtype=np.float32)


def test_onnxruntime_matches_pytorch(tiny):
    net, info, path = tiny
    ort_b, ref = OnnxRuntimeBackend(path), TorchBackend(net, info)
    assert ort_b.name == "onnxruntime-cpu" and ref.name == "pytorch-cpu"
    assert ort_b.info.num_keypoints == 6 and ort_b.info.crop_size == 32
    for n in (1, 4, 8):
        x = crops(n, seed=n)
        kp_o, c_o = ort_b.run(x)
        kp_t, c_t = ref.run(x)
        assert kp_o.dtype == np.float32 and kp_o.shape == (n, 6, 2) and c_o.shape == (n, 6)
        assert np.abs(kp_o - kp_t).max() < 1e-3  # pixels
        assert np.abs(c_o - c_t).max() < 1e-4
        assert ((c_o > 0) & (c_o <= 1)).all()
    kp, conf = ort_b.run(np.zeros((0, 3, 32, 32), np.float32))  # no person in any view
    assert kp.shape == (0, 6, 2) and conf.shape == (0, 6)


def test_bad_crops_are_rejected_with_the_backend_name(tiny):
    _, _, path = tiny
    b = OnnxRuntimeBackend(path)
    with pytest.raises(ValueError, match=r"onnxruntime-cpu: crops must have shape \(N, 3, 32, 32\)"):
        b.run(np.zeros((2, 3, 64, 64), np.float32))
    with pytest.raises(TypeError, match="float32"):
        b.run(np.zeros((2, 3, 32, 32), np.float64))


def test_corrupt_or_foreign_onnx_names_the_file(tiny, tmp_path):
    _, _, path = tiny
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelFileError, match="corrupt.onnx"):
        OnnxRuntimeBackend(corrupt)
    with pytest.raises(ModelFileError, match="nothere.onnx"):
        OnnxRuntimeBackend(tmp_path / "nothere.onnx")
    foreign = onnx.load(str(path))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelFileError, match="foreign.onnx.*kp3d export"):
        OnnxRuntimeBackend(tmp_path / "foreign.onnx")
    # metadata that does not match the graph (crop size) is a mismatch, not a silent wrong answer
    lying = onnx.load(str(path))
    for p in lying.metadata_props:
        if p.key == "kp3d.crop_size":
            p.value = "64"
    onnx.save(lying, str(tmp_path / "lying.onnx"))
    with pytest.raises(ModelFileError, match="lying.onnx.*crop_size"):
        OnnxRuntimeBackend(tmp_path / "lying.onnx")
    # auto must raise a file fault, not skip to another backend
    with pytest.raises(ModelFileError, match="corrupt.onnx"):
        create_backend("auto", onnx_path=corrupt)


def test_auto_selection_order_and_unavailable_reasons(tiny):
    _, _, path = tiny
    import onnxruntime as ort

    has_cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
    b = create_backend("auto", onnx_path=path)
    try:
        import tensorrt  # noqa: F401
        has_trt = torch.cuda.is_available()
    except ImportError:
        has_trt = False
    expected = "tensorrt" if has_trt else ("onnxruntime-cuda" if has_cuda_ep else "onnxruntime-cpu")
    assert b.name == expected
    assert create_backend("onnxruntime", onnx_path=path).name.startswith("onnxruntime-")
    built, missing = available_backends(onnx_path=path)
    assert "onnxruntime-cpu" in [x.name for x in built]
    assert missing["pytorch"] == "needs a checkpoint"
    if not has_trt:
        assert "tensorrt" in missing["tensorrt"]
        with pytest.raises(BackendUnavailable, match="tensorrt"):
            create_backend("tensorrt", onnx_path=path)
    if not has_cuda_ep:
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
            create_backend("onnxruntime-cuda", onnx_path=path)
    with pytest.raises(ValueError, match="backend must be one of"):
        create_backend("openvino", onnx_path=path)
    with pytest.raises(ValueError, match="checkpoint or an onnx_path"):
        create_backend("auto")


@pytest.mark.parametrize("cpus, expected", [(None, 1), (1, 1), (2, 1), (3, 2), (8, 4), (64, 4)])
def test_threads_leave_a_core_to_the_rest_of_the_node(monkeypatch, cpus, expected):
    monkeypatch.delenv("KP3D_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert default_threads() == expected
    monkeypatch.setenv("KP3D_THREADS", "3")
    assert default_threads() == 3


def _tensorrt_skip_reason():
    try:
        from kp3d_core.inference.tensorrt_backend import check_tensorrt_available

        check_tensorrt_available()
    except BackendUnavailable as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_tensorrt_skip_reason() is not None, reason=str(_tensorrt_skip_reason()))
def test_tensorrt_matches_pytorch_and_caches_by_key(tiny, tmp_path):
    from kp3d_core.inference.tensorrt_backend import TensorRTBackend, engine_key

    net, info, path = tiny
    trt_b = TensorRTBackend(path, cache_dir=tmp_path)
    ref = TorchBackend(net, info, device="cuda")
    x = crops(4)
    kp_r, _ = trt_b.run(x)
    kp_t, _ = ref.run(x)
    assert np.abs(kp_r - kp_t).max() < 0.05  # TF32 convolutions
    engines = list(tmp_path.glob("*.engine"))
    assert len(engines) == 1 and engine_key(path, "fp32")["onnx_sha256"][:16] in engines[0].name
    mtime = engines[0].stat().st_mtime_ns
    TensorRTBackend(path, cache_dir=tmp_path)  # same key: reused, not rebuilt
    assert engines[0].stat().st_mtime_ns == mtime
    assert os.path.isfile(str(engines[0]) + ".json")


def test_bench_inference_prints_side_by_side_json_lines(tmp_path, capsys):
    import argparse
    import json

    from test_export import tiny_checkpoint

    from kp3d_core.bench import inference as bench

    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--checkpoint", str(ckpt), "--views", "1", "2", "--width", "160", "--height", "120",
                              "--frames", "3", "--warmup", "1"])
    assert bench.main(args) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert {(r["backend"], r["views"]) for r in rows} == {(b, v) for b in ("onnxruntime-cpu", "pytorch-cpu") for v in (1, 2)}
    for r in rows:
        for key in ("preprocess_ms", "network_ms", "set_ms"):
            assert 0 < r[key]["p50"] <= r[key]["p95"]
    assert summary["summary"] and set(summary["ort_vs_pytorch_ratio"]) == {"1", "2"}
    assert "tensorrt" in summary["unavailable"] or "tensorrt" in summary["backends"]
