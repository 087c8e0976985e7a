"""The studio subject's volumetric body: capsules and ellipsoids hung on the 17 skeleton joints.

A :class:`Subject` holds what varies between people and stays fixed over a clip: thickness of every
part, torso build, and per-part clothing/skin materials with a procedural texture. Bone lengths come
from the motion (``motion.sample_proportions``); this module only dresses the given joints.

``body_primitives(joints (17, 3) m world, subject)`` returns the :class:`Primitives` the renderer
ray-casts. Left and right limbs share one material (no artificial left/right colour cue) unless the
subject was sampled with ``lr_cue=True``.

Example::

    subject = sample_subject(np.random.default_rng(0))
    prims = body_primitives(joints3d[t], subject)      # capsules + ellipsoids, world metres
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX

# Body parts (index into Subject.materials). Left/right twins are separate parts so that an optional
# left/right cue can colour them differently, but by default they share a material.
PART_NAMES: tuple[str, ...] = (
    "head", "neck", "chest", "abdomen", "shoulders",
    "upper_arm_l", "upper_arm_r", "forearm_l", "forearm_r", "hand_l", "hand_r",
    "thigh_l", "thigh_r", "shin_l", "shin_r", "foot_l", "foot_r",
)
PART = {n: i for i, n in enumerate(PART_NAMES)}

# Pattern kinds of a material (DIAGONAL and BLOTCHES are drawn only by the appearance styles of
# kp3d_core/studio/appearance.py; sample_subject keeps to the first four).
PLAIN, STRIPES_ALONG, STRIPES_AROUND, CHECKS, DIAGONAL, BLOTCHES = 0, 1, 2, 3, 4, 5

_SKIN = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.55], [0.78, 0.57, 0.42], [0.60, 0.42, 0.30],
                  [0.42, 0.28, 0.20], [0.30, 0.20, 0.14]])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.40, 0.20], [0.80, 0.68, 0.45],
                  [0.55, 0.55, 0.55], [0.45, 0.18, 0.08]])
_TROUSERS = np.array([[0.16, 0.24, 0.42], [0.10, 0.10, 0.12], [0.62, 0.55, 0.40], [0.35, 0.35, 0.38],
                      [0.22, 0.30, 0.18], [0.45, 0.30, 0.20]])
_SHOES = np.array([[0.08, 0.08, 0.08], [0.90, 0.90, 0.88], [0.35, 0.22, 0.12], [0.20, 0.25, 0.45]])


@dataclass(frozen=True)
class Material:
    """Albedo of one body part: base colour, optional pattern in an accent colour, fabric grain."""

    base: tuple[float, float, float]     # RGB in [0, 1]
    accent: tuple[float, float, float]   # RGB in [0, 1], the pattern's second colour
    pattern: int = PLAIN                 # PLAIN, STRIPES_ALONG, STRIPES_AROUND, CHECKS, DIAGONAL or BLOTCHES
    period: float = 0.08                 # pattern period, metres on the surface
    grain: float = 0.10                  # relative amplitude of the fine fabric/skin noise


@dataclass(frozen=True)
class Accessory:
    """A volume worn on the head (a hair volume, a ponytail, a cap's crown or brim): one ellipsoid in the
    head's frame, so it follows the head and scales with it.

    centre: (lateral, forward, up) offset of its centre from the head ellipsoid's centre, in units of the
        head's semi-axes (0.080, 0.098, 0.115 m times ``Subject.head_scale``).
    axes: its semi-axes (lateral, forward, up) in the same units.
    """

    name: str
    centre: tuple[float, float, float]
    axes: tuple[float, float, float]
    material: Material


@dataclass(frozen=True)
class Subject:
    """What makes one person look different (fixed over a clip).

    radii: per part (len(PART_NAMES),) capsule radius or, for head/chest/abdomen, a scale, metres.
    torso_width / torso_depth: half-extents of the chest ellipsoid, metres.
    hip_width: half-extent of the abdomen ellipsoid, metres.
    materials: one per part; hair: hair colour (top and back of the head).
    accessories: volumes worn on the head (hair, caps); their primitives' part index is
        ``len(PART_NAMES) + k`` (see :meth:`material`).
    scalp_hair: hair colour on the top and back of the head ellipsoid itself (False: bald).
    belly: half-depth of the abdomen ellipsoid relative to ``torso_depth`` (larger: a heavier build).
    """

    radii: tuple[float, ...]
    torso_width: float
    torso_depth: float
    hip_width: float
    head_scale: float
    materials: tuple[Material, ...]
    hair: tuple[float, float, float]
    lr_cue: bool = False
    accessories: tuple[Accessory, ...] = ()
    scalp_hair: bool = True
    belly: float = 0.95

    def material(self, part: int) -> Material:
        """Material of a primitive's part index: a body part, or ``len(PART_NAMES) + k`` for accessory k."""
        n = len(PART_NAMES)
        return self.materials[part] if part < n else self.accessories[part - n].material


@dataclass
class Primitives:
    """The body as shapes in the world frame (metres).

    cap_a, cap_b: (C, 3) capsule end points; cap_r: (C,) radii; cap_part: (C,) part index;
    cap_ref: (C, 3) a unit vector perpendicular to the axis (texture angle origin).
    ell_c: (E, 3) centres; ell_R: (E, 3, 3) columns = local axes (lateral, forward, up) in world;
    ell_s: (E, 3) semi-axes along those; ell_part: (E,) part index.
    joint_parts: per joint, the primitive ids that contain it (capsule i -> i, ellipsoid e -> C + e).
    """

    cap_a: np.ndarray
    cap_b: np.ndarray
    cap_r: np.ndarray
    cap_part: np.ndarray
    cap_ref: np.ndarray
    ell_c: np.ndarray
    ell_R: np.ndarray
    ell_s: np.ndarray
    ell_part: np.ndarray
    joint_parts: tuple[tuple[int, ...], ...]

    @property
    def num_capsules(self) -> int:
        return len(self.cap_r)

    @property
    def num(self) -> int:
        return len(self.cap_r) + len(self.ell_s)


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.05) -> tuple[float, float, float]:
    c = palette[rng.integers(len(palette))] + rng.uniform(-jitter, jitter, 3)
    return tuple(float(v) for v in np.clip(c, 0.02, 0.98))


def _random_cloth(rng: np.random.Generator) -> tuple[float, float, float]:
    """Any plausible garment colour: saturated hues or neutrals."""
    if rng.random() < 0.35:
        g = rng.uniform(0.1, 0.9)
        return tuple(float(v) for v in np.clip(g + rng.uniform(-0.03, 0.03, 3), 0, 1))
    h = rng.uniform(0, 6)
    s, v = rng.uniform(0.35, 0.85), rng.uniform(0.35, 0.9)
    i, f = int(h) % 6, h - int(h)
    p, q, u = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)][i]
    return tuple(float(x) for x in rgb)


def sample_subject(rng: np.random.Generator, lr_cue: bool = False) -> Subject:
    """A random person's build and clothing. ``lr_cue`` tints left limbs (an artificial cue; off by default)."""
    thick = rng.uniform(0.9, 1.3)
    r = {
        "head": 1.0, "neck": 0.050, "chest": 1.0, "abdomen": 1.0, "shoulders": 0.058,
        "upper_arm": 0.048, "forearm": 0.038, "hand": 0.036, "thigh": 0.072, "shin": 0.050, "foot": 0.042,
    }
    radii = []
    for name in PART_NAMES:
        key = name[:-2] if name.endswith(("_l", "_r")) else name
        base = r[key]
        radii.append(base if key in ("head", "chest", "abdomen") else base * thick * rng.uniform(0.93, 1.07))
    # Left and right limbs of one person have the same thickness.
    for i, name in enumerate(PART_NAMES):
        if name.endswith("_r"):
            radii[i] = radii[PART[name[:-2] + "_l"]]

    skin = Material(_colour(rng, _SKIN, 0.04), _colour(rng, _SKIN, 0.04), PLAIN, 0.05, 0.05)
    shirt_base = _random_cloth(rng)
    shirt = Material(shirt_base, _random_cloth(rng), int(rng.choice([PLAIN, STRIPES_AROUND, CHECKS, PLAIN])),
                     float(rng.uniform(0.04, 0.12)), float(rng.uniform(0.05, 0.15)))
    trousers = Material(_colour(rng, _TROUSERS), _colour(rng, _TROUSERS),
                        int(rng.choice([PLAIN, PLAIN, STRIPES_AROUND])),
                        float(rng.uniform(0.03, 0.08)), float(rng.uniform(0.08, 0.18)))
    shoe = _colour(rng, _SHOES, 0.03)
    shoes = Material(shoe, shoe, PLAIN, 0.05, 0.05)
    long_sleeves, shorts = rng.random() < 0.5, rng.random() < 0.2

    mats: list[Material] = []
    for name in PART_NAMES:
        key = name[:-2] if name.endswith(("_l", "_r")) else name
        if key in ("head", "neck", "hand"):
            m = skin
        elif key in ("chest", "shoulders", "upper_arm"):
            m = shirt
        elif key == "forearm":
            m = shirt if long_sleeves else skin
        elif key in ("abdomen", "thigh"):
            m = trousers
        elif key == "shin":
            m = skin if shorts else trousers
        else:
            m = shoes
        if lr_cue and name.endswith("_l"):
            tint = np.clip(np.asarray(m.base) * 0.5 + np.array([0.5, 0.1, 0.1]), 0, 1)
            m = Material(tuple(float(v) for v in tint), m.accent, m.pattern, m.period, m.grain)
        mats.append(m)
    return Subject(
        radii=tuple(float(v) for v in radii),
        torso_width=float(rng.uniform(0.14, 0.19) * (0.5 + 0.5 * thick)),
        torso_depth=float(rng.uniform(0.095, 0.125) * (0.5 + 0.5 * thick)),
        hip_width=float(rng.uniform(0.13, 0.17) * (0.5 + 0.5 * thick)),
        head_scale=float(rng.uniform(0.92, 1.06)),
        materials=tuple(mats),
        hair=_colour(rng, _HAIR, 0.04),
        lr_cue=lr_cue,
    )


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else fallback


def _frame(up: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """(3, 3) columns (lateral, forward, up): orthonormal, right-handed, ``up`` kept exactly."""
    z = _unit(up, np.array([0.0, 0.0, 1.0]))
    x = lateral - np.dot(lateral, z) * z
    x = _unit(x, _unit(np.cross(z, [0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])))
    y = np.cross(x, z)  # forward = left x up (x points to the person's left)
    return np.stack([x, y, z], axis=1)


def body_primitives(joints: np.ndarray, subject: Subject) -> Primitives:
    """Dress one pose.

    Args:
        joints: (17, 3) joint positions, metres, world frame (z up), skeleton.JOINT_NAMES order.
        subject: the person's build and materials.
    Returns:
        :class:`Primitives` in the world frame; every joint lies inside the primitives listed for it.
    """
    X = np.asarray(joints, dtype=np.float64)
    if X.shape != (NUM_JOINTS, 3):
        raise ValueError(f"joints: expected shape ({NUM_JOINTS}, 3), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("joints: contains NaN or infinity")
    rad = subject.radii
    zup = np.array([0.0, 0.0, 1.0])
    left = X[J["left_shoulder"]] - X[J["right_shoulder"]] + X[J["left_hip"]] - X[J["right_hip"]]
    chest_R = _frame(X[J["thorax"]] - X[J["spine"]], X[J["left_shoulder"]] - X[J["right_shoulder"]])
    abd_R = _frame(X[J["spine"]] - X[J["pelvis"]], X[J["left_hip"]] - X[J["right_hip"]])
    forward = _unit(np.cross(left, zup), chest_R[:, 1])   # horizontal facing direction

    caps_a, caps_b, caps_r, caps_part = [], [], [], []

    def cap(a, b, r, part):
        caps_a.append(np.asarray(a, dtype=np.float64))
        caps_b.append(np.asarray(b, dtype=np.float64))
        caps_r.append(float(r))
        caps_part.append(PART[part])
        return len(caps_r) - 1

    # Head ellipsoid: its top 2 cm above the "head" (top of head) joint, so the joint is inside.
    head_up = _unit(X[J["head"]] - X[J["neck"]], chest_R[:, 2])
    hs = subject.head_scale * np.array([0.080, 0.098, 0.115])
    head_c = X[J["head"]] - head_up * (hs[2] - 0.02)
    head_R = _frame(head_up, chest_R[:, 0])

    ids: dict[str, int] = {}
    ids["neck_lo"] = cap(X[J["thorax"]], X[J["neck"]], rad[PART["neck"]], "neck")
    ids["neck_hi"] = cap(X[J["neck"]], head_c, rad[PART["neck"]] * 0.9, "neck")
    # The shoulder girdle as two halves meeting at the thorax, so that each shoulder owns only its half
    # (a single bar would let the far shoulder count as visible through the near end of the bar).
    for side, s in (("l", "left"), ("r", "right")):
        ids[f"girdle_{side}"] = cap(X[J["thorax"]], X[J[f"{s}_shoulder"]], rad[PART["shoulders"]], "shoulders")
    for side, s in (("l", "left"), ("r", "right")):
        sh, el, wr = X[J[f"{s}_shoulder"]], X[J[f"{s}_elbow"]], X[J[f"{s}_wrist"]]
        hip, kn, an = X[J[f"{s}_hip"]], X[J[f"{s}_knee"]], X[J[f"{s}_ankle"]]
        ids[f"ua_{side}"] = cap(sh, el, rad[PART[f"upper_arm_{side}"]], f"upper_arm_{side}")
        ids[f"fa_{side}"] = cap(el, wr, rad[PART[f"forearm_{side}"]], f"forearm_{side}")
        fdir = _unit(wr - el, -zup)
        ids[f"hand_{side}"] = cap(wr, wr + 0.085 * fdir, rad[PART[f"hand_{side}"]], f"hand_{side}")
        ids[f"th_{side}"] = cap(hip, kn, rad[PART[f"thigh_{side}"]], f"thigh_{side}")
        ids[f"sh_{side}"] = cap(kn, an, rad[PART[f"shin_{side}"]], f"shin_{side}")
        fr = rad[PART[f"foot_{side}"]]
        ids[f"ft_{side}"] = cap(an - 0.03 * forward, an + 0.15 * forward - np.array([0, 0, 0.035]), fr, f"foot_{side}")

    C = len(caps_r)
    cs = np.array([subject.torso_width, subject.torso_depth, 0.0])
    chest_len = np.linalg.norm(X[J["thorax"]] - X[J["spine"]])
    cs[2] = 0.5 * chest_len + 0.07
    chest_c = 0.5 * (X[J["thorax"]] + X[J["spine"]])
    abd_len = np.linalg.norm(X[J["spine"]] - X[J["pelvis"]])
    hip_half = 0.5 * np.linalg.norm(X[J["left_hip"]] - X[J["right_hip"]])
    as_ = np.array([max(subject.hip_width, hip_half + 0.05), subject.torso_depth * subject.belly,
                    0.5 * abd_len + 0.08])
    abd_c = X[J["pelvis"]] + 0.35 * (X[J["spine"]] - X[J["pelvis"]])
    ell_c = [head_c, chest_c, abd_c]
    ell_R = [head_R, chest_R, abd_R]
    ell_s = [hs, cs, as_]
    ell_part = [PART["head"], PART["chest"], PART["abdomen"]]
    HEAD, CHEST, ABD = C, C + 1, C + 2
    for k, acc in enumerate(subject.accessories):
        ell_c.append(head_c + head_R @ (np.asarray(acc.centre) * hs))
        ell_R.append(head_R)
        ell_s.append(np.asarray(acc.axes, dtype=np.float64) * hs)
        ell_part.append(len(PART_NAMES) + k)
    worn = tuple(C + 3 + k for k in range(len(subject.accessories)))
    ell_c, ell_R, ell_s, ell_part = np.stack(ell_c), np.stack(ell_R), np.stack(ell_s), np.array(ell_part)

    jp = [()] * NUM_JOINTS
    jp[J["pelvis"]] = (ABD,)
    jp[J["spine"]] = (ABD, CHEST)
    jp[J["thorax"]] = (CHEST, ids["neck_lo"], ids["girdle_l"], ids["girdle_r"])
    jp[J["neck"]] = (ids["neck_lo"], ids["neck_hi"])
    # What is worn on the head belongs to the head: the head joint seen through hair or a cap is visible.
    jp[J["head"]] = (HEAD,) + worn
    for side, s in (("l", "left"), ("r", "right")):
        jp[J[f"{s}_hip"]] = (ids[f"th_{side}"], ABD)
        jp[J[f"{s}_knee"]] = (ids[f"th_{side}"], ids[f"sh_{side}"])
        jp[J[f"{s}_ankle"]] = (ids[f"sh_{side}"], ids[f"ft_{side}"])
        jp[J[f"{s}_shoulder"]] = (ids[f"girdle_{side}"], ids[f"ua_{side}"])
        jp[J[f"{s}_elbow"]] = (ids[f"ua_{side}"], ids[f"fa_{side}"])
        jp[J[f"{s}_wrist"]] = (ids[f"fa_{side}"], ids[f"hand_{side}"])

    a, b = np.stack(caps_a), np.stack(caps_b)
    axis = b - a
    ref = np.cross(axis, zup)
    bad = np.linalg.norm(ref, axis=1) < 1e-6 * np.maximum(np.linalg.norm(axis, axis=1), 1e-9)
    ref[bad] = np.cross(axis[bad], forward) if np.any(bad) else ref[bad]
    n = np.linalg.norm(ref, axis=1, keepdims=True)
    ref = np.where(n > 1e-12, ref / np.maximum(n, 1e-12), np.array([1.0, 0.0, 0.0]))
    return Primitives(a, b, np.array(caps_r), np.array(caps_part), ref, ell_c, ell_R, ell_s, ell_part, tuple(jp))
