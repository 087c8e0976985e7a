"""``kp3d adapt``: label-free fine-tuning on a recording, keeping the keypoints' identities and the mapping.

A tiny studio recording (3 cameras, 320x240, 30 frames, with its bag) is rendered once per module, and a tiny model
(32 px crops, 8 keypoints, the temporal term and the background swap on, as the shipped recipe has them) trained
on it for one step, with a hand-made linear mapping standing in for a fitted one. Adaptation runs a few steps
through the real ``kp3d`` command (in process).
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from kp3d_core import train as train_module
from kp3d_core.adapt import DEFAULT_MINUTES, UNBOUNDED_STEPS, Recording, adapt_config
from kp3d_core.checkpoint import load_checkpoint, save_checkpoint, shipped_model_path
from kp3d_core.config import config_from_dict, config_to_dict, load_config
from kp3d_core.data.studio import StudioFolder
from kp3d_core.inference.estimator import MultiViewEstimator
from kp3d_core.inference.onnx_backend import OnnxRuntimeBackend
from kp3d_core.inference.torch_backend import TorchBackend, load_model
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.rig import load_rig, ring_rig, save_rig
from kp3d_core.skeleton import NUM_JOINTS

K = 8


@pytest.fixture
def kp3d():
    """The kp3d command, in this process."""
    from kp3d_ros import cli

    return cli.main


def linear_mapping(num_keypoints: int, seed: int = 0) -> dict:
    """A mapping entry of the stored layout (kp3d_core.models.mapping): a fixed random linear map."""
    g = torch.Generator().manual_seed(seed)
    entry = {"kind": "linear", "num_keypoints": num_keypoints, "root": -1, "up": [0.0, 0.0, 1.0],
             "weight": 0.1 * torch.randn(3 * num_keypoints, 3 * NUM_JOINTS, generator=g),
             "bias": torch.zeros(3 * NUM_JOINTS)}
    return {"default": "linear", "models": {"linear": entry}, "fraction": 0.1, "num_frames": 3}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(folder, tiny checkpoint with a mapping): the rendered recording (bag/, rig.yaml, backgrounds/) and the model."""
    from kp3d_ros.cli import main

    root = tmp_path_factory.mktemp("adapt")
    save_rig(ring_rig(3, width=320, height=240), root / "rig.yaml")
    rec = root / "rec"
    assert main(["synth", "--rig", str(root / "rig.yaml"), "--frames", "30", "--out", str(rec), "--bag",
                 "--no-progress"]) == 0
    cfg = config_from_dict({
        "model": {"crop_size": 32, "num_keypoints": K, "width": 8, "decoder_width": 16},
        "loss": {"temporal": 1.0, "temporal_order": 1, "temporal_offset": 1},
        "data": {"source": "studio", "path": str(rec), "augment": {"background_swap": 1.0}},
        "train": {"out_dir": str(root / "src"), "steps": 1, "batch_size": 2, "warmup_steps": 1, "preview_every": 0,
                  "tensorboard": False, "threads": 1},
    })
    ckpt = load_checkpoint(train_module.train(cfg))
    model = root / "tiny.pt"
    save_checkpoint(model, {"config": ckpt["config"], "model": ckpt["model"], "step": ckpt["step"],
                            "samples": ckpt["samples"], "elapsed_s": ckpt["elapsed_s"], "mapping": linear_mapping(K)})
    return rec, model


def adapt_args(rec, model, out, *extra) -> list[str]:
    return ["adapt", "--bag", str(rec / "bag"), "--rig", str(rec / "rig.yaml"), "--checkpoint", str(model),
            "--out", str(out), "--check-frames", "0", *extra]


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ config
def test_the_run_config_is_the_source_recipe_plus_the_recording_and_the_teacher(tmp_path):
    source = load_checkpoint(shipped_model_path())
    bag = Recording(bag=tmp_path / "take1", rig=tmp_path / "rig.yaml")
    cfg = adapt_config(source, shipped_model_path(), bag, tmp_path / "out")
    shipped = config_from_dict(source["config"])
    assert cfg.model == shipped.model
    assert cfg.data.augment == shipped.data.augment and cfg.train.batch_size == shipped.train.batch_size
    assert {**vars(cfg.loss), "distill": 0.0} == vars(shipped.loss)  # the same unsupervised losses, plus distill
    assert cfg.loss.distill > 0 and cfg.train.lr < shipped.train.lr
    assert cfg.train.init_from == str(shipped_model_path().resolve())
    assert (cfg.data.source, cfg.data.path, cfg.data.rig, cfg.data.val_path) == ("bag", str(tmp_path / "take1"),
                                                                                 str(tmp_path / "rig.yaml"), "")
    assert cfg.train.max_minutes == DEFAULT_MINUTES and cfg.train.steps == UNBOUNDED_STEPS
    steps = adapt_config(source, shipped_model_path(), bag, tmp_path / "out", steps=50, lr=1e-4, distill=0.0)
    assert (steps.train.steps, steps.train.max_minutes, steps.train.lr, steps.loss.distill) == (50, 0.0, 1e-4, 0.0)
    both = adapt_config(source, shipped_model_path(), bag, tmp_path / "out", steps=50, minutes=2.0)
    assert (both.train.steps, both.train.max_minutes) == (50, 2.0)
    folder = adapt_config(source, shipped_model_path(), Recording(data=tmp_path / "split"), tmp_path / "out")
    assert (folder.data.source, folder.data.path, folder.data.rig) == ("studio", str(tmp_path / "split"), "")


# ------------------------------------------------------------------------------------------ distillation
def _distill(model, teacher, batch, cfg) -> tuple[float, torch.Tensor]:
    total, terms, _ = train_module.compute_losses(model, batch, cfg, teacher)
    return terms["distill"], total


def test_distillation_is_zero_at_the_start_and_grows_as_the_student_moves(tmp_path):
    cfg = load_config("training/configs/tiny.yaml")
    torch.manual_seed(0)
    source = DiscoveryModel(cfg.model)
    save_checkpoint(tmp_path / "src.pt", {"config": config_to_dict(cfg), "model": source.state_dict()})
    cfg.train.init_from, cfg.loss.distill = str(tmp_path / "src.pt"), 1.0
    model, _ = train_module.build_model(cfg, torch.device("cpu"))
    train_module.start_from(cfg.train.init_from, cfg, model)
    teacher = train_module.build_teacher(cfg, torch.device("cpu"))
    assert not any(p.requires_grad for p in teacher.parameters())
    ds = train_module.build_dataset(cfg)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    batch["encoder_image"] = batch["image"].flip(-1)  # an augmented view: the teacher must see the same crops

    start, _ = _distill(model, teacher, batch, cfg)
    assert start < 1e-6
    moved = []
    for scale in (0.02, 0.2):
        with torch.no_grad():
            model.keypoint_net.head.weight.copy_(teacher.head.weight + scale * torch.randn_like(teacher.head.weight))
        value, total = _distill(model, teacher, batch, cfg)
        moved.append(value)
    assert 1e-4 < moved[0] < moved[1]
    total.backward()  # the term pulls the student (and only the student)
    assert model.keypoint_net.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


# ------------------------------------------------------------------------------------------ end to end
def test_adapt_keeps_the_mapping_and_the_node_gets_a_pose(recording, tmp_path, kp3d, capsys):
    rec, model = recording
    out = tmp_path / "out"
    argv = adapt_args(rec, model, out, "--steps", "3", "--check-frames", "12", "--backgrounds", str(rec / "backgrounds"))
    assert kp3d(argv) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["mapping"] is True
    assert summary["onnx_vs_pytorch"]["max_keypoint_diff_px"] < 1e-3

    source, ck = load_checkpoint(model), torch.load(out / "ckpt.pt", weights_only=True)
    assert ck["step"] == 3 and "optimizer" in ck
    for name, entry in source["mapping"]["models"].items():  # carried unchanged
        for key, value in entry.items():
            same = torch.equal(value, ck["mapping"]["models"][name][key]) if torch.is_tensor(value) else \
                value == ck["mapping"]["models"][name][key]
            assert same, key
    assert ck["adapted_from"]["checkpoint"] == str(model)
    assert ck["config"]["train"]["init_from"] == str(model.resolve()) and ck["config"]["loss"]["distill"] > 0
    assert ck["config"]["data"]["backgrounds"] == str(rec / "backgrounds")  # the training crops used them too
    moved = [not torch.equal(v, source["model"][k]) for k, v in ck["model"].items() if k.startswith("keypoint_net.")]
    assert any(moved)

    # the run-time estimator (what the node runs) loads it with its mapping and gives a named pose
    rig = load_rig(rec / "rig.yaml")
    folder = StudioFolder(rec)
    backgrounds = [cv2.cvtColor(cv2.imread(str(rec / "backgrounds" / f"{c}.png")), cv2.COLOR_BGR2RGB)
                   for c in rig.names]
    est = MultiViewEstimator.load(out / "ckpt.pt", rig, backend="pytorch", backgrounds=backgrounds,
                                  max_reprojection_error=None)
    assert est.mapping is not None
    images = dict(zip(rig.names, folder.read_images(10)))
    pose = est.process(images, 0).pose
    assert pose is not None and pose.shape == (NUM_JOINTS, 3) and np.isfinite(pose).all()

    # the ONNX file: ONNX Runtime agrees with PyTorch
    ort = OnnxRuntimeBackend(out / "model.onnx")
    assert ort.info.num_keypoints == K and ort.info.crop_size == 32
    net, info = load_model(out / "ckpt.pt")
    crops = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    (kp_t, conf_t), (kp_o, conf_o) = TorchBackend(net, info).run(crops), ort.run(crops)
    np.testing.assert_allclose(kp_o, kp_t, atol=1e-3)
    np.testing.assert_allclose(conf_o, conf_t, atol=1e-5)

    # the before/after picture and the label-free figures, both models on the same frames
    assert (out / "before_after.png").stat().st_size > 10_000
    saved = json.loads((out / "adapt.json").read_text())
    assert set(saved["figures"]) == {"before", "after"}
    assert saved["figures"]["before"].keys() == saved["figures"]["after"].keys()
    assert saved["figures"]["after"]["frames with a pose"] is not None


def test_resume_continues_the_run_and_a_second_run_refuses_to_overwrite(recording, tmp_path, kp3d, capsys):
    rec, model = recording
    out = tmp_path / "out"
    assert kp3d(adapt_args(rec, model, out, "--steps", "2")) == 0
    first = load_checkpoint(out / "ckpt.pt")
    capsys.readouterr()
    assert kp3d(adapt_args(rec, model, out, "--steps", "4")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ckpt.pt" in err and "--resume" in err
    assert kp3d(adapt_args(rec, model, out, "--steps", "4", "--resume")) == 0
    ck = load_checkpoint(out / "ckpt.pt")
    assert ck["step"] == 4 and ck["samples"] == 2 * first["samples"]
    assert int(ck["optimizer"]["state"][0]["step"]) == 4  # the optimiser continued
    assert ck["elapsed_s"] > first["elapsed_s"] and ck["mapping"]["default"] == "linear"


# ------------------------------------------------------------------------------------------ bad input
BAD = {
    "missing-bag": (lambda rec, m, t: ["--bag", str(t / "nowhere"), "--rig", str(rec / "rig.yaml")], "nowhere"),
    "missing-rig": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(t / "norig.yaml")], "norig.yaml"),
    "bag-without-rig": (lambda rec, m, t: ["--bag", str(rec / "bag")], "--rig"),
    "malformed-rig": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(t / "bad_rig.yaml")], "image_height"),
    "rig-lacks-a-camera": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(t / "two.yaml")], "cam2"),
    "corrupt-checkpoint": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(rec / "rig.yaml"),
                                              "--checkpoint", str(t / "corrupt.pt")], "corrupt.pt"),
    "missing-checkpoint": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(rec / "rig.yaml"),
                                              "--checkpoint", str(t / "none.pt")], "none.pt"),
    "not-a-studio-folder": (lambda rec, m, t: ["--data", str(t / "split")], "split"),
    "negative-distill": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(rec / "rig.yaml"),
                                            "--distill", "-1"], "--distill"),
    "bag-and-data": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--data", str(rec)], "--data"),
    "missing-backgrounds": (lambda rec, m, t: ["--bag", str(rec / "bag"), "--rig", str(rec / "rig.yaml"),
                                               "--backgrounds", str(t / "nobg")], "nobg"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_the_culprit(case, recording, tmp_path, kp3d, capsys):
    rec, model = recording
    (tmp_path / "corrupt.pt").write_bytes(np.random.default_rng(0).bytes(512))
    (tmp_path / "bad_rig.yaml").write_text("cameras:\n  - camera_name: cam0\n    image_width: 320\n")
    rig = load_rig(rec / "rig.yaml")
    save_rig(type(rig)(rig.cameras[:2], rig.world_frame), tmp_path / "two.yaml")
    args, culprit = BAD[case]
    try:
        code = kp3d(["adapt", *args(rec, model, tmp_path), "--out", str(tmp_path / "out"), "--steps", "1"])
    except SystemExit as exc:  # argparse's own errors (one line too: kp3d_core.cli_args.CommandParser)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("kp3d adapt: error: "), err
    assert culprit in err, err
    assert not (tmp_path / "out" / "ckpt.pt").exists()
