"""``kp3d check``: label-free quality figures of a recording, and verdicts that flag the right camera.

The figures are pure functions, tested on constructed arrays (round trips, known answers, bad input). End to
end, tiny studio recordings (4 cameras, 320x240, 36 frames, rendered once per module) run through the shipped
model: a good case (the true empty-scene backgrounds passed) against broken ones made without ground truth at
run time: one camera's extrinsics off in the rig file (5 degrees, 10 cm), two cameras' names swapped, one camera 3 frames late, one
camera's video scaled and padded, another scene's backgrounds, a person standing still while the background is
learnt, and keypoint identities shuffled per camera. Ground truth is used only here,
to confirm that the broken cases are broken (MPJPE), never by the command.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from kp3d_core.check import figures
from kp3d_core.check.run import EvenSampler, build_estimator, run_check
from kp3d_core.check.summary import summarise
from kp3d_core.check.verdict import Limit, Thresholds, judge
from kp3d_core.inference.predictor import PredictorConfig
from kp3d_core.metrics import mpjpe
from kp3d_core.rig import Rig, ring_rig, save_rig
from kp3d_core.skeleton import BONES

W, H, V, FRAMES = 320, 240, 4, 36


# ------------------------------------------------------------------------------------------ figures
def _ring_points(T=5, K=6, seed=0):
    rig = ring_rig(V, width=W, height=H)
    rng = np.random.default_rng(seed)
    X = rng.uniform([-0.3, -0.3, 0.5], [0.3, 0.3, 1.6], (T, K, 3))
    P = rig.projection_matrices()
    uv = np.stack([[cam.project(X[t]) for cam in rig.cameras] for t in range(T)])  # (T, V, K, 2)
    return rig, X, P, uv


def test_reprojection_of_exact_projections_is_zero_and_the_null_is_not():
    _, _, P, uv = _ring_points()
    w = np.ones(uv.shape[:3])
    err, used = figures.reprojection_errors(uv, w, P)
    assert used.all() and np.nanmax(err) < 1e-6
    null, _ = figures.reprojection_errors(*figures.shuffle_identities(uv, w, np.random.default_rng(0)), P)
    assert np.nanmedian(null) > 5.0  # points with no correspondence do not triangulate consistently


def test_reprojection_skips_unseen_views_and_points_seen_once():
    _, _, P, uv = _ring_points()
    w = np.ones(uv.shape[:3])
    uv[0, 1, 2] = np.nan  # view 1 did not see point 2 in frame 0
    w[1, :, 3] = 0.0
    w[1, 0, 3] = 1.0  # point 3 of frame 1 seen by one view only: not triangulated
    err, used = figures.reprojection_errors(uv, w, P)
    assert not used[0, 1, 2] and used[0, 0, 2]
    assert not used[1, :, 3].any() and np.isnan(err[1, :, 3]).all()


def test_shuffle_permutes_each_view_and_keeps_weights_with_their_points():
    _, _, _, uv = _ring_points(T=3, K=8)
    w = np.arange(uv[..., 0].size, dtype=float).reshape(uv.shape[:3])
    s_uv, s_w = figures.shuffle_identities(uv, w, np.random.default_rng(1))
    for t in range(3):
        for v in range(V):
            order = np.argsort(w[t, v])
            assert sorted(s_w[t, v]) == sorted(w[t, v])
            idx = np.searchsorted(w[t, v][order], s_w[t, v])
            np.testing.assert_array_equal(s_uv[t, v], uv[t, v][order][idx])
    assert not np.array_equal(s_uv, uv)


def test_leave_one_out_bias_points_at_the_camera_that_is_off():
    rig, X, P, uv = _ring_points(T=8, K=10)
    rng = np.random.default_rng(2)
    uv = uv + rng.normal(0, 1.0, uv.shape)  # keypoint noise, 1 px
    uv[:, 2] += [12.0, -5.0]  # camera 2's keypoints all shifted: a calibration error
    w = np.ones(uv.shape[:3])
    loo = figures.leave_one_out_residuals(uv, w, P)
    bias = [figures.residual_bias(loo[:, v]) for v in range(V)]
    assert int(np.argmax(bias)) == 2 and bias[2] > 8.0
    assert bias[1] < 0.4 * bias[2] and bias[3] < 0.4 * bias[2]  # the side cameras see little of it
    # two views: no other pair to triangulate from
    assert np.isnan(figures.leave_one_out_residuals(uv[:, :2], w[:, :2], P[:2])).all()


def test_residual_bias_ignores_scatter():
    rng = np.random.default_rng(0)
    assert figures.residual_bias(rng.normal(0, 5.0, (2000, 2))) < 0.5
    assert figures.residual_bias(rng.normal(0, 5.0, (2000, 2)) + [3.0, 4.0]) == pytest.approx(5.0, abs=0.5)
    assert np.isnan(figures.residual_bias(np.full((3, 2), np.nan)))


def test_distance_to_mask_and_outside_box():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 10:15] = 1
    d = figures.distance_to_mask(np.array([[12.0, 7.0], [20.0, 7.0], [np.nan, 1.0], [-3.0, 7.0]]), mask)
    assert d[0] == 0.0 and d[1] == pytest.approx(6.0, abs=0.1) and np.isnan(d[2])
    assert d[3] == pytest.approx(10.0 + 3.0, abs=0.1)  # off the image: to the nearest image pixel, then on
    assert np.isinf(figures.distance_to_mask(np.zeros((1, 2)), np.zeros((4, 4)))).all()
    assert figures.outside_box(mask, np.array([12.0, 7.0, 8.0])) == 0.0
    assert figures.outside_box(mask, np.array([10.0, 7.0, 2.0])) == pytest.approx(19 / 25)  # pixel centres 9..11, 6..8
    assert figures.outside_box(mask, np.full(3, np.nan)) == 1.0
    assert np.isnan(figures.outside_box(np.zeros((4, 4)), np.array([1.0, 1.0, 2.0])))


def test_rigid_body_has_constant_bones_and_a_known_root_speed():
    _, X, _, _ = _ring_points(T=1, K=17)
    T = 10
    shift = np.arange(T)[:, None, None] * np.array([0.05, 0.0, 0.0])  # 5 cm per frame
    poses = X[0][None] + shift
    stamps = np.arange(T, dtype=np.int64) * 50_000_000  # 20 Hz -> 1 m/s
    assert figures.bone_lengths(poses).shape == (T, len(BONES))
    np.testing.assert_allclose(figures.bone_length_cv(poses), 0.0, atol=1e-12)
    np.testing.assert_allclose(figures.root_speeds(poses, stamps), 1.0)
    poses[3] = np.nan  # a frame without a pose: the pair around it spans 0.1 s, still 1 m/s
    np.testing.assert_allclose(figures.root_speeds(poses, stamps), 1.0)
    assert len(figures.root_speeds(poses, stamps, max_gap_s=0.06)) == T - 3
    stretched = poses.copy()
    stretched[::2] *= 1.2
    assert np.nanmedian(figures.bone_length_cv(stretched)) > 0.05


def test_box_fraction_and_summary():
    frac = figures.box_fraction(np.array([[240.0, np.nan]]), np.array([[320, 240], [640, 480]]))
    assert frac[0, 0] == 1.0 and np.isnan(frac[0, 1])
    s = figures.summary([1.0, 2.0, 3.0, np.nan])
    assert s == {"median": 2.0, "p90": pytest.approx(2.8), "n": 3}
    assert np.isnan(figures.summary([])["median"])


@pytest.mark.parametrize("call", [
    lambda: figures.reprojection_errors(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((3, 3, 4))),
    lambda: figures.reprojection_errors(np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 5)), np.zeros((3, 3, 4))),
    lambda: figures.reprojection_errors(np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 4)), np.zeros((2, 3, 4))),
    lambda: figures.bone_lengths(np.zeros((2, 17))),
    lambda: figures.root_speeds(np.zeros((3, 17, 3)), np.zeros(2)),
    lambda: figures.distance_to_mask(np.zeros((2, 3)), np.zeros((4, 4))),
    lambda: figures.outside_box(np.zeros(4), np.zeros(3)),
])
def test_bad_shapes_raise_naming_the_argument(call):
    with pytest.raises(ValueError, match=r"expected shape|expected \d"):
        call()


def test_even_sampler_keeps_an_evenly_spread_subset_of_a_stream_of_unknown_length():
    for total in (3, 12, 13, 100, 1001):
        s = EvenSampler(6)
        for i in range(total):
            s.offer(lambda i=i: i)
        items = s.items()
        assert len(items) == min(total, 6) and items == sorted(items) and items[0] == 0
        if total >= 100:
            assert np.diff(items).min() >= total // 12  # spread, not the first six
    s = EvenSampler(0)
    s.offer(lambda: 1 / 0)  # never built
    assert s.items() == []


def test_limits_and_verdict_rules():
    assert Limit(0.35, 0.6).level(0.2) == "ok" and Limit(0.35, 0.6).level(0.4) == "suspect"
    assert Limit(0.35, 0.6).level(0.7) == "failing" and Limit(0.35, 0.6).level(None) == "ok"
    assert Limit(0.75, 0.45, below=True).level(0.5) == "suspect"
    cam = {"box_median_frac": 0.6, "box_max_frac": 0.7, "foreground_area_frac": 0.03, "outside_box_frac": 0.0,
           "on_foreground_frac": 0.95, "found_frac": 1.0, "loo_bias_box": 0.02, "ratio_to_null": 0.2,
           "warmup_moving_to_foreground": None}
    figs = {"frames": {"after_warmup": 10, "with_pose": 10, "with_pose_frac": 1.0, "without_pose": {}},
            "reprojection": {"ratio_to_null": 0.2}, "pose": {"root_speed_median_m_s": 0.3, "bone_cv_median": 0.1},
            "cameras": {"a": dict(cam), "b": dict(cam, loo_bias_box=0.3), "c": dict(cam, loo_bias_box=0.2),
                        "d": dict(cam, box_median_frac=1.7, on_foreground_frac=0.3)}}
    out = judge(figs)
    assert out["cameras"]["a"]["verdict"] == "ok"
    assert out["cameras"]["b"]["verdict"] == "failing" and "kp3d rig show" in out["cameras"]["b"]["todo"][0]
    assert out["cameras"]["c"]["verdict"] == "suspect"  # the runner-up, possibly facing b
    d = out["cameras"]["d"]
    assert d["verdict"] == "failing" and len(d["todo"]) == 1 and "--backgrounds" in d["todo"][0]  # not the model's
    assert out["verdict"] == "failing"
    assert all(isinstance(getattr(Thresholds(), f), (Limit, float)) for f in Thresholds.__dataclass_fields__)


# ------------------------------------------------------------------------------------------ studio recordings
def _render(out: Path, rig: Rig, seed: int, frames: int, still: int = 0, scene_seed: int | None = None) -> Path:
    from kp3d_core.studio.body import sample_subject
    from kp3d_core.studio.dataset import Segment, render_dataset
    from kp3d_core.studio.procedural import procedural_motion
    from kp3d_core.studio.proportions import sample_proportions

    rng = np.random.default_rng([seed, 5])
    joints = procedural_motion(frames, 30.0, seed=seed, proportions=sample_proportions(rng)).joints3d
    if still:  # the first pose held: a person standing while the background is learnt
        joints = np.concatenate([np.repeat(joints[:1], still, axis=0), joints])
    render_dataset(out, rig, [Segment(joints, 0, 0)], [f"procedural/seed{seed}"], [sample_subject(rng)], seed=seed,
                   bag_storage="mcap", progress=False, scene_seed=scene_seed)
    return out


@pytest.fixture(scope="module")
def rig():
    return ring_rig(V, width=W, height=H)


@pytest.fixture(scope="module")
def studio(tmp_path_factory, rig):
    """Seed 4 walks away from where it starts (1.2 m in 2 s)."""
    return _render(tmp_path_factory.mktemp("check") / "studio", rig, seed=4, frames=FRAMES)


@pytest.fixture(scope="module")
def other_scene(tmp_path_factory, rig):
    return _render(tmp_path_factory.mktemp("check") / "other", rig, seed=4, frames=1, scene_seed=11)


@pytest.fixture(scope="module")
def still_start(tmp_path_factory, rig):
    # 15 frames standing, then 2 s of walking 1.2 m away: the ghost ends up beside the person
    return _render(tmp_path_factory.mktemp("check") / "still", rig, seed=4, frames=60, still=15)


def turned(rig: Rig, name: str, degrees: float, shift_m: float = 0.0) -> Rig:
    """The rig with camera ``name`` turned about its own axes (mostly pan) and moved ``shift_m`` metres along its
    image's x axis: a knocked camera, or a bad calibration."""
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    R, _ = cv2.Rodrigues(axis * np.deg2rad(degrees))
    cams = []
    for cam in rig.cameras:
        if cam.name == name:
            T = cam.T_world_cam.copy()
            T[:3, 3] += shift_m * T[:3, 0]
            T[:3, :3] = T[:3, :3] @ R
            cam = cam.with_pose(T)
        cams.append(cam)
    return Rig(tuple(cams), rig.world_frame)


class Relabelled:
    """A backend whose keypoint identities are permuted per camera (a model that labels by the room, not the body);
    ``random``: keypoints anywhere in the crop (a model that knows nothing of the body)."""

    def __init__(self, backend, perms: dict[int, np.ndarray] | None = None, random: bool = False):
        self.backend, self.perms, self.random = backend, perms or {}, random
        self.name, self.info = backend.name, backend.info
        self.rng = np.random.default_rng(0)

    def run(self, crops):
        kp, conf = self.backend.run(crops)
        kp, conf = kp.copy(), conf.copy()
        if self.random:
            kp = self.rng.uniform(0, self.info.crop_size - 1, kp.shape).astype(kp.dtype)
        for row, perm in self.perms.items():  # rows are views when every view found the person
            if row < len(kp):
                kp[row], conf[row] = kp[row][perm], conf[row][perm]
        return kp, conf


def swapped(rig: Rig, a: str, b: str) -> Rig:
    """The rig with cameras ``a`` and ``b``'s calibrations exchanged (names swapped in the rig file)."""
    import dataclasses

    by_name = {c.name: c for c in rig.cameras}
    other = {a: b, b: a}
    cams = [dataclasses.replace(by_name[other[c.name]], name=c.name, frame_id=c.frame_id) if c.name in other else c
            for c in rig.cameras]
    return Rig(tuple(cams), rig.world_frame)


def rewritten_bag(data: Path, rig: Rig, out: Path, camera: str, *, delay: int = 0, scale: float = 1.0) -> Path:
    """``data``'s recording as a new bag in ``out`` with camera ``camera`` altered: its images ``delay`` frames late
    (out of sync; its first frames repeat the first image), or scaled by ``scale`` about the top-left corner and
    padded back to the calibrated size (a video resized by its vendor). Stamps are the studio's."""
    from kp3d_core.bagio import BagWriter
    from kp3d_core.data.studio import StudioFolder

    folder = StudioFolder(data)
    stamps = folder.gt["stamps_ns"] if "stamps_ns" in folder.gt else np.arange(len(folder)) * 33_333_333
    with BagWriter(out) as bag:
        for cam in rig.cameras:
            bag.add_camera(cam.name)
        for t in range(len(folder)):
            images = folder.read_images(t)
            for v, cam in enumerate(rig.cameras):
                img = images[v]
                if cam.name == camera:
                    img = folder.read_images(max(t - delay, 0))[v]
                    if scale != 1.0:
                        small = cv2.resize(img, (round(W * scale), round(H * scale)), interpolation=cv2.INTER_AREA)
                        img = np.zeros_like(img)
                        img[: small.shape[0], : small.shape[1]] = small
                bag.write_image(cam.name, int(stamps[t]), img, cam)
    return out


def _case(data: Path, rig: Rig, backgrounds=None, config=PredictorConfig(), relabel=None, bag: Path | None = None
          ) -> dict:
    est = build_estimator(rig, backgrounds=backgrounds, predictor_config=config)
    if relabel is not None:
        est.predictor.backend = relabel(est.predictor.backend)
    run = run_check(bag or data / "bag", rig, est, progress=False, montage_frames=2)
    figs = summarise(run)
    gt = np.load(data / "gt.npz")["joints3d"]
    ok = np.isfinite(run.poses).all(axis=(1, 2))
    figs["mpjpe_mm"] = 1000 * mpjpe(run.poses[ok], gt[run.frame_index[ok]]) if ok.any() else float("inf")
    figs["verdicts"] = judge(figs)
    figs["run"] = run
    return figs


@pytest.fixture(scope="module")
def good(studio, rig):
    return _case(studio, rig, backgrounds=studio / "backgrounds")


@pytest.fixture(scope="module")
def turned_cam1(studio, rig):
    return _case(studio, turned(rig, "cam1", 5.0, shift_m=0.10), backgrounds=studio / "backgrounds")


@pytest.fixture(scope="module")
def names_swapped(studio, rig):
    return _case(studio, swapped(rig, "cam1", "cam2"), backgrounds=studio / "backgrounds")


@pytest.fixture(scope="module")
def out_of_sync(studio, rig, tmp_path_factory):
    bag = rewritten_bag(studio, rig, tmp_path_factory.mktemp("check") / "late", "cam2", delay=3)
    return _case(studio, rig, backgrounds=studio / "backgrounds", bag=bag)


@pytest.fixture(scope="module")
def scaled_padded(studio, rig, tmp_path_factory):
    bag = rewritten_bag(studio, rig, tmp_path_factory.mktemp("check") / "scaled", "cam2", scale=0.95)
    return _case(studio, rig, backgrounds=studio / "backgrounds", bag=bag)


@pytest.fixture(scope="module")
def wrong_scene(studio, other_scene, rig):
    return _case(studio, rig, backgrounds=other_scene / "backgrounds")


@pytest.fixture(scope="module")
def ghost(still_start, rig):
    # the background learnt from the first frames (a short warm-up, so that the recording can be short)
    return _case(still_start, rig, config=PredictorConfig(background_warmup=5, background_warmup_stride=2))


@pytest.fixture(scope="module")
def learnt_while_walking(studio, rig):
    # the person walks in view from the first frame while the background is learnt (8 frames over 0.5 s)
    return _case(studio, rig, config=PredictorConfig(background_warmup=8, background_warmup_stride=2))


@pytest.fixture(scope="module")
def shuffled(studio, rig):
    rng = np.random.default_rng(3)
    return _case(studio, rig, backgrounds=studio / "backgrounds",
                 relabel=lambda be: Relabelled(be, {v: rng.permutation(be.info.num_keypoints) for v in range(V)}))


@pytest.fixture(scope="module")
def random_keypoints(studio, rig):
    return _case(studio, rig, backgrounds=studio / "backgrounds", relabel=lambda be: Relabelled(be, random=True))


def _cam_verdicts(case) -> dict:
    return {n: c["verdict"] for n, c in case["verdicts"]["cameras"].items()}


def test_good_recording_is_ok_and_far_below_the_shuffled_null(good):
    r = good["reprojection"]
    assert r["ratio_to_null"] < 0.35, r
    assert r["null_median_px"] > 3 * r["median_px"]
    # the figure is the estimator's own (same DLT, same crop boxes), pooled over keypoints rather than per set
    assert r["median_box"] == pytest.approx(r["estimator_median_box"], rel=0.25)
    assert good["frames"]["with_pose_frac"] == 1.0 and good["frames"]["without_pose"]["background_warmup"] == 0
    assert good["verdicts"]["verdict"] == "ok", good["verdicts"]
    assert set(_cam_verdicts(good).values()) == {"ok"}


def test_a_turned_camera_is_the_one_flagged(good, turned_cam1):
    cams = turned_cam1["cameras"]
    biases = {n: c["loo_bias_box"] for n, c in cams.items()}
    assert max(biases, key=biases.get) == "cam1", biases
    assert turned_cam1["verdicts"]["cameras"]["cam1"]["verdict"] in ("suspect", "failing")
    assert "kp3d rig show" in " ".join(turned_cam1["verdicts"]["cameras"]["cam1"]["todo"])
    assert _cam_verdicts(turned_cam1)["cam0"] == "ok" and _cam_verdicts(turned_cam1)["cam2"] == "ok"
    assert turned_cam1["reprojection"]["median_px"] > good["reprojection"]["median_px"]
    assert turned_cam1["reprojection"]["ratio_to_null"] > good["reprojection"]["ratio_to_null"]
    assert turned_cam1["mpjpe_mm"] > good["mpjpe_mm"]  # ground truth agrees that it is worse


@pytest.mark.parametrize("case, flagged, says", [("names_swapped", {"cam1", "cam2"}, "look swapped"),
                                                 ("out_of_sync", {"cam2"}, "images late"),
                                                 ("scaled_padded", {"cam2"}, "kp3d rig show")])
def test_swapped_names_a_late_camera_and_a_resized_video_flag_their_cameras(good, case, flagged, says, request):
    broken = request.getfixturevalue(case)
    verdicts = _cam_verdicts(broken)
    assert {n for n, v in verdicts.items() if v != "ok"} >= flagged, (case, verdicts)
    for name in flagged:
        assert says in " ".join(broken["verdicts"]["cameras"][name]["todo"]), broken["verdicts"]["cameras"][name]
    biases = {n: c["loo_bias_box"] for n, c in broken["cameras"].items()}
    assert max(biases, key=biases.get) in flagged, (case, biases)
    assert broken["reprojection"]["ratio_to_null"] > good["reprojection"]["ratio_to_null"]
    assert broken["mpjpe_mm"] > good["mpjpe_mm"]  # ground truth agrees that it is worse


def test_backgrounds_of_another_scene_flag_every_camera_by_crop_size_and_foreground(good, wrong_scene):
    for name, c in wrong_scene["cameras"].items():
        assert c["box_median_frac"] > 1.0 > good["cameras"][name]["box_median_frac"]
        assert c["foreground_area_frac"] > 0.35 > 0.1 > good["cameras"][name]["foreground_area_frac"]
        v = wrong_scene["verdicts"]["cameras"][name]
        assert v["verdict"] == "failing" and "stored backgrounds do not match" in v["todo"][0]
    assert wrong_scene["verdicts"]["verdict"] == "failing"
    assert wrong_scene["mpjpe_mm"] > good["mpjpe_mm"]


def test_a_background_learnt_while_the_person_stood_still_is_flagged(good, ghost):
    frames = ghost["frames"]
    assert frames["without_pose"]["background_warmup"] > 0
    flagged = [n for n, v in ghost["verdicts"]["cameras"].items()
               if v["verdict"] != "ok" and any("--backgrounds" in t for t in v["todo"])]
    assert flagged, ghost["verdicts"]["cameras"]
    worst_out = max(c["outside_box_frac"] or 0 for c in ghost["cameras"].values())
    worst_on = min(c["on_foreground_frac"] or 1 for c in ghost["cameras"].values())
    assert worst_out > max(c["outside_box_frac"] for c in good["cameras"].values()) or \
        worst_on < min(c["on_foreground_frac"] for c in good["cameras"].values())
    assert ghost["mpjpe_mm"] > good["mpjpe_mm"]


def test_a_background_learnt_while_the_person_moved_in_view_is_suspect(good, learnt_while_walking):
    assert all(c["warmup_moving_to_foreground"] is None for c in good["cameras"].values())  # stored backgrounds
    cams = learnt_while_walking["cameras"]
    assert all(c["warmup_moving_to_foreground"] > 0.3 for c in cams.values()), cams
    for v in learnt_while_walking["verdicts"]["cameras"].values():
        assert v["verdict"] != "ok" and "--backgrounds" in v["todo"][0]
    assert learnt_while_walking["mpjpe_mm"] > good["mpjpe_mm"]


def test_shuffled_identities_reach_the_null_and_random_keypoints_leave_the_body(good, shuffled, random_keypoints):
    assert shuffled["reprojection"]["ratio_to_null"] > 0.6
    assert shuffled["verdicts"]["verdict"] == "failing"
    assert shuffled["frames"]["with_pose"] < good["frames"]["with_pose"]
    for name, c in random_keypoints["cameras"].items():
        assert c["on_foreground_frac"] < 0.45 < 0.75 < good["cameras"][name]["on_foreground_frac"]
        assert random_keypoints["verdicts"]["cameras"][name]["verdict"] == "failing"
        assert "adapt the model" in " ".join(random_keypoints["verdicts"]["cameras"][name]["todo"])


def test_two_cameras_have_no_leave_one_out_figures_but_a_verdict(studio, rig):
    pair = rig.subset(["cam0", "cam2"])
    est = build_estimator(pair, backgrounds=studio / "backgrounds")
    run = run_check(studio / "bag", pair, est, max_frames=6, progress=False, montage_frames=0)
    figs = summarise(run)
    assert run.keypoints2d.shape[:2] == (6, 2) and run.samples == []
    assert all(c["loo_bias_box"] is None and c["ratio_to_null"] is not None for c in figs["cameras"].values())
    assert judge(figs)["verdict"] in ("ok", "suspect", "failing")


def test_a_recording_shorter_than_the_warm_up_says_so(studio, rig):
    est = build_estimator(rig)  # background learnt from 15 frames, every 3rd: 43 frames
    run = run_check(studio / "bag", rig, est, max_frames=10, progress=False)
    figs = summarise(run)
    assert figs["frames"]["after_warmup"] == 0 and figs["frames"]["without_pose"]["background_warmup"] == 10
    assert figs["reprojection"]["median_px"] is None and figs["reprojection"]["ratio_to_null"] is None
    assert all(c["warmup_moving_frac"] is not None for c in figs["cameras"].values())  # measured at the end
    out = judge(figs)
    assert out["verdict"] == "failing" and any("--backgrounds" in t and "warm-up" in t for t in out["todo"])
    assert run.samples == []


# ------------------------------------------------------------------------------------------ the command
@pytest.fixture()
def kp3d(monkeypatch):
    """Run ``kp3d`` in process: (rc, stdout, stderr)."""
    from kp3d_ros import cli

    def run(argv, capsys):
        rc = cli.main(argv)
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def test_the_command_prints_every_figure_in_one_json_line_last_and_writes_montages(tmp_path, studio, kp3d, capsys):
    out = tmp_path / "check"
    rc, stdout, _ = kp3d(["check", "--bag", str(studio / "bag"), "--rig", str(studio / "rig.yaml"), "--backgrounds",
                          str(studio / "backgrounds"), "--out", str(out), "--max-frames", "12", "--stride", "2",
                          "--no-progress", "--montage-frames", "3"], capsys)
    assert rc == 0
    lines = stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert lines[0].startswith("verdict: ")
    assert result["frames"]["processed"] == 12
    for key in ("median_px", "p90_px", "median_box", "p90_box", "null_median_px", "null_p90_px", "null_median_box",
                "ratio_to_null", "estimator_median_box"):
        assert result["reprojection"][key] is not None, key
    for key in ("bone_cv_median", "bone_cv_max", "bone_cv", "root_speed_median_m_s", "root_speed_p90_m_s"):
        assert result["pose"][key] is not None, key
    assert len(result["pose"]["bone_cv"]) == len(BONES)
    assert set(result["frames"]["without_pose"]) >= {"background_warmup", "no_person", "too_few_views",
                                                     "rejected_reprojection", "too_few_keypoints"}
    assert list(result["cameras"]) == ["cam0", "cam1", "cam2", "cam3"]
    for c in result["cameras"].values():
        for key in ("found_frac", "box_median_frac", "box_max_frac", "on_foreground_frac", "foreground_area_frac",
                    "outside_box_frac", "warmup_moving_frac", "reprojection_median_px", "reprojection_median_box",
                    "ratio_to_null", "loo_median_px", "loo_bias_box", "verdict", "findings", "todo"):
            assert key in c, key
        assert c["verdict"] in ("ok", "suspect", "failing")
    assert result["verdict"] in ("ok", "suspect", "failing") and isinstance(result["todo"], list)
    assert [Path(p).name for p in result["montages"]] == ["cam0.png", "cam1.png", "cam2.png", "cam3.png"]
    for p in result["montages"]:
        img = cv2.imread(p)
        assert img is not None and img.shape[1] > 3 * 256  # three frames side by side
    assert json.loads((out / "check.json").read_text())["verdict"] == result["verdict"]


def _bad_rig(tmp_path, rig, **change):
    path = tmp_path / "rig.yaml"
    save_rig(rig, path)
    data = yaml.safe_load(path.read_text())
    data["cameras"][0].update(change)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("case", ["missing-bag", "malformed-rig", "missing-rig", "missing-checkpoint",
                                  "missing-backgrounds", "camera-not-in-bag", "image-size", "background-size"])
def test_bad_input_is_one_line_naming_the_culprit(tmp_path, studio, rig, kp3d, capsys, case):
    bag, rig_file, extra = str(studio / "bag"), str(studio / "rig.yaml"), []
    if case == "missing-bag":
        bag, culprit = str(tmp_path / "no_such_bag"), "no_such_bag"
    elif case == "malformed-rig":
        rig_file, culprit = str(_bad_rig(tmp_path, rig, T_world_cam=[1, 2, 3])), "T_world_cam"
    elif case == "missing-rig":
        rig_file, culprit = str(tmp_path / "no_rig.yaml"), "no_rig.yaml"
    elif case == "missing-checkpoint":
        extra, culprit = ["--checkpoint", str(tmp_path / "nope.pt")], "nope.pt"
    elif case == "missing-backgrounds":
        extra, culprit = ["--backgrounds", str(tmp_path / "no_bgs")], "no_bgs"
    elif case == "camera-not-in-bag":
        rig_file, culprit = str(_bad_rig(tmp_path, rig, camera_name="cam9")), "cam9"
    elif case == "image-size":
        small = ring_rig(V, width=160, height=120)
        save_rig(small, tmp_path / "small.yaml")
        rig_file, culprit = str(tmp_path / "small.yaml"), "160x120"
    else:
        (tmp_path / "bgs").mkdir()
        for cam in rig.cameras:
            cv2.imwrite(str(tmp_path / "bgs" / f"{cam.name}.png"), np.zeros((10, 10, 3), np.uint8))
        extra, culprit = ["--backgrounds", str(tmp_path / "bgs")], "cam0.png"
    rc, _, err = kp3d(["check", "--bag", bag, "--rig", rig_file, "--out", str(tmp_path / "o"), "--no-progress",
                       *extra], capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    assert lines[0].startswith("kp3d check: error: ") and culprit in lines[0], lines[0]

