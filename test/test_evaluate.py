"""Evaluation: metric values on a hand-made case, and the full map + eval pipeline on a tiny studio."""
import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from studio_fixture import TEMPLATE, write_tiny_studio

from kp3d_core.checkpoint import load_checkpoint, save_checkpoint
from kp3d_core.config import Config, ModelConfig, config_to_dict
from kp3d_core.evaluate import compute_metrics, evaluate, markdown_table
from kp3d_core.fit_mapping import MappingConfig, map_checkpoint
from kp3d_core.models.discovery import DiscoveryModel
from kp3d_core.skeleton import LEFT_RIGHT_PAIRS


def test_metrics_of_a_known_case():
    gt = np.stack([TEMPLATE, TEMPLATE + [1.0, 0.0, 0.0], TEMPLATE + [0.0, 1.0, 0.0]])
    pred = gt + [0.010, 0.0, 0.0]  # every joint 10 mm off along x
    l, r = LEFT_RIGHT_PAIRS[0]  # left/right hips swapped in frame 1
    pred[1, [l, r]] = pred[1, [r, l]]
    pred[2] = np.nan  # no prediction for frame 2
    gt2d = np.zeros((3, 2, 17, 2)) + [320.0, 240.0]
    pred2d = gt2d + [6.4, 0.0]  # 1 % of a 640-px-wide image
    res = compute_metrics(pred, gt, pred2d, gt2d, np.ones((3, 2, 17), bool), np.array([[640, 480], [640, 480]]))
    assert res["frames"] == 3 and res["frames_evaluated"] == 2
    assert res["coverage_pct"] == pytest.approx(200 / 3)
    hip_gap = np.linalg.norm(TEMPLATE[l] - TEMPLATE[r])  # 0.2 m
    swapped = [np.hypot(0.010, hip_gap)] * 2  # x offset and the hip-to-hip distance
    per_frame = [np.full(17, 0.010), np.array([0.010] * 15 + swapped)]
    assert res["mpjpe_mm"] == pytest.approx(1000 * np.mean(per_frame), rel=1e-9)
    assert res["pck150_pct"] == pytest.approx(100 * 32 / 34 + 100 * 2 / 34 * (np.hypot(0.01, hip_gap) < 0.15))
    assert res["ambiguity_ratio"] == pytest.approx(1 / (2 * 6))  # one flipped pair of 6, in 1 of 2 frames
    assert res["flip_corrected_mpjpe_mm_oracle"] == pytest.approx(10.0)  # labelled oracle: swap undone
    assert res["error2d_pct"] == pytest.approx(1.0)
    assert res["p_mpjpe_mm"] < res["mpjpe_mm"]
    assert len(res["per_joint_mm"]) == 17 and res["per_joint_mm"][0] == pytest.approx(10.0)
    table = markdown_table(res)
    assert "| MPJPE (mm, world) |" in table and "ORACLE" in table


def test_pelvis_aligned_and_world_mpjpe_differ_by_the_translation():
    gt = np.stack([TEMPLATE] * 4)
    pred = gt + [0.0, 0.0, 0.05]
    res = compute_metrics(pred, gt)
    assert res["mpjpe_mm"] == pytest.approx(50.0) and res["mpjpe_root_mm"] == pytest.approx(0.0, abs=1e-9)
    assert res["auc_pct"] == pytest.approx(100 * 20 / 31)  # the 20 thresholds 55..150 mm exceed 50 mm
    assert compute_metrics(np.full_like(gt, np.nan), gt)["frames_evaluated"] == 0


def test_grouped_mpjpe_averages_each_group_over_frames_with_a_prediction():
    from kp3d_core import metrics
    from kp3d_core.evaluate import breakdowns, clip_source, grouped_mpjpe

    gt = np.stack([TEMPLATE] * 4)
    pred = gt + np.array([0.01, 0.02, 0.03, 0.04])[:, None, None] * [1.0, 0.0, 0.0]
    pred[3] = np.nan  # no prediction: left out of its group
    err = metrics.joint_errors(pred, gt).mean(-1)
    groups = np.array(["cmu", "bandai", "cmu", "bandai"], dtype=object)
    assert grouped_mpjpe(err, groups) == {"bandai": pytest.approx(20.0), "cmu": pytest.approx(20.0)}
    assert grouped_mpjpe(err, np.array([0, 0, 1, 1])) == {"0": pytest.approx(15.0), "1": pytest.approx(30.0)}
    clips = np.array(["cmu_131/a.bvh", "procedural/x", "cmu_131/b.bvh", "procedural/y"], dtype=object)
    assert clip_source(clips[0]) == "cmu_131"
    assert breakdowns(err, clips, None) == {"mpjpe_by_source_mm": {"cmu_131": pytest.approx(20.0),
                                                                   "procedural": pytest.approx(20.0)}}
    # Custom datasets: clips recorded as absolute paths (older kp3d synth) or without a name get a real key, never "".
    custom = np.array(["/home/me/mocap/a.bvh", "", "/home/me/mocap/b.bvh", ""], dtype=object)
    assert clip_source(custom[0]) == "mocap" and clip_source("") == "unknown" and clip_source("walk") == "walk"
    assert breakdowns(err, custom, None) == {"mpjpe_by_source_mm": {"mocap": pytest.approx(20.0),
                                                                   "unknown": pytest.approx(20.0)}}


@pytest.fixture(scope="module")
def checkpoint_and_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = write_tiny_studio(root / "tiny", num_frames=10, empty_frames=(4,))
    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(crop_size=32, num_keypoints=8, width=8))
    ck = save_checkpoint(root / "ck.pt", {"config": config_to_dict(cfg), "model": DiscoveryModel(cfg.model).state_dict()})
    return ck, data, root


def test_map_then_eval_pipeline(checkpoint_and_data, monkeypatch, capsys):
    ck, data, root = checkpoint_and_data
    monkeypatch.setenv("KP3D_CACHE", str(root / "cache"))
    # An untrained net still gives keypoints; the map is fitted on half of the frames, stored, then applied.
    summary = map_checkpoint(ck, data, 0.5, root / "mapped.pt", cfg=MappingConfig(steps=50, hidden=32),
                             batch_size=4, progress=False)
    assert summary["num_frames"] == 5 and summary["fraction"] == 0.5
    ckpt = load_checkpoint(root / "mapped.pt")
    assert set(ckpt["mapping"]["models"]) == {"linear", "mlp"}
    res = evaluate(root / "mapped.pt", data, root / "out", batch_size=4, progress=False)
    assert res["frames"] == 10
    assert res["frames_evaluated"] == 9  # frame 4 shows no person: no prediction, counted in coverage
    assert res["coverage_pct"] == pytest.approx(90.0)
    assert res["person_found_pct"] == pytest.approx(90.0)
    assert np.isfinite(res["mpjpe_mm"]) and res["mpjpe_mm"] > 0
    stored = json.loads((root / "out" / "metrics.json").read_text())
    assert stored["mpjpe_mm"] == pytest.approx(res["mpjpe_mm"])
    for name in ("views", "skeleton3d", "per_joint"):
        assert (root / "out" / f"{name}.png").stat().st_size > 1000
    assert (root / "out" / "metrics.md").read_text().startswith("## kp3d eval")
    assert 0 <= res["keypoint_to_skeleton_median_mm"] <= res["keypoint_to_skeleton_p90_mm"]
    assert "distance to the true skeleton" in (root / "out" / "metrics.md").read_text()
    # One clip (procedural), one subject: each breakdown has a single group equal to the overall MPJPE.
    assert res["mpjpe_by_source_mm"] == {"procedural": pytest.approx(res["mpjpe_mm"])}
    assert res["mpjpe_by_subject_mm"] == {"0": pytest.approx(res["mpjpe_mm"])}
    rows = list(csv.DictReader(open(root / "out" / "per_frame.csv")))
    assert len(rows) == res["frames"] and {r["source"] for r in rows} == {"procedural"}
    errs = [float(r["mpjpe_mm"]) for r in rows if r["mpjpe_mm"]]
    assert len(errs) == res["frames_evaluated"] and np.mean(errs) == pytest.approx(res["mpjpe_mm"], abs=0.01)
    # The CLI entry prints a JSON line last.
    import argparse

    from kp3d_core import evaluate as ev

    p = argparse.ArgumentParser()
    ev.add_arguments(p)
    assert ev.main(p.parse_args(["--checkpoint", str(root / "mapped.pt"), "--data", str(data), "--out",
                                 str(root / "out2"), "--no-figures", "--mapping", "linear"])) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mapping"] == "linear" and last["frames"] == 10 and last["procedural_fallback"] is False


@pytest.fixture(scope="module")
def mapped(checkpoint_and_data):
    """The tiny checkpoint with a (quickly fitted) mapping."""
    ck, data, root = checkpoint_and_data
    map_checkpoint(ck, data, 0.5, root / "mapped_fixture.pt", cfg=MappingConfig(steps=20, hidden=16), batch_size=4,
                   progress=False)
    return root / "mapped_fixture.pt"


def _without_motion_data(tmp_path, monkeypatch):
    from kp3d_core.studio import presets

    monkeypatch.chdir(tmp_path)
    (tmp_path / "no_motion").mkdir()
    monkeypatch.setenv(presets.MOTION_ROOT_ENV, str(tmp_path / "no_motion"))
    monkeypatch.delenv("KP3D_STUDIO_BENCH", raising=False)


def test_default_split_looks_for_the_benchmark_then_its_stand_in(tmp_path, monkeypatch):
    from pathlib import Path

    from kp3d_core.evaluate import default_split

    _without_motion_data(tmp_path, monkeypatch)
    for folder in ("out/studio-bench-only-procedural/val", "data/studio-bench/val"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "manifest.yaml").write_text("name: studio-bench\n")
        # the stand-in is found by its own name; the benchmark itself, once there, wins
        assert default_split("val") == Path(folder)


def test_eval_without_the_motion_data_renders_a_marked_stand_in(mapped, tmp_path, monkeypatch, capsys):
    """No motion data: the default split is rendered as a procedural stand-in under its own folder name, and
    eval says that its figures are not the benchmark's (stderr, JSON line, metrics.md)."""
    import argparse

    from kp3d_core import evaluate as ev
    from kp3d_core.studio import presets

    _without_motion_data(tmp_path, monkeypatch)
    monkeypatch.setitem(presets.SPLITS, "test", presets.SplitSpec(frames=3, seed=303, subjects=1))  # a 3-frame split
    p = argparse.ArgumentParser()
    ev.add_arguments(p)
    assert ev.main(p.parse_args(["--checkpoint", str(mapped), "--out", "eval", "--no-figures", "--no-progress"])) == 0
    out, err = capsys.readouterr()
    assert not (tmp_path / "out" / "studio-bench").exists()
    stand_in = tmp_path / "out" / "studio-bench-only-procedural" / "test"
    assert (stand_in / "manifest.yaml").is_file() and "not comparable with the README" in err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["procedural_fallback"] is True and res["frames"] == 3 and len(res["missing_sources"]) == 2
    assert res["data"] == "out/studio-bench-only-procedural/test"
    assert "Not the benchmark" in (tmp_path / "eval" / "metrics.md").read_text()
    assert "progress" not in err and "it/s" not in err and "frame/s" not in err    # --no-progress: no bars


def test_eval_unknown_camera_is_one_line_naming_the_option_and_the_rig(mapped, checkpoint_and_data, capsys):
    from kp3d_ros.cli import main

    _, data, root = checkpoint_and_data
    assert main(["eval", "--checkpoint", str(mapped), "--data", str(data), "--cameras", "cam0", "cam9",
                 "--out", str(root / "out_cam9")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kp3d eval: error: --cameras: cam9 not in ") and "rig.yaml" in err[0]


def test_eval_without_mapping_says_what_to_do(checkpoint_and_data):
    ck, data, root = checkpoint_and_data
    from kp3d_core.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="kp3d map"):
        evaluate(ck, data, root / "out3", progress=False)


def test_accuracy_bench_runs_end_to_end_on_a_tiny_studio(checkpoint_and_data, tmp_path, monkeypatch, capsys):
    """Every run of the bench (main, supervised, ablation, views) on the tiny studio with 1-2 steps each."""
    from kp3d_core.bench.accuracy import ABLATION, ablation_losses, paired_z, run_bench
    from kp3d_core.config import LossConfig, TrainConfig

    _, data, root = checkpoint_and_data
    monkeypatch.setenv("KP3D_CACHE", str(root / "cache"))
    base = Config(model=ModelConfig(crop_size=32, num_keypoints=8, width=8, decoder_width=8),
                  train=TrainConfig(batch_size=2, device="cpu", threads=1))
    # reconstruction; + kp3d's anti-collapse prior; the paper's terms in its order (+ mask; + coverage; + centering),
    # the paper's mask being the drawn mask against the label-free foreground (mask_to_fg); then kp3d's other additions
    rows = [ablation_losses(LossConfig(), terms) for _, terms in ABLATION]
    paper = [[getattr(r, t) > 0 for t in ("mask_to_fg", "coverage", "centering")] for r in rows[1:5]]
    assert paper == [[False] * 3, [True, False, False], [True, True, False], [True] * 3]
    assert all(r.reconstruction > 0 and r.structure > 0 for r in rows)
    assert rows[0].fill == 0 and rows[0].separation == 0 and rows[0].mask_to_fg == 0
    assert all(r.fill > 0 and r.separation > 0 for r in rows[1:])  # the prior under every paper term
    assert all(r.mask == 0 and r.consistency == 0 for r in rows[:5]) and rows[5].mask > 0 and rows[5].consistency > 0
    # a lean base (coverage, mask... off): rows that switch a term on take its default weight
    lean = LossConfig(mask=0, mask_to_fg=0, coverage=0, centering=0, consistency=0, fill=3.0)
    full = ablation_losses(lean, ABLATION[-1][1])
    assert full.coverage == LossConfig().coverage and full.mask == LossConfig().mask and full.fill == 3.0
    assert full.centering == LossConfig().centering
    assert ablation_losses(lean, ABLATION[1][1]).fill == 3.0 and ablation_losses(lean, ABLATION[0][1]).fill == 0
    thin = dataclasses.replace(lean, thin_fill=1.0)  # thin_fill belongs to the anti-collapse prior
    assert ablation_losses(thin, ABLATION[0][1]).thin_fill == 0 and ablation_losses(thin, ABLATION[1][1]).thin_fill == 1
    assert ablation_losses(LossConfig(), ABLATION[-1][1]).thin_fill == 0  # off in the base: stays off
    with pytest.raises(ValueError, match="view_subsets"):
        run_bench(data, data, tmp_path / "bench", base, 0, 0, fixed_steps=(2, 1), view_subsets="adjacent")
    log = run_bench(data, data, tmp_path / "bench", base, 0, 0, mapping=MappingConfig(steps=10), fixed_steps=(2, 1),
                    seeds=2)
    runs = [l["run"] for l in log]
    assert runs.count("unsupervised") == 4 and runs.count("ablation") == len(ABLATION)
    # A 3-camera rig: 2 views trained, 3 views = the ablation row with the base's loss set (the full one).
    assert [(l["views"], l.get("same_as")) for l in log if l["run"] == "views"] == [(2, None), (3, "ablation full")]
    # two seeds per row: a line each, then the row's line with their mean; the 2-view row trains each of the
    # rig's three camera pairs once, the seeds cycled over them
    assert runs.count("ablation_seed") == 2 * len(ABLATION) and runs.count("views_seed") == 3
    seeded = [l for l in log if l["run"] == "views_seed" and l["views"] == 2]
    pairs = [["cam0", "cam1"], ["cam0", "cam2"], ["cam1", "cam2"]]
    assert [(l["cameras"], l["seed"]) for l in seeded] == list(zip(pairs, [0, 1, 0]))
    assert len({l["part"] for l in seeded}) == 3
    row = next(l for l in log if l["run"] == "views" and l["views"] == 2)
    assert row["seeds"] == [0, 1, 0] and row["cameras_per_run"] == pairs
    assert row["mpjpe_mm_per_seed"] == [l["mpjpe_mm"] for l in seeded]
    assert row["mpjpe_mm"] == pytest.approx(np.mean(row["mpjpe_mm_per_seed"])) and row["mpjpe_mm_sem"] >= 0
    for folder in ("views2", "views2_cam0+cam2_seed1", "views2_cam1+cam2"):
        assert (tmp_path / "bench" / folder / "train" / "ckpt.pt").is_file()
    assert (tmp_path / "bench" / "ablation_full_seed1" / "train" / "ckpt.pt").is_file()
    sup = next(l for l in log if l["run"] == "supervised_upper_bound")
    assert "ratio_unsupervised_mlp_10pct" in sup and np.isfinite(sup["mpjpe_mm"])
    summary = log[-1]
    assert summary["run"] == "summary" and summary["total_train_minutes"] > 0
    changes = summary["ablation_changes"]
    assert [c["to"] for c in changes] == [name for name, _ in ABLATION[1:]]
    assert summary["ablation_each_lowers"] == all(c["delta_mm"] < 0 for c in changes)
    a = {"seeds": [0, 1, 2], "mpjpe_mm_per_seed": [100.0, 110.0, 90.0]}
    b = {"seeds": [0, 1, 2], "mpjpe_mm_per_seed": [98.0, 107.0, 89.0]}  # per seed -2, -3, -1: mean -2, s.e. 1/sqrt(3)
    assert paired_z(a, b) == pytest.approx(-2 * np.sqrt(3)) and paired_z(a, {**b, "seeds": [0, 1, 3]}) is None
    assert all("delta_paired_in_sem" in c for c in changes)
    assert [(c["from"], c["to"]) for c in summary["views_changes"]] == [("2", "3")]
    assert summary["views_2_mpjpe_mm"] == row["mpjpe_mm"]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"] == "summary"
    assert (tmp_path / "bench" / "results.jsonl").read_text().count("\n") == len(log)
    # the readable report says what the JSON lines say: each row's mean and change, and the verdicts
    md = (tmp_path / "bench" / "results.md").read_text()
    for name, _ in ABLATION:
        row = next(l for l in log if l["run"] == "ablation" and l["losses"] == name)
        assert f"| {name} | " in md and f"{row['mpjpe_mm']:.1f} ± {row['mpjpe_mm_sem']:.1f}" in md
    assert f"{changes[0]['delta_mm']:+.1f}" in md and f"Every step lowers MPJPE: {summary['ablation_each_lowers']}" in md
    assert "(= ablation full)" in md and "Supervised upper bound" in md
    assert f"- 2 views, each run: cam0+cam1 seed 0: {seeded[0]['mpjpe_mm']:.1f}; cam0+cam2 seed 1: " in md
    assert (tmp_path / "bench" / "rows.png").stat().st_size > 10_000
    # minutes instead of steps: each run trains on a time budget and reports the steps it reached
    # (and --quick's settings: its leaner maps, the main run mapped at 1 % and 10 % only)
    from kp3d_core.bench.accuracy import QUICK_MAPPING

    log = run_bench(data, data, tmp_path / "timed", base, 0.005, 0.002, mapping=QUICK_MAPPING,
                    runs=("main", "views"), fractions=(0.01, 0.1), view_subsets="first")
    assert log[0]["run"] == "plan" and log[0]["main_minutes"] == 0.005 and log[0]["main_steps"] is None
    main = next(l for l in log if l["run"] == "unsupervised")
    assert main["train_steps"] >= 1 and main["train_minutes"] >= 0.005
    assert log[-1]["main_steps"] == main["train_steps"]
    assert sorted({l["labels_pct"] for l in log if l["run"] == "unsupervised"}) == [1.0, 10.0]
    assert all(l["mapping_mirror"] == 0.5 for l in log if l["run"] == "unsupervised" and l["mapping"] == "mlp")
    assert "unsupervised_mlp_1pct_mpjpe_mm" in log[-1] and "unsupervised_mlp_100pct_mpjpe_mm" not in log[-1]
    # one run a views row, on the rig's first cameras
    assert [l["cameras"] for l in log if l["run"] == "views_seed"] == [["cam0", "cam1"], ["cam0", "cam1", "cam2"]]


def test_accuracy_bench_resumes_finished_runs_and_interrupted_training(checkpoint_and_data, tmp_path, monkeypatch):
    """--resume reuses the runs whose digest matches, retrains a changed one, and continues a cut-off run."""
    import kp3d_core.bench.accuracy as acc
    from kp3d_core.config import TrainConfig

    _, data, root = checkpoint_and_data
    monkeypatch.setenv("KP3D_CACHE", str(root / "cache"))
    base = Config(model=ModelConfig(crop_size=32, num_keypoints=8, width=8, decoder_width=8),
                  train=TrainConfig(batch_size=2, device="cpu", threads=1))
    out = tmp_path / "bench"
    fit, refit = MappingConfig(steps=10), MappingConfig(steps=11)
    first = acc.run_bench(data, data, out, base, 0, 0, mapping=fit, runs=("main", "views"), fixed_steps=(2, 1),
                          view_subsets="first")
    # Cut the file short inside the last run's line, as an interruption would: that run alone is redone.
    text = (out / "results.jsonl").read_text().splitlines()
    views3 = next(l for l in first if l["run"] == "views_seed" and l["views"] == 3)
    kept = [t for t in text if json.loads(t).get("part") != views3["part"] and json.loads(t)["run"] != "summary"]

    def as_before_seeds(line: dict) -> dict:  # how a views line was written before rows had seeds
        return {k: v for k, v in line.items() if k != "seed"} | {"run": "views"} if line["run"] == "views_seed" else line

    kept = [json.dumps(as_before_seeds(json.loads(t))) for t in kept]
    (out / "results.jsonl").write_text("\n".join(kept) + "\n" + text[-2][:40])
    trained = []
    real = acc.timed_train
    monkeypatch.setattr(acc, "timed_train", lambda cfg, resume=False: trained.append(cfg.name) or real(cfg, resume))
    again = acc.run_bench(data, data, out, base, 0, 0, mapping=fit, runs=("main", "views"), fixed_steps=(2, 1),
                          view_subsets="first", resume=True)
    assert trained == ["views3"]
    views2 = [l for l in again if l.get("views") == 2]  # the old line, reused under the new names
    assert [(l["run"], l.get("seed"), l.get("resumed")) for l in views2] == [("views_seed", 0, True), ("views", None, None)]
    same = lambda log, run: [{k: v for k, v in l.items() if k != "resumed"} for l in log if l["run"] == run]
    assert same(again, "unsupervised") == same(first, "unsupervised")
    assert all(l["resumed"] for l in again if l["run"] == "unsupervised") and again[-1]["runs_resumed"] == 2
    assert (out / "results.jsonl").read_text().count("\n") == len(again)
    assert not (out / "results.jsonl.partial").exists()
    # An invocation cut off (here in its last run) leaves the complete file whole, and its own finished parts, in
    # the partial file, are reused by the next.
    complete = (out / "results.jsonl").read_text()

    def cut_at_views3(cfg, resume=False):
        if cfg.name == "views3":
            raise KeyboardInterrupt
        trained.append(cfg.name)
        return real(cfg, resume)

    monkeypatch.setattr(acc, "timed_train", cut_at_views3)
    trained.clear()
    with pytest.raises(KeyboardInterrupt):  # other mapping settings: every run is redone
        acc.run_bench(data, data, out, base, 0, 0, mapping=refit, runs=("main", "views"), fixed_steps=(2, 1),
                      view_subsets="first", resume=True)
    assert trained == ["main", "views2"]
    assert (out / "results.jsonl").read_text() == complete and (out / "results.jsonl.partial").is_file()
    monkeypatch.setattr(acc, "timed_train", lambda cfg, resume=False: trained.append(cfg.name) or real(cfg, resume))
    trained.clear()
    acc.run_bench(data, data, out, base, 0, 0, mapping=refit, runs=("main", "views"), fixed_steps=(2, 1),
                  view_subsets="first", resume=True)
    assert trained == ["views3"]
    # Bookkeeping does not change the digest; a changed setting (more side steps) does: nothing stale is reused.
    cfg = acc.run_config(base, "main", out, data, 2)
    assert acc.part_id(cfg) == acc.part_id(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, threads=2)))
    # A bench folder moved elsewhere keeps its digests; the run's name still tells two runs apart.
    assert acc.part_id(cfg) == acc.part_id(acc.run_config(base, "main", tmp_path / "moved", data, 2))
    assert acc.part_id(cfg) != acc.part_id(acc.run_config(base, "other", out, data, 2))
    # A field added to the config since a part was written (absent then, at its default now) leaves its digest alone.
    older = config_to_dict(cfg)
    del older["loss"]["thin_kernel"], older["data"]["augment"]["background_swap"]
    assert acc.run_identity(older) == acc.run_identity(config_to_dict(cfg))
    kernel = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, thin_kernel=5))
    assert acc.part_id(cfg) != acc.part_id(kernel)
    trained.clear()
    acc.run_bench(data, data, out, base, 0, 0, mapping=fit, runs=("views",), fixed_steps=(2, 2), resume=True,
                  view_subsets="first")
    assert trained == ["views2", "views3"]
    # Training cut off after its first checkpoint continues from it, and says so.
    cfg = acc.run_config(base, "cut", out, data, 2)
    cfg.train.checkpoint_every = 1
    import kp3d_core.train as train_module

    calls, losses = [], train_module.compute_losses

    def cut_at_second_step(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # after step 1's checkpoint
        return losses(*args)

    with monkeypatch.context() as m:
        m.setattr(train_module, "compute_losses", cut_at_second_step)
        with pytest.raises(KeyboardInterrupt):
            real(cfg)
    assert load_checkpoint(out / "cut" / "train" / "ckpt.pt")["step"] == 1
    ckpt, t = real(cfg, resume=True)
    assert t["train_resumed_from_step"] == 1 and t["train_steps"] == 2 and t["train_minutes"] > 0
    assert load_checkpoint(ckpt)["step"] == 2
    # Bookkeeping (checkpoint cadence, threads) may differ; a checkpoint left by other settings is not continued.
    assert acc.same_run(load_checkpoint(ckpt)["config"], dataclasses.replace(
        cfg, train=dataclasses.replace(cfg.train, checkpoint_every=7, threads=2)))
    assert acc.same_run(load_checkpoint(ckpt)["config"], dataclasses.replace(  # the folder moved
        cfg, train=dataclasses.replace(cfg.train, out_dir=str(tmp_path / "moved" / "cut" / "train"))))
    # A config field added since the checkpoint was written (absent from it, default value) changes nothing.
    stored = load_checkpoint(ckpt)["config"]
    del stored["loss"]["temporal"]
    assert acc.same_run(stored, cfg)
    # A checkpoint left by a run of other settings is not continued.
    other = dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, fill=cfg.loss.fill + 1.0))
    assert "train_resumed_from_step" not in real(other, resume=True)[1]
