"""The procedural motion generator: actions (walk, turn, gesture, ...) as joint angles of a 17-joint tree.

Forward kinematics keeps every bone at exactly the subject's length; the pelvis height is then set per frame
so the lower ankle rests at the subject's ankle height (plus a flight height while jumping).

Example::

    rng = np.random.default_rng(3)
    motion = procedural_motion(900, fps=30, seed=3, proportions=sample_proportions(rng))
    motion.joints3d.shape            # (900, 17, 3) metres, world z up
    motion.segments[:2]              # (('walk', 0, 97), ('squat', 97, 190))
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS
from .motion import Motion, fit_in_volume
from .proportions import BodyProportions, sample_proportions
from .rotations import rot_x, rot_y, rot_z

ACTIONS: tuple[str, ...] = ("walk", "turn", "gesture", "reach", "squat", "jumping_jacks", "idle")
"""Actions of the procedural generator (labels in `Motion.segments`)."""

# --------------------------------------------------------------------------------------------
# Kinematic model for the procedural generator
# --------------------------------------------------------------------------------------------
# Joint angles (radians) driven per frame. Each bone rotation is relative to its parent bone,
# in the body frame (x forward, y left, z up); see `_bone_rotations`.
PARAMS: tuple[str, ...] = (
    "pelvis_pitch", "pelvis_roll", "pelvis_yaw",          # pelvis relative to heading
    "lean", "side", "twist",                              # lower back (pelvis -> spine)
    "chest_lean", "chest_twist",                          # upper back (spine -> thorax)
    "neck_pitch", "head_pitch", "head_yaw",
    "l_hip_flex", "l_hip_abd", "l_hip_twist", "l_knee",
    "r_hip_flex", "r_hip_abd", "r_hip_twist", "r_knee",
    "l_sh_flex", "l_sh_abd", "l_sh_twist", "l_elbow",
    "r_sh_flex", "r_sh_abd", "r_sh_twist", "r_elbow",
    "airborne",                                           # metres of flight above the floor
)
_P = {n: i for i, n in enumerate(PARAMS)}


def _bone_rotations(q: np.ndarray) -> np.ndarray:
    """(T, P) joint angles -> (T, 17, 3, 3) rotation of the bone ending at each joint, relative
    to its parent bone. Signs: flexion swings a limb forward (+x), abduction away from the
    body's midline, knee flexion swings the shin backward, elbow flexion the forearm forward."""
    T = q.shape[0]
    a = {n: q[:, i] for n, i in _P.items()}
    L = np.broadcast_to(np.eye(3), (T, NUM_JOINTS, 3, 3)).copy()
    J = JOINT_INDEX
    L[:, 0] = rot_z(a["pelvis_yaw"]) @ rot_y(a["pelvis_pitch"]) @ rot_x(a["pelvis_roll"])
    for s, sign in (("l", 1.0), ("r", -1.0)):
        side = "left" if s == "l" else "right"
        L[:, J[f"{side}_knee"]] = (rot_y(-a[f"{s}_hip_flex"]) @ rot_x(sign * a[f"{s}_hip_abd"])
                                   @ rot_z(sign * a[f"{s}_hip_twist"]))
        L[:, J[f"{side}_ankle"]] = rot_y(a[f"{s}_knee"])
        L[:, J[f"{side}_elbow"]] = (rot_y(-a[f"{s}_sh_flex"]) @ rot_x(sign * a[f"{s}_sh_abd"])
                                    @ rot_z(sign * a[f"{s}_sh_twist"]))
        L[:, J[f"{side}_wrist"]] = rot_y(-a[f"{s}_elbow"])
    L[:, J["spine"]] = rot_z(a["twist"]) @ rot_y(a["lean"]) @ rot_x(a["side"])
    L[:, J["thorax"]] = rot_z(a["chest_twist"]) @ rot_y(a["chest_lean"])
    L[:, J["neck"]] = rot_y(a["neck_pitch"])
    L[:, J["head"]] = rot_z(a["head_yaw"]) @ rot_y(a["head_pitch"])
    return L


def pose_from_params(q: np.ndarray, proportions: BodyProportions, root_xy: np.ndarray,
                     yaw: np.ndarray) -> np.ndarray:
    """Forward kinematics of the procedural body, all frames at once per joint.

    Args:
        q: (T, len(PARAMS)) joint angles in radians (and ``airborne`` in metres).
        proportions: the subject.
        root_xy: (T, 2) pelvis ground position, metres.
        yaw: (T,) heading in radians (0 = facing +x, counter-clockwise seen from above).
    Returns:
        (T, 17, 3) world joints in metres; the pelvis height is chosen per frame so the lower
        ankle is at ``ankle_height + airborne``.
    """
    T = q.shape[0]
    L = _bone_rotations(q)
    off = proportions.rest_offsets()
    G = np.empty_like(L)
    X = np.zeros((T, NUM_JOINTS, 3))
    G[:, 0] = rot_z(yaw) @ L[:, 0]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        # The bone p -> j turns with the parent's frame times its own rotation at p.
        G[:, j] = G[:, p] @ L[:, j]
        X[:, j] = X[:, p] + G[:, j] @ off[j]
    ankles = X[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 2].min(axis=1)
    z0 = proportions.ankle_height + q[:, _P["airborne"]] - ankles
    X[:, :, 0] += root_xy[:, None, 0]
    X[:, :, 1] += root_xy[:, None, 1]
    X[:, :, 2] += z0[:, None]
    return X


# --------------------------------------------------------------------------------------------
# Actions: each returns joint angles (n, P), root path (n, 2) and heading (n,) for its frames
# --------------------------------------------------------------------------------------------
_DEG = np.pi / 180.0


@dataclass
class _Style:
    """Per-subject habits drawn once per sequence (random variation between subjects)."""

    walk_speed: float
    hip_amp: float
    knee_amp: float
    arm_swing: float
    elbow_bend: float
    lean: float
    tempo: float

    @classmethod
    def sample(cls, rng: np.random.Generator, proportions: BodyProportions) -> "_Style":
        leg = proportions.leg_length / 0.93
        return cls(walk_speed=float(rng.uniform(0.8, 1.3) * leg), hip_amp=float(rng.uniform(20, 28) * _DEG),
                   knee_amp=float(rng.uniform(50, 65) * _DEG), arm_swing=float(rng.uniform(10, 30) * _DEG),
                   elbow_bend=float(rng.uniform(8, 25) * _DEG), lean=float(rng.uniform(-3, 6) * _DEG),
                   tempo=float(rng.uniform(0.85, 1.15)))


@dataclass
class _State:
    xy: np.ndarray
    yaw: float
    gait_phase: float = 0.0


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _envelope(n: int, fps: float, ramp_s: float) -> np.ndarray:
    """(n,) 0 -> 1 -> 0 with smooth ramps of `ramp_s` seconds at both ends."""
    t = np.arange(n) / fps
    dur = (n - 1) / fps
    r = max(min(ramp_s, dur / 2), 1e-3)
    return _smoothstep(t / r) * _smoothstep((dur - t) / r)


def _neutral(n: int, style: _Style) -> np.ndarray:
    q = np.zeros((n, len(PARAMS)))
    q[:, _P["lean"]] = style.lean
    q[:, _P["l_elbow"]] = q[:, _P["r_elbow"]] = style.elbow_bend
    q[:, _P["l_sh_abd"]] = q[:, _P["r_sh_abd"]] = 6 * _DEG
    q[:, _P["l_knee"]] = q[:, _P["r_knee"]] = 4 * _DEG
    q[:, _P["l_hip_flex"]] = q[:, _P["r_hip_flex"]] = 2 * _DEG
    return q


_STANCE = 0.6   # fraction of a gait cycle each foot is on the floor


def _leg_angles(x_rel: np.ndarray, knee: np.ndarray, props: BodyProportions) -> np.ndarray:
    """Hip flexion that puts the ankle `x_rel` metres ahead of the hip (sagittal plane) for a
    given knee flexion: the hip-ankle line is rotated back by alpha from the thigh."""
    t, s = props.thigh, props.shin
    d = np.sqrt(t * t + s * s + 2 * t * s * np.cos(knee))
    alpha = np.arctan2(s * np.sin(knee), t + s * np.cos(knee))
    return np.arcsin(np.clip(x_rel / d, -0.95, 0.95)) + alpha


def _walk_to(target: np.ndarray, state: _State, style: _Style, props: BodyProportions, fps: float,
             rng: np.random.Generator, max_s: float = 12.0, turn_only: bool = False,
             final_yaw: float | None = None):
    """Walk along a curved path to `target` (or turn on the spot to `final_yaw`).

    Per frame: steer towards the target with a bounded yaw rate; speed ramps up with bounded
    acceleration and slows near the target. Each foot alternates stance (60 % of a cycle) and
    swing: in stance its position ahead of the hip moves back at exactly the walking speed, so
    the planted foot does not slide (except for pivoting while turning); in swing it moves
    smoothly to half a step ahead with the knee lifting it. Cadence rises with speed.
    """
    dt = 1.0 / fps
    speed_max = style.walk_speed * rng.uniform(0.85, 1.15)
    yaw_rate_max = rng.uniform(70, 120) * _DEG
    step_nom = 0.7 * props.leg_length                     # a normal step, metres
    xy, yaw, ph = state.xy.copy(), state.yaw, state.gait_phase
    speed = 0.0
    arrived = False
    x_rel = np.zeros(2)                                   # left, right ankle ahead of the hip
    lift_from = np.zeros(2)
    lift = np.zeros(2)                                    # swing knee-lift amount of this step
    prev_stance = np.array([True, True])
    rows = []
    for k in range(int(max_s * fps)):
        to = target - xy
        dist = float(np.hypot(*to))
        arrived = arrived or turn_only or dist < 0.15
        if arrived:   # stop, and face the final heading (or keep this one)
            aim = final_yaw if final_yaw is not None else yaw
        else:
            aim = np.arctan2(to[1], to[0])
        err = (aim - yaw + np.pi) % (2 * np.pi) - np.pi
        yaw_rate = float(np.clip(3.0 * err, -yaw_rate_max, yaw_rate_max))
        want = 0.0 if arrived else speed_max * min(1.0, dist / 0.6) * max(0.0, np.cos(err)) ** 2
        speed += float(np.clip(want - speed, -1.5 * dt, 1.5 * dt))   # bounded acceleration
        speed = max(speed, 0.0)
        # Turn about the planted ankle (the one deeper in its stance), not about the pelvis, so
        # the planted foot pivots in place instead of sliding sideways.
        u_legs = np.array([ph % 1.0, (ph + 0.5) % 1.0])
        in_stance = u_legs < _STANCE
        if in_stance.any():
            leg = int(np.argmin(np.where(in_stance, u_legs, np.inf)))
            side = props.hip_half_width * (1.0 if leg == 0 else -1.0)
            c, s_ = np.cos(yaw), np.sin(yaw)
            ankle = xy + np.array([c * x_rel[leg] - s_ * side, s_ * x_rel[leg] + c * side])
            c, s_ = np.cos(yaw_rate * dt), np.sin(yaw_rate * dt)
            d = xy - ankle
            xy = ankle + np.array([c * d[0] - s_ * d[1], s_ * d[0] + c * d[1]])
        yaw += yaw_rate * dt
        xy = xy + speed * dt * np.array([np.cos(yaw), np.sin(yaw)])
        cadence = (1.5 + 0.5 * speed / max(style.walk_speed, 1e-6)) * style.tempo   # steps/s
        ph += 0.5 * cadence * dt                                                      # cycles
        half_step = 0.5 * speed * _STANCE / (0.5 * cadence)
        turning = min(abs(yaw_rate) / yaw_rate_max, 1.0)
        for leg, offset in ((0, 0.0), (1, 0.5)):
            u = (ph + offset) % 1.0
            stance = u < _STANCE
            if stance:
                x_rel[leg] -= speed * dt
                lift[leg] = 0.0
            else:
                if prev_stance[leg]:  # lift-off: decide this step
                    lift_from[leg] = x_rel[leg]
                    lift[leg] = min(1.0, max(speed / max(style.walk_speed, 1e-6), 0.5 * turning,
                                             abs(half_step - x_rel[leg]) / (0.5 * step_nom)))
                w = _smoothstep(np.asarray((u - _STANCE) / (1 - _STANCE)))
                x_rel[leg] = lift_from[leg] + (half_step - lift_from[leg]) * float(w)
            prev_stance[leg] = stance
        swing_knee = [lift[g] * np.sin(np.pi * max(0.0, ((ph + o) % 1.0 - _STANCE) / (1 - _STANCE)))
                      for g, o in ((0, 0.0), (1, 0.5))]
        rows.append((xy[0], xy[1], yaw, ph, speed, x_rel[0], x_rel[1], swing_knee[0], swing_knee[1]))
        if k > fps * 0.5 and arrived and speed < 0.02 and abs(err) < 2 * _DEG \
                and np.abs(x_rel).max() < 0.02 and max(lift) == 0.0:
            break
    r = np.asarray(rows)
    n = len(r)
    q = _neutral(n, style)
    amp = np.clip(r[:, 4] / max(style.walk_speed, 1e-6), 0, 1.2)
    for g, s_ in enumerate(("l", "r")):
        knee = (6 * _DEG + 6 * _DEG * amp) + style.knee_amp * r[:, 7 + g]
        q[:, _P[f"{s_}_knee"]] = knee
        q[:, _P[f"{s_}_hip_flex"]] = _leg_angles(r[:, 5 + g], knee, props)
        # Arms swing opposite to the leg on the same side.
        q[:, _P[f"{s_}_sh_flex"]] -= style.arm_swing * np.clip(r[:, 5 + g] / (0.5 * step_nom), -1.3, 1.3)
        q[:, _P[f"{s_}_elbow"]] += amp * 8 * _DEG
    # Upper-body counter-rotation only: turning or rolling the pelvis would swing the planted foot.
    gait = 2 * np.pi * r[:, 3]
    q[:, _P["twist"]] -= amp * 4 * _DEG * np.sin(gait)
    q[:, _P["chest_twist"]] -= amp * 4 * _DEG * np.sin(gait)
    q[:, _P["side"]] += amp * 2 * _DEG * np.sin(2 * gait)
    q[:, _P["lean"]] += amp * 4 * _DEG
    state.xy, state.yaw, state.gait_phase = r[-1, :2].copy(), float(r[-1, 2]), float(r[-1, 3])
    return q, r[:, :2].copy(), r[:, 2].copy()


def _in_place(n: int, state: _State):
    return np.repeat(state.xy[None], n, axis=0), np.full(n, state.yaw)


def _gesture(state: _State, style: _Style, fps: float, rng: np.random.Generator):
    """Arm gestures: waving (one or both arms), clapping, arm circles, pointing."""
    kind = rng.choice(["wave", "wave_both", "clap", "circles", "point"])
    dur = rng.uniform(2.5, 4.5)
    n = int(dur * fps)
    t = np.arange(n) / fps
    env = _envelope(n, fps, 0.6)
    q = _neutral(n, style)
    f = rng.uniform(1.2, 2.2) * style.tempo
    sides = ["l", "r"] if kind in ("wave_both", "clap", "circles") else [rng.choice(["l", "r"])]
    for s in sides:
        if kind in ("wave", "wave_both"):
            q[:, _P[f"{s}_sh_abd"]] += env * rng.uniform(70, 110) * _DEG
            q[:, _P[f"{s}_sh_flex"]] += env * rng.uniform(10, 40) * _DEG
            q[:, _P[f"{s}_sh_twist"]] += env * 90 * _DEG          # turns the elbow's plane upward
            q[:, _P[f"{s}_elbow"]] += env * (rng.uniform(60, 90) * _DEG + 25 * _DEG * np.sin(2 * np.pi * f * t))
        elif kind == "clap":
            q[:, _P[f"{s}_sh_flex"]] += env * rng.uniform(60, 85) * _DEG
            q[:, _P[f"{s}_sh_abd"]] += env * (20 * _DEG + 18 * _DEG * np.cos(2 * np.pi * f * t)) - 14 * _DEG * env
            q[:, _P[f"{s}_elbow"]] += env * 25 * _DEG
        elif kind == "circles":
            ph = 2 * np.pi * 0.8 * f * t
            q[:, _P[f"{s}_sh_abd"]] += env * (85 * _DEG + 20 * _DEG * np.sin(ph))
            q[:, _P[f"{s}_sh_flex"]] += env * 20 * _DEG * np.cos(ph)
            q[:, _P[f"{s}_elbow"]] -= env * style.elbow_bend
        else:  # point
            q[:, _P[f"{s}_sh_flex"]] += env * rng.uniform(60, 110) * _DEG
            q[:, _P[f"{s}_sh_abd"]] += env * rng.uniform(0, 50) * _DEG
            q[:, _P[f"{s}_elbow"]] -= env * style.elbow_bend * 0.8
            q[:, _P["head_yaw"]] += env * (15 if s == "l" else -15) * _DEG
    q[:, _P["head_pitch"]] += env * rng.uniform(-10, 10) * _DEG
    return q, *_in_place(n, state)


def _reach(state: _State, style: _Style, fps: float, rng: np.random.Generator):
    """Reach to a target with one arm (forward, sideways, up or down), bending the trunk and knees
    for low targets, hold, and return."""
    s = rng.choice(["l", "r"])
    sign = 1.0 if s == "l" else -1.0
    height = rng.choice(["up", "mid", "low"], p=[0.3, 0.4, 0.3])
    dur = rng.uniform(2.5, 4.0)
    n = int(dur * fps)
    env = _envelope(n, fps, rng.uniform(0.7, 1.1))
    q = _neutral(n, style)
    flex = {"up": rng.uniform(130, 165), "mid": rng.uniform(70, 100), "low": rng.uniform(40, 70)}[height]
    q[:, _P[f"{s}_sh_flex"]] += env * flex * _DEG
    q[:, _P[f"{s}_sh_abd"]] += env * rng.uniform(0, 45) * _DEG
    q[:, _P[f"{s}_elbow"]] -= env * style.elbow_bend * 0.9
    q[:, _P["twist"]] += env * sign * rng.uniform(-5, 25) * _DEG
    q[:, _P["side"]] += env * -sign * rng.uniform(0, 10) * _DEG
    if height == "low":
        bend = rng.uniform(35, 60) * _DEG
        knee = rng.uniform(20, 60) * _DEG
        q[:, _P["lean"]] += env * bend
        q[:, _P["l_knee"]] += env * knee
        q[:, _P["r_knee"]] += env * knee
        q[:, _P["l_hip_flex"]] += env * knee / 2
        q[:, _P["r_hip_flex"]] += env * knee / 2
        q[:, _P["head_pitch"]] += env * 15 * _DEG
    elif height == "up":
        q[:, _P["lean"]] -= env * 5 * _DEG
        q[:, _P["head_pitch"]] -= env * 20 * _DEG
    else:
        q[:, _P["lean"]] += env * rng.uniform(5, 20) * _DEG
    return q, *_in_place(n, state)


def _squat(state: _State, style: _Style, fps: float, rng: np.random.Generator):
    """1-3 squats: knees ~2x hip flexion so the ankles stay under the hips, trunk leaning
    forward and arms raised forward for balance."""
    reps = int(rng.integers(1, 4))
    period = rng.uniform(1.8, 2.6) / style.tempo
    n = int((reps * period + 0.4) * fps)
    t = np.arange(n) / fps
    depth = np.where(t < reps * period, 0.5 - 0.5 * np.cos(2 * np.pi * t / period), 0.0)
    hip = rng.uniform(45, 65) * _DEG      # knees to 90-130 degrees
    q = _neutral(n, style)
    for s in ("l", "r"):
        q[:, _P[f"{s}_hip_flex"]] += depth * hip
        q[:, _P[f"{s}_knee"]] += depth * 2.0 * hip
        q[:, _P[f"{s}_hip_abd"]] += depth * 10 * _DEG
        q[:, _P[f"{s}_hip_twist"]] += depth * 10 * _DEG
        q[:, _P[f"{s}_sh_flex"]] += depth * rng.uniform(50, 90) * _DEG
    q[:, _P["lean"]] += depth * (hip * 0.45)
    q[:, _P["head_pitch"]] -= depth * 15 * _DEG
    return q, *_in_place(n, state)


def _jumping_jacks(state: _State, style: _Style, fps: float, rng: np.random.Generator):
    """Jumping jacks: legs and arms out and in, a hop between the two positions."""
    reps = int(rng.integers(3, 7))
    period = rng.uniform(0.9, 1.3) / style.tempo
    n = int((reps * period + 0.3) * fps)
    t = np.arange(n) / fps
    active = t < reps * period
    open_ = np.where(active, 0.5 - 0.5 * np.cos(2 * np.pi * t / period), 0.0)
    hop = np.where(active, np.clip(np.abs(np.sin(2 * np.pi * t / period)) - 0.3, 0, None) / 0.7, 0.0)
    q = _neutral(n, style)
    arm = rng.uniform(140, 170) * _DEG
    for s in ("l", "r"):
        q[:, _P[f"{s}_sh_abd"]] += open_ * arm
        q[:, _P[f"{s}_hip_abd"]] += open_ * rng.uniform(12, 18) * _DEG
        q[:, _P[f"{s}_elbow"]] -= open_ * style.elbow_bend * 0.7
        q[:, _P[f"{s}_knee"]] += (1 - hop) * active * 12 * _DEG
        q[:, _P[f"{s}_hip_flex"]] += (1 - hop) * active * 6 * _DEG
    q[:, _P["airborne"]] = hop * rng.uniform(0.06, 0.12)
    return q, *_in_place(n, state)


def _idle(state: _State, style: _Style, fps: float, rng: np.random.Generator):
    """Standing: weight shift, looking around."""
    n = int(rng.uniform(1.5, 3.0) * fps)
    t = np.arange(n) / fps
    env = _envelope(n, fps, 0.5)
    q = _neutral(n, style)
    shift = rng.uniform(-1, 1) * 5 * _DEG * env
    q[:, _P["pelvis_roll"]] += shift
    q[:, _P["l_hip_abd"]] -= shift
    q[:, _P["r_hip_abd"]] += shift
    q[:, _P["side"]] -= shift
    q[:, _P["head_yaw"]] += env * rng.uniform(-35, 35) * _DEG * np.sin(2 * np.pi * 0.3 * t)
    return q, *_in_place(n, state)


def smooth_noise(n: int, k: int, fps: float, rng: np.random.Generator, amp: float, max_hz: float = 0.6) -> np.ndarray:
    """(n, k) smooth random wobble of amplitude ~``amp``: three random sinusoids per column, 0.1-``max_hz`` Hz."""
    t = np.arange(n)[:, None] / fps
    out = np.zeros((n, k))
    for _ in range(3):
        f = rng.uniform(0.1, max_hz, size=k)
        ph = rng.uniform(0, 2 * np.pi, size=k)
        out += np.sin(2 * np.pi * f * t + ph) * rng.uniform(0.3, 1.0, size=k)
    return out * amp / 3


# Horizontal reach of each action's pose about the pelvis (metres per metre of height): the
# subject starts an action only where its whole body fits in the volume.
_ACTION_EXTENT = {"gesture": 0.55, "reach": 0.6, "squat": 0.45, "jumping_jacks": 0.55,
                  "idle": 0.3, "turn": 0.35}


def procedural_motion(num_frames: int, fps: float = 30.0, seed: int = 0,
                      proportions: BodyProportions | None = None,
                      volume_radius: float = 1.5, stay_in_place: bool = False) -> Motion:
    """The embedded default motion: a random sequence of actions for one subject.

    Walking along curved paths to random points and turning on the spot, arm gestures (waving,
    clapping, arm circles, pointing), reaching (up, forward, low with a bend), squats, jumping
    jacks and idle standing, each with random amplitudes and tempo, blended into each other with
    0.6 s smooth crossfades of the joint angles. Every action appears once (in random order)
    before any repeats, so long sequences cover them all.

    Args:
        num_frames: T, frames to generate.
        fps: frame rate.
        seed: the same seed gives the same motion (also the same subject when
            `proportions` is None: it is drawn from the seed).
        proportions: the subject; None samples one from the seed.
        volume_radius: metres; every joint stays within this horizontal distance of the origin.
        stay_in_place: no walking (gestures, reaches, squats, jumping jacks, idling, turns on the spot):
            the pelvis stays within a few centimetres of where it starts, turns pivoting about a foot
            move it by up to a hip width.
    Returns:
        Motion with joints3d (T, 17, 3) metres, world z up, and `segments` labelling actions.
    """
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not volume_radius >= 1.0:
        raise ValueError(f"volume_radius must be >= 1.0 m (room for outstretched arms), got {volume_radius}")
    num_frames = int(num_frames)
    rng = np.random.default_rng(seed)
    # The subject has its own stream, so a given seed plays the same script for any subject.
    props = proportions if proportions is not None else sample_proportions(np.random.default_rng([seed, 1]))
    style = _Style.sample(rng, props)
    H = props.height
    state = _State(xy=rng.uniform(-0.3, 0.3, size=2) * volume_radius, yaw=float(rng.uniform(-np.pi, np.pi)))
    walk_r = max(volume_radius - 0.42 * H, 0.2)   # where the pelvis may walk

    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    total = 0
    queue: list[str] = []
    weights = {"walk": 3.0, "turn": 0.7, "gesture": 1.2, "reach": 1.0, "squat": 0.8,
               "jumping_jacks": 0.7, "idle": 0.5}
    if stay_in_place:
        del weights["walk"]
    names = list(weights)
    p = np.asarray([weights[a] for a in names])
    p /= p.sum()
    while total < num_frames:
        if not queue:
            # First round: every action once (walk first so the path starts moving); then random.
            first = [] if stay_in_place else ["walk"]
            queue = (first + [str(a) for a in rng.permutation([a for a in names if a != "walk"])]
                     if not parts else [str(rng.choice(names, p=p))])
        action = queue.pop(0)
        if action != "walk" and not stay_in_place:
            limit = volume_radius - _ACTION_EXTENT[action] * H
            if np.hypot(*state.xy) > limit:
                # Too close to the edge for this action: walk inwards first.
                target = _random_point(rng, max(min(limit, walk_r) * 0.7, 0.0))
                parts.append(("walk", *_walk_to(target, state, style, props, fps, rng)))
                total += len(parts[-1][1])
        if action == "walk":
            target = _random_point(rng, walk_r, away_from=state.xy, min_dist=0.5 * walk_r)
            out = _walk_to(target, state, style, props, fps, rng)
        elif action == "turn":
            goal = state.yaw + rng.choice([-1, 1]) * rng.uniform(60, 180) * _DEG
            out = _walk_to(state.xy.copy(), state, style, props, fps, rng, turn_only=True, final_yaw=goal)
        else:
            out = {"gesture": _gesture, "reach": _reach, "squat": _squat,
                   "jumping_jacks": _jumping_jacks, "idle": _idle}[action](state, style, fps, rng)
        parts.append((action, *out))
        total += len(out[0])

    q, xy, yaw, segments = _crossfade(parts, fps, blend_s=0.6)
    q = q[:num_frames]
    # Life-like wobble on the upper body only (noise on pelvis or legs would slide the feet).
    upper = [i for n, i in _P.items() if not n.startswith(("pelvis", "l_hip", "r_hip", "l_knee", "r_knee", "airborne"))]
    q[:, upper] += smooth_noise(num_frames, len(upper), fps, rng, 2.0 * _DEG)
    joints = pose_from_params(q, props, xy[:num_frames], yaw[:num_frames])
    joints, _ = fit_in_volume(joints, volume_radius)
    segments = tuple((a, s, min(e, num_frames)) for a, s, e in segments if s < num_frames)
    return Motion(name=f"procedural_seed{seed}", joints3d=joints, fps=float(fps),
                  source="procedural", segments=segments)


def _random_point(rng: np.random.Generator, radius: float, away_from: np.ndarray | None = None,
                  min_dist: float = 0.0) -> np.ndarray:
    """Uniform point in the disc of `radius`, preferably at least `min_dist` from `away_from`."""
    best = np.zeros(2)
    for _ in range(20):
        r = radius * np.sqrt(rng.uniform())
        a = rng.uniform(-np.pi, np.pi)
        best = np.array([r * np.cos(a), r * np.sin(a)])
        if away_from is None or np.hypot(*(best - away_from)) >= min_dist:
            break
    return best


def _crossfade(parts, fps: float, blend_s: float):
    """Concatenate action parts; joint angles cross-fade over `blend_s` seconds around each
    boundary (each part held at its end value while fading), the root path is continuous."""
    q = np.concatenate([p[1] for p in parts])
    xy = np.concatenate([p[2] for p in parts])
    yaw = np.concatenate([p[3] for p in parts])
    segments, start = [], 0
    for a, qa, *_ in parts:
        segments.append((a, start, start + len(qa)))
        start += len(qa)
    h = max(int(round(blend_s * fps / 2)), 1)
    out = q.copy()
    for (_, s0, e0), (_, s1, e1) in zip(segments[:-1], segments[1:]):
        lo, hi = max(e0 - h, s0), min(s1 + h, e1)
        idx = np.arange(lo, hi)
        w = _smoothstep((idx - lo + 0.5) / (hi - lo))[:, None]
        prev = q[np.minimum(idx, e0 - 1)]     # previous part, held at its last frame
        nxt = q[np.maximum(idx, s1)]          # next part, held at its first frame
        out[lo:hi] = (1 - w) * prev + w * nxt
    return out, xy, yaw, segments
