"""Joint angles of the studio body: forward kinematics, angles measured back from 17 joints, limits.

Every angle here is measurable from the 17 joints alone, so a limit can be checked on any
:class:`~kp3d_core.studio.motion.Motion` (``measure_angles``) and enforced on generated angles
(``clamp_angles``); ``pose_from_angles(measure_angles(X)) == X`` up to rounding.

Convention (radians in arrays, degrees in the table). Frames: x forward, y to the subject's
left, z up. The pelvis frame is the heading rotated by ``body_pitch`` (forward tilt) and
``body_roll``; the thorax frame follows from the lower back (pelvis -> spine) and upper back
(spine -> thorax). A ball joint is a *swing* that moves the bone off its rest direction, then a
*rotation* about the bone:

* swing vector: the rotation vector of the shortest turn from the rest direction to the bone,
  in the parent frame. Its components are the angles: limbs (rest: hanging down)
  ``flex`` = forward, ``abd`` = away from the midline; trunk, neck, head (rest: up) ``flex`` =
  forward, ``side`` = towards the subject's left. For small angles these are the clinical
  flexion/abduction; far from rest (arm overhead) they stay smooth and unambiguous below a
  180 degree swing, unlike Euler angles.
* ``rot`` (hips, shoulders): rotation about the bone after the swing, + = external; measured from
  the knee or elbow plane, so defined only while that joint is bent (>= ``TWIST_MIN_BEND``).
* knee and elbow: the angle between the two bones, 0 = straight.

Limits (degrees, ``JOINT_LIMITS``), active-motion ranges of adults (AAOS / Kendall tables), a
little inside the extremes:

=====================  ==========  ======================================================
angle                  range       note
=====================  ==========  ======================================================
body_pitch, body_roll  -20..75,    pelvis against upright (not a joint: keeps poses on their
                       -20..20     feet); a toe touch tilts the pelvis ~70
back_flex / _side      -20..45,    pelvis -> spine (lumbar)
                       -20..20
chest_flex / _side     -15..35,    spine -> thorax (thoracic)
                       -15..15
chest_twist            -40..40     thoracolumbar rotation, measured from the shoulder line
neck_flex / _side      -35..40,    thorax -> neck
                       -25..25
head_flex / _side      -30..30,    neck -> head top
                       -20..20
hip_flex               -20..125    upper bound 85 with a straight knee, 125 from 90 of knee
                                   flexion (hamstrings): ``85 + 40 * min(knee, 90) / 90``
hip_abd                -25..50     lower bound (adduction) -10 up to 0 of flexion, -25 from 60
                                   (legs cross only when flexed)
hip_rot                -35..45     internal (-) / external (+)
knee                   0..150
sh_flex                -60..175    swing magnitude (elevation) <= 175 as well
sh_abd                 -45..175    lower bound -20 at -60 of flexion, -10 between -20 and 20,
                                   -45 from 60 (the arm crosses the chest only when raised)
sh_rot                 -80..90     internal (-) / external (+)
elbow                  0..150
=====================  ==========  ======================================================

Example::

    q = clamp_angles(q)                                         # (T, len(ANGLES)) radians
    X = pose_from_angles(q, props, heading=np.zeros(T))        # (T, 17, 3), pelvis at the origin
    excess_deg(measure_angles(X)).max()                         # 0 (within rounding)
"""
from __future__ import annotations

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS
from .proportions import BodyProportions
from .rotations import rot_x, rot_y, rot_z

ANGLES: tuple[str, ...] = (
    "body_pitch", "body_roll",
    "back_flex", "back_side", "chest_flex", "chest_side", "chest_twist",
    "neck_flex", "neck_side", "head_flex", "head_side",
    "l_hip_flex", "l_hip_abd", "l_hip_rot", "l_knee",
    "r_hip_flex", "r_hip_abd", "r_hip_rot", "r_knee",
    "l_sh_flex", "l_sh_abd", "l_sh_rot", "l_elbow",
    "r_sh_flex", "r_sh_abd", "r_sh_rot", "r_elbow",
)
"""Joint angles, in the column order of every (T, len(ANGLES)) array of this module."""
A: dict[str, int] = {n: i for i, n in enumerate(ANGLES)}

JOINT_LIMITS: dict[str, tuple[float, float]] = {
    "body_pitch": (-20, 75), "body_roll": (-20, 20),
    "back_flex": (-20, 45), "back_side": (-20, 20),
    "chest_flex": (-15, 35), "chest_side": (-15, 15), "chest_twist": (-40, 40),
    "neck_flex": (-35, 40), "neck_side": (-25, 25),
    "head_flex": (-30, 30), "head_side": (-20, 20),
    "hip_flex": (-20, 125), "hip_abd": (-25, 50), "hip_rot": (-35, 45), "knee": (0, 150),
    "sh_flex": (-60, 175), "sh_abd": (-45, 175), "sh_rot": (-80, 90), "elbow": (0, 150),
}
"""Degrees, per angle without its side prefix (module docstring: the coupled bounds)."""

SH_ELEVATION_MAX_DEG = 175.0
"""Largest swing of the upper arm from hanging (degrees): a 180 degree swing has no unique plane."""
TWIST_MIN_BEND_DEG = 15.0
"""``hip_rot`` / ``sh_rot`` are measured only while the knee / elbow bends at least this much."""

_SIDES = (("l", 1.0), ("r", -1.0))   # sign: + for the left side (its outside is +y)
_DEG = np.pi / 180.0
J = JOINT_INDEX


# --------------------------------------------------------------------------------------------
# Rotations
# --------------------------------------------------------------------------------------------
def rotation_from_vector(omega: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors (axis * angle, radians) -> (..., 3, 3) rotation matrices (Rodrigues)."""
    omega = np.asarray(omega, dtype=np.float64)
    th = np.linalg.norm(omega, axis=-1)[..., None, None]
    small = th < 1e-6
    ths = np.where(small, 1.0, th)
    a = np.where(small, 1.0 - th ** 2 / 6.0, np.sin(ths) / ths)
    b = np.where(small, 0.5 - th ** 2 / 24.0, (1.0 - np.cos(ths)) / ths ** 2)
    K = np.zeros(omega.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -omega[..., 2], omega[..., 1], -omega[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = omega[..., 2], -omega[..., 1], omega[..., 0]
    return np.eye(3) + a * K + b * (K @ K)


def pelvis_frame(heading: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(T,) heading, ``body_pitch``, ``body_roll`` radians -> (T, 3, 3) pelvis frames (columns x, y, z)."""
    return rot_z(heading) @ rot_y(np.asarray(pitch, dtype=np.float64)) @ rot_x(np.asarray(roll, dtype=np.float64))


def _trunk_swing(flex: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Swing of a bone resting along +z: ``flex`` tips it forward, ``side`` to the left."""
    return rotation_from_vector(np.stack([-side, flex, np.zeros_like(flex)], -1))


def _limb_swing(flex: np.ndarray, abd: np.ndarray, sign: float) -> np.ndarray:
    """Swing of a limb resting along -z: ``flex`` forward, ``abd`` outward (sign: + left side)."""
    return rotation_from_vector(np.stack([sign * abd, -flex, np.zeros_like(flex)], -1))


# --------------------------------------------------------------------------------------------
# Forward kinematics
# --------------------------------------------------------------------------------------------
def pose_from_angles(q: np.ndarray, proportions: BodyProportions, heading: np.ndarray,
                     root: np.ndarray | None = None) -> np.ndarray:
    """Joints of the body for joint angles; every bone has exactly its rest length.

    Args:
        q: (T, len(ANGLES)) radians.
        proportions: the subject.
        heading: (T,) facing direction, radians (0 = +x, counter-clockwise seen from above).
        root: (T, 3) pelvis positions, metres; None puts the pelvis at the origin.
    Returns:
        (T, 17, 3) joints, metres, skeleton.JOINT_NAMES order.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != len(ANGLES):
        raise ValueError(f"q: expected shape (T, {len(ANGLES)}), got {q.shape}")
    T = q.shape[0]
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), (T,))
    a = {n: q[:, i] for n, i in A.items()}
    off = proportions.rest_offsets()
    X = np.zeros((T, NUM_JOINTS, 3))
    P = pelvis_frame(heading, a["body_pitch"], a["body_roll"])

    def put(j: int, parent: int, frame: np.ndarray) -> None:
        X[:, j] = X[:, parent] + frame @ off[j]

    S = P @ _trunk_swing(a["back_flex"], a["back_side"])
    T_ = S @ _trunk_swing(a["chest_flex"], a["chest_side"]) @ rot_z(a["chest_twist"])
    N = T_ @ _trunk_swing(a["neck_flex"], a["neck_side"])
    H = N @ _trunk_swing(a["head_flex"], a["head_side"])
    put(J["spine"], 0, S)
    put(J["thorax"], J["spine"], T_)
    put(J["neck"], J["thorax"], N)
    put(J["head"], J["neck"], H)
    for s, sign in _SIDES:
        side = "left" if s == "l" else "right"
        K = P @ _limb_swing(a[f"{s}_hip_flex"], a[f"{s}_hip_abd"], sign) @ rot_z(sign * a[f"{s}_hip_rot"])
        put(J[f"{side}_hip"], 0, P)
        put(J[f"{side}_knee"], J[f"{side}_hip"], K)
        put(J[f"{side}_ankle"], J[f"{side}_knee"], K @ rot_y(a[f"{s}_knee"]))          # shin swings back
        E = T_ @ _limb_swing(a[f"{s}_sh_flex"], a[f"{s}_sh_abd"], sign) @ rot_z(sign * a[f"{s}_sh_rot"])
        put(J[f"{side}_shoulder"], J["thorax"], T_)
        put(J[f"{side}_elbow"], J[f"{side}_shoulder"], E)
        put(J[f"{side}_wrist"], J[f"{side}_elbow"], E @ rot_y(-a[f"{s}_elbow"]))      # forearm forward
    if root is not None:
        X += np.asarray(root, dtype=np.float64)[:, None, :]
    return X


# --------------------------------------------------------------------------------------------
# Angles measured back from joints
# --------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _frame(left: np.ndarray, up_ish: np.ndarray) -> np.ndarray:
    """(..., 3, 3) frame with columns x (forward), y (= left), z (up, orthogonalised)."""
    y = _unit(left)
    z = _unit(up_ish - (up_ish * y).sum(-1, keepdims=True) * y)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def _swing_of(d: np.ndarray, rest_up: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit direction (..., 3) in the parent frame -> swing components (forward, +y) from the
    rest direction (+z if rest_up else -z). Exact inverse of `_trunk_swing` / `_limb_swing`."""
    rho = np.hypot(d[..., 0], d[..., 1])
    th = np.arctan2(rho, d[..., 2] if rest_up else -d[..., 2])
    k = np.where(rho > 1e-12, th / np.maximum(rho, 1e-300), 1.0)
    return k * d[..., 0], k * d[..., 1]


def _bend(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between unit directions (..., 3), radians, accurate near 0."""
    return np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), (u * v).sum(-1))


def limb_angles(parent: np.ndarray, upper: np.ndarray, lower: np.ndarray, sign: float,
                leg: bool, min_bend_deg: float = TWIST_MIN_BEND_DEG) -> np.ndarray:
    """(flex, abd, rot, bend) of a hip or shoulder and its knee or elbow.

    Args:
        parent: (T, 3, 3) pelvis (legs) or thorax (arms) frame in the world.
        upper: (T, 3) unit direction hip -> knee or shoulder -> elbow, world.
        lower: (T, 3) unit direction knee -> ankle or elbow -> wrist, world.
        sign: +1 left side, -1 right side.
        leg: True for a leg (the shin bends back), False for an arm (the forearm bends forward).
        min_bend_deg: ``rot`` is NaN while the bend is below this (0: always computed).
    Returns:
        (T, 4) radians (flex, abd, rot, bend).
    """
    d = np.einsum("tji,tj->ti", parent, upper)
    flex, y = _swing_of(d, rest_up=False)
    abd = sign * y
    bend = _bend(upper, lower)
    sw = parent @ _limb_swing(flex, abd, sign)
    loc = np.einsum("tji,tj->ti", sw, lower)
    rot = np.arctan2(-sign * loc[:, 1], -loc[:, 0]) if leg else np.arctan2(sign * loc[:, 1], loc[:, 0])
    rot = np.where(bend >= min_bend_deg * _DEG, rot, np.nan)
    return np.stack([flex, abd, rot, bend], -1)


def measure_angles(joints3d: np.ndarray) -> np.ndarray:
    """Joint angles of poses, the inverse of `pose_from_angles` (heading and root dropped).

    Args:
        joints3d: (T, 17, 3) metres, world z up, any body whose hip and shoulder pairs hang
            symmetrically off the pelvis and thorax (every studio subject).
    Returns:
        (T, len(ANGLES)) radians; hip_rot / sh_rot are NaN where the knee / elbow is nearly straight.
    """
    X = np.asarray(joints3d, dtype=np.float64)
    if X.ndim != 3 or X.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints3d: expected shape (T, {NUM_JOINTS}, 3), got {X.shape}")
    T = X.shape[0]
    out = np.empty((T, len(ANGLES)))
    lh, rh, ls, rs = (X[:, J[n]] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    P = _frame(lh - rh, X[:, 0] - 0.5 * (lh + rh))
    Tf = _frame(ls - rs, X[:, J["thorax"]] - 0.5 * (ls + rs))
    out[:, A["body_pitch"]] = np.arctan2(-P[:, 2, 0], np.hypot(P[:, 0, 0], P[:, 1, 0]))
    out[:, A["body_roll"]] = np.arctan2(P[:, 2, 1], P[:, 2, 2])

    def trunk(frame, a, b, name):
        d = np.einsum("tji,tj->ti", frame, _unit(X[:, b] - X[:, a]))
        f, s = _swing_of(d, rest_up=True)
        out[:, A[f"{name}_flex"]], out[:, A[f"{name}_side"]] = f, s
        return frame @ _trunk_swing(f, s)

    S = trunk(P, 0, J["spine"], "back")
    T0 = trunk(S, J["spine"], J["thorax"], "chest")
    M = np.einsum("tji,tjk->tik", T0, Tf)                         # = rot_z(chest_twist)
    out[:, A["chest_twist"]] = np.arctan2(M[:, 1, 0], M[:, 0, 0])
    N = trunk(Tf, J["thorax"], J["neck"], "neck")
    trunk(N, J["neck"], J["head"], "head")
    for s, sign in _SIDES:
        side = "left" if s == "l" else "right"
        for frame, names, joints, leg in (
                (P, ("hip_flex", "hip_abd", "hip_rot", "knee"), ("hip", "knee", "ankle"), True),
                (Tf, ("sh_flex", "sh_abd", "sh_rot", "elbow"), ("shoulder", "elbow", "wrist"), False)):
            a, b, c = (X[:, J[f"{side}_{j}"]] for j in joints)
            vals = limb_angles(frame, _unit(b - a), _unit(c - b), sign, leg)
            for k, n in enumerate(names):
                out[:, A[f"{s}_{n}"]] = vals[:, k]
    return out


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------
def _base(name: str) -> str:
    return name[2:] if name[:2] in ("l_", "r_") else name


_LO = np.array([JOINT_LIMITS[_base(n)][0] for n in ANGLES]) * _DEG
_HI = np.array([JOINT_LIMITS[_base(n)][1] for n in ANGLES]) * _DEG


def bounds(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every angle given the pose (the coupled bounds read the knee
    and the flexions of `q`), radians, each (T, len(ANGLES))."""
    q = np.asarray(q, dtype=np.float64)
    lo = np.repeat(_LO[None], len(q), axis=0)
    hi = np.repeat(_HI[None], len(q), axis=0)
    for s in ("l", "r"):
        knee = np.clip(np.nan_to_num(q[:, A[f"{s}_knee"]]), 0, 90 * _DEG)
        hi[:, A[f"{s}_hip_flex"]] = (85 + 40 * knee / (90 * _DEG)) * _DEG
        flex = q[:, A[f"{s}_hip_flex"]] / _DEG
        lo[:, A[f"{s}_hip_abd"]] = np.interp(flex, [0, 60], [-10, -25]) * _DEG
        flex = q[:, A[f"{s}_sh_flex"]] / _DEG
        lo[:, A[f"{s}_sh_abd"]] = np.interp(flex, [-60, -20, 20, 60], [-20, -10, -10, -45]) * _DEG
    return lo, hi


def clamp_angles(q: np.ndarray) -> np.ndarray:
    """Angles brought into `JOINT_LIMITS` (a new array): knees and elbows first, then the bounds
    that depend on them, then the arm's elevation scaled down to ``SH_ELEVATION_MAX_DEG``."""
    q = np.array(q, dtype=np.float64)
    for _ in range(2):   # the coupled bounds read angles this clamps; a second pass settles them
        lo, hi = bounds(q)
        for n in ("l_knee", "r_knee", "l_elbow", "r_elbow"):
            q[:, A[n]] = np.clip(q[:, A[n]], lo[:, A[n]], hi[:, A[n]])
        lo, hi = bounds(q)
        q = np.clip(q, lo, hi)
        for s in ("l", "r"):
            i, k = A[f"{s}_sh_flex"], A[f"{s}_sh_abd"]
            el = np.hypot(q[:, i], q[:, k])
            scale = np.minimum(1.0, SH_ELEVATION_MAX_DEG * _DEG / np.maximum(el, 1e-12))
            q[:, i] *= scale
            q[:, k] *= scale
    return q


def excess_deg(q: np.ndarray) -> np.ndarray:
    """Degrees by which each angle of `q` (T, len(ANGLES)) lies outside its bounds (0 inside, NaN
    angles count as inside), plus two columns for the arms' elevation: (T, len(ANGLES) + 2)."""
    q = np.asarray(q, dtype=np.float64)
    lo, hi = bounds(q)
    ex = np.nan_to_num(np.maximum(lo - q, q - hi).clip(min=0.0)) / _DEG
    el = [np.hypot(q[:, A[f"{s}_sh_flex"]], q[:, A[f"{s}_sh_abd"]]) / _DEG - SH_ELEVATION_MAX_DEG
          for s in ("l", "r")]
    return np.concatenate([ex, np.clip(np.stack(el, -1), 0.0, None)], axis=1)
