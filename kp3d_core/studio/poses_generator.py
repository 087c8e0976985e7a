"""Varied, plausible motion within joint limits: jumps, crouches, kicks, one-leg balance, sitting, ...

Beside the procedural walker (:mod:`.procedural`) and motion capture (:mod:`.retarget`), this
generator covers what those rarely show: deep crouches, kicks, arms overhead, one-leg balance with
widely moving limbs, jumps with flight, sitting on an invisible stool, reaching to the floor,
lunges, torso twists and bends, wide arm swings, and random poses sampled inside the joint limits.

How a clip is made:

* Each action is a list of keyframes (joint angles of :mod:`.joint_limits`, pelvis position and
  heading, ankle targets, which foot carries the weight), drawn with random amplitudes, sides,
  variants and tempo; keys are joined by monotone cubic interpolation (no overshoot). An action
  starts from the previous action's last pose and ends standing on both feet, so transitions are
  blends in joint-angle space from one pose to the next, with no jump.
* Legs with a foot on (or travelling to) a target are solved analytically (two-bone IK); the pelvis
  is moved so the centre of mass lies over the supporting foot or feet, and lowered where a
  planted foot would be out of reach.
* Every frame is clamped to `joint_limits.JOINT_LIMITS`; forward kinematics keeps every bone at
  the subject's length.
* Contact: the pelvis height puts the lower ankle at the subject's ankle height, except in
  ballistic flight (a parabola from take-off, 0.1-0.5 m apex); horizontally the planted foot is
  held in place, so feet do not slide.

Modules: :mod:`.joint_limits` (the angles, forward kinematics, limits), :mod:`.pose_planning`
(keyframes into feasible angles), :mod:`.pose_actions` (the actions); this one sequences them
and places the body on the floor.

Example::

    m = varied_motion(300, fps=30, seed=4)                 # 10 s, random actions
    m.joints3d.shape                                       # (300, 17, 3) metres, world z up
    m.segments[:2]                                         # (('free', 0, 170), ('crouch', 170, 290))
    varied_motion(300, seed=4, actions=["balance"], stay_in_place=True)   # one-leg balance only
"""
from __future__ import annotations

import numpy as np

from .joint_limits import A, clamp_angles, pose_from_angles
from .motion import Motion, fit_in_volume
from .pose_actions import ACTIONS, BUILDERS, FLIGHT_APEX_M, GRAVITY, walk_to
from .pose_planning import ANKLES, UPPER, Ctx, Plan, Style
from .procedural import smooth_noise
from .proportions import BodyProportions, sample_proportions

__all__ = ["ACTIONS", "FLIGHT_APEX_M", "GRAVITY", "STAY_RADIUS_M", "varied_motion"]

_DEG = np.pi / 180.0

_WEIGHTS = {"jump": 1.5, "balance": 1.4, "free": 1.3, "kick": 1.2, "lunge": 1.0, "crouch": 1.0,
            "reach_down": 0.9, "arms_overhead": 0.9, "torso": 0.9, "sit": 0.8, "arm_swing": 0.8,
            "step": 0.8, "turn": 0.7}
"""Relative frequency of each action after the first round (the motions the studio lacked most
weigh more)."""

STAY_RADIUS_M = 0.5
"""With ``stay_in_place`` the pelvis stays this close (horizontally) to where it starts."""

# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def varied_motion(num_frames: int, fps: float = 30.0, seed: int = 0,
                  proportions: BodyProportions | None = None,
                  actions: list[str] | tuple[str, ...] | None = None,
                  stay_in_place: bool = False, radius_m: float = 1.5) -> Motion:
    """A random sequence of varied actions for one subject.

    Every requested action appears once (in random order) before any repeats. Each draws its own
    variant, side, amplitudes and tempo, e.g. a jump is vertical, forward, tuck, star or turning,
    0.1-0.5 m high; a kick front, side or back; a balance holds one leg forward, sideways, back,
    knee-up or in a tree pose while the limbs move.

    Args:
        num_frames: T, frames to generate.
        fps: frame rate.
        seed: the same seed gives identical arrays (and the same subject when `proportions`
            is None: it is drawn from the seed).
        proportions: the subject; None samples one from the seed.
        actions: subset of `ACTIONS` to draw from; None: all (``step`` only moves the subject
            around when not `stay_in_place`: there it steps on the spot). Where an action has
            no room left (a sit needs ~0.4 m behind), a short ``step`` segment walks back
            towards the middle first, even when ``step`` is not among `actions`.
        stay_in_place: keep the pelvis within `STAY_RADIUS_M` horizontally of its start.
        radius_m: otherwise every joint stays within this horizontal distance of the origin
            (as `procedural_motion`'s ``volume_radius``); the subject steps around inside it.
    Returns:
        Motion (T, 17, 3) metres, world z up, floor z = 0, source ``varied``, segments labelled
        with the actions.
    """
    if int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not radius_m >= 1.0:
        raise ValueError(f"radius_m must be >= 1.0 m (room for outstretched limbs), got {radius_m}")
    chosen = tuple(ACTIONS if actions is None else actions)
    unknown = [a for a in chosen if a not in ACTIONS]
    if not chosen or unknown:
        raise ValueError(f"actions must be a non-empty subset of {ACTIONS}, got {actions!r}")
    num_frames = int(num_frames)
    rng = np.random.default_rng(seed)
    props = proportions if proportions is not None else sample_proportions(np.random.default_rng([seed, 1]))
    style = Style.sample(rng, props)

    r0, a0 = 0.2 * np.sqrt(rng.uniform()), rng.uniform(-np.pi, np.pi)
    mid = np.array([r0 * np.cos(a0), r0 * np.sin(a0)])          # world ankle midpoint, near the origin
    psi = float(rng.uniform(-np.pi, np.pi))                        # world heading
    # Planned pelvis paths stay within `room` of `disc`: the origin, or with `stay_in_place` the
    # first frame's pelvis (set once the first action is planned); the margin covers the few cm
    # between planned and placed pelvis.
    disc = None if stay_in_place else np.zeros(2)
    room = STAY_RADIUS_M - 0.08 if stay_in_place else max(radius_m - 0.55 * props.height, 0.25)

    plans: list[tuple[Plan, np.ndarray, float]] = []
    total = 0
    q_prev = style.rest_vector()
    queue: list[str] = []
    while total < num_frames:
        if not queue:   # every action once, then weighted draws
            weights = np.array([_WEIGHTS[a] for a in chosen])
            queue = [str(a) for a in rng.permutation(chosen)] if not plans else \
                [str(rng.choice(chosen, p=weights / weights.sum()))]
        action = queue.pop(0)
        best = None
        for attempt in range(8):   # redraw an action that would leave the allowed disc
            centre = mid if disc is None else disc
            ctx = Ctx(props, style, fps, rng, stay_in_place, _rot2(-psi) @ (centre - mid), room)
            if attempt == 4 and np.hypot(*ctx.center) > 0.1:
                # Still no room: walk back towards the middle first (a short "step").
                back = walk_to(ctx, q_prev, ctx.center, max_step=0.3)
                mid, psi, q_prev = _append(plans, back, mid, psi)
                total += len(back.q) - (1 if len(plans) > 1 else 0)
                ctx = Ctx(props, style, fps, rng, stay_in_place, _rot2(-psi) @ (centre - mid), room)
            plan = BUILDERS[action](ctx, q_prev)
            path = mid + plan.pelvis[:, :2] @ _rot2(psi).T
            if disc is None:
                disc = path[0].copy()
            reach = float(np.linalg.norm(path - disc, axis=1).max())
            if best is None or reach < best[0]:
                best = (reach, plan)
            if reach <= room:
                break
        plan = best[1]
        mid, psi, q_prev = _append(plans, plan, mid, psi)
        total += len(plan.q) - (1 if len(plans) > 1 else 0)

    q, yaw, pelvis_plan, air, planted, segments = _concatenate(plans, num_frames)
    rel = pose_from_angles(q, props, yaw)                                 # pelvis at the origin
    joints = rel + _place(rel[:, ANKLES], props.ankle_height, pelvis_plan, air, planted)[:, None, :]
    # A little life in the upper body, faded out where a hand or knee is near the floor.
    low = np.delete(joints, ANKLES, axis=1)[:, :, 2].min(axis=1)
    cols = [A[n] for n in UPPER]
    q[:, cols] += np.clip((low - 0.02) / 0.1, 0.0, 1.0)[:, None] * smooth_noise(len(q), len(cols), fps, rng, 1.5 * _DEG, max_hz=0.7)
    q = clamp_angles(q)
    rel = pose_from_angles(q, props, yaw)
    joints = rel + _place(rel[:, ANKLES], props.ankle_height, pelvis_plan, air, planted)[:, None, :]
    if not stay_in_place:
        joints, _ = fit_in_volume(joints, radius_m)
    return Motion(name=f"varied_seed{seed}", joints3d=joints, fps=float(fps), source="varied",
                  segments=segments)


def _append(plans: list, plan: "Plan", mid: np.ndarray, psi: float) -> tuple[np.ndarray, float, np.ndarray]:
    """Add `plan` starting at world ankle midpoint `mid`, heading `psi`; the state after it."""
    plans.append((plan, mid.copy(), psi))
    end = plan.feet[-1, :, :2].mean(axis=0)
    return mid + _rot2(psi) @ end, psi + float(plan.yaw[-1]), plan.q[-1].copy()


# --------------------------------------------------------------------------------------------
# Assembly: actions into one world-frame clip, feet kept on the floor
# --------------------------------------------------------------------------------------------
def _rot2(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s], [s, c]])


def _concatenate(plans: list, num_frames: int):
    """The actions end to end in the world frame (each one's first frame repeats the previous
    one's last and is dropped), cut to `num_frames`: joint angles, heading, planned pelvis,
    flight and planted-foot flags, segments."""
    qs, yaws, pel, air, planted, segments = [], [], [], [], [], []
    start = 0
    for i, (plan, mid, psi) in enumerate(plans):
        cut = 0 if i == 0 else 1
        n = len(plan.q) - cut
        pw = np.empty((n, 3))
        pw[:, :2] = mid + plan.pelvis[cut:, :2] @ _rot2(psi).T
        pw[:, 2] = plan.pelvis[cut:, 2]
        qs.append(plan.q[cut:])
        yaws.append(psi + plan.yaw[cut:])
        pel.append(pw)
        air.append(plan.air[cut:])
        planted.append(plan.planted[cut:])
        segments.append((plan.label, start, start + n))
        start += n
    T = min(start, num_frames)
    segs = tuple((a, s, min(e, T)) for a, s, e in segments if s < T)
    return (np.concatenate(qs)[:T], np.concatenate(yaws)[:T], np.concatenate(pel)[:T],
            np.concatenate(air)[:T], np.concatenate(planted)[:T], segs)


def _place(ank: np.ndarray, ankle_height: float, pelvis_plan: np.ndarray, air: np.ndarray,
           planted: np.ndarray) -> np.ndarray:
    """(T, 3) world pelvis for a body whose ankles relative to its pelvis are `ank` (T, 2, 3).

    On the ground the lower ankle is at `ankle_height` and one foot (the anchor) is held where
    it stands: the pelvis moves, the foot does not. The anchor passes to a planted foot (plan
    flags) when it lifts. In flight the pelvis follows the plan's ballistic path from take-off,
    and the landing foot becomes the anchor.
    """
    T = len(ank)
    z_floor = ankle_height - ank[:, :, 2].min(axis=1)
    pelvis = np.zeros((T, 3))
    anchor, anchor_xy, t0 = -1, np.zeros(2), 0

    def lowest(cand) -> int:
        cand = np.asarray(cand)
        return int(cand[np.argmin(ank[t, cand, 2])])

    for t in range(T):
        if air[t]:
            pelvis[t] = pelvis[t0] + pelvis_plan[t] - pelvis_plan[t0]
            pelvis[t, 2] = max(pelvis[t, 2], z_floor[t])
            continue
        pelvis[t, 2] = z_floor[t]
        if t == 0 or air[t - 1]:             # start, or landing: where the plan puts the pelvis
            pelvis[t, :2] = pelvis_plan[0, :2] if t == 0 else pelvis[t0, :2] + pelvis_plan[t, :2] - pelvis_plan[t0, :2]
            anchor = lowest([0, 1])
            anchor_xy = pelvis[t, :2] + ank[t, anchor, :2]
            t0 = t
            continue
        cand = np.flatnonzero(planted[t])
        if not len(cand):
            cand = [lowest([0, 1])]
        if anchor not in cand:
            new = lowest(cand)
            was_down = ank[t - 1, new, 2] <= ank[t - 1, :, 2].min() + 0.003
            if was_down or ank[t, anchor, 2] > ank[t, :, 2].min() + 0.003:
                # Hold the new foot where it stood a frame ago (the old one is lifting).
                anchor, anchor_xy = new, pelvis[t - 1, :2] + ank[t - 1, new, :2]
        pelvis[t, :2] = anchor_xy - ank[t, anchor, :2]
        if anchor not in cand:
            # The new foot has just landed and the old one is still down: hand over after this frame.
            anchor = lowest(cand)
            anchor_xy = pelvis[t, :2] + ank[t, anchor, :2]
        t0 = t
    return pelvis


