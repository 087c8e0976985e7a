"""Sessions folders (docs/interfaces.md, "Sessions folder"): reading a split, batches from one session, training,
evaluation and the mapping fit on a split of two rendered sessions with different rigs (3 landscape cameras, 5
portrait ones)."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from kp3d_core.checkpoint import load_checkpoint, save_checkpoint
from kp3d_core.config import Config, ConfigError, ModelConfig, config_from_dict, config_to_dict
from kp3d_core.data.batches import SessionBatchSampler, SessionsDataset
from kp3d_core.data.sessions import SplitError, read_split, split_indices
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.rig import ring_rig, save_rig

FRAMES = {"A": 30, "B": 24}
VIEWS = {"A": 3, "B": 5}
SEEDS = {"A": 5, "B": 1}  # motion that crosses the room within the clip, so the label-free background holds no one


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """``split/`` with sessions A (3 cameras, 160x120) and B (5 cameras, 120x160), rendered by ``kp3d synth`` at
    10 fps (a few seconds of motion in few frames)."""
    from kp3d_ros.cli import main as kp3d

    root = tmp_path_factory.mktemp("sessions")
    rigs = {"A": ring_rig(3, width=160, height=120), "B": ring_rig(5, width=120, height=160)}
    for name, rig in rigs.items():
        save_rig(rig, root / f"{name}.yaml")
        assert kp3d(["synth", "--rig", str(root / f"{name}.yaml"), "--frames", str(FRAMES[name]), "--fps", "10",
                     "--seed", str(SEEDS[name]), "--out", str(root / "split" / name), "--no-progress"]) == 0
    manifest = {"name": "field-tiny", "split": "train", "kind": "sessions", "sessions": list(rigs)}
    (root / "split" / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root / "split"


def sessions_cfg(split, out_dir, **sections) -> Config:
    d = {
        "model": {"crop_size": 32, "num_keypoints": 8, "width": 8, "decoder_width": 8},
        "data": {"source": "studio", "path": str(split), "val_path": str(split)},
        "train": {"out_dir": str(out_dir), "batch_size": 4, "warmup_steps": 1, "preview_every": 0, "threads": 1,
                  "tensorboard": False},
    }
    for key, values in sections.items():
        d[key] = {**d.get(key, {}), **values}
    return config_from_dict(d)


# ------------------------------------------------------------------------------------------ the split
def test_read_split_gives_the_sessions_or_the_plain_folder_itself(split):
    s = read_split(split)
    assert s.is_sessions and [x.name for x in s.sessions] == ["A", "B"]
    assert [x.path for x in s.sessions] == [split / "A", split / "B"]
    plain = read_split(split / "A")
    assert not plain.is_sessions and [x.path for x in plain.sessions] == [split / "A"]
    assert [t.tolist() for t in split_indices([0, 9, 10, 17], [10, 8])] == [[0, 9], [0, 7]]
    assert [t.tolist() for t in split_indices([3], [0, 5])] == [[], [3]]
    with pytest.raises(IndexError):
        split_indices([18], [10, 8])


def test_malformed_sessions_manifest_is_one_error_naming_the_folder(split, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.yaml").write_text(yaml.safe_dump({"kind": "sessions", "sessions": ["A", "gone"]}))
    shutil.copytree(split / "A", bad / "A")
    with pytest.raises(FileNotFoundError, match=f"{bad / 'gone'}") as e:
        read_split(bad)
    assert str(bad / "A") not in str(e.value).replace(str(bad / "A") + "/", "")  # only the missing one is named
    with pytest.raises(FileNotFoundError, match=rf"data\.path: .*{bad / 'gone'}"):
        from kp3d_core.train import build_dataset

        build_dataset(sessions_cfg(bad, tmp_path / "run"))
    from kp3d_ros.cli import main  # the command line: one line, exit code 2

    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(bad)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    for manifest, what in (({"kind": "sessions", "sessions": []}, "non-empty list"),
                           ({"kind": "sessions", "sessions": ["../A"]}, "folder names"),
                           ({"kind": "sessions", "sessions": ["A", "A"]}, "repeat"),
                           ({"kind": "session"}, "kind must be")):
        (bad / "manifest.yaml").write_text(yaml.safe_dump(manifest))
        with pytest.raises(SplitError, match=what):
            read_split(bad)


# ------------------------------------------------------------------------------------------ batches
def test_session_batches_stay_in_one_session_cover_each_epoch_and_split_between_ranks():
    sizes, b = [10, 7, 5], 3
    offsets = np.cumsum([0] + sizes)
    session = lambda i: int(np.searchsorted(offsets, i, side="right")) - 1  # noqa: E731
    sampler = SessionBatchSampler(sizes, b, seed=4)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 3 + 2 + 1 and all(len(x) == b for x in batches)
        assert all(len({session(i) for i in x}) == 1 for x in batches)  # never two sessions in a batch
        flat = [i for x in batches for i in x]
        assert len(set(flat)) == len(flat)  # each item at most once an epoch
        # each session gives its full batches: a session is drawn in proportion to its frames
        assert sorted(session(x[0]) for x in batches) == [0, 0, 0, 1, 1, 2]
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # reshuffled every epoch ...
    again = SessionBatchSampler(sizes, b, seed=4)
    assert list(again) == epochs[0]  # ... and the same for the same seed and epoch
    # DDP: the ranks take disjoint shares of the same epoch's batches, as many each
    ranks = [SessionBatchSampler(sizes, b, seed=4, rank=r, world=4) for r in range(4)]
    shares = [list(r) for r in ranks]
    assert [len(s) for s in shares] == [1] * 4
    assert sorted(map(tuple, sum(shares, []))) == sorted(map(tuple, epochs[0][:4]))


def test_training_batches_never_mix_sessions_and_windows_stay_in_their_session(split, tmp_path):
    from kp3d_core.train import Processes, as_windows, build_dataset, training_data, validation_set

    cfg = sessions_cfg(split, tmp_path / "run")
    ds = build_dataset(cfg)
    assert isinstance(ds, SessionsDataset) and ds.names == ["A", "B"] and ds.sizes == [30, 24]
    assert ds[0]["image"].shape[:2] == (3, 3) and ds[30]["image"].shape[:2] == (5, 3)  # each session its own rig
    assert len({d.dir for d in ds.datasets}) == 2  # a crop cache per session
    procs = Processes(0, 1, 0, torch.device("cpu"))
    _, loader = training_data(cfg, procs)
    seen = []
    for indices, batch in zip(loader.batch_sampler, loader):
        s = set(ds.session_of(indices).tolist())
        assert len(s) == 1 and batch["image"].shape[1] == VIEWS[ds.names[s.pop()]]
        seen += indices
    assert len(seen) == 4 * (7 + 6) and len(set(seen)) == len(seen)  # each session's full batches, once
    cfg.train.val_samples = 6
    val = validation_set(cfg)  # evenly spaced over the split, each batch in one session
    assert [b.tolist() for b in val.batches] == [[0, 9, 18, 27], [36, 45]] and val.samples == 6
    # temporal windows: frames of one clip, never across sessions (both sessions number frames 0.. in clip 0)
    cfg.loss.temporal = 1.0
    windows = as_windows(ds, cfg)
    for i in range(len(windows)):
        w, name = windows[i], ds.names[int(ds.session_of([i])[0])]
        own = ds.datasets[ds.names.index(name)]
        assert w["image"].shape[:2] == (2, VIEWS[name])
        first = int(w["frame"][0])
        assert w["frame"].tolist() == [first, first + cfg.loss.temporal_offset]
        assert torch.equal(w["image"][1], own[first + cfg.loss.temporal_offset]["image"])
    # data.views must be in every session's rig: else one error naming the rig that lacks it
    cfg.data.views = ["cam4"]
    with pytest.raises(ConfigError, match=f"data.views: cam4 not in {split / 'A' / 'rig.yaml'}"):
        build_dataset(cfg)
    cfg.data.views = []
    # a session smaller than a batch would never be drawn: refused, naming it
    cfg.loss.temporal, cfg.train.batch_size = 0.0, 25
    with pytest.raises(ConfigError, match=r"B \(24\)"):
        training_data(cfg, procs)


def test_train_a_few_steps_on_two_sessions_of_other_rigs(split, tmp_path):
    """Real training, label-free, with validation and the temporal term, on sessions of 3 and 5 cameras."""
    from kp3d_core.train import train

    cfg = sessions_cfg(split, tmp_path / "run", train={"steps": 3, "val_every": 2, "val_samples": 6},
                       loss={"temporal": 1.0})
    ck = load_checkpoint(train(cfg))
    assert ck["step"] == 3 and ck["samples"] == 3 * 4
    assert ck["val"]["step"] == 3 and ck["val"]["samples"] == 6 and np.isfinite(ck["val"]["total"])
    assert "temporal" in ck["val"]["terms"]
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    import os

    from kp3d_core.train import train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train(config_from_dict(cfg_dict))


def test_ddp_two_processes_on_sessions(split, tmp_path):
    """Two gloo ranks, each on its share of the one-session batches (in one step they may hold other view counts)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = sessions_cfg(split, tmp_path / "run", train={"steps": 2, "checkpoint_every": 100}, data={"val_path": ""})
    mp.spawn(_ddp_worker, args=(2, port, config_to_dict(cfg)), nprocs=2, join=True)
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ck["step"] == 2 and ck["samples"] == 2 * 4 * 2
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


# ------------------------------------------------------------------------------------------ eval and map
@pytest.fixture(scope="module")
def mapped(split, tmp_path_factory):
    """An untrained tiny net, its map fitted on half of the sessions split's frames; (checkpoint, summary)."""
    from kp3d_core.fit_mapping import MappingConfig, map_checkpoint

    root = tmp_path_factory.mktemp("mapped")
    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(crop_size=32, num_keypoints=8, width=8))
    ck = save_checkpoint(root / "ck.pt", {"config": config_to_dict(cfg),
                                          "model": DiscoveryModel(cfg.model).state_dict()})
    summary = map_checkpoint(ck, split, 0.5, root / "mapped.pt", cfg=MappingConfig(steps=20, hidden=16), batch_size=8,
                             progress=False)
    return root / "mapped.pt", summary


def test_map_takes_the_fraction_evenly_over_the_whole_split(mapped):
    from kp3d_core.fit_mapping import select_fraction

    _, summary = mapped
    assert summary["split_frames"] == 54 and summary["num_frames"] == 27
    labelled = [s["labelled_frames"] for s in summary["sessions"]]
    assert labelled == [len(t) for t in split_indices(select_fraction(54, 0.5), [30, 24])] == [15, 12]  # evenly
    assert [(s["name"], len(s["cameras"])) for s in summary["sessions"]] == [("A", 3), ("B", 5)]
    assert set(load_checkpoint(mapped[0])["mapping"]["models"]) == {"linear", "mlp"}


FIGURES = ("frames", "frames_evaluated", "coverage_pct", "mpjpe_mm", "mpjpe_root_mm", "n_mpjpe_mm", "p_mpjpe_mm",
           "pck150_pct", "auc_pct", "ambiguity_ratio", "error2d_pct", "per_joint_mm", "mpjpe_by_source_mm",
           "person_found_pct", "views", "cameras")


def test_eval_sessions_equals_each_session_alone_and_pools_by_frames(mapped, split, tmp_path, capsys):
    from kp3d_core.evaluate import evaluate

    ck, _ = mapped
    res = evaluate(ck, split, tmp_path / "out", batch_size=8, figures=False, progress=False)
    alone = {n: evaluate(ck, split / n, tmp_path / f"alone_{n}", batch_size=8, figures=False, progress=False)
             for n in FRAMES}
    for name, own in alone.items():
        got = res["sessions"][name]
        assert {k: got[k] for k in FIGURES} == {k: own[k] for k in FIGURES}, name
    assert res["sessions"]["A"]["views"] == 3 and res["sessions"]["B"]["views"] == 5
    # over all frames: the frame-weighted mean of the sessions' figures
    n = {k: alone[k]["frames_evaluated"] for k in alone}
    assert res["frames"] == 54 and res["frames_evaluated"] == sum(n.values()) and min(n.values()) > 0
    for key in ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "pck150_pct", "auc_pct"):
        assert res[key] == pytest.approx(sum(n[k] * alone[k][key] for k in n) / sum(n.values()), rel=1e-9), key
    per_joint = sum(n[k] * np.array(alone[k]["per_joint_mm"]) for k in n) / sum(n.values())
    np.testing.assert_allclose(res["per_joint_mm"], per_joint, rtol=1e-9)
    assert set(res["mpjpe_by_subject_mm"]) == {"A/0", "B/0"}  # subject ids are per session
    # per camera count and per orientation: here one session each, so the session's own figures
    assert list(res["by_cameras"]) == ["3", "5"] and list(res["by_orientation"]) == ["landscape", "portrait"]
    assert res["by_orientation"]["portrait"]["sessions"] == ["B"]
    assert res["by_cameras"]["5"]["mpjpe_mm"] == pytest.approx(alone["B"]["mpjpe_mm"], rel=1e-12)
    # files: the pooled ones, with a session column per frame, and each session's own
    rows = list(csv.DictReader(open(tmp_path / "out" / "per_frame.csv")))
    assert [r["session"] for r in rows] == ["A"] * 30 + ["B"] * 24
    assert json.loads((tmp_path / "out" / "sessions" / "B" / "metrics.json").read_text())["views"] == 5
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert "| session | views |" in md and "| portrait | B |" in md and "| cameras | sessions |" in md
    # the command line: the last line is JSON with the sessions' figures
    from kp3d_ros.cli import main

    assert main(["eval", "--checkpoint", str(ck), "--data", str(split), "--out", str(tmp_path / "cli"), "--no-figures",
                 "--no-progress"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mpjpe_mm"] == pytest.approx(res["mpjpe_mm"]) and set(last["sessions"]) == {"A", "B"}
    assert "per_joint_mm" not in last["sessions"]["A"]
    # --cameras is checked against each session's rig
    assert main(["eval", "--checkpoint", str(ck), "--data", str(split), "--cameras", "cam0", "cam4"]) == 2
    assert f"{split / 'A' / 'rig.yaml'}" in capsys.readouterr().err
