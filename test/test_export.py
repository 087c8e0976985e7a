"""ONNX export: opset, dynamic batch, soft-argmax in the graph, metadata, agreement with PyTorch, faults."""
import json

import numpy as np
import onnx
import pytest
import torch

from kp3d_core.checkpoint import save_checkpoint
from kp3d_core.config import Config, ModelConfig, config_to_dict
from kp3d_core.inference import export
from kp3d_core.inference.interface import ModelFileError
from kp3d_core.inference.onnx_backend import OnnxRuntimeBackend
from kp3d_core.inference.torch_backend import TorchBackend
from kp3d_core.models import KeypointNet

TINY = ModelConfig(crop_size=32, num_keypoints=6, width=8)


def tiny_checkpoint(path, seed=0):
    """A real (randomly initialised) KeypointNet saved as a kp3d training checkpoint."""
    torch.manual_seed(seed)
    cfg = Config(model=TINY)
    net = KeypointNet(cfg.model)
    state = {f"keypoint_net.{k}": v for k, v in net.state_dict().items()}
    save_checkpoint(path, {"config": config_to_dict(cfg), "model": state})
    return path


def run_cli(argv):
    """``kp3d export ARGV`` in this process (its errors: one line on stderr, exit code 2)."""
    from kp3d_ros.cli import main

    return main(["export", *argv])


def test_export_graph_metadata_and_agreement(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "m.onnx"
    assert run_cli(["--checkpoint", str(ckpt), "--onnx", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["max_keypoint_diff_px"] < 1e-3 and report["max_confidence_diff"] < 1e-4

    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["kp3d.num_keypoints"] == "6" and meta["kp3d.crop_size"] == "32"
    assert meta["kp3d.model_sha256"] == export.file_sha256(ckpt)
    # batch axis is symbolic, spatial axes fixed; both outputs present
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert [o.name for o in proto.graph.output] == ["keypoints", "confidence"]
    # the soft-argmax is inside the graph
    assert "Softmax" in {n.op_type for n in proto.graph.node}

    model, info = export.load_model(ckpt)
    ort_b, ref = OnnxRuntimeBackend(out), TorchBackend(model, info)
    for n in (1, 5):  # dynamic batch
        crops = np.random.default_rng(n).random((n, 3, 32, 32), dtype=np.float32)
        (kp_o, c_o), (kp_t, c_t) = ort_b.run(crops), ref.run(crops)
        assert kp_o.shape == (n, 6, 2) and c_o.shape == (n, 6)
        np.testing.assert_allclose(kp_o, kp_t, atol=1e-3)
        np.testing.assert_allclose(c_o, c_t, atol=1e-4)
        assert ((kp_o >= -0.5) & (kp_o <= 31.5)).all()  # soft-argmax keeps points in the crop


def test_export_defaults_to_the_shipped_model(tmp_path, capsys):
    from kp3d_core.checkpoint import shipped_model_path

    assert run_cli(["--onnx", str(tmp_path / "shipped.onnx"), "--no-verify"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model_sha256"] == export.file_sha256(shipped_model_path())
    assert OnnxRuntimeBackend(tmp_path / "shipped.onnx").info.model_sha256 == report["model_sha256"]


def test_export_rejects_corrupt_checkpoint_and_low_opset(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert run_cli(["--checkpoint", str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kp3d export: error: ") and "bad.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ModelFileError, match="missing.pt"):
        export.load_model(tmp_path / "missing.pt")
    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    model, info = export.load_model(ckpt)
    with pytest.raises(ValueError, match="opset"):
        export.export_onnx(model, info, tmp_path / "y.onnx", opset=13)
    with pytest.raises(SystemExit) as exit_:                 # on the command line: a usage error
        run_cli(["--checkpoint", str(ckpt), "--onnx", str(tmp_path / "y.onnx"), "--opset", "13"])
    assert exit_.value.code == 2 and "--opset: must be 17 or newer" in capsys.readouterr().err


def test_engine_without_tensorrt_is_a_clear_error(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here; the engine path is tested in test_backends")
    except ImportError:
        pass
    ckpt = tiny_checkpoint(tmp_path / "m.pt")
    rc = run_cli(["--checkpoint", str(ckpt), "--onnx", str(tmp_path / "m.onnx"), "--engine", str(tmp_path / "m.engine")])
    err = capsys.readouterr().err
    assert rc == 2 and "tensorrt" in err and "m.engine" in err and (tmp_path / "m.onnx").is_file()
    assert not (tmp_path / "m.engine").exists()


def test_ensure_onnx_caches_by_checkpoint_content(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "m.pt", seed=0)
    first = export.ensure_onnx(ckpt, tmp_path / "cache")
    mtime = first.stat().st_mtime_ns
    assert export.ensure_onnx(ckpt, tmp_path / "cache") == first and first.stat().st_mtime_ns == mtime
    tiny_checkpoint(ckpt, seed=1)  # new weights, same path -> new export
    second = export.ensure_onnx(ckpt, tmp_path / "cache")
    assert second != first and second.is_file()
