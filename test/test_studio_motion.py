"""Studio motion: procedural generator, Motion helpers, joint maps and retargeting."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kp3d_core.cli_args import UsageError
from kp3d_core.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from kp3d_core.studio.bvh import load_bvh
from kp3d_core.studio.cli import clip_schedule
from kp3d_core.studio.motion import Motion, fit_in_volume
from kp3d_core.studio.procedural import ACTIONS, procedural_motion
from kp3d_core.studio.proportions import BodyProportions, sample_proportions
from kp3d_core.studio.retarget import (
    GROUNDED_ANKLE_M,
    JointMapError,
    detect_joint_map,
    ground_feet,
    list_motion_clips,
    load_joint_map,
    load_motion_dir,
    retarget,
)

MOTION_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "motion"
BANDAI_DIR = MOTION_ROOT / "bandai_namco_1"
CMU_DIR = MOTION_ROOT / "cmu_131"
J = JOINT_INDEX
ANKLES = [J["left_ankle"], J["right_ankle"]]
WRISTS = [J["left_wrist"], J["right_wrist"]]


@pytest.fixture(scope="module")
def long_motion() -> tuple[Motion, BodyProportions]:
    props = sample_proportions(np.random.default_rng(11))
    return procedural_motion(1200, fps=30, seed=5, proportions=props, volume_radius=1.5), props


# ---------------------------------------------------------------------------------------------
# Procedural motion
# ---------------------------------------------------------------------------------------------
def test_procedural_bone_lengths_exact_and_equal_to_subject(long_motion):
    motion, props = long_motion
    assert motion.joints3d.shape == (1200, NUM_JOINTS, 3) and motion.fps == 30
    L = motion.bone_lengths()
    np.testing.assert_allclose(L, np.broadcast_to(props.bone_lengths(), L.shape), atol=1e-9)


def test_procedural_stays_in_volume_and_on_floor(long_motion):
    motion, props = long_motion
    X = motion.joints3d
    assert np.linalg.norm(X[..., :2], axis=-1).max() <= 1.5
    lowest_ankle = X[:, ANKLES, 2].min(axis=1)
    assert lowest_ankle.min() == pytest.approx(props.ankle_height, abs=1e-9)   # never through the floor
    airborne = lowest_ankle > props.ankle_height + 1e-6
    assert 0 < airborne.mean() < 0.2                                            # jumps only
    for a, s, e in motion.segments:
        if a != "jumping_jacks":
            np.testing.assert_allclose(lowest_ankle[s:e], props.ankle_height, atol=1e-9)
    # Upright: head top above the pelvis, near the subject's height when standing.
    assert (X[:, J["head"], 2] > X[:, J["pelvis"], 2]).all()
    assert np.percentile(X[:, J["head"], 2], 90) == pytest.approx(props.height, abs=0.08)
    # Smooth: no joint moves more than 0.4 m between frames at 30 fps (12 m/s).
    assert np.linalg.norm(np.diff(X, axis=0), axis=-1).max() < 0.4


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_procedural_small_and_large_volumes(radius):
    m = procedural_motion(600, seed=2, volume_radius=radius)
    assert np.linalg.norm(m.joints3d[..., :2], axis=-1).max() <= radius
    L = m.bone_lengths()
    assert np.ptp(L, axis=0).max() < 1e-9


def test_procedural_covers_actions(long_motion):
    motion, props = long_motion
    X = motion.joints3d
    seen = {a for a, _, _ in motion.segments}
    assert seen == set(ACTIONS), seen
    starts = [s for _, s, _ in motion.segments]
    assert starts == sorted(starts) and motion.segments[-1][2] == motion.num_frames

    def frames(action):
        return np.concatenate([np.arange(s, e) for a, s, e in motion.segments if a == action])

    walk = frames("walk")
    path = np.linalg.norm(np.diff(X[walk, 0, :2], axis=0), axis=-1)
    assert path[path < 0.2].sum() > 1.0                                # walks somewhere
    # The planted (lower) foot stays put while the pelvis moves: mean slide under 3 cm/s.
    w = walk[:-1][np.diff(walk) == 1]
    planted = np.where(X[w][:, J["left_ankle"], 2] < X[w][:, J["right_ankle"], 2], J["left_ankle"], J["right_ankle"])
    slide = np.linalg.norm(X[w + 1, planted, :2] - X[w, planted, :2], axis=-1) * motion.fps
    pelvis_speed = np.linalg.norm(X[w + 1, 0, :2] - X[w, 0, :2], axis=-1) * motion.fps
    assert pelvis_speed.max() > 0.5 and slide.mean() < 0.03, (pelvis_speed.max(), slide.mean())
    squat = frames("squat")
    assert X[squat, 0, 2].min() < X[walk, 0, 2].max() - 0.18 * props.height   # pelvis drops
    jj = frames("jumping_jacks")
    assert (X[jj][:, WRISTS, 2].max(axis=1) > X[jj, J["head"], 2]).any()      # hands over head
    assert (X[jj][:, ANKLES, 2].min(axis=1) > props.ankle_height + 0.03).any()  # feet leave floor
    feet_apart = np.linalg.norm(X[jj, J["left_ankle"]] - X[jj, J["right_ankle"]], axis=-1)
    assert feet_apart.max() > 2.0 * props.hip_half_width + 0.15
    gest = frames("gesture")
    assert (X[gest][:, WRISTS, 2].max(axis=1) > X[gest, J["thorax"], 2] - 0.05).any()  # arm raised
    reach = frames("reach")
    shoulder_to_wrist = np.linalg.norm(X[reach][:, WRISTS] - X[reach][:, [J["left_shoulder"], J["right_shoulder"]]],
                                       axis=-1)
    assert shoulder_to_wrist.max() > 0.9 * (props.upper_arm + props.forearm)      # arm stretched
    turn = frames("turn")
    fwd = np.cross(X[turn, J["left_hip"]] - X[turn, J["right_hip"]], [0, 0, 1])  # facing direction
    heading = np.unwrap(np.arctan2(fwd[:, 1], fwd[:, 0]))
    assert np.ptp(heading) > np.radians(45)


def test_procedural_deterministic_per_seed():
    a = procedural_motion(300, seed=7)
    b = procedural_motion(300, seed=7)
    c = procedural_motion(300, seed=8)
    np.testing.assert_array_equal(a.joints3d, b.joints3d)
    assert a.segments == b.segments
    assert np.abs(a.joints3d - c.joints3d).max() > 0.1
    # A shorter request is a prefix of the longer one up to the last crossfade.
    assert procedural_motion(1, seed=7).joints3d.shape == (1, NUM_JOINTS, 3)


def test_procedural_bad_arguments():
    with pytest.raises(ValueError, match="volume_radius"):
        procedural_motion(10, volume_radius=0.5)
    with pytest.raises(ValueError, match="num_frames"):
        procedural_motion(0)
    with pytest.raises(ValueError, match="fps"):
        procedural_motion(10, fps=0)


# ---------------------------------------------------------------------------------------------
# Proportions and Motion helpers
# ---------------------------------------------------------------------------------------------
def test_proportions_sum_to_height_and_vary():
    rng = np.random.default_rng(0)
    subjects = [sample_proportions(rng, (1.6, 1.9)) for _ in range(20)]
    for p in subjects:
        assert 1.6 <= p.height <= 1.9
        chain = p.ankle_height + p.shin + p.thigh + p.hip_drop + p.spine + p.thorax + p.neck + p.head
        assert chain == pytest.approx(p.height, rel=1e-12)
        assert p.bone_lengths().shape == (16,)
    ratios = np.array([p.thigh / p.height for p in subjects])
    assert np.ptp(ratios) > 0.01
    # Same seed, same subject.
    assert sample_proportions(np.random.default_rng(4)) == sample_proportions(np.random.default_rng(4))
    with pytest.raises(ValueError, match="height"):
        BodyProportions.from_height(175)


def test_resample_keeps_bone_lengths_and_times():
    m = procedural_motion(91, fps=30, seed=1)
    up = m.resample(60)
    assert up.num_frames == 181 and up.fps == 60
    assert up.duration == pytest.approx(m.duration)
    np.testing.assert_allclose(up.joints3d[::2], m.joints3d, atol=1e-9)   # shared instants unchanged
    np.testing.assert_allclose(up.bone_lengths(), np.broadcast_to(m.bone_lengths()[0], (181, 16)), atol=1e-9)
    down = m.resample(10)
    assert down.num_frames == 31
    np.testing.assert_allclose(down.joints3d, m.joints3d[::3], atol=1e-9)
    assert [a for a, *_ in down.segments] == [a for a, *_ in m.segments]


def test_motion_validates_shape():
    with pytest.raises(ValueError, match="joints3d"):
        Motion("x", np.zeros((5, 16, 3)), 30.0, "test")
    with pytest.raises(ValueError, match="fps"):
        Motion("x", np.zeros((5, 17, 3)), 0.0, "test")


def test_fit_in_volume_shrinks_path_only():
    m = procedural_motion(200, seed=3, volume_radius=1.5)
    X = m.joints3d.copy()
    X[:, :, 0] += np.linspace(-3, 3, len(X))[:, None]     # a 6 m walk
    out, k = fit_in_volume(X, 1.5)
    assert 0 < k < 1
    assert np.linalg.norm(out[..., :2], axis=-1).max() <= 1.5
    np.testing.assert_allclose(out - out[:, :1], X - X[:, :1], atol=1e-9)   # poses unchanged
    with pytest.raises(ValueError, match="volume_radius"):
        fit_in_volume(X, 0.2)


# ---------------------------------------------------------------------------------------------
# Joint maps and retargeting (synthetic z-up, millimetre skeleton written here)
# ---------------------------------------------------------------------------------------------
# A humanoid with its own joint names, z up, millimetres; arms and legs hang along -z.
_BODY = [  # name, parent, offset (mm)
    ("Root", None, (0, 0, 950)),
    ("HipR", "Root", (0, -90, -30)), ("KneeR", "HipR", (0, 0, -430)), ("AnkleR", "KneeR", (0, 0, -420)),
    ("HipL", "Root", (0, 90, -30)), ("KneeL", "HipL", (0, 0, -430)), ("AnkleL", "KneeL", (0, 0, -420)),
    ("Back", "Root", (0, 0, 230)), ("Chest", "Back", (0, 0, 250)), ("NeckTop", "Chest", (0, 0, 110)),
    ("ShoulderL", "Chest", (0, 190, -20)), ("ElbowL", "ShoulderL", (0, 0, -300)), ("WristL", "ElbowL", (0, 0, -260)),
    ("ShoulderR", "Chest", (0, -190, -20)), ("ElbowR", "ShoulderR", (0, 0, -300)), ("WristR", "ElbowR", (0, 0, -260)),
]
_MAP = {
    "pelvis": "Root", "right_hip": "HipR", "right_knee": "KneeR", "right_ankle": "AnkleR",
    "left_hip": "HipL", "left_knee": "KneeL", "left_ankle": "AnkleL", "spine": "Back", "thorax": "Chest",
    "neck": "NeckTop", "left_shoulder": "ShoulderL", "left_elbow": "ElbowL", "left_wrist": "WristL",
    "right_shoulder": "ShoulderR", "right_elbow": "ElbowR", "right_wrist": "WristR",
}


def _write_body_bvh(path: Path, frames: int = 60, walk_m: float = 0.0, seed: int = 0, hip_mm: float = 950.0) -> Path:
    """The `_BODY` humanoid walking ``walk_m`` along x, its root ``hip_mm`` above the file's origin (950: feet on
    the floor; 0: a file whose origin is at the hips)."""
    children = {n: [c for c, p, _ in _BODY if p == n] for n, _, _ in _BODY}
    offsets = {n: o for n, _, o in _BODY}
    lines = ["HIERARCHY"]

    def emit(name, depth, root=False):
        ind = "  " * depth
        lines.append(f"{ind}{'ROOT' if root else 'JOINT'} {name}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {offsets[name][0]} {offsets[name][1]} {offsets[name][2]}")
        chans = "Xposition Yposition Zposition " if root else ""
        lines.append(f"{ind}  CHANNELS {6 if root else 3} {chans}Zrotation Yrotation Xrotation")
        for c in children[name]:
            emit(c, depth + 1)
        if name == "NeckTop":
            lines.append(f"{ind}  End Site\n{ind}  {{\n{ind}    OFFSET 0 0 120\n{ind}  }}")
        lines.append(f"{ind}}}")

    emit("Root", 0, root=True)
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / 120.0
    angles = 12 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0, (1, 3 * len(_BODY))) * t + rng.uniform(0, 6, (1, 3 * len(_BODY))))
    pos = np.zeros((frames, 3))
    pos[:, 0] = np.linspace(0, walk_m * 1000, frames)
    pos[:, 2] = hip_mm + 10 * np.sin(t[:, 0] * 6)
    rows = []
    for f in range(frames):
        vals = list(pos[f]) + list(angles[f, :3])
        vals += list(angles[f, 3:])
        rows.append(" ".join(f"{v:.5f}" for v in vals))
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1 / 120:.7f}"] + rows
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_map(path: Path, **over) -> Path:
    import yaml
    data = {"name": "test_body", "unit": "mm", "up_axis": "z",
            "joints": dict(_MAP, head={"joint": "NeckTop", "local_offset": [0, 0, 120]})}
    data.update(over)
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_maps_load():
    for name in ("bandai_namco", "cmu"):
        jm = load_joint_map(name)
        assert set(jm.joints) == set(JOINT_NAMES) and jm.up_axis == "y"
    assert load_joint_map("cmu").unit == pytest.approx(0.0254 / 0.45)
    assert load_joint_map("bandai_namco").unit == pytest.approx(0.01)


def test_joint_map_unknown_joints_named(tmp_path):
    clip = load_bvh(_write_body_bvh(tmp_path / "body.bvh"))
    bad_studio = _write_map(tmp_path / "bad_studio.yaml", joints=dict(_MAP, head="NeckTop", nose="NeckTop"))
    with pytest.raises(JointMapError, match="'nose'") as err:
        load_joint_map(bad_studio)
    assert str(bad_studio) in str(err.value)
    bad_bvh = _write_map(tmp_path / "bad_bvh.yaml", joints=dict(_MAP, head="Skull"))
    jm = load_joint_map(bad_bvh)                      # fine on its own ...
    with pytest.raises(JointMapError, match="'Skull'") as err:
        load_joint_map(bad_bvh, clip=clip)            # ... but not for this skeleton
    assert str(bad_bvh) in str(err.value) and "body.bvh" in str(err.value)
    with pytest.raises(JointMapError, match="'Skull'"):
        retarget(clip, jm)
    missing = _write_map(tmp_path / "missing.yaml", joints={k: v for k, v in _MAP.items() if k != "spine"})
    with pytest.raises(JointMapError, match="spine"):
        load_joint_map(missing)
    with pytest.raises(JointMapError, match="unit"):
        load_joint_map(_write_map(tmp_path / "unit.yaml", unit="furlong"))
    with pytest.raises(JointMapError, match="up_axis"):
        load_joint_map(_write_map(tmp_path / "up.yaml", up_axis="x"))


def test_retarget_synthetic_units_axes_fps_volume(tmp_path):
    clip = load_bvh(_write_body_bvh(tmp_path / "body.bvh", frames=241, walk_m=4.0))
    jm = load_joint_map(_write_map(tmp_path / "map.yaml"))
    m = retarget(clip, jm, fps=30, volume_radius=1.5)
    assert m.num_frames == 61 and m.fps == 30 and m.source.endswith("body.bvh")
    X = m.joints3d
    assert (X[:, J["head"], 2] > X[:, J["pelvis"], 2] + 0.4).all()             # upright, metres
    assert np.percentile(X[:, J["head"], 2], 50) == pytest.approx(0.95 + 0.23 + 0.25 + 0.11 + 0.12, abs=0.05)
    assert X[:, J["left_hip"], 1].mean() > X[:, J["right_hip"], 1].mean()      # no mirroring
    assert np.linalg.norm(X[..., :2], axis=-1).max() <= 1.5                    # 4 m walk shrunk
    assert np.ptp(m.bone_lengths(), axis=0).max() < 1e-9
    # Same shape from the along-form of the head and from a metre-unit, y-up copy is not needed:
    # the along form puts the head top 0.12 m beyond the neck along chest -> neck.
    jm2 = load_joint_map(_write_map(tmp_path / "map2.yaml",
                                    joints=dict(_MAP, head={"joint": "NeckTop", "along": ["Chest", "NeckTop"], "length": 0.12})))
    m2 = retarget(clip, jm2, fps=30, volume_radius=1.5)
    np.testing.assert_allclose(np.linalg.norm(m2.joints3d[:, J["head"]] - m2.joints3d[:, J["neck"]], axis=-1), 0.12, atol=1e-9)


def test_retarget_rescales_to_subject(tmp_path):
    clip = load_bvh(_write_body_bvh(tmp_path / "body.bvh", frames=121))
    jm = load_joint_map(_write_map(tmp_path / "map.yaml"))
    props = BodyProportions.from_height(1.9)
    m = retarget(clip, jm, fps=30, proportions=props)
    np.testing.assert_allclose(m.bone_lengths(), np.broadcast_to(props.bone_lengths(), (m.num_frames, 16)), atol=1e-9)
    low = m.joints3d[:, ANKLES, 2].min(axis=1)
    assert np.percentile(low, 5) == pytest.approx(props.ankle_height, abs=1e-9)
    assert m.joints3d[:, J["head"], 2].max() == pytest.approx(1.9, abs=0.08)


def test_list_and_load_motion_dir_synthetic(tmp_path):
    (tmp_path / "sub").mkdir()
    _write_body_bvh(tmp_path / "sub" / "b.bvh", frames=30)
    _write_body_bvh(tmp_path / "a.BVH", frames=30, seed=1)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_motion_clips(tmp_path)] == ["a.BVH", "b.bvh"]
    assert list_motion_clips(tmp_path / "nope") == []
    motions = load_motion_dir(tmp_path, joint_map=_write_map(tmp_path / "map.yaml"))
    assert [m.name for m in motions] == ["a", "b"]
    with pytest.raises(JointMapError, match="no shipped joint map"):
        load_motion_dir(tmp_path)                  # unknown skeleton, no map given
    with pytest.raises(FileNotFoundError):
        load_motion_dir(tmp_path / "sub" / "empty_dir_that_is_missing")


def test_clip_with_feet_below_the_floor_is_grounded_with_a_warning(tmp_path):
    jm = load_joint_map(_write_map(tmp_path / "map.yaml"))
    warnings = []
    sunk = retarget(load_bvh(_write_body_bvh(tmp_path / "hips_at_0.bvh", frames=61, hip_mm=0.0)), jm,
                    warn=warnings.append)
    assert len(warnings) == 1 and "hips_at_0.bvh" in warnings[0] and "below the floor" in warnings[0]
    low = sunk.joints3d[:, ANKLES, 2].min()
    assert low == pytest.approx(GROUNDED_ANKLE_M, abs=1e-9)        # the lowest foot stands on the floor
    # The same motion with its origin on the floor: untouched, no warning; grounding moved the whole clip only.
    standing = retarget(load_bvh(_write_body_bvh(tmp_path / "ok.bvh", frames=61)), jm, warn=warnings.append)
    assert len(warnings) == 1
    lift = standing.joints3d[:, ANKLES, 2].min() - low
    np.testing.assert_allclose(sunk.joints3d + [0.0, 0.0, lift], standing.joints3d, atol=1e-9)
    assert ground_feet(standing.joints3d)[1] == 0.0


def test_clip_schedule_skips_starts_windows_and_orders_clips():
    # clip 2 (5 frames) is no longer than the start: left out; the others play frames [5, 15) in turn
    plan = clip_schedule([40, 20, 5], frames=35, start=5, window=10)
    assert plan == [(0, 5, 15), (1, 5, 15), (0, 5, 15), (1, 5, 10)]
    assert clip_schedule([40, 20], frames=50) == [(0, 0, 40), (1, 0, 10)]              # whole clips in order
    assert [c for c, _, _ in clip_schedule([5, 5, 5], frames=15, order=[2, 0, 1])] == [2, 0, 1]
    with pytest.raises(UsageError, match="--clip-start 8"):
        clip_schedule([8, 3], frames=10, start=8)


# ---------------------------------------------------------------------------------------------
# Real clips (skipped, naming the folder, when the data is absent)
# ---------------------------------------------------------------------------------------------
def _need(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"motion data folder {folder} not present")


@pytest.mark.parametrize("folder, name, pattern", [
    (BANDAI_DIR, "bandai_namco", "data/dataset-1_walk_normal_001.bvh"),
    (BANDAI_DIR, "bandai_namco", "data/dataset-1_bow_active_001.bvh"),
    (CMU_DIR, "cmu", "131_02.bvh"),
])
def test_retarget_real_clips_upright_metres(folder, name, pattern):
    _need(folder)
    clip = load_bvh(folder / pattern)
    jm = detect_joint_map(clip)
    assert jm.name == name
    m = retarget(clip, jm, fps=30, volume_radius=1.5)
    X = m.joints3d
    assert m.fps == 30 and m.num_frames == int(np.floor(clip.duration * 30 + 0.02)) + 1
    assert (X[:, J["head"], 2] > X[:, J["pelvis"], 2]).mean() > 0.95            # upright
    height = np.percentile(X[:, J["head"], 2], 95)
    assert 1.4 < height < 2.1, height                                             # metres
    assert 0.0 < np.percentile(X[:, ANKLES, 2].min(axis=1), 5) < 0.2               # feet near the floor
    assert np.linalg.norm(X[..., :2], axis=-1).max() <= 1.5
    assert np.ptp(m.bone_lengths(), axis=0).max() < 1e-9
    # Left stays left: facing direction from the hips agrees with the direction of travel or the
    # toes; here we check the knees bend forward (knee ahead of the hip-ankle line) on average.
    fwd = np.cross(X[:, J["left_hip"]] - X[:, J["right_hip"]], [0, 0, 1])
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    for side in ("left", "right"):
        mid = 0.5 * (X[:, J[f"{side}_hip"]] + X[:, J[f"{side}_ankle"]])
        ahead = ((X[:, J[f"{side}_knee"]] - mid) * fwd).sum(axis=-1)
        assert np.median(ahead) > 0.0, side


def test_load_motion_dir_detects_both_layouts():
    _need(BANDAI_DIR)
    _need(CMU_DIR)
    props = BodyProportions.from_height(1.7)
    for folder in (BANDAI_DIR, CMU_DIR):
        motions = load_motion_dir(folder, max_clips=1, proportions=props)
        assert len(motions) == 1
        m = motions[0]
        assert m.joints3d[:, J["head"], 2].max() == pytest.approx(1.7, abs=0.1)
