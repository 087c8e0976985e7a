"""Varied pose generator and its joint limits: determinism, every action, limits measured back from
the joints, constant bones, feet on the floor, staying in place, left/right, variety against the
procedural generator."""
from __future__ import annotations

import numpy as np
import pytest

from kp3d_core.skeleton import JOINT_INDEX, NUM_JOINTS
from kp3d_core.studio.joint_limits import (
    ANGLES,
    JOINT_LIMITS,
    A,
    bounds,
    clamp_angles,
    excess_deg,
    measure_angles,
    pose_from_angles,
)
from kp3d_core.studio.motion import bone_lengths
from kp3d_core.studio.poses_generator import ACTIONS, FLIGHT_APEX_M, GRAVITY, STAY_RADIUS_M, varied_motion
from kp3d_core.studio.procedural import procedural_motion
from kp3d_core.studio.proportions import BodyProportions, sample_proportions

J = JOINT_INDEX
ANKLES = [J["left_ankle"], J["right_ankle"]]
WRISTS = [J["left_wrist"], J["right_wrist"]]
NOT_ANKLES = [j for j in range(NUM_JOINTS) if j not in ANKLES]
DEG = np.pi / 180


def _subject(seed: int) -> BodyProportions:
    return sample_proportions(np.random.default_rng([seed, 42]))


@pytest.fixture(scope="module")
def clips():
    """Mixed clips (every action may appear), 20 s each: three subjects, roaming and in place."""
    out = []
    for seed in (0, 1, 2):
        props = _subject(seed)
        for stay in (False, True):
            out.append((varied_motion(600, fps=30, seed=seed, proportions=props, stay_in_place=stay), props, stay))
    return out


@pytest.fixture(scope="module")
def long_clip():
    """90 s, every action at least once."""
    props = _subject(4)
    return varied_motion(2700, seed=4, proportions=props, radius_m=1.5), props


def _facing(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(T, 2) unit facing direction from a left/right joint pair (z up)."""
    f = np.cross(left - right, [0.0, 0.0, 1.0])[:, :2]
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def _longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best


def _airborne_runs(X: np.ndarray, ankle_height: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges with both ankles above standing height."""
    air = X[:, ANKLES, 2].min(axis=1) > ankle_height + 1e-6
    edges = np.flatnonzero(np.diff(np.r_[0, air.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


# ---------------------------------------------------------------------------------------------
# Joint angles and limits
# ---------------------------------------------------------------------------------------------
def test_measure_angles_inverts_forward_kinematics():
    rng = np.random.default_rng(0)
    props = _subject(0)
    q = clamp_angles(rng.uniform(-3, 3, size=(500, len(ANGLES))))
    X = pose_from_angles(q, props, heading=rng.uniform(-np.pi, np.pi, 500), root=rng.normal(size=(500, 3)))
    m = measure_angles(X)
    defined = np.isfinite(m)
    assert defined.all(axis=0).sum() == len(ANGLES) - 4          # only the 4 limb rotations can be undefined
    np.testing.assert_allclose(m[defined], q[defined], atol=1e-9)
    np.testing.assert_allclose(bone_lengths(X), np.broadcast_to(props.bone_lengths(), (500, 16)), atol=1e-12)


def test_left_side_is_plus_y_when_facing_plus_x():
    X = pose_from_angles(np.zeros((1, len(ANGLES))), _subject(0), heading=np.zeros(1))[0]
    for left, right in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_wrist", "right_wrist")):
        assert X[J[left], 1] > 0 > X[J[right], 1]
    q = np.zeros((1, len(ANGLES)))
    q[0, A["l_knee"]] = q[0, A["l_hip_flex"]] = q[0, A["l_sh_flex"]] = 60 * DEG
    X = pose_from_angles(q, _subject(0), heading=np.zeros(1))[0]
    assert X[J["left_knee"], 0] > 0.1 and X[J["left_elbow"], 0] > 0.1      # flexion swings forward (+x)


def test_clamp_enforces_the_table_and_its_coupled_bounds():
    q = np.zeros((3, len(ANGLES)))
    q[:, A["l_knee"]] = [-20 * DEG, 0.0, 90 * DEG]
    q[:, A["l_hip_flex"]] = 140 * DEG                              # more than any knee allows
    q[:, A["r_elbow"]] = 170 * DEG
    q[:, A["r_sh_flex"]] = q[:, A["r_sh_abd"]] = 170 * DEG         # a 240-degree swing
    q[:, A["chest_twist"]] = -90 * DEG
    c = clamp_angles(q)
    assert np.degrees(c[:, A["l_knee"]]) == pytest.approx([0, 0, 90])
    assert np.degrees(c[:, A["l_hip_flex"]]) == pytest.approx([85, 85, 125])   # hamstrings: straight knee
    assert np.degrees(c[:, A["r_elbow"]]) == pytest.approx([150] * 3)
    assert np.degrees(np.hypot(c[:, A["r_sh_flex"]], c[:, A["r_sh_abd"]])) == pytest.approx([175] * 3)
    assert np.degrees(c[:, A["chest_twist"]]) == pytest.approx([-40] * 3)
    assert excess_deg(c).max() == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(clamp_angles(c), c, atol=1e-12)                 # idempotent
    lo, hi = bounds(c)
    assert np.degrees(lo[0, A["l_hip_abd"]]) == pytest.approx(-25)             # legs cross only when flexed
    assert set(JOINT_LIMITS) >= {"knee", "elbow", "hip_flex", "hip_abd", "hip_rot", "sh_flex", "sh_abd",
                                 "back_flex", "neck_flex"}
    assert JOINT_LIMITS["knee"] == (0, 150) and JOINT_LIMITS["elbow"] == (0, 150)


def test_joint_limit_functions_check_shapes():
    with pytest.raises(ValueError, match="q"):
        pose_from_angles(np.zeros((2, 5)), _subject(0), heading=np.zeros(2))
    with pytest.raises(ValueError, match="joints3d"):
        measure_angles(np.zeros((2, 16, 3)))


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_arrays():
    a = varied_motion(300, seed=7)
    b = varied_motion(300, seed=7)
    c = varied_motion(300, seed=8)
    np.testing.assert_array_equal(a.joints3d, b.joints3d)
    assert a.segments == b.segments and a.source == "varied" and a.fps == 30
    assert np.abs(a.joints3d - c.joints3d).max() > 0.1
    assert varied_motion(1, seed=7).joints3d.shape == (1, NUM_JOINTS, 3)


def test_bad_arguments_raise():
    for kwargs, name in (({"num_frames": 0}, "num_frames"), ({"fps": 0}, "fps"), ({"radius_m": 0.5}, "radius_m"),
                         ({"actions": ["dance"]}, "actions"), ({"actions": []}, "actions")):
        args = {"num_frames": 10, **kwargs}
        with pytest.raises(ValueError, match=name):
            varied_motion(**args)


def test_every_action_appears_and_segments_tile_the_clip(long_clip):
    motion, _ = long_clip
    labels = [a for a, _, _ in motion.segments]
    assert set(labels) == set(ACTIONS)
    assert motion.segments[0][1] == 0 and motion.segments[-1][2] == motion.num_frames
    for (_, _, e), (_, s, _) in zip(motion.segments[:-1], motion.segments[1:]):
        assert e == s


def _action_signature(action: str, X: np.ndarray, props: BodyProportions, fps: float) -> bool:
    """What the action must show, measured from the joints."""
    ah, H, leg = props.ankle_height, props.height, props.leg_length
    ank = X[:, ANKLES, 2]
    standing = X[:, 0, 2].max()
    q = np.degrees(measure_angles(X))
    if action == "jump":
        return len(_airborne_runs(X, ah)) > 0
    if action == "crouch":
        return standing - X[:, 0, 2].min() > 0.2 * leg
    if action == "kick":
        return (ank.max(axis=1) - ah).max() > 0.25 * H
    if action == "arms_overhead":
        return (X[:, WRISTS, 2].max(axis=1) > X[:, J["head"], 2] + 0.05).any()
    if action == "balance":
        one_leg = (ank.max(axis=1) > ah + 0.1) & (ank.min(axis=1) < ah + 1e-6)
        return _longest_run(one_leg) > 1.5 * fps
    if action == "turn":
        f = _facing(X[:, J["left_hip"]], X[:, J["right_hip"]])
        return np.ptp(np.unwrap(np.arctan2(f[:, 1], f[:, 0]))) > 50 * DEG
    if action == "sit":
        behind = np.linalg.norm(X[:, 0, :2] - X[:, ANKLES, :2].mean(axis=1), axis=1) > 0.2
        return _longest_run((X[:, 0, 2] < 0.7 * standing) & behind) > 1.0 * fps
    if action == "reach_down":
        return X[:, WRISTS, 2].min() < 0.15
    if action == "lunge":
        apart = np.linalg.norm(X[:, ANKLES[0], :2] - X[:, ANKLES[1], :2], axis=1) > 0.45 * leg
        return (apart & (X[:, 0, 2] < standing - 0.12 * leg)).sum() > 0.3 * fps
    if action == "torso":
        trunk = np.stack([q[:, A["back_flex"]] + q[:, A["chest_flex"]], q[:, A["back_side"]] + q[:, A["chest_side"]],
                          q[:, A["chest_twist"]]], axis=1)
        return np.abs(trunk - trunk[0]).max() > 15
    if action == "arm_swing":
        return max(np.ptp(np.hypot(q[:, A[f"{s}_sh_flex"]], q[:, A[f"{s}_sh_abd"]])) for s in "lr") > 100
    if action == "free":
        C = X - X[:, :1]
        return np.linalg.norm(C - C[0], axis=-1).mean(axis=1).max() > 0.2
    if action == "step":
        return np.linalg.norm(X[:, 0, :2] - X[0, 0, :2], axis=1).max() > 0.4
    raise AssertionError(f"no signature for {action}")


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_shows_itself(action):
    props = _subject(3)
    stay = action != "step"       # in place, ``step`` marches on the spot
    m = varied_motion(300, seed=3, proportions=props, actions=[action], stay_in_place=stay)
    assert {a for a, _, _ in m.segments} == {action}
    assert _action_signature(action, m.joints3d, props, m.fps), action


def test_joint_limits_hold_on_every_frame(clips, long_clip):
    for motion, _, _ in clips + [(*long_clip, False)]:
        X = motion.joints3d
        assert excess_deg(measure_angles(X)).max() < 1e-6
        # Knees and elbows once more from plain geometry: 0 (straight) to 150 degrees.
        for a, b, c in (("hip", "knee", "ankle"), ("shoulder", "elbow", "wrist")):
            for side in ("left", "right"):
                u = X[:, J[f"{side}_{b}"]] - X[:, J[f"{side}_{a}"]]
                v = X[:, J[f"{side}_{c}"]] - X[:, J[f"{side}_{b}"]]
                cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
                assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() <= 150 + 1e-6


def test_bone_lengths_are_the_subjects_on_every_frame(clips):
    for motion, props, _ in clips:
        L = motion.bone_lengths()
        np.testing.assert_allclose(L, np.broadcast_to(props.bone_lengths(), L.shape), atol=1e-9)
        assert np.ptp(L, axis=0).max() < 1e-6


def test_feet_on_the_floor_and_planted_feet_stay_put(clips):
    for motion, props, _ in clips:
        X, ah = motion.joints3d, props.ankle_height
        ank = X[:, ANKLES, 2]
        assert ank.min() >= ah - 1e-9                          # no foot below the floor
        assert X[:, NOT_ANKLES, 2].min() > 0.0                 # nor a knee or hand
        # Off the floor only while jumping; otherwise the lower ankle is at standing height.
        jumping = np.zeros(len(X), dtype=bool)
        for a, s, e in motion.segments:
            jumping[s:e] |= a == "jump"
        np.testing.assert_allclose(ank.min(axis=1)[~jumping], ah, atol=1e-9)
        # A foot on the floor in two consecutive frames does not slide.
        on = ank < ah + 0.003
        both = on[1:] & on[:-1]
        speed = np.linalg.norm(np.diff(X[:, ANKLES, :2], axis=0), axis=-1)[both] * motion.fps
        assert speed.mean() < 0.01 and np.percentile(speed, 99) < 0.05, (speed.mean(), np.percentile(speed, 99))


def test_jumps_are_ballistic_and_land():
    props = _subject(5)
    runs = 0
    for seed in (5, 6):
        m = varied_motion(300, seed=seed, proportions=props, actions=["jump"], stay_in_place=True)
        X, fps = m.joints3d, m.fps
        for s, e in _airborne_runs(X, props.ankle_height):
            runs += 1
            z = X[s - 1:e + 1, 0, 2]                             # take-off frame .. landing frame
            rise = z.max() - z[0]
            assert FLIGHT_APEX_M[0] - 0.005 <= rise <= FLIGHT_APEX_M[1], rise
            np.testing.assert_allclose(np.diff(z, 2) * fps ** 2, -GRAVITY, atol=1e-6)   # free fall
            assert X[e, ANKLES, 2].min() == pytest.approx(props.ankle_height, abs=1e-9)  # landed
    assert runs >= 2


def test_stay_in_place_keeps_the_pelvis_within_half_a_metre(clips):
    stays = [m for m, _, stay in clips if stay]
    stays += [varied_motion(600, seed=s, stay_in_place=True) for s in (10, 11, 12)]
    for m in stays:
        drift = np.linalg.norm(m.joints3d[:, 0, :2] - m.joints3d[0, 0, :2], axis=1).max()
        assert drift <= STAY_RADIUS_M, drift


def test_roaming_steps_around_inside_the_radius(long_clip):
    motion, _ = long_clip
    X = motion.joints3d
    assert np.linalg.norm(X[:, :, :2], axis=-1).max() <= 1.5
    assert np.linalg.norm(X[:, 0, :2] - X[0, 0, :2], axis=1).max() > 0.4
    small = varied_motion(600, seed=2, radius_m=1.0)
    assert np.linalg.norm(small.joints3d[:, :, :2], axis=-1).max() <= 1.0


def test_left_and_right_are_not_mirrored(clips):
    for motion, _, _ in clips:
        X = motion.joints3d
        hips = _facing(X[:, J["left_hip"]], X[:, J["right_hip"]])
        chest = _facing(X[:, J["left_shoulder"]], X[:, J["right_shoulder"]])
        assert np.degrees(np.arccos(np.clip((hips * chest).sum(1), -1, 1))).max() < 45   # twist limit 40
        # Knees bend forward: the facing read from the left/right labels agrees with the anatomy.
        q = measure_angles(X)
        for side, s in (("left", "l"), ("right", "r")):
            H, K, An = X[:, J[f"{side}_hip"]], X[:, J[f"{side}_knee"]], X[:, J[f"{side}_ankle"]]
            line = An - H
            off = (K - H) - ((K - H) * line).sum(1, keepdims=True) / (line * line).sum(1, keepdims=True) * line
            bent = q[:, A[f"{s}_knee"]] > 30 * DEG
            assert bent.sum() > 10
            assert ((off[bent, :2] * hips[bent]).sum(1) > 0).mean() > 0.95


def test_smooth_without_teleports(clips):
    for motion, _, _ in clips:
        step = np.linalg.norm(np.diff(motion.joints3d, axis=0), axis=-1)
        assert step.max() * motion.fps < 18.0                  # fastest limb (a kick's foot) < 18 m/s
        assert step[:, 0].max() * motion.fps < 4.0             # pelvis < 4 m/s


def test_other_frame_rates():
    m = varied_motion(240, fps=60, seed=1, actions=["jump", "kick"], stay_in_place=True)
    assert m.fps == 60 and m.num_frames == 240
    assert np.ptp(m.bone_lengths(), axis=0).max() < 1e-9
    assert excess_deg(measure_angles(m.joints3d)).max() < 1e-6


def _variety(motions: list, props: BodyProportions) -> dict:
    X = np.concatenate([m.joints3d for m in motions])
    idx = np.random.default_rng(0).choice(len(X), 400, replace=False)
    C = X[idx] - X[idx, :1]
    f = _facing(C[:, J["left_hip"]], C[:, J["right_hip"]])               # yaw-normalise
    c, s = f[:, 0], f[:, 1]
    C = np.stack([c[:, None] * C[..., 0] + s[:, None] * C[..., 1], -s[:, None] * C[..., 0] + c[:, None] * C[..., 1],
                  C[..., 2]], axis=-1)
    d = np.linalg.norm(C[:, None] - C[None], axis=-1).mean(-1)
    q = np.degrees(measure_angles(X))
    cover = []
    for n in ANGLES:
        lo, hi = JOINT_LIMITS[n[2:] if n[:2] in ("l_", "r_") else n]
        v = q[:, A[n]][np.isfinite(q[:, A[n]])]
        cover.append((np.percentile(v, 99) - np.percentile(v, 1)) / (hi - lo))
    ank = X[:, ANKLES, 2]
    return {"pairwise_mm": 1000 * d[np.triu_indices(len(C), 1)].mean(),
            "wrist_height_std": (X[:, WRISTS, 2] / props.height).std(),
            "knee_std_deg": q[:, [A["l_knee"], A["r_knee"]]].std(),
            "range_coverage": float(np.mean(cover)),
            "one_leg_frac": float(((ank.max(1) - ank.min(1)) > 0.1).mean()),
            "wrists_over_head_frac": float((X[:, WRISTS, 2].max(1) > X[:, J["head"], 2]).mean())}


def test_poses_are_more_varied_than_the_procedural_generators(record_property):
    props = BodyProportions.from_height(1.75)
    ours = _variety([varied_motion(600, seed=s, proportions=props) for s in range(3)], props)
    theirs = _variety([procedural_motion(600, seed=s, proportions=props) for s in range(3)], props)
    for k in ours:
        record_property(f"varied_{k}", round(float(ours[k]), 3))
        record_property(f"procedural_{k}", round(float(theirs[k]), 3))
    print("\nvariety (varied vs procedural):",
          {k: (round(float(ours[k]), 3), round(float(theirs[k]), 3)) for k in ours})
    assert ours["pairwise_mm"] > 1.4 * theirs["pairwise_mm"]
    assert ours["range_coverage"] > 1.3 * theirs["range_coverage"]
    assert ours["knee_std_deg"] > theirs["knee_std_deg"]
    assert ours["wrist_height_std"] > theirs["wrist_height_std"]
    assert ours["one_leg_frac"] > 3 * theirs["one_leg_frac"]
    assert ours["wrists_over_head_frac"] > 2 * theirs["wrists_over_head_frac"]
