"""Keyframed actions into feasible joint angles: the machinery behind :mod:`.pose_actions`.

An action is written as keyframes (:class:`Keys`) of one vector of channels: the joint angles of
:mod:`.joint_limits`, the pelvis position and heading, the two ankle targets, how far each leg
follows its keyed angles instead of its ankle target, which foot carries the weight. `solve`
turns the interpolated keys into joint angles: legs with an ankle target by two-bone IK, the
pelvis lowered where a planted foot is out of reach and shifted so the centre of mass is over
the support, a lifted foot kept above the floor, every angle clamped to the limits.

Coordinates are those of the *action frame*: origin at the ankle midpoint where the action
starts, x along the heading there, z up, floor z = 0; metres and radians (degrees in the
helpers that say so).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from ..skeleton import JOINT_INDEX, NUM_JOINTS
from .joint_limits import ANGLES, JOINT_LIMITS, A, clamp_angles, limb_angles, pelvis_frame, pose_from_angles
from .proportions import BodyProportions

_DEG = np.pi / 180.0
J = JOINT_INDEX
WEIGHT_SHIFT_MPS = 0.8
"""Fastest a key moves the weight (the balance target) from foot to foot, metres per second."""
NQ = len(ANGLES)
UPPER = [n for n in ANGLES if not n.startswith(("body_", "l_hip", "r_hip", "l_knee", "r_knee"))]
"""Angles above the pelvis (trunk, neck, head, arms)."""
ANKLES = (J["left_ankle"], J["right_ankle"])          # foot index 0 = left, 1 = right
_LEG = ("hip_flex", "hip_abd", "hip_rot", "knee")
_SIDES = (("l", 1.0), ("r", -1.0))
_NOT_ANKLES = [j for j in range(NUM_JOINTS) if j not in ANKLES]

# Channels of a keyframe vector: joint angles, pelvis (3), ankle targets (2 x 3), heading, how
# far each leg follows its keyed angles instead of its ankle target, left foot's share of the
# weight, balance strength (0: pelvis as keyed, 1: over the support), knee-out angle per leg.
Q = slice(0, NQ)
PEL = slice(NQ, NQ + 3)
FEET = slice(NQ + 3, NQ + 9)
YAW = NQ + 9
FREE = slice(NQ + 10, NQ + 12)
CW = NQ + 12
BAL = NQ + 13
KO = slice(NQ + 14, NQ + 16)
NCH = NQ + 16

# Centre of mass: (parent joint, child joint, fraction along the bone, mass fraction), de Leva-like.
_SEGMENTS = ((0, 7, 0.4, 0.280), (7, 8, 0.5, 0.216), (9, 10, 0.4, 0.081),
             (11, 12, 0.45, 0.028), (14, 15, 0.45, 0.028), (12, 13, 0.6, 0.022), (15, 16, 0.6, 0.022),
             (4, 5, 0.43, 0.100), (1, 2, 0.43, 0.100), (5, 6, 0.5, 0.061), (2, 3, 0.5, 0.061))


# --------------------------------------------------------------------------------------------
# Subject habits, action context, angle helpers (degrees)
# --------------------------------------------------------------------------------------------
@dataclass
class Style:
    """Habits of one subject, fixed for a clip."""

    sw: float        # half the distance between the ankles when standing, metres
    knee: float      # knee bend when standing, radians
    ko: float        # knees turned out, radians
    tempo: float     # > 1 moves faster
    reach: float     # share of the joint ranges used at the extremes (flexibility)
    energy: float    # scales jump heights and kick speeds
    rest: dict       # upper-body angles when relaxed, degrees

    @classmethod
    def sample(cls, rng: np.random.Generator, props: BodyProportions) -> "Style":
        U = rng.uniform
        rest = {n: 0.0 for n in UPPER}
        rest.update(back_flex=U(-3, 6), chest_flex=U(-3, 5), neck_flex=U(-5, 10), head_flex=U(-8, 8))
        for s in ("l", "r"):
            rest.update({f"{s}_sh_flex": U(-6, 8), f"{s}_sh_abd": U(4, 12), f"{s}_sh_rot": U(-10, 15),
                         f"{s}_elbow": U(6, 25)})
        return cls(sw=props.hip_half_width * U(1.0, 1.6), knee=U(2, 8) * _DEG, ko=U(4, 14) * _DEG,
                   tempo=U(0.8, 1.25), reach=U(0.75, 1.0), energy=U(0.6, 1.0), rest=rest)

    def rest_vector(self) -> np.ndarray:
        q = np.zeros(NQ)
        for n, v in self.rest.items():
            q[A[n]] = v * _DEG
        return q


class Ctx:
    """What an action builder needs: the subject, habits, random stream, and where it may go.

    The action frame has its origin at the ankle midpoint where the action starts, x along the
    heading there, z up, floor z = 0.
    """

    def __init__(self, props: BodyProportions, style: Style, fps: float, rng: np.random.Generator,
                 stay: bool, center: np.ndarray, room: float):
        self.props, self.style, self.fps, self.rng, self.stay = props, style, fps, rng, stay
        self.center = np.asarray(center, dtype=np.float64)   # centre of the allowed disc, action frame
        self.room = room                                      # its radius for the pelvis
        self.off = props.rest_offsets()
        self.leg = props.thigh + props.shin
        self.lat = style.sw - props.hip_half_width            # ankle outside the hip when standing
        self.z_home = self.pelvis_height(0.0, self.lat, style.knee)
        self.feet_home = self.home(np.zeros(2), 0.0)

    def U(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def dt(self, lo: float, hi: float) -> float:
        """A duration in [lo, hi] seconds at this subject's tempo."""
        return self.U(lo, hi) / self.style.tempo

    def home(self, mid_xy: np.ndarray, yaw: float, half_width: float | None = None) -> np.ndarray:
        """(2, 3) ankles (left, right) standing at `mid_xy` facing `yaw`."""
        w = self.style.sw if half_width is None else half_width
        c, s = np.cos(yaw), np.sin(yaw)
        out = np.empty((2, 3))
        for g, sign in ((0, 1.0), (1, -1.0)):
            out[g] = (mid_xy[0] - s * sign * w, mid_xy[1] + c * sign * w, self.props.ankle_height)
        return out

    def pelvis_height(self, fwd: float, lat: float, knee: float) -> float:
        """Pelvis height (upright pelvis) with the ankle `fwd` ahead of / `lat` outside the hip
        and the knee bent by `knee` radians."""
        p = self.props
        D2 = p.thigh ** 2 + p.shin ** 2 + 2 * p.thigh * p.shin * np.cos(knee)
        return p.ankle_height + p.hip_drop + float(np.sqrt(max(D2 - fwd ** 2 - lat ** 2, 1e-6)))

    def pelvis_height_over(self, feet: np.ndarray, pelvis_xy: np.ndarray, yaw: float, knee: float) -> float:
        """Highest upright-pelvis height at `pelvis_xy` (heading `yaw` radians) from which both
        ankles reach `feet` (2, 3) with knees bent at least `knee` radians."""
        p = self.props
        D = _reach(p, knee)
        side = np.array([-np.sin(yaw), np.cos(yaw)]) * p.hip_half_width
        heights = [feet[g, 2] + np.sqrt(max(D ** 2 - float(np.sum((feet[g, :2] - pelvis_xy - sgn * side) ** 2)), 1e-6))
                   for g, sgn in ((0, 1.0), (1, -1.0))]
        return min(heights) + p.hip_drop

    def toward_center(self, far: float = 0.1) -> np.ndarray | None:
        """Unit vector (action frame) towards the allowed disc's centre, None when within `far`."""
        d = float(np.hypot(*self.center))
        return None if d < far else self.center / d


def radians(d: dict | None) -> dict:
    """Angles keyed by name, degrees -> radians."""
    return {} if d is None else {k: v * _DEG for k, v in d.items()}


def arm_pose(s: str, flex: float, abd: float, rot: float, elbow: float) -> dict:
    """One arm's angles, degrees (s: 'l' or 'r')."""
    return {f"{s}_sh_flex": flex, f"{s}_sh_abd": abd, f"{s}_sh_rot": rot, f"{s}_elbow": elbow}


def arms_pose(flex: float, abd: float, rot: float, elbow: float) -> dict:
    """Both arms alike, degrees."""
    return {**arm_pose("l", flex, abd, rot, elbow), **arm_pose("r", flex, abd, rot, elbow)}


def leg_pose(s: str, flex: float, abd: float, rot: float, knee: float) -> dict:
    """One leg's angles, degrees (s: 'l' or 'r')."""
    return {f"{s}_hip_flex": flex, f"{s}_hip_abd": abd, f"{s}_hip_rot": rot, f"{s}_knee": knee}


def random_arm(c: Ctx, s: str) -> dict:
    """An arm pose drawn uniformly inside the limits (degrees)."""
    for _ in range(50):
        f, a = c.U(-60, 175), c.U(-45, 175)
        lo = np.interp(f, [-60, -20, 20, 60], [-20, -10, -10, -45])
        if np.hypot(f, a) <= 172 and a >= lo:
            break
    return arm_pose(s, f, a, c.U(-70, 85), c.U(0, 145))


def random_trunk(c: Ctx, scale: float) -> dict:
    """Trunk, neck and head angles drawn inside `scale` times their limits (degrees)."""
    out = {}
    for n in ("back_flex", "back_side", "chest_flex", "chest_side", "chest_twist",
              "neck_flex", "neck_side", "head_flex", "head_side"):
        lo, hi = JOINT_LIMITS[n]
        out[n] = c.U(lo * scale, hi * scale)
    return out


def look(c: Ctx, lean: float = 0.0) -> dict:
    """Neck and head keeping the gaze roughly level when the trunk leans forward by `lean` degrees."""
    k = min(lean, 60.0)
    return {"neck_flex": -0.45 * k + c.U(-8, 8), "head_flex": -0.25 * k + c.U(-8, 8),
            "neck_side": c.U(-8, 8), "head_side": c.U(-5, 5)}


# --------------------------------------------------------------------------------------------
# Keyframes
# --------------------------------------------------------------------------------------------
class Keys:
    """Keyframes of one action; key times fall on frames. Angles are given in degrees."""

    def __init__(self, c: Ctx, start_q: np.ndarray):
        self.c = c
        v = np.zeros(NCH)
        v[Q] = start_q
        v[PEL] = (0.0, 0.0, c.z_home)
        v[FEET] = c.feet_home.ravel()
        v[CW], v[BAL] = 0.5, 1.0
        v[KO] = c.style.ko
        v[A["body_pitch"]] = v[A["body_roll"]] = 0.0
        self.times, self.vals = [0.0], [v]

    @property
    def t(self) -> float:
        return self.times[-1]

    @property
    def frame(self) -> int:
        return int(round(self.t * self.c.fps))

    def now(self) -> np.ndarray:
        return self.vals[-1].copy()

    def feet(self) -> np.ndarray:
        return self.vals[-1][FEET].reshape(2, 3).copy()

    def go(self, dt: float, q: dict | None = None, pelvis=None, feet=None, yaw: float | None = None,
           free=None, cw: float | None = None, bal: float | None = None, ko=None, foot=None) -> "Keys":
        """Add a key `dt` seconds later (at least one frame; longer when the weight would move
        from foot to foot faster than `WEIGHT_SHIFT_MPS`). q: angles in degrees; pelvis (3,) or
        (x, y) keeping the height; feet (2, 3); foot: (index, (3,)) one ankle target; yaw:
        heading in the action frame, degrees; free (2,) or (index, weight); ko in degrees."""
        fps = self.c.fps
        if cw is not None:
            feet_now = self.feet()
            shift = abs(cw - self.vals[-1][CW]) * float(np.hypot(*(feet_now[0, :2] - feet_now[1, :2])))
            dt = max(dt, shift / WEIGHT_SHIFT_MPS)
        t = max(round((self.t + dt) * fps), self.frame + 1) / fps
        v = self.now()
        for n, val in radians(q).items():
            v[A[n]] = val
        if pelvis is not None:
            p = np.asarray(pelvis, dtype=np.float64)
            v[NQ:NQ + len(p)] = p
        if feet is not None:
            v[FEET] = np.asarray(feet, dtype=np.float64).ravel()
        if foot is not None:
            g, pos = foot
            v[NQ + 3 + 3 * g:NQ + 6 + 3 * g] = pos
        if yaw is not None:
            v[YAW] = yaw * _DEG
        if free is not None:
            if isinstance(free, tuple) and len(free) == 2 and isinstance(free[0], int):
                v[FREE.start + free[0]] = free[1]
            else:
                v[FREE] = free
        if cw is not None:
            v[CW] = cw
        if bal is not None:
            v[BAL] = bal
        if ko is not None:
            v[KO] = np.broadcast_to(np.asarray(ko, dtype=np.float64) * _DEG, (2,))
        self.times.append(t)
        self.vals.append(v)
        return self

    def step(self, g: int, target: np.ndarray, dt: float, lift: float, yaw: float | None = None,
             q: dict | None = None, z: float | None = None) -> "Keys":
        """Move ankle `g` (0 left, 1 right) to `target` (3,) through the air while the other foot
        carries the weight; yaw (degrees) turns the body during the swing, z (metres) is the
        pelvis height on landing (default: unchanged)."""
        start = self.feet()[g]
        target = np.asarray(target, dtype=np.float64)
        y0 = self.vals[-1][YAW] / _DEG
        z0 = self.vals[-1][NQ + 2]
        z1 = z0 if z is None else z
        # Part of the weight moves onto the other foot while this heel rises (the ankle lifts
        # and comes forward a little, more from a wide stance: the hip extends only ~20 deg),
        # the rest while the foot swings through the air; then it lands.
        feet = self.feet()
        apart = float(np.hypot(*(feet[0, :2] - feet[1, :2])))
        towards = target[:2] - start[:2]
        towards = 0.03 * towards / max(float(np.hypot(*towards)), 1e-9)
        heel = start + np.array([towards[0], towards[1], min(0.04 + 0.3 * max(apart - 0.3, 0.0), 0.12, lift + 0.04)])
        self.go(0.3 * dt, cw=0.62 if g == 1 else 0.38, foot=(g, heel))
        mid = 0.5 * (heel + target) + np.array([0.0, 0.0, lift])
        other = feet[1 - g, :2]
        self.go(0.35 * dt, foot=(g, mid), yaw=None if yaw is None else 0.5 * (y0 + yaw), q=q,
                cw=0.92 if g == 1 else 0.08, pelvis=(*(0.5 * (other + mid[:2])), 0.5 * (z0 + z1)))
        self.go(0.35 * dt, foot=(g, target), yaw=yaw, pelvis=(*(0.5 * (other + target[:2])), z1))
        return self

    def lift(self, g: int, dt: float, height: float) -> "Keys":
        """Shift the weight onto the other foot and raise ankle `g` straight up by `height`;
        after this, ``free=(g, 1)`` keys can pose the leg by its angles."""
        self.go(0.5 * dt, cw=0.0 if g == 0 else 1.0)
        return self.go(0.5 * dt, foot=(g, self.feet()[g] + np.array([0.0, 0.0, height])))

    def lower(self, g: int, dt: float, q: dict | None = None) -> "Keys":
        """Bring leg `g` from its keyed angles back over its raised ankle target, set the foot
        down where it was lifted, and centre the weight."""
        self.go(0.45 * dt, free=(g, 0.0), q=q)
        foot = self.feet()[g]
        self.go(0.35 * dt, foot=(g, np.array([foot[0], foot[1], self.c.props.ankle_height])))
        return self.go(0.2 * dt, cw=0.5)

    def finish(self, dt: float, q: dict | None = None) -> "Keys":
        """Last key: standing at home width on both feet about their midpoint, weight centred,
        pelvis upright (every action ends so; the next one starts from here)."""
        c = self.c
        v = self.vals[-1]
        y = v[YAW]
        m = v[FEET].reshape(2, 3)[:, :2].mean(axis=0)
        qq = {"body_pitch": 0.0, "body_roll": 0.0, **(q or {})}
        return self.go(dt, q=qq, pelvis=(m[0], m[1], c.z_home), feet=c.home(m, y), yaw=y / _DEG,
                       free=(0.0, 0.0), cw=0.5, bal=1.0, ko=c.style.ko / _DEG)

    def render(self) -> np.ndarray:
        """(n, channels) values at every frame."""
        fps = self.c.fps
        n = self.frame + 1
        t = np.asarray(self.times)
        V = np.asarray(self.vals)
        if len(t) == 1:
            return V[:1].copy()
        return PchipInterpolator(t, V, axis=0)(np.minimum(np.arange(n) / fps, t[-1]))


def hermite(n: int, p0, p1, v0, v1, T: float) -> np.ndarray:
    """(n, d) cubic from p0 (velocity v0) to p1 (velocity v1) over T seconds, endpoints included."""
    s = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, v0, v1 = (np.atleast_1d(np.asarray(x, dtype=np.float64)) for x in (p0, p1, v0, v1))
    return ((2 * s ** 3 - 3 * s ** 2 + 1) * p0 + (s ** 3 - 2 * s ** 2 + s) * T * v0
            + (-2 * s ** 3 + 3 * s ** 2) * p1 + (s ** 3 - s ** 2) * T * v1)


# --------------------------------------------------------------------------------------------
# Legs, balance, clearance: keyframes into joint angles
# --------------------------------------------------------------------------------------------
def _reach(props: BodyProportions, knee: float) -> float:
    """Hip-to-ankle distance with the knee bent by `knee` radians."""
    return float(np.sqrt(props.thigh ** 2 + props.shin ** 2 + 2 * props.thigh * props.shin * np.cos(knee)))


def _leg_ik(c: Ctx, pelvis: np.ndarray, R_P: np.ndarray, target: np.ndarray, sign: float,
            ko: np.ndarray) -> np.ndarray:
    """(n, 4) hip flex/abd/rot and knee putting the ankle at `target` (n, 3), the knee bending
    towards the pelvis's forward turned out by `ko` (n,); out of reach: the leg points at it."""
    p = c.props
    t, s = p.thigh, p.shin
    hip = pelvis + R_P @ c.off[J["left_hip" if sign > 0 else "right_hip"]]
    v = target - hip
    D = np.linalg.norm(v, axis=-1)
    vh = v / np.maximum(D, 1e-9)[:, None]
    Dc = np.clip(D, _reach(p, 149.0 * _DEG), _reach(p, 0.5 * _DEG))
    k = np.arccos(np.clip((Dc ** 2 - t * t - s * s) / (2 * t * s), -1.0, 1.0))
    alpha = np.arctan2(s * np.sin(k), t + s * np.cos(k))
    f = np.einsum("nij,nj->ni", R_P, np.stack([np.cos(ko), sign * np.sin(ko), np.full_like(ko, 0.3)], -1))
    fp = f - (f * vh).sum(-1, keepdims=True) * vh
    nf = np.linalg.norm(fp, axis=-1, keepdims=True)
    fp = np.where(nf > 1e-6, fp / np.maximum(nf, 1e-12), R_P[:, :, 0])
    d = np.cos(alpha)[:, None] * vh + np.sin(alpha)[:, None] * fp
    e = Dc[:, None] * vh - t * d
    e /= np.linalg.norm(e, axis=-1, keepdims=True)
    return limb_angles(R_P, d, e, sign, leg=True, min_bend_deg=0.0)


def _com(X: np.ndarray) -> np.ndarray:
    """(T, 17, 3) joints -> (T, 3) approximate centre of mass."""
    out = np.zeros(X.shape[:1] + (3,))
    total = 0.0
    for a, b, f, m in _SEGMENTS:
        out += m * ((1 - f) * X[:, a] + f * X[:, b])
        total += m
    return out / total


def _frames_inside(mask: np.ndarray) -> np.ndarray:
    """(n,) for each frame of `mask`, 1 + frames to the nearest frame outside it (0 outside)."""
    n = len(mask)
    fwd = np.zeros(n)
    bwd = np.zeros(n)
    for i in range(n):
        fwd[i] = fwd[i - 1] + 1 if mask[i] and i > 0 else float(mask[i])
    for i in range(n - 1, -1, -1):
        bwd[i] = bwd[i + 1] + 1 if mask[i] and i < n - 1 else float(mask[i])
    return np.minimum(fwd, bwd)


def _smooth_max(x: np.ndarray, half: int) -> np.ndarray:
    """Running maximum over +-half frames, then a moving average of the same width (>= x)."""
    if half < 1 or not x.any():
        return x
    n = len(x)
    pad = np.pad(x, half, mode="edge")
    mx = np.max(np.stack([pad[i:i + n] for i in range(2 * half + 1)]), axis=0)
    pad = np.pad(mx, half, mode="edge")
    avg = np.mean(np.stack([pad[i:i + n] for i in range(2 * half + 1)]), axis=0)
    return np.maximum(avg, x)


def solve(c: Ctx, V: np.ndarray, air: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Joint angles and pelvis for keyed channels `V` (n, channels).

    Legs follow their ankle targets (IK) blended with their keyed angles by ``free``; the pelvis is
    lowered where an ankle target would be out of reach and shifted (at most 0.25 m) so the centre
    of mass is over the support (``bal``), then raised where a knee or hand would come within 4 cm
    of the floor; a lifted foot is kept above the floor (`_tuck_low_feet`).
    Returns (q (n, ANGLES) clamped, pelvis (n, 3), planted (n, 2) bool, the largest distance of a
    foot on the floor from its target: 0 when the plan is feasible).
    """
    n = len(V)
    q = V[:, Q].copy()
    pelvis = V[:, PEL].copy()
    feet = V[:, FEET].reshape(n, 2, 3)
    yaw, free, cw, bal, ko = V[:, YAW], V[:, FREE], V[:, CW], V[:, BAL], V[:, KO]
    R_P = pelvis_frame(yaw, q[:, A["body_pitch"]], q[:, A["body_roll"]])
    ah = c.props.ankle_height
    keyed = q.copy()
    on_floor = feet[:, :, 2] <= ah + 1e-6
    moving = np.zeros((n, 2), dtype=bool)
    if n > 1:
        step = np.linalg.norm(np.diff(feet[:, :, :2], axis=0), axis=-1) > 1e-7
        moving[1:] |= step
        moving[:-1] |= step
    by_target = (free < 1e-6) & ~air[:, None]       # legs following their ankle targets
    planted = on_floor & ~moving & by_target
    hold = on_floor & by_target
    d_max = _reach(c.props, 2.0 * _DEG)
    fwd = np.stack([np.cos(yaw), np.sin(yaw)], -1)

    def legs(pel: np.ndarray) -> np.ndarray:
        for g, (s, sign) in enumerate(_SIDES):
            cols = [A[f"{s}_{n_}"] for n_ in _LEG]
            ik = _leg_ik(c, pel, R_P, feet[:, g], sign, ko[:, g])
            w = free[:, g:g + 1]
            q[:, cols] = (1 - w) * ik + w * keyed[:, cols]
        return clamp_angles(q)

    z_keyed = pelvis[:, 2].copy()

    def lower_to_reach() -> None:
        # Lower the pelvis where an ankle target (on the floor, or a swing foot on its way)
        # would be out of reach of its leg.
        pelvis[:, 2] = z_keyed
        drop = np.zeros(n)
        for g, side in enumerate(("left_hip", "right_hip")):
            hip = pelvis + R_P @ c.off[J[side]]
            horiz = np.linalg.norm(feet[:, g, :2] - hip[:, :2], axis=-1)
            top = feet[:, g, 2] + np.sqrt(np.maximum(d_max ** 2 - horiz ** 2, 0.0))
            drop = np.maximum(drop, np.where(by_target[:, g], hip[:, 2] - top, 0.0))
        pelvis[:, 2] -= np.clip(drop, 0.0, None)

    for _ in range(4):
        lower_to_reach()
        qc = legs(pelvis)
        if not (bal > 0).any():
            break
        X = pose_from_angles(qc, c.props, yaw, pelvis)
        target = cw[:, None] * feet[:, 0, :2] + (1 - cw[:, None]) * feet[:, 1, :2] + 0.04 * fwd
        pelvis[:, :2] += bal[:, None] * (target - _com(X)[:, :2])
        shift = pelvis[:, :2] - V[:, PEL][:, :2]          # at most 0.25 m from the keyed place
        pelvis[:, :2] = V[:, PEL][:, :2] + shift * np.minimum(
            1.0, 0.25 / np.maximum(np.linalg.norm(shift, axis=-1), 1e-9))[:, None]
    lower_to_reach()
    qc = legs(pelvis)
    X = pose_from_angles(qc, c.props, yaw, pelvis)
    deficit = np.where(air, 0.0, np.clip(0.04 - X[:, _NOT_ANKLES, 2].min(axis=1), 0.0, None))
    if deficit.any():
        pelvis[:, 2] += _smooth_max(deficit, max(1, int(0.15 * c.fps)))
        qc = legs(pelvis)
        X = pose_from_angles(qc, c.props, yaw, pelvis)
    # A leg off the floor (posed by its angles, or swinging to a target its limits cannot reach)
    # keeps its ankle above the floor.
    lifted = ~hold & ~air[:, None]
    need = np.where(free > 1e-6, ah + 0.05 * free, np.minimum(feet[:, :, 2], ah + 0.02))
    if (lifted & (X[:, ANKLES, 2] < need - 0.002)).any():
        qc = clamp_angles(_tuck_low_feet(c, qc, pelvis, yaw, lifted, need))
        X = pose_from_angles(qc, c.props, yaw, pelvis)
    miss = np.where(hold, np.linalg.norm(X[:, ANKLES] - feet, axis=-1), 0.0)
    return qc, pelvis, planted, float(miss.max(initial=0.0))


def _tuck_low_feet(c: Ctx, q: np.ndarray, pelvis: np.ndarray, yaw: np.ndarray, mask: np.ndarray,
                   need: np.ndarray) -> np.ndarray:
    """Angles with each leg blended just enough towards a lifting pose that its ankle is at least
    `need` (n, 2) metres high where `mask` (n, 2): a stretched free leg, or a swing leg whose
    target lies outside the joint limits, must not reach through the floor. The lifting pose is
    a tuck (hip 95, knee 110: standing) or the thigh raised by 35 degrees (seated), whichever
    needs less of a blend. Returns a new (n, ANGLES) array."""
    out = q.copy()
    for g, (s, _) in enumerate(_SIDES):
        m = mask[:, g]
        if not m.any():
            continue
        cols = [A[f"{s}_hip_flex"], A[f"{s}_knee"]]
        best = None
        for lift in (lambda a: np.maximum(np.array([95.0, 110.0]) * _DEG, a),
                     lambda a: a + np.array([35.0 * _DEG, 0.0])):
            beta = np.ones(int(m.sum()))
            ok = np.zeros(int(m.sum()), dtype=bool)
            for b in np.linspace(1.0, 0.0, 6):
                qq = out[m].copy()
                qq[:, cols] = (1 - b) * qq[:, cols] + b * lift(qq[:, cols])
                z = pose_from_angles(clamp_angles(qq), c.props, yaw[m], pelvis[m])[:, ANKLES[g], 2]
                beta = np.where(z >= need[m, g], b, beta)
                ok |= z >= need[m, g]
            score = (int((~ok).sum()), float(beta.sum()))
            if best is None or score < best[0]:
                best = (score, beta, lift)
        full = np.zeros(len(q))
        full[m] = best[1]
        half = max(1, int(0.2 * c.fps))
        # Smooth in time, never touch a planted foot, and fade in/out at the ends of a lift.
        full = np.clip(_smooth_max(full, half), 0.0, 1.0) * np.clip((_frames_inside(m) - 1) / half, 0.0, 1.0)
        if full.any():
            out[:, cols] = (1 - full[:, None]) * out[:, cols] + full[:, None] * best[2](out[:, cols])
    return out


@dataclass
class Plan:
    """One action, in its action frame."""

    label: str
    q: np.ndarray        # (n, ANGLES) radians, clamped
    yaw: np.ndarray      # (n,) heading, radians
    pelvis: np.ndarray   # (n, 3) planned pelvis, metres
    feet: np.ndarray     # (n, 2, 3) ankle targets
    air: np.ndarray      # (n,) ballistic flight
    planted: np.ndarray  # (n, 2) foot held on the floor
    miss: float          # largest distance of a foot on the floor from its target, metres


def plan_from_keys(label: str, c: Ctx, k: Keys, V: np.ndarray | None = None,
                   air: np.ndarray | None = None) -> Plan:
    """Solve the keys of an action (or `V`, their rendering edited by the action; `air`: frames
    of ballistic flight) into a :class:`Plan`."""
    V = k.render() if V is None else V
    air = np.zeros(len(V), dtype=bool) if air is None else air
    q, pelvis, planted, miss = solve(c, V, air)
    return Plan(label, q, V[:, YAW].copy(), pelvis, V[:, FEET].reshape(-1, 2, 3).copy(), air, planted, miss)
