"""The actions of the varied generator, each a function ``(Ctx, start angles) -> Plan``.

Every action starts from the previous action's last pose and ends standing on both feet at home
width (`Keys.finish`); its variant, side, amplitudes and tempo are drawn from ``ctx.rng``.
Angles in the keys are degrees (:mod:`.pose_planning`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..skeleton import JOINT_INDEX
from .joint_limits import ANGLES, A, clamp_angles, pose_from_angles
from .pose_planning import (
    ANKLES,
    FEET,
    NQ,
    PEL,
    YAW,
    Ctx,
    Keys,
    Plan,
    arm_pose,
    arms_pose,
    hermite,
    leg_pose,
    look,
    plan_from_keys,
    radians,
    random_arm,
    random_trunk,
    solve,
)
from .rotations import rot_z

GRAVITY = 9.81
FLIGHT_APEX_M = (0.10, 0.50)
"""Range of a jump's ballistic apex (pelvis rise above take-off), metres."""

_DEG = np.pi / 180.0
J = JOINT_INDEX


def _rest(c: Ctx, jitter: float = 0.0) -> dict:
    return {n: v + (c.U(-jitter, jitter) if jitter else 0.0) for n, v in c.style.rest.items()}


def _end_pose(c: Ctx) -> dict:
    """Upper body at the end of an action: relaxed, or now and then an arm left somewhere."""
    q = _rest(c, 4.0)
    if c.rng.uniform() < 0.25:
        q.update(random_arm(c, c.pick(("l", "r"))))
    return q


class _Flight(NamedTuple):
    """One jump's frames (dip bottom, take-off, landing, absorbed) and flight parameters."""

    i_dip: int
    i_to: int
    i_land: int
    i_abs: int
    velocity: np.ndarray     # (3,) at take-off, m/s (vertical: g * flight time / 2)
    kind: str
    tuck: float              # ankles pulled up mid-flight (tuck jump), metres
    spread: float            # ankles apart mid-flight (star jump), metres


def _jump(c: Ctx, start: np.ndarray) -> Plan:
    """1-3 jumps: vertical, forward (any direction when staying in place), tuck, star or turning
    (90-180 degrees in the air); countermovement dip and arm swing, ballistic flight with an apex
    in `FLIGHT_APEX_M`, absorbed landing."""
    k = Keys(c, start)
    kind = c.pick(("vertical", "forward", "tuck", "star", "turn"))
    k.go(c.dt(0.15, 0.35), q=_rest(c, 3), bal=0.0)
    mid, yaw = np.zeros(2), 0.0
    flights = []
    lo_m = int(np.ceil(np.sqrt(8 * FLIGHT_APEX_M[0] / GRAVITY) * c.fps - 1e-9))
    hi_m = max(lo_m, int(np.floor(np.sqrt(8 * FLIGHT_APEX_M[1] / GRAVITY) * c.fps + 1e-9)))
    for _ in range(1 + int(c.rng.uniform() < 0.35) + int(c.rng.uniform() < 0.2)):
        # Flight time: a whole number m of frames, so the apex g T^2 / 8 stays in range exactly.
        h = c.U(0.12, 0.45) * (0.6 + 0.4 * c.style.energy)
        m = int(np.clip(round(np.sqrt(8 * min(h, 0.3 if kind in ("forward", "turn") else h) / GRAVITY) * c.fps),
                        lo_m, hi_m))
        Tf = m / c.fps
        v0 = GRAVITY * Tf / 2
        h = GRAVITY * Tf ** 2 / 8
        u, dist = np.array([np.cos(yaw * _DEG), np.sin(yaw * _DEG)]), 0.0
        if kind == "forward":
            dist = c.U(0.35, 0.9)
            if c.stay or dist > c.room:
                # Towards the middle of the allowed disc (overshooting it by 0.2 m at most), or
                # any direction when already there.
                to = c.toward_center(0.12)
                ang = c.U(-np.pi, np.pi)
                u = to if to is not None else np.array([np.cos(ang), np.sin(ang)])
                dist = min(dist, float(np.hypot(*(c.center - mid))) + 0.2, 0.35 if c.stay else dist)
        elif kind == "turn":
            dist = c.U(0.0, 0.15)
        dyaw = (c.pick((-1, 1)) * c.U(90, 180)) if kind == "turn" else c.U(-15, 15) * (kind != "vertical")
        lead = min(0.15, dist / 3)                # pelvis ahead of the feet at take-off, behind on landing
        vxy = max(dist - 2 * lead, 0.0) / Tf * u
        mid_land, yaw_land = mid + (2 * lead * u + vxy * Tf), yaw + dyaw
        feet_land = c.home(mid_land, yaw_land * _DEG)
        # Take-off and landing with the pelvis upright at one height, legs nearly straight: the
        # flight is one parabola from ground to ground.
        z_to = min(c.pelvis_height_over(k.feet(), mid + lead * u, yaw * _DEG, 4 * _DEG),
                   c.pelvis_height_over(feet_land, mid_land - lead * u, yaw_land * _DEG, 4 * _DEG))
        z_dip = min(c.z_home, z_to) - (c.U(0.10, 0.20) * c.leg + 0.3 * h)
        absorb = c.U(0.10, 0.18) * c.leg + 0.35 * h
        lean = c.U(15, 35) + 10 * (dist > 0)
        k.go(c.dt(0.3, 0.5), pelvis=(*(mid - 0.05 * u), z_dip),
             q={"body_pitch": c.U(10, 25), "back_flex": lean * 0.6, "chest_flex": lean * 0.3,
                **look(c, lean), **arms_pose(c.U(-50, -25), c.U(5, 20), c.U(-10, 10), c.U(10, 35))})
        i_dip = k.frame
        # A push short enough that the pelvis reaches take-off speed without first sinking further.
        k.go(min(c.U(0.15, 0.28), 2.5 * (z_to - z_dip) / v0), pelvis=(*(mid + lead * u), z_to),
             q={"body_pitch": 0.0, "back_flex": 3.0 + 8.0 * (dist > 0), "chest_flex": 0.0, **look(c, 0),
                **arms_pose(c.U(50, 90), c.U(0, 20), c.U(-10, 20), c.U(0, 25))})
        i_to = k.frame
        if kind == "star":
            air_q = arms_pose(c.U(-10, 30), c.U(110, 150), c.U(-20, 20), c.U(0, 15))
        elif kind == "tuck":
            air_q = {**arms_pose(c.U(50, 80), c.U(0, 20), c.U(-20, 10), c.U(60, 110)), "back_flex": 20.0}
        else:
            air_q = arms_pose(c.U(90, 170), c.U(0, 40), c.U(-10, 20), c.U(0, 40))
        k.go(Tf / 2, q=air_q, yaw=yaw + dyaw / 2)
        k.go((i_to + m) / c.fps - k.t, yaw=yaw_land, feet=feet_land, pelvis=(*(mid_land - lead * u), z_to),
             q={"body_pitch": 0.0, **arms_pose(c.U(40, 90), c.U(10, 40), c.U(-10, 10), c.U(10, 40))})
        i_land = k.frame
        lean = c.U(15, 35)
        k.go(min(c.U(0.2, 0.35), 2.5 * absorb / v0), pelvis=(*(mid_land - 0.03 * u), c.z_home - absorb),
             q={"body_pitch": c.U(8, 20), "back_flex": lean * 0.6, "chest_flex": lean * 0.3,
                **look(c, lean), **arms_pose(c.U(30, 70), c.U(10, 30), c.U(-10, 10), c.U(10, 40))})
        flights.append(_Flight(i_dip, i_to, i_land, k.frame, np.array([*vxy, v0]), kind,
                               c.U(0.25, 0.4), c.U(0.12, 0.28)))
        mid, yaw = mid_land, yaw_land
    k.go(c.dt(0.3, 0.6), pelvis=(*mid, c.z_home), q={"body_pitch": 0.0, **_rest(c, 3)}, bal=1.0)
    k.finish(c.dt(0.2, 0.4), q=_end_pose(c))
    V = k.render()
    air = np.zeros(len(V), dtype=bool)
    for f in flights:
        _fly(V, f, c.fps)
        air[f.i_to + 1:f.i_land] = True
    return plan_from_keys("jump", c, k, V, air)


def _fly(V: np.ndarray, f: _Flight, fps: float) -> None:
    """Rewrite the rendered keys `V` of one jump in place: the pelvis accelerates from the dip to
    take-off speed, flies a parabola, and decelerates into the absorbed landing; the ankles go
    from the take-off stance to the landing stance relative to the (turning) pelvis, lifted
    (tuck) or spread (star) on the way."""
    P = V[:, PEL]
    p_dip, p_to, p_land, p_abs = (P[i].copy() for i in (f.i_dip, f.i_to, f.i_land, f.i_abs))
    v = f.velocity
    P[f.i_dip:f.i_to + 1] = hermite(f.i_to - f.i_dip + 1, p_dip, p_to, np.zeros(3), v, (f.i_to - f.i_dip) / fps)
    tau = (np.arange(f.i_to, f.i_land + 1) - f.i_to)[:, None] / fps
    P[f.i_to:f.i_land + 1] = p_to + tau * v - 0.5 * GRAVITY * tau ** 2 * np.array([0.0, 0.0, 1.0])
    P[f.i_land:f.i_abs + 1] = hermite(f.i_abs - f.i_land + 1, p_land, p_abs, v * np.array([1.0, 1.0, -1.0]),
                                      np.zeros(3), (f.i_abs - f.i_land) / fps)
    yaws = V[:, YAW]
    feet = V[:, FEET].reshape(-1, 2, 3)
    rel0 = (feet[f.i_to] - p_to) @ rot_z(yaws[f.i_to])          # row vectors: R^T applied
    rel1 = (feet[f.i_land] - p_land) @ rot_z(yaws[f.i_land])
    for i in range(f.i_to + 1, f.i_land):
        s = (i - f.i_to) / (f.i_land - f.i_to)
        w = s * s * (3 - 2 * s)
        rel = (1 - w) * rel0 + w * rel1
        bump = np.sin(np.pi * s)
        rel[:, 2] += (f.tuck if f.kind == "tuck" else 0.06) * bump
        rel[:, 0] += (0.4 * f.tuck if f.kind == "tuck" else 0.02) * bump
        if f.kind == "star":
            rel[:, 1] += np.array([1.0, -1.0]) * f.spread * bump
        feet[i] = P[i] + rel @ rot_z(yaws[i]).T
    V[:, FEET] = feet.reshape(-1, 6)


def _crouch(c: Ctx, start: np.ndarray) -> Plan:
    """Squats (1-3 reps), a deep squat held, a wide sumo squat with knees out, or a low crouch
    holding while the upper body moves; stepping out to a wider stance first when needed."""
    k = Keys(c, start)
    p = c.props
    kind = c.pick(("squat", "deep", "sumo", "hold"))
    width = {"squat": c.U(1.0, 1.5), "deep": c.U(1.2, 1.7), "sumo": c.U(1.9, 2.6), "hold": c.U(1.0, 1.5)}[kind]
    width *= p.hip_half_width
    ko = {"squat": c.U(8, 20), "deep": c.U(15, 30), "sumo": c.U(28, 40), "hold": c.U(10, 25)}[kind]
    depth = {"squat": c.U(0.25, 0.42), "deep": c.U(0.45, 0.6), "sumo": c.U(0.28, 0.45), "hold": c.U(0.42, 0.58)}[kind]
    wide = abs(width - c.style.sw) > 0.03
    if wide:
        g = int(c.rng.integers(2))
        wide_feet = c.home(np.zeros(2), 0.0, width)
        k.step(g, wide_feet[g], c.dt(0.6, 0.9), 0.06)
        k.step(1 - g, wide_feet[1 - g], c.dt(0.6, 0.9), 0.06)
    k.go(0.2, cw=0.5, ko=ko)
    lat = width - p.hip_half_width
    z_low = c.pelvis_height(0.0, lat, c.style.knee) - depth * c.leg
    arms_kind = c.pick(("forward", "clasp", "hips", "overhead", "free", "hang"))
    reps = int(c.rng.integers(1, 4)) if kind in ("squat", "sumo") else 1
    for _ in range(reps):
        lean = c.U(15, 40) * (1.3 if kind == "deep" else 1.0)
        if arms_kind == "forward":
            arms = arms_pose(c.U(70, 100), c.U(0, 20), c.U(-10, 10), c.U(0, 25))
        elif arms_kind == "clasp":
            arms = arms_pose(c.U(45, 70), c.U(-40, -25), c.U(-40, -10), c.U(70, 110))
        elif arms_kind == "hips":
            arms = arms_pose(c.U(-5, 10), c.U(35, 55), c.U(-60, -35), c.U(90, 115))
        elif arms_kind == "overhead":
            arms = arms_pose(c.U(150, 172), c.U(0, 20), c.U(-10, 10), c.U(0, 20))
        elif arms_kind == "hang":
            arms = arms_pose(lean + c.U(0, 25), c.U(0, 15), c.U(-10, 10), c.U(5, 30))
        else:
            arms = {**random_arm(c, "l"), **random_arm(c, "r")}
        down = {"body_pitch": c.U(0, 12), "back_flex": lean * 0.65, "chest_flex": lean * 0.35, **look(c, lean), **arms}
        k.go(c.dt(0.8, 1.4), pelvis=(0.0, 0.0, z_low), q=down)
        if kind in ("deep", "hold"):
            for _ in range(int(c.rng.integers(1, 4))):
                extra = {**look(c, lean), "chest_twist": c.U(-25, 25)}
                if kind == "hold" or c.rng.uniform() < 0.5:
                    extra.update(random_arm(c, c.pick(("l", "r"))))
                k.go(c.dt(0.5, 1.1), q=extra)
        else:
            k.go(c.dt(0.05, 0.3))
        k.go(c.dt(0.7, 1.2), pelvis=(0.0, 0.0, c.pelvis_height(0.0, lat, c.style.knee)),
             q={"body_pitch": 0.0, "back_flex": c.style.rest["back_flex"], "chest_flex": 0.0, **look(c, 0)})
    if wide:
        g = int(c.rng.integers(2))
        k.step(g, c.feet_home[g], c.dt(0.6, 0.9), 0.06, q=_rest(c, 3))
        k.step(1 - g, c.feet_home[1 - g], c.dt(0.6, 0.9), 0.06)
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("crouch", c, k)


def _one_leg(c: Ctx, k: Keys, stance: int, poses: list[tuple[dict, dict, float]],
             lift_t: float, down_t: float) -> None:
    """Shift the weight onto foot `stance`, lift the other leg into the first of `poses` (leg and
    body angles, hold seconds), move through them, and put the foot back where it was."""
    s_free = "r" if stance == 0 else "l"
    g = 1 - stance
    k.lift(g, c.dt(0.4, 0.7), c.U(0.05, 0.1))
    first = True
    for leg, body, hold in poses:
        k.go(lift_t if first else hold, q={**{f"{s_free}_{n}": v for n, v in leg.items()}, **body},
             free=(g, 1.0))
        first = False
    k.lower(g, down_t, q={"body_pitch": 0.0, "body_roll": 0.0})


def _kick(c: Ctx, start: np.ndarray) -> Plan:
    """1-3 kicks (front, side or back) from one leg: chamber, snap out, retract; guard or
    balancing arms."""
    k = Keys(c, start)
    stance = int(c.rng.integers(2))
    s = "r" if stance == 0 else "l"
    sgn = 1.0 if s == "l" else -1.0           # + when the kicking leg is the left one
    kind = c.pick(("front", "side", "back"))
    guard = c.pick(("guard", "out", "free"))
    if guard == "guard":
        arms = arms_pose(c.U(30, 60), c.U(10, 30), c.U(-30, 0), c.U(100, 135))
    elif guard == "out":
        arms = arms_pose(c.U(-10, 30), c.U(60, 95), c.U(-10, 20), c.U(0, 30))
    else:
        arms = {**random_arm(c, "l"), **random_arm(c, "r")}
    poses = []
    reach = c.style.reach
    for _ in range(int(c.rng.integers(1, 4))):
        if kind == "front":
            chamber = (dict(hip_flex=c.U(70, 100), hip_abd=c.U(0, 10), hip_rot=0.0, knee=c.U(90, 120)),
                       {"body_pitch": c.U(-10, 0), "back_flex": c.U(-5, 5), **arms})
            out = (dict(hip_flex=c.U(70, 85) * reach + 5, hip_abd=c.U(0, 10), hip_rot=0.0, knee=c.U(0, 12)),
                   {"body_pitch": c.U(-12, -4), "back_flex": c.U(-10, 0), **arms})
        elif kind == "side":
            chamber = (dict(hip_flex=c.U(50, 80), hip_abd=c.U(20, 35), hip_rot=c.U(-30, -10), knee=c.U(90, 120)),
                       {"body_roll": sgn * c.U(5, 12), "back_side": -sgn * c.U(5, 12), **arms})
            out = (dict(hip_flex=c.U(0, 20), hip_abd=c.U(40, 50) * reach, hip_rot=c.U(-25, -5), knee=c.U(0, 10)),
                   {"body_roll": sgn * c.U(12, 20), "back_side": -sgn * c.U(10, 20),
                    "chest_side": -sgn * c.U(5, 15), **arms})
        else:
            chamber = (dict(hip_flex=c.U(60, 90), hip_abd=c.U(0, 10), hip_rot=0.0, knee=c.U(100, 130)),
                       {"body_pitch": c.U(10, 25), "back_flex": c.U(5, 15), **arms})
            out = (dict(hip_flex=c.U(-20, -10), hip_abd=c.U(0, 10), hip_rot=c.U(-10, 10), knee=c.U(0, 20)),
                   {"body_pitch": c.U(35, 60) * reach, "back_flex": c.U(0, 10), "neck_flex": -c.U(20, 35), **arms})
        snap = c.dt(0.12, 0.25) / (0.6 + 0.4 * c.style.energy)
        poses += [(chamber[0], chamber[1], c.dt(0.2, 0.4)), (out[0], out[1], snap),
                  (out[0], out[1], c.dt(0.05, 0.3)), (chamber[0], chamber[1], c.dt(0.2, 0.35))]
    _one_leg(c, k, stance, poses, c.dt(0.25, 0.4), c.dt(0.3, 0.5))
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("kick", c, k)


def _balance_pose(c: Ctx, s: str, family: str, sgn: float) -> tuple[dict, dict]:
    """Free-leg angles (leg side s) and body angles of a one-leg balance pose, degrees."""
    reach = c.style.reach
    arms = arms_pose(c.U(-15, 35), c.U(65, 100), c.U(-15, 25), c.U(0, 35))
    if family == "forward":
        leg = dict(hip_flex=c.U(30, 80) * reach, hip_abd=c.U(-5, 15), hip_rot=c.U(-10, 20), knee=c.U(0, 45))
        body = {"body_pitch": c.U(-10, 5), "back_flex": c.U(-5, 10)}
    elif family == "side":
        leg = dict(hip_flex=c.U(0, 25), hip_abd=c.U(20, 48) * reach, hip_rot=c.U(-15, 15), knee=c.U(0, 40))
        body = {"body_roll": sgn * c.U(5, 18), "back_side": -sgn * c.U(5, 18)}
    elif family == "back":
        leg = dict(hip_flex=c.U(-20, -5), hip_abd=c.U(0, 15), hip_rot=c.U(-10, 20), knee=c.U(0, 60))
        body = {"body_pitch": c.U(20, 65) * reach, "back_flex": c.U(-10, 10), "neck_flex": -c.U(10, 35)}
        if c.rng.uniform() < 0.5:
            arms.update(arm_pose(c.pick(("l", "r")), c.U(120, 170), c.U(0, 30), c.U(-10, 10), c.U(0, 20)))
    elif family == "knee_up":
        leg = dict(hip_flex=c.U(70, 110), hip_abd=c.U(-10, 20), hip_rot=c.U(-10, 20), knee=c.U(80, 125))
        body = {"body_pitch": c.U(-8, 5)}
    else:  # tree: knee out, sole near the standing knee
        leg = dict(hip_flex=c.U(25, 50), hip_abd=c.U(35, 50), hip_rot=c.U(30, 45), knee=c.U(110, 140))
        body = {"body_pitch": c.U(-5, 5)}
        if c.rng.uniform() < 0.6:
            arms = arms_pose(c.U(150, 172), c.U(-10, 20), c.U(-10, 20), c.U(0, 40))
    return leg, {**body, **arms, **look(c, body.get("body_pitch", 0.0))}


def _balance(c: Ctx, start: np.ndarray) -> Plan:
    """Stand on one leg 2-6 s, the other leg forward, sideways, back (arabesque), knee-up or in a
    tree pose; arms out for balance; the free limbs keep moving widely between poses."""
    k = Keys(c, start)
    stance = int(c.rng.integers(2))
    s = "r" if stance == 0 else "l"
    sgn = 1.0 if s == "l" else -1.0
    families = ("forward", "side", "back", "knee_up", "tree")
    poses = []
    fam = c.pick(families)
    for i in range(int(c.rng.integers(2, 6))):
        if i and c.rng.uniform() < 0.6:
            fam = c.pick(families)
        leg, body = _balance_pose(c, s, fam, sgn)
        if c.rng.uniform() < 0.4:
            body.update(random_arm(c, c.pick(("l", "r"))))
        poses.append((leg, body, c.dt(0.6, 1.4)))
        if c.rng.uniform() < 0.5:     # hold, wobbling a little
            body = dict(body)
            for n in ("l_sh_abd", "r_sh_abd", "l_sh_flex", "r_sh_flex"):
                body[n] = body.get(n, 0.0) + c.U(-12, 12)
            body["chest_side"] = c.U(-8, 8)
            poses.append((leg, body, c.dt(0.4, 1.0)))
    _one_leg(c, k, stance, poses, c.dt(0.5, 0.9), c.dt(0.5, 0.8))
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("balance", c, k)


def _turn(c: Ctx, start: np.ndarray) -> Plan:
    """Turn on the spot 60-360 degrees in 1-6 pivot steps, the chest and head leading."""
    k = Keys(c, start)
    total = c.pick((-1.0, 1.0)) * c.U(60, 360)
    nsteps = max(1, int(np.ceil(abs(total) / c.U(50, 95))))
    d = total / nsteps
    lead = np.sign(total)
    k.go(c.dt(0.2, 0.4), q={"chest_twist": lead * c.U(5, 20), "neck_side": 0.0, **_rest(c, 5)})
    yaw = 0.0
    g = 0 if total > 0 else 1                 # the foot on the turning side opens first
    for _ in range(nsteps):
        yaw += d
        feet = k.feet()
        stance = feet[1 - g]
        c_, s_ = np.cos(yaw * _DEG), np.sin(yaw * _DEG)
        side = 2 * c.style.sw * (1 if g == 0 else -1)
        target = np.array([stance[0] - s_ * side, stance[1] + c_ * side, c.props.ankle_height])
        k.step(g, target, c.dt(0.45, 0.7), c.U(0.03, 0.09), yaw=yaw,
               q={"chest_twist": lead * c.U(0, 15), **arms_pose(c.U(-10, 20), c.U(5, 25), c.U(-10, 10), c.U(10, 40))})
        g = 1 - g
    k.finish(c.dt(0.3, 0.5), q={**_end_pose(c), "chest_twist": 0.0})
    return plan_from_keys("turn", c, k)


def _sit(c: Ctx, start: np.ndarray) -> Plan:
    """Sit down on an invisible stool (hips at stool height), stay 1.5-5 s moving the upper body
    (and now and then stretching a leg), and stand up, leaning forward to get up."""
    k = Keys(c, start)
    p = c.props
    stool = c.U(0.40, 0.52) * p.leg_length / 0.92
    z_seat = stool + 0.05 * p.height / 1.75 + p.hip_drop
    x_seat = -min(p.thigh * c.U(0.75, 0.95), c.room - 0.05)
    lean = c.U(30, 50)
    arms = c.pick(("forward", "knees", "free"))
    k.go(c.dt(0.5, 0.8), bal=0.3, q={"body_pitch": lean * 0.5, "back_flex": lean * 0.35, "chest_flex": lean * 0.15,
                                      **look(c, lean), **(arms_pose(c.U(40, 80), c.U(0, 20), 0, c.U(0, 30))
                                                           if arms == "forward" else {})},
         pelvis=(x_seat * 0.3, 0.0, c.z_home - 0.12 * c.leg))
    k.go(c.dt(0.6, 1.0), bal=0.0, pelvis=(x_seat, 0.0, z_seat),
         q={"body_pitch": c.U(-5, 10), "back_flex": c.U(-5, 15), "chest_flex": c.U(0, 10), **look(c, 0),
            **(arms_pose(c.U(20, 45), c.U(5, 20), c.U(-30, -10), c.U(40, 70)) if arms == "knees" else {})})
    for _ in range(int(c.rng.integers(1, 4))):
        q = {"body_pitch": c.U(-15, 15), **random_trunk(c, 0.6), **random_arm(c, "l"), **random_arm(c, "r")}
        if c.rng.uniform() < 0.3:
            g = int(c.rng.integers(2))
            s = "l" if g == 0 else "r"
            k.go(c.dt(0.2, 0.4), foot=(g, k.feet()[g] + np.array([0.0, 0.0, c.U(0.04, 0.08)])))
            stretch = leg_pose(s, c.U(70, 95), c.U(0, 15), c.U(-10, 20), c.U(10, 40))
            k.go(c.dt(0.6, 1.2), q={**q, **stretch}, free=(g, 1.0))
            k.go(c.dt(0.5, 1.0), free=(g, 0.0))
            k.go(c.dt(0.2, 0.4), foot=(g, c.feet_home[g]))
        else:
            k.go(c.dt(0.7, 1.5), q=q)
    lean = c.U(35, 55)
    k.go(c.dt(0.5, 0.9), q={"body_pitch": lean * 0.5, "back_flex": lean * 0.35, "chest_flex": lean * 0.15,
                            **look(c, lean), **arms_pose(c.U(20, 70), c.U(0, 20), 0, c.U(0, 40))},
         pelvis=(x_seat * 0.85, 0.0, z_seat + 0.02))
    k.go(c.dt(0.6, 1.0), bal=0.5, q={"body_pitch": lean * 0.2, "back_flex": lean * 0.2, "chest_flex": 0.0},
         pelvis=(x_seat * 0.3, 0.0, c.z_home - 0.1 * c.leg))
    k.finish(c.dt(0.4, 0.7), q=_end_pose(c))
    return plan_from_keys("sit", c, k)


def _reach_down(c: Ctx, start: np.ndarray) -> Plan:
    """Reach to the floor: bending at the hips with nearly straight legs, squatting to pick
    something up, or one hand down beside a foot; the hand comes within ~4-15 cm of the floor
    (the back and hips bend first, then the knees)."""
    k = Keys(c, start)
    kind = c.pick(("stoop", "squat", "side"))
    hand = c.pick(("l", "r", "both"))
    target = c.U(0.03, 0.15)
    sgn = {"l": 1.0, "r": -1.0, "both": 0.0}[hand]
    if kind == "stoop":
        deep = {"body_pitch": 70 * c.style.reach, "back_flex": 40.0, "chest_flex": 25.0, "neck_flex": -30.0}
        knee_drop = c.U(0.0, 0.05)
    elif kind == "squat":
        deep = {"body_pitch": 20.0, "back_flex": 40.0, "chest_flex": 25.0, "neck_flex": -25.0}
        knee_drop = c.U(0.4, 0.55)
    else:
        deep = {"body_pitch": 35.0, "back_flex": 35.0, "chest_flex": 20.0, "back_side": 15 * sgn,
                "chest_side": 12 * sgn, "chest_twist": 20 * sgn, "neck_flex": -25.0}
        knee_drop = c.U(0.2, 0.4)
    v_home = k.now()
    # Depth s scales the bend up to s = 1, then only the knees bend further (a stiff back reaches
    # the floor by squatting); pick the s whose lowest hand is at the target height.
    S = np.linspace(0.2, 1.8, 33)
    bend = np.minimum(S, 1.0)
    G = np.repeat(v_home[None], len(S), axis=0)
    for n, val in deep.items():
        G[:, A[n]] = bend * val * _DEG
    trunk = sum(deep.get(n, 0.0) for n in ("body_pitch", "back_flex", "chest_flex"))
    arm_flex = {"l": 0.0, "r": 0.0}
    for s in ("l", "r"):
        if hand in (s, "both"):
            arm_flex[s] = 1.0
    for s in ("l", "r"):
        G[:, A[f"{s}_sh_flex"]] = bend * (trunk * (0.9 if arm_flex[s] else 0.6) + c.U(-10, 15)) * _DEG
        G[:, A[f"{s}_sh_abd"]] = c.U(0, 15) * _DEG
        G[:, A[f"{s}_elbow"]] = (c.U(0, 15) if arm_flex[s] else c.U(20, 70)) * _DEG
    G[:, NQ + 2] = c.z_home - (bend * knee_drop + np.maximum(S - 1.0, 0.0) * 0.5) * c.leg
    q, pel, _, _ = solve(c, G, np.zeros(len(S), dtype=bool))   # (a batch of poses, not a clip)
    X = pose_from_angles(q, c.props, G[:, YAW], pel)
    ankle_floor = X[:, ANKLES, 2].min(axis=1) - c.props.ankle_height
    hand_z = X[:, [J["left_wrist"], J["right_wrist"]], 2].min(axis=1) - ankle_floor
    i = int(np.argmin(np.abs(hand_z - target)))
    arm_names = [f"{s}_{m}" for s in "lr" for m in ("sh_flex", "sh_abd", "elbow")]
    pose = {n: G[i, A[n]] / _DEG for n in list(deep) + arm_names}
    z = G[i, NQ + 2]
    k.go(c.dt(0.8, 1.4), q=pose, pelvis=(0.0, 0.0, z))
    for _ in range(int(c.rng.integers(1, 3))):
        wiggle = {n: pose[n] + c.U(-6, 6) for n in pose if n.endswith(("sh_flex", "sh_abd", "elbow"))}
        k.go(c.dt(0.3, 0.8), q=wiggle)
    k.go(c.dt(0.8, 1.3), q={**{n: 0.0 for n in deep}, **_rest(c, 3), **look(c, 0)}, pelvis=(0.0, 0.0, c.z_home))
    k.finish(c.dt(0.2, 0.4), q=_end_pose(c))
    return plan_from_keys("reach_down", c, k)


def _lunge(c: Ctx, start: np.ndarray) -> Plan:
    """1-2 lunges (forward, backward or sideways): step out, sink until the back knee is near the
    floor (or the leading knee bends ~90 sideways), rise and step back; with arms on the hips,
    overhead, forward or twisting."""
    k = Keys(c, start)
    for rep in range(1 + int(c.rng.uniform() < 0.4)):
        g = int(c.rng.integers(2))                  # the leg that steps
        sgn = 1.0 if g == 0 else -1.0
        kind = c.pick(("forward", "backward", "side"))
        feet0 = k.feet()
        if kind == "side":
            step = np.array([0.0, sgn * c.U(0.45, 0.7) * c.leg])
        else:
            step = np.array([(1 if kind == "forward" else -1) * c.U(0.45, 0.65) * c.leg, 0.0])
        target = feet0[g] + np.array([*step, 0.0])
        z = c.z_home - (c.U(0.22, 0.32) if kind == "side" else c.U(0.3, 0.45)) * c.leg
        # A split stance tilts the pelvis forward (the back arched to keep the trunk upright): the
        # rear hip has only ~20 degrees of extension.
        tilt = c.U(12, 20)
        lean = {"body_pitch": tilt, "back_flex": -tilt * c.U(0.3, 0.8)} if kind != "side" else None
        k.step(g, target, c.dt(0.5, 0.8), c.U(0.04, 0.1), z=0.5 * (c.z_home + z) if kind != "backward" else z,
               q=lean)
        feet = k.feet()
        front = g if kind != "backward" else 1 - g
        arms = c.pick(("hips", "overhead", "forward", "twist", "free"))
        if arms == "hips":
            q = arms_pose(c.U(-5, 10), c.U(35, 55), c.U(-60, -35), c.U(90, 115))
        elif arms == "overhead":
            q = arms_pose(c.U(150, 172), c.U(0, 20), c.U(-10, 10), c.U(0, 20))
        elif arms == "forward":
            q = arms_pose(c.U(70, 95), c.U(0, 15), c.U(-10, 10), c.U(0, 20))
        elif arms == "twist":
            q = {"chest_twist": (1 if front == 0 else -1) * c.U(25, 40),
                 **arms_pose(c.U(60, 90), c.U(10, 40), 0, c.U(60, 100))}
        else:
            q = {**random_arm(c, "l"), **random_arm(c, "r")}
        if kind == "side":
            cw = 0.75 if g == 0 else 0.25
            q.update({"body_pitch": c.U(10, 25), "back_flex": c.U(5, 15)})
        else:
            cw = 0.5
            tilt = c.U(12, 20)
            q.update({"body_pitch": tilt, "back_flex": -tilt * c.U(0.3, 0.8)})
        mid = feet[:, :2].mean(axis=0)
        k.go(0.15, cw=cw)
        k.go(c.dt(0.6, 1.0), pelvis=(*mid, z), q={**q, **look(c, q.get("body_pitch", 0.0))})
        k.go(c.dt(0.2, 0.9))
        z_up = c.z_home if kind == "side" else 0.5 * (z + c.z_home)
        k.go(c.dt(0.5, 0.9), pelvis=(*mid, z_up), q={"chest_twist": 0.0})
        walking = kind == "forward" and not c.stay and c.rng.uniform() < 0.4 \
            and np.hypot(*(feet0[g, :2] + step - c.center)) < c.room - 0.3
        if walking:   # bring the back foot forward instead of stepping back
            k.step(1 - g, feet[1 - g] + np.array([*step, 0.0]), c.dt(0.5, 0.8), c.U(0.04, 0.1),
                   q={**_rest(c, 3), "body_pitch": 0.0}, z=c.z_home)
        else:
            k.step(g, feet0[g], c.dt(0.5, 0.8), c.U(0.04, 0.1), q={**_rest(c, 3), "body_pitch": 0.0}, z=c.z_home)
        k.go(0.2, cw=0.5)
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("lunge", c, k)


def _torso(c: Ctx, start: np.ndarray) -> Plan:
    """Torso twists, side bends (the far arm overhead), forward hinges, back bends or trunk
    circles, 2-4 times each way."""
    k = Keys(c, start)
    kind = c.pick(("twist", "side", "forward", "back", "circle"))
    reach = c.style.reach
    reps = int(c.rng.integers(2, 5))
    arms = arms_pose(c.U(60, 90), c.U(30, 80), c.U(-10, 10), c.U(60, 120)) if c.rng.uniform() < 0.5 \
        else arms_pose(c.U(-5, 10), c.U(35, 55), c.U(-60, -35), c.U(90, 115))
    for i in range(reps):
        d = 1.0 if i % 2 == 0 else -1.0
        if kind == "twist":
            q = {"chest_twist": d * c.U(25, 40) * reach, "neck_side": 0.0, **arms}
        elif kind == "side":
            s = "r" if d > 0 else "l"
            q = {"back_side": d * c.U(12, 20) * reach, "chest_side": d * c.U(8, 15) * reach,
                 **arm_pose(s, c.U(140, 172), c.U(10, 40), c.U(-10, 10), c.U(0, 30)),
                 **arm_pose("l" if s == "r" else "r", c.U(-5, 15), c.U(0, 20), 0, c.U(10, 40))}
        elif kind == "forward":
            if d < 0:
                q = {"body_pitch": 0.0, "back_flex": c.style.rest["back_flex"], "chest_flex": 0.0, **look(c, 0)}
            else:
                b = c.U(30, 70) * reach
                q = {"body_pitch": b * 0.6, "back_flex": b * 0.3, "chest_flex": b * 0.1, **look(c, b),
                     **arms_pose(c.U(60, 160), c.U(0, 30), 0, c.U(0, 30))}
        elif kind == "back":
            if d < 0:
                k.go(c.dt(0.6, 1.2), q={"body_pitch": 0.0, "back_flex": 0.0, "chest_flex": 0.0, "neck_flex": 0.0},
                     pelvis=(0.0, 0.0, c.z_home))
                k.go(c.dt(0.05, 0.5))
                continue
            else:
                q = {"body_pitch": -c.U(0, 8), "back_flex": -c.U(10, 20) * reach, "chest_flex": -c.U(5, 15) * reach,
                     "neck_flex": -c.U(15, 35), **arms_pose(c.U(140, 172), c.U(0, 30), 0, c.U(0, 20))}
                k.go(c.dt(0.6, 1.2), q=q, pelvis=(0.0, 0.0, c.z_home - c.U(0.02, 0.06) * c.leg))
                k.go(c.dt(0.05, 0.5))
                continue
        else:
            for j in range(4):
                a = (j + 1) * np.pi / 2 * d
                q = {"back_flex": 25 * np.cos(a) * reach + 5, "back_side": 15 * np.sin(a) * reach,
                     "chest_flex": 10 * np.cos(a), "chest_side": 8 * np.sin(a), **arms}
                k.go(c.dt(0.35, 0.6), q=q)
            continue
        k.go(c.dt(0.6, 1.2), q=q)
        k.go(c.dt(0.05, 0.5))
    k.finish(c.dt(0.6, 1.0), q={"back_side": 0.0, "chest_side": 0.0, "chest_twist": 0.0, **_end_pose(c)})
    return plan_from_keys("torso", c, k)


def _arm_swing(c: Ctx, start: np.ndarray) -> Plan:
    """Wide arm swings for 2-5 s: arm circles (one or both, forward or backward), windmills,
    horizontal swings from across the chest to behind, or big swimming strokes."""
    k = Keys(c, start)
    kind = c.pick(("circles", "windmill", "horizontal", "swim"))
    dur = c.dt(2.0, 5.0)
    f = c.U(0.5, 1.1) * c.style.tempo
    k.go(0.3, q=_rest(c, 2))
    k.go(dur)
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    V = k.render()
    n = len(V)
    t = np.arange(n) / c.fps
    t_end = min(round((0.3 + dur) * c.fps), n - 1) / c.fps
    env = np.clip(np.minimum((t - 0.3) / 0.5, (t_end - t) / 0.5), 0.0, 1.0)
    env = env * env * (3 - 2 * env)
    ph = 2 * np.pi * f * (t - 0.3) * c.pick((-1.0, 1.0))
    which = c.pick(("both", "l", "r")) if kind == "circles" else "both"
    big = c.U(0.8, 1.0) * c.style.reach
    for s, off in (("l", 0.0), ("r", np.pi if kind == "windmill" else 0.0)):
        if which not in ("both", s):
            continue
        a = ph + off
        if kind in ("circles", "windmill"):
            flex = (85 + 85 * np.cos(a)) * big
            abd = (35 + 40 * np.sin(a)) * big
            elbow = np.full(n, c.U(0, 20))
        elif kind == "horizontal":
            plane = 50 + 90 * np.sin(a) * big              # 140: across the chest, -40: behind
            elev = 90 + c.U(-15, 15)
            flex, abd = elev * np.sin(plane * _DEG), elev * np.cos(plane * _DEG)
            elbow = np.full(n, c.U(0, 25))
        else:   # swim: breaststroke-like sweep
            flex = 100 + 60 * np.cos(a)
            abd = 50 + 45 * np.sin(a)
            elbow = 40 + 40 * np.cos(a + 0.8)
        for name, val in (("sh_flex", flex), ("sh_abd", abd), ("elbow", elbow)):
            col = A[f"{s}_{name}"]
            V[:, col] = (1 - env) * V[:, col] + env * val * _DEG
    V[:, A["chest_twist"]] += env * c.U(-15, 15) * np.sin(ph) * _DEG
    V[:, A["back_flex"]] += env * c.U(0, 8) * _DEG
    return plan_from_keys("arm_swing", c, k, V)


def _free(c: Ctx, start: np.ndarray) -> Plan:
    """2-5 random poses drawn inside the joint limits, blended: any arm pose, trunk and head
    within 80 % of their ranges, the pelvis lowered and tilted on both feet, or standing on one
    foot with the other leg anywhere its limits allow (its foot kept off the floor)."""
    k = Keys(c, start)
    p = c.props
    stance = None
    for _ in range(int(c.rng.integers(2, 6))):
        q = {**random_trunk(c, 0.8), **random_arm(c, "l"), **random_arm(c, "r")}
        q["body_pitch"] = c.U(-10, 40)
        q["body_roll"] = c.U(-8, 8)
        if c.rng.uniform() < 0.45:
            new = int(c.rng.integers(2)) if stance is None else stance     # keep standing on one foot
            g = 1 - new
            s = "l" if g == 0 else "r"
            for _ in range(30):   # a free-leg pose whose ankle is well (~15 cm) above the standing one
                leg = leg_pose(s, c.U(-20, 110), c.U(-10, 50), c.U(-35, 45), c.U(0, 140))
                qq = clamp_angles(np.array([[radians({**q, **leg}).get(n, 0.0) for n in ANGLES]]))
                X = pose_from_angles(qq, p, np.zeros(1))
                if X[0, ANKLES[g], 2] > X[0, ANKLES[new], 2] + 0.06 + 0.1 * c.leg:
                    break
            if stance is None:
                k.go(c.dt(0.3, 0.6), pelvis=(0.0, 0.0, c.z_home), q={"body_pitch": 0.0, "body_roll": 0.0})
                k.lift(g, c.dt(0.4, 0.6), c.U(0.05, 0.1))
            k.go(c.dt(0.6, 1.2), q={**q, **leg, "body_roll": 0.0}, free=(g, 1.0),
                 pelvis=(0.0, 0.0, c.z_home - c.U(0.0, 0.12) * c.leg))
            stance = new
        else:
            if stance is not None:
                k.lower(1 - stance, c.dt(0.6, 0.9), q={"body_roll": 0.0, "body_pitch": 0.0})
                stance = None
            k.go(c.dt(0.6, 1.2), q=q, cw=c.U(0.3, 0.7), pelvis=(0.0, 0.0, c.z_home - c.U(0.0, 0.35) * c.leg))
    if stance is not None:
        k.lower(1 - stance, c.dt(0.6, 0.9), q={"body_roll": 0.0, "body_pitch": 0.0})
    k.finish(c.dt(0.5, 0.8), q={**random_trunk(c, 0.2), **_end_pose(c)})
    return plan_from_keys("free", c, k)


def _swing_arms(c: Ctx, g: int) -> dict:
    """Arms swinging opposite to the legs while leg `g` steps forward."""
    return {**arm_pose("l", c.U(-25, -5) if g == 0 else c.U(5, 30), c.U(5, 15), 0, c.U(10, 40)),
            **arm_pose("r", c.U(-25, -5) if g == 1 else c.U(5, 30), c.U(5, 15), 0, c.U(10, 40))}


def _step(c: Ctx, start: np.ndarray) -> Plan:
    """Step somewhere: 2-8 steps (0.2-0.6 m) towards a random point of the allowed disc, turning
    on the way; in place (``stay_in_place``): back to the spot when off it, else marching on the
    spot or side-steps out and back."""
    if c.stay and np.hypot(*c.center) > 0.12:
        return walk_to(c, start, c.center, max_step=0.3)
    if not c.stay:
        for _ in range(20):   # a random point of the allowed disc, at least 0.4 m away if possible
            r = c.room * np.sqrt(c.rng.uniform())
            a = c.U(-np.pi, np.pi)
            goal = c.center + r * np.array([np.cos(a), np.sin(a)])
            if np.hypot(*goal) > 0.4:
                break
        return walk_to(c, start, goal, max_step=0.6)
    k = Keys(c, start)
    if c.rng.uniform() < 0.5:   # march on the spot, knees high
        g = int(c.rng.integers(2))
        for _ in range(int(c.rng.integers(3, 8))):
            s = "l" if g == 0 else "r"
            k.lift(g, c.dt(0.2, 0.3), 0.05)
            k.go(c.dt(0.2, 0.35), free=(g, 1.0),
                 q={**leg_pose(s, c.U(50, 95), c.U(0, 10), c.U(-5, 15), c.U(60, 110)), **_swing_arms(c, g)})
            k.lower(g, c.dt(0.3, 0.45))
            g = 1 - g
    else:                       # side-steps out and back
        g = int(c.rng.integers(2))
        d = c.U(0.2, 0.4) * (1 if g == 0 else -1)
        feet = k.feet()
        for _ in range(int(c.rng.integers(1, 3))):
            k.step(g, feet[g] + np.array([0.0, d, 0.0]), c.dt(0.4, 0.6), c.U(0.03, 0.08))
            k.step(1 - g, feet[1 - g] + np.array([0.0, d, 0.0]), c.dt(0.4, 0.6), c.U(0.03, 0.08))
            k.step(1 - g, feet[1 - g], c.dt(0.4, 0.6), c.U(0.03, 0.08))
            k.step(g, feet[g], c.dt(0.4, 0.6), c.U(0.03, 0.08))
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("step", c, k)


def walk_to(c: Ctx, start: np.ndarray, goal: np.ndarray, max_step: float) -> Plan:
    """Step to `goal` (action frame): within 0.6 m a shuffle without turning (each foot in turn
    to its place beside the goal, the nearer one first); farther, up to 8 steps (at most
    `max_step` m) turning towards it by up to 35 degrees a step, then the trailing foot closes
    beside the leading one."""
    k = Keys(c, start)
    p = c.props
    if float(np.hypot(*goal)) <= 0.6:
        for _ in range(3):
            feet = k.feet()
            left = goal - feet[:, :2].mean(axis=0)
            if np.hypot(*left) < 0.05:
                break
            # A pair of steps covers at most 0.35 m forward, 0.3 m sideways, 0.2 m back (the
            # hip extends only ~20 degrees).
            move = np.array([np.clip(left[0], -0.2, 0.35), np.clip(left[1], -0.3, 0.3)])
            order = (0, 1) if left @ (feet[0, :2] - feet[1, :2]) > 0 else (1, 0)
            for g in order:
                k.step(g, feet[g] + np.array([*move, 0.0]), c.dt(0.45, 0.65), c.U(0.03, 0.07),
                       q=_rest(c, 3))
        k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
        return plan_from_keys("step", c, k)
    yaw = 0.0
    g = int(c.rng.integers(2))
    L = min(c.U(0.25, 0.5) * p.leg_length / 0.92, 0.5, max_step)
    for _ in range(8):
        feet = k.feet()
        to = goal - feet[:, :2].mean(axis=0)
        dist = float(np.hypot(*to))
        if dist < 0.1:
            break
        err = (np.arctan2(to[1], to[0]) / _DEG - yaw + 180) % 360 - 180
        yaw += float(np.clip(err, -35, 35))
        c_, s_ = np.cos(yaw * _DEG), np.sin(yaw * _DEG)
        stance = feet[1 - g]
        side = 2 * c.style.sw * (1 if g == 0 else -1)
        adv = min(L, dist + 0.1) if abs(err) < 60 else 0.0
        # The swing foot lands `adv` ahead of the stance foot, beside it.
        target = np.array([stance[0] + c_ * adv - s_ * side, stance[1] + s_ * adv + c_ * side, p.ankle_height])
        k.step(g, target, c.dt(0.45, 0.65), c.U(0.04, 0.1), yaw=yaw, q=_swing_arms(c, g))
        g = 1 - g
    feet = k.feet()
    c_, s_ = np.cos(yaw * _DEG), np.sin(yaw * _DEG)
    side = 2 * c.style.sw * (1 if g == 0 else -1)
    stance = feet[1 - g]
    k.step(g, np.array([stance[0] - s_ * side, stance[1] + c_ * side, p.ankle_height]), c.dt(0.45, 0.65),
           c.U(0.03, 0.07), yaw=yaw, q=_rest(c, 3))
    k.finish(c.dt(0.3, 0.5), q=_end_pose(c))
    return plan_from_keys("step", c, k)


def _arms_overhead(c: Ctx, start: np.ndarray) -> Plan:
    """One or both arms overhead (forward, sideways or hands clasped / on the head), held and
    stretched (side bend, reaching higher, waving), then lowered."""
    k = Keys(c, start)
    which = c.pick(("both", "l", "r"))
    kind = c.pick(("front", "side", "clasp", "head"))
    sides = ("l", "r") if which == "both" else (which,)
    q = {}
    for s in sides:
        if kind == "front":
            q.update(arm_pose(s, c.U(150, 174), c.U(-5, 25), c.U(-20, 30), c.U(0, 20)))
        elif kind == "side":
            q.update(arm_pose(s, c.U(0, 30), c.U(145, 170), c.U(-10, 40), c.U(0, 25)))
        elif kind == "clasp":
            q.update(arm_pose(s, c.U(155, 170), c.U(-30, -10), c.U(-20, 10), c.U(20, 50)))
        else:
            q.update(arm_pose(s, c.U(20, 45), c.U(100, 130), c.U(60, 85), c.U(115, 140)))
    k.go(c.dt(0.5, 1.2), q={**q, "neck_flex": -c.U(0, 20)})
    for _ in range(int(c.rng.integers(1, 4))):
        extra = {}
        mode = c.pick(("bend", "higher", "wave", "hold"))
        if mode == "bend":
            d = c.pick((-1.0, 1.0)) if which == "both" else (-1.0 if which == "l" else 1.0)
            extra = {"back_side": d * c.U(8, 20), "chest_side": d * c.U(5, 15)}
        elif mode == "higher":
            extra = {"chest_flex": -c.U(5, 12), "neck_flex": -c.U(10, 30),
                     **{f"{s}_sh_flex": min(q[f"{s}_sh_flex"] + 10, 174) for s in sides}}
        elif mode == "wave":
            s = sides[0]
            for j in range(int(c.rng.integers(2, 5))):
                k.go(c.dt(0.2, 0.35), q={f"{s}_elbow": (c.U(30, 60) if j % 2 == 0 else c.U(0, 15))})
            continue
        k.go(c.dt(0.5, 1.2), q={**extra})
        k.go(c.dt(0.2, 0.6), q={"back_side": 0.0, "chest_side": 0.0})
    k.finish(c.dt(0.6, 1.2), q={**_end_pose(c), "chest_flex": 0.0})
    return plan_from_keys("arms_overhead", c, k)


BUILDERS = {"jump": _jump, "crouch": _crouch, "kick": _kick, "arms_overhead": _arms_overhead,
            "balance": _balance, "turn": _turn, "sit": _sit, "reach_down": _reach_down, "lunge": _lunge,
            "torso": _torso, "arm_swing": _arm_swing, "free": _free, "step": _step}
"""Action name -> builder ``(Ctx, start angles (ANGLES,)) -> Plan``."""

ACTIONS: tuple[str, ...] = tuple(BUILDERS)
"""Actions of the varied generator (labels in `Motion.segments`)."""
