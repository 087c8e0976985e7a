"""Configs, checkpoints, the training loop (unsupervised, supervised, resume, time budget), validation while
training, and a 2-process gloo DDP run."""
from __future__ import annotations

import dataclasses
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from kp3d_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from kp3d_core.config import Config, ConfigError, config_from_dict, config_to_dict, load_config
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.train import build_dataset, compute_losses, learning_rate, to_device, train, validate, validation_set

TINY = "training/configs/tiny.yaml"


def tiny_cfg(tmp_path, **train_overrides) -> Config:
    cfg = load_config(TINY)
    cfg.train.out_dir = str(tmp_path / "run")
    cfg.train.tensorboard = False
    for k, v in train_overrides.items():
        setattr(cfg.train, k, v)
    return cfg


@pytest.fixture(scope="module")
def studio_splits(tmp_path_factory):
    """Two tiny rendered studio folders (3 cameras, 6 frames, other seeds): a train and a val split."""
    from kp3d_ros.cli import main as kp3d

    root = tmp_path_factory.mktemp("studio")
    for split, seed in (("train", 0), ("val", 1)):
        assert kp3d(["synth", "--cameras", "3", "--frames", "6", "--seed", str(seed), "--out", str(root / split),
                     "--no-progress"]) == 0
    return root


def studio_cfg(root, out_dir, **train) -> Config:
    return config_from_dict({
        "model": {"crop_size": 32, "num_keypoints": 8, "width": 8, "decoder_width": 16},
        "data": {"source": "studio", "path": str(root / "train"), "val_path": str(root / "val")},
        "train": {"out_dir": str(out_dir), "batch_size": 2, "warmup_steps": 1, "preview_every": 0, "threads": 1,
                  "tensorboard": False, **train},
    })


# ---------------------------------------------------------------------------------------- config
def test_config_rejects_unknown_keys_and_wrong_types(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  num_keypoint: 16\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*model\.num_keypoint"):
        load_config(p)
    p.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"train\.lr"):
        load_config(p)
    p.write_text("data:\n  source: webcam\n")
    with pytest.raises(ConfigError, match=r"data\.source"):
        load_config(p)
    p.write_text("loss:\n  thin_kernel: 4\n")
    with pytest.raises(ConfigError, match=r"loss\.thin_kernel"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="num_keypoints"):
        config_from_dict({"train": {"supervised": True}, "model": {"num_keypoints": 32}})
    with pytest.raises(ConfigError, match=r"data\.val_path"):  # synthetic data has no validation split
        config_from_dict({"data": {"source": "synthetic", "val_path": "somewhere"}})
    with pytest.raises(ConfigError, match=r"train\.val_every"):
        config_from_dict({"train": {"val_every": 0}})
    cfg = load_config(TINY)
    assert cfg.model.crop_size == 32 and cfg.data.source == "synthetic" and cfg.train.lr == 1e-3
    assert config_from_dict(config_to_dict(cfg)) == cfg  # the dict stored in checkpoints round-trips


def test_every_shipped_config_loads():
    import glob

    paths = sorted(glob.glob("training/configs/*.yaml"))
    assert paths
    for p in paths:
        load_config(p)


def test_learning_rate_schedule():
    cfg = config_from_dict({"train": {"steps": 100, "warmup_steps": 10, "lr": 1e-3}})
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(100, cfg) == pytest.approx(1e-4)
    # a time budget: the decay follows whichever of steps and minutes is further along
    timed = config_from_dict({"train": {"steps": 10**6, "warmup_steps": 10, "lr": 1e-3, "max_minutes": 1.0}})
    assert learning_rate(20, timed, 30.0) == pytest.approx(0.55e-3)  # half the budget: half-way down the cosine
    assert learning_rate(20, timed, 60.0) == pytest.approx(1e-4)
    assert learning_rate(20, cfg, 1e9) == learning_rate(20, cfg)  # no budget: time plays no part


def test_time_budget_stops_training_and_resumes_with_the_rest(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=10**6, max_minutes=0.01, preview_every=0, checkpoint_every=10**6)
    ck = load_checkpoint(train(cfg))
    assert 0.6 <= ck["elapsed_s"] < 30 and 1 <= ck["step"] < 10**6
    cfg.train.max_minutes = 0.02
    ck2 = load_checkpoint(train(cfg, resume=True))
    assert ck2["step"] > ck["step"] and 1.2 <= ck2["elapsed_s"] < 30
    steps = ck2["step"]
    assert load_checkpoint(train(cfg, resume=True))["step"] == steps  # budget already spent: nothing more


# ------------------------------------------------------------------------------------ checkpoints
def test_checkpoint_atomic_weights_only_and_corrupt_files(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"config": {"name": "x"}, "model": {"w": torch.ones(2)}, "step": 3})
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    ck = load_checkpoint(path)
    assert ck["step"] == 3 and torch.equal(ck["model"]["w"], torch.ones(2))
    torch.load(path, weights_only=True)  # plain types and tensors only
    # truncated file
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        load_checkpoint(tmp_path / "trunc.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    # a pickled object that is not plain data is refused by weights_only
    torch.save({"format": "kp3d-checkpoint", "version": 1, "config": {}, "model": {}, "x": socket.AF_INET},
               tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="obj.pt"):
        load_checkpoint(tmp_path / "obj.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a kp3d checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")


# ----------------------------------------------------------------------------------------- train
def _fixed_loss(ckpt_path, cfg) -> float:
    ck = load_checkpoint(ckpt_path)
    model = DiscoveryModel(cfg.model)
    model.load_state_dict(ck["model"])
    ds = build_dataset(cfg)
    batch = to_device(torch.utils.data.default_collate([ds[i] for i in range(len(ds))]), torch.device("cpu"))
    torch.manual_seed(0)
    with torch.no_grad():
        return float(compute_losses(model, batch, cfg)[0])


def test_train_lowers_the_loss_writes_previews_and_resumes(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=1, preview_every=0)
    first = train(cfg)
    loss0 = _fixed_loss(first, cfg)
    cfg = tiny_cfg(tmp_path, steps=25, preview_every=10, checkpoint_every=10, tensorboard=True)
    path = train(cfg, resume=True)
    ck = load_checkpoint(path)
    assert ck["step"] == 25 and ck["samples"] == 25 * cfg.train.batch_size
    assert ck["config"]["model"] == config_to_dict(cfg)["model"]
    assert int(ck["optimizer"]["state"][0]["step"]) == 25  # the optimiser state continued, not restarted
    assert _fixed_loss(path, cfg) < loss0
    run = tmp_path / "run"
    assert (run / "previews" / "step_000010.png").is_file()
    assert any((run / "tb").iterdir())
    # a resumed run with another architecture refuses, naming the file
    cfg.model.num_keypoints += 1
    cfg.train.steps = 30
    with pytest.raises(CheckpointError, match="ckpt.pt"):
        train(cfg, resume=True)


def test_init_from_starts_a_new_run_from_a_checkpoint_and_resume_continues_its_own(tmp_path, monkeypatch):
    """``train.init_from`` (kp3d adapt): the weights of another checkpoint, a fresh optimiser; a resumed run continues
    from its own checkpoint and does not start over from them."""
    import kp3d_core.train as train_module

    source = load_checkpoint(train(tiny_cfg(tmp_path / "a", steps=3, preview_every=0)))
    cfg = tiny_cfg(tmp_path / "b", steps=1, preview_every=0, lr=1e-12, init_from=str(tmp_path / "a" / "run" / "ckpt.pt"))
    started = []
    real = train_module.start_from
    monkeypatch.setattr(train_module, "start_from", lambda *a: started.append(a[0]) or real(*a))
    ck = load_checkpoint(train(cfg))
    assert started == [cfg.train.init_from]
    assert all(torch.allclose(v, source["model"][k], atol=1e-6) for k, v in ck["model"].items())  # lr ~0: the source
    assert int(ck["optimizer"]["state"][0]["step"]) == 1  # a fresh optimiser, not the source's (3 steps)
    cfg.train.steps = 2
    assert load_checkpoint(train(cfg, resume=True))["step"] == 2
    assert started == [cfg.train.init_from]  # resuming loads the run's own checkpoint only
    # another architecture, or a file that is no checkpoint, is refused naming the file
    other = tiny_cfg(tmp_path / "c", steps=1, preview_every=0, init_from=cfg.train.init_from)
    other.model.num_keypoints += 1
    with pytest.raises(CheckpointError, match="init_from"):
        train(other)
    other = tiny_cfg(tmp_path / "d", steps=1, preview_every=0, init_from=str(tmp_path / "nothing.pt"))
    with pytest.raises(CheckpointError, match="nothing.pt"):
        train(other)


def test_distillation_config_needs_a_teacher_and_no_labels():
    with pytest.raises(ConfigError, match="train.init_from"):
        config_from_dict({"loss": {"distill": 1.0}})
    with pytest.raises(ConfigError, match="loss.distill"):
        config_from_dict({"loss": {"distill": 1.0}, "model": {"num_keypoints": 17},
                          "train": {"init_from": "x.pt", "supervised": True}})
    assert config_from_dict({"loss": {"distill": 1.0}, "train": {"init_from": "x.pt"}}).loss.distill == 1.0


def test_supervised_upper_bound_learns_the_joints(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=1, supervised=True, preview_every=0)
    cfg.model.num_keypoints = 17
    loss0 = _fixed_loss(train(cfg), cfg)
    cfg.train.steps = 25
    path = train(cfg, resume=True)
    assert _fixed_loss(path, cfg) < 0.8 * loss0


def test_cli_supervised_from_an_unsupervised_model_keeps_its_encoder(tmp_path, capsys):
    """``kp3d train --supervised`` on a config that continues a K-keypoint model (``train.init_from``, e.g.
    field.yaml): the upper bound has 17 keypoints, so it starts from that model's encoder alone; --minutes sets the
    budget."""
    import argparse

    import yaml

    from kp3d_core.train import add_arguments, main

    teacher = train(tiny_cfg(tmp_path / "teacher", steps=1, preview_every=0))
    d = config_to_dict(tiny_cfg(tmp_path, steps=2, preview_every=0, init_from=str(teacher)))
    d["loss"]["distill"] = 1.0
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(d))
    p = argparse.ArgumentParser()
    add_arguments(p)
    out = tmp_path / "sup"
    assert main(p.parse_args(["--config", str(tmp_path / "cfg.yaml"), "--supervised", "--minutes", "5",
                              "--out-dir", str(out)])) == 0
    ck = load_checkpoint(out / "ckpt.pt")
    c = ck["config"]
    assert ck["step"] == 2 and c["model"]["num_keypoints"] == 17 and c["train"]["supervised"]
    assert c["train"]["init_from"] == "" and c["train"]["init_encoder_from"] == str(teacher)
    assert c["train"]["max_minutes"] == 5 and c["loss"]["distill"] == 0
    log = capsys.readouterr()
    assert f"encoder from {teacher}" in log.out + log.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(config_from_dict(cfg_dict))


def test_ddp_two_processes_gloo(tmp_path, studio_splits):
    # validation runs on rank 0 alone while rank 1 waits at its next all-reduce
    cfg = studio_cfg(studio_splits, tmp_path / "run", steps=3, checkpoint_every=100, val_every=2, val_samples=2)
    mp.spawn(_ddp_worker, args=(2, _free_port(), config_to_dict(cfg)), nprocs=2, join=True)
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ck["step"] == 3
    assert ck["samples"] == 3 * cfg.train.batch_size * 2  # both processes' samples counted
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert ck["val"]["step"] == 3 and ck["val"]["samples"] == 2
    # a time budget: the ranks agree on the step to stop at (a rank that stopped alone would hang the other)
    cfg = tiny_cfg(tmp_path, steps=10**6, max_minutes=0.01, preview_every=0, checkpoint_every=100)
    cfg.data.num_synthetic, cfg.train.out_dir = 8, str(tmp_path / "timed")
    mp.spawn(_ddp_worker, args=(2, _free_port(), config_to_dict(cfg)), nprocs=2, join=True)
    ck = load_checkpoint(tmp_path / "timed" / "ckpt.pt")
    assert 1 <= ck["step"] < 10**6 and ck["elapsed_s"] >= 0.6


def test_train_on_a_rendered_studio_folder(tmp_path, studio_splits):
    """Integration with the studio renderer and the crop cache: a few frames, two steps, label-free."""
    cfg = studio_cfg(studio_splits, tmp_path / "run", steps=2)
    cfg.data.val_path, cfg.data.cache_dir = "", str(tmp_path / "cache")
    ck = load_checkpoint(train(cfg))
    assert ck["step"] == 2
    assert any((tmp_path / "cache").iterdir())
    with pytest.raises(FileNotFoundError, match="data.path"):
        cfg.data.path = str(tmp_path / "nowhere")
        train(cfg)


def test_train_on_a_rosbag2_recording(tmp_path):
    """Users train on their own recordings: a bag of Image + CameraInfo topics plus a rig file, no labels."""
    from kp3d_core.data.studio import StudioFolder
    from kp3d_ros.cli import main as kp3d

    studio = tmp_path / "studio"
    assert kp3d(["synth", "--cameras", "3", "--frames", "6", "--out", str(studio), "--bag", "--no-progress"]) == 0
    folder, bag = StudioFolder(studio), studio / "bag"
    d = {
        "model": {"crop_size": 32, "num_keypoints": 8, "width": 8, "decoder_width": 16},
        "data": {"source": "bag", "path": str(bag), "rig": str(studio / "rig.yaml"), "bag_stride": 2,
                 "cache_dir": str(tmp_path / "cache")},
        "train": {"out_dir": str(tmp_path / "run"), "steps": 2, "batch_size": 2, "preview_every": 0,
                  "tensorboard": False, "threads": 1},
    }
    cfg = config_from_dict(d)
    ds = build_dataset(cfg)
    assert len(ds) == 3 and ds.cameras == [c.name for c in folder.cameras]
    assert not ds[0]["has_labels"]
    ck = load_checkpoint(train(cfg))
    assert ck["step"] == 2
    with pytest.raises(ConfigError, match="data.rig"):
        config_from_dict({**d, "data": {**d["data"], "rig": ""}})
    cfg.data.rig = str(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="data.rig"):
        build_dataset(cfg)
    cfg.data.path = str(studio)
    with pytest.raises(FileNotFoundError, match="metadata.yaml"):
        build_dataset(cfg)


# ------------------------------------------------------------------------------------------ validation
def test_validation_runs_every_val_every_steps_on_the_same_frames(studio_splits, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import kp3d_core.train as train_module

    cfg = studio_cfg(studio_splits, tmp_path / "run", steps=5, val_every=2, val_samples=4, tensorboard=True)
    seen, real = [], train_module.validate

    def spy(model, val, cfg, device, teacher=None):
        seen.append([b.tolist() for b in val.batches])
        return real(model, val, cfg, device, teacher)

    monkeypatch.setattr(train_module, "validate", spy)
    ck = load_checkpoint(train(cfg))
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2] == [[0, 1], [3, 4]]  # 4 of 6 frames, evenly spaced
    val = ck["val"]
    assert val["step"] == 5 and val["samples"] == 4  # steps 2 and 4, and the last step
    assert set(val["terms"]) == {"reconstruction", "structure", "mask", "mask_to_fg", "fill", "coverage",
                                 "centering", "separation", "consistency"}
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    assert [e.step for e in events.Scalars("val/total")] == [2, 4, 5]
    assert events.Scalars("val/total")[-1].value == pytest.approx(val["total"])
    assert [e.step for e in events.Images("val/preview")] == [2, 4, 5]


class _Unlabelled(torch.utils.data.Dataset):
    """A dataset's samples with every label field blanked (what a user's bag gives)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        s = dict(self.dataset[i])
        s.update(joints2d_crop=torch.full_like(s["joints2d_crop"], float("nan")), joints3d=torch.full_like(
            s["joints3d"], float("nan")), visible=torch.zeros_like(s["visible"]), has_labels=False)
        return s


def test_validation_is_label_free_repeatable_and_leaves_the_rng_alone(studio_splits, tmp_path):
    cfg = studio_cfg(studio_splits, tmp_path / "run", val_samples=3)
    val = validation_set(cfg)
    assert val.samples == 3 and [b.tolist() for b in val.batches] == [[0, 2], [4]]
    model = DiscoveryModel(cfg.model)
    rng = torch.get_rng_state()
    first, _ = validate(model, val, cfg, torch.device("cpu"))
    assert torch.equal(rng, torch.get_rng_state())  # training draws the same numbers with or without validation
    assert model.training  # back in training mode
    again, _ = validate(model, val, cfg, torch.device("cpu"))
    unlabelled, _ = validate(model, dataclasses.replace(val, dataset=_Unlabelled(val.dataset)), cfg,
                             torch.device("cpu"))
    for other in (again, unlabelled):
        assert {k: v for k, v in other.items() if k != "seconds"} == {k: v for k, v in first.items() if k != "seconds"}


def test_missing_validation_data_names_data_val_path(studio_splits, tmp_path):
    cfg = studio_cfg(studio_splits, tmp_path / "run", steps=1)
    cfg.data.val_path = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"data\.val_path.*nowhere"):
        train(cfg)


def test_plain_folder_batches_are_those_of_before_sessions(studio_splits, tmp_path):
    """A plain studio folder keeps the loader it had before sessions folders existed (the shuffling DataLoader in one
    process, DistributedSampler under DDP; windows with the temporal term): the same frames in the same batches for
    the same seed, epoch after epoch."""
    from torch.utils.data import DataLoader, DistributedSampler

    from kp3d_core.data.pairs import TemporalWindows
    from kp3d_core.train import Processes, infinite_batches, training_data

    def frames(loader, steps: int) -> list:
        batches = infinite_batches(loader)
        return [next(batches)["frame"].tolist() for _ in range(steps)]

    for temporal in (0.0, 1.0):
        cfg = studio_cfg(studio_splits, tmp_path / "run")
        cfg.loss.temporal = temporal
        for world in (1, 2):
            for rank in range(world):
                torch.manual_seed(cfg.train.seed + rank)  # as start_processes seeds each rank
                dataset, loader = training_data(cfg, Processes(rank, world, 0, torch.device("cpu")))
                got = frames(loader, 7)  # over several epochs
                plain = build_dataset(cfg)
                items = TemporalWindows(plain, cfg.loss.temporal_offset, 2) if temporal else plain
                torch.manual_seed(cfg.train.seed + rank)
                sampler = DistributedSampler(items, world, rank, shuffle=True, seed=cfg.train.seed) if world > 1 else None
                before = DataLoader(items, batch_size=cfg.train.batch_size // (2 if temporal else 1),
                                    shuffle=sampler is None, sampler=sampler, drop_last=True)
                assert got == frames(before, 7), (temporal, world, rank)
                assert type(dataset) is type(items)
