"""People as real rigs see them: skin tones, hair volumes, caps, bare limbs, patterned clothes, thin to heavy.

``sample_field_subject(rng, style)`` draws a :class:`~kp3d_core.studio.body.Subject` from an
:class:`AppearanceStyle` (what a dataset's people wear and look like). ``FIELD`` is studio-field's style;
``NEW`` is held out from it for the adaptation benchmark (studio-field-new): neon/high-visibility colours
and camouflage-like blotches, which FIELD never draws. Both stay within the capsule/ellipsoid body model:
hair and caps are ellipsoids worn on the head (:class:`~kp3d_core.studio.body.Accessory`).

Example::

    subject = sample_field_subject(np.random.default_rng(3), FIELD)
    subject.accessories        # e.g. (Accessory('hair_long', ...), Accessory('cap_crown', ...), ...)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body import (
    BLOTCHES,
    CHECKS,
    DIAGONAL,
    PART_NAMES,
    PLAIN,
    STRIPES_ALONG,
    STRIPES_AROUND,
    Accessory,
    Material,
    Subject,
)

# Skin tones from very light to very dark (RGB albedo), sampled continuously along this curve.
SKIN_TONES = np.array([
    [0.98, 0.84, 0.76], [0.95, 0.78, 0.66], [0.88, 0.68, 0.53], [0.78, 0.57, 0.42],
    [0.66, 0.46, 0.32], [0.52, 0.35, 0.24], [0.38, 0.25, 0.17], [0.24, 0.16, 0.11],
])
HAIR_COLOURS = np.array([[0.06, 0.05, 0.04], [0.16, 0.10, 0.06], [0.32, 0.20, 0.10], [0.55, 0.40, 0.20],
                         [0.82, 0.70, 0.46], [0.60, 0.60, 0.60], [0.85, 0.85, 0.83], [0.50, 0.20, 0.08]])
SHOE_COLOURS = np.array([[0.08, 0.08, 0.08], [0.92, 0.92, 0.90], [0.35, 0.22, 0.12], [0.20, 0.25, 0.45],
                         [0.60, 0.10, 0.10], [0.50, 0.50, 0.52]])
# Natural garment colours: denim, khaki, black, navy, olive, burgundy, grey, white, brown, muted hues.
GARMENTS = np.array([[0.16, 0.24, 0.42], [0.26, 0.36, 0.55], [0.62, 0.55, 0.40], [0.08, 0.08, 0.09],
                     [0.10, 0.13, 0.28], [0.30, 0.35, 0.20], [0.45, 0.10, 0.14], [0.45, 0.45, 0.47],
                     [0.90, 0.90, 0.88], [0.40, 0.27, 0.17], [0.75, 0.30, 0.25], [0.25, 0.50, 0.55]])
# High-visibility and neon colours: only in NEW.
NEON = np.array([[0.85, 1.00, 0.10], [1.00, 0.55, 0.05], [1.00, 0.15, 0.60], [0.10, 1.00, 0.45],
                 [0.20, 0.85, 1.00], [1.00, 0.95, 0.10]])

# Head accessories, in units of the head's semi-axes (see body.Accessory). The hair volumes sit behind and
# above the head's centre so that the face stays uncovered.
HAIR_STYLES: dict[str, tuple[tuple[str, tuple[float, float, float], tuple[float, float, float]], ...]] = {
    "bald": (),
    "short": (("hair_short", (0.0, -0.26, 0.17), (1.06, 0.92, 0.91)),),
    "long": (("hair_short", (0.0, -0.26, 0.17), (1.07, 0.93, 0.92)),
             ("hair_long", (0.0, -0.55, -0.55), (0.95, 0.45, 0.90))),
    "bun": (("hair_short", (0.0, -0.26, 0.17), (1.05, 0.91, 0.90)),
            ("hair_bun", (0.0, -0.95, 0.45), (0.42, 0.38, 0.38))),
    "volume": (("hair_volume", (0.0, -0.15, 0.20), (1.18, 1.05, 1.00)),),
}
CAP = (("cap_crown", (0.0, 0.0, 0.50), (1.08, 1.06, 0.62)), ("cap_brim", (0.0, 0.95, 0.42), (0.80, 0.70, 0.10)))


@dataclass(frozen=True)
class AppearanceStyle:
    """What the people of a dataset look like: the ranges ``sample_field_subject`` draws from."""

    garments: np.ndarray                       # (K, 3) garment base colours (jittered)
    p_any_hue: float                           # chance of a garment in any hue instead of the palette
    max_saturation: float                      # of any-hue garments (keeps FIELD off the neon band)
    patterns: tuple[int, ...]                  # pattern kinds a garment may have (equally likely)
    p_patterned: float                         # chance a top (or bottom, half as often) is patterned
    build: tuple[float, float]                 # thin .. heavy: limb and torso thickness factor
    p_sleeveless: float                        # bare upper arms and forearms
    p_short_sleeves: float                     # bare forearms
    p_shorts: float                            # bare shins
    p_barefoot: float
    hair: dict                                 # hair style name (HAIR_STYLES) -> weight
    p_cap: float


FIELD = AppearanceStyle(
    garments=GARMENTS, p_any_hue=0.45, max_saturation=0.8,
    patterns=(STRIPES_AROUND, STRIPES_ALONG, CHECKS, DIAGONAL), p_patterned=0.45,
    build=(0.72, 1.6), p_sleeveless=0.2, p_short_sleeves=0.45, p_shorts=0.35, p_barefoot=0.1,
    hair={"bald": 0.12, "short": 0.4, "long": 0.22, "bun": 0.1, "volume": 0.16}, p_cap=0.2,
)
NEW = AppearanceStyle(
    garments=NEON, p_any_hue=0.0, max_saturation=1.0, patterns=(BLOTCHES,), p_patterned=0.5,
    build=(0.72, 1.6), p_sleeveless=0.2, p_short_sleeves=0.45, p_shorts=0.35, p_barefoot=0.1,
    hair={"bald": 0.12, "short": 0.4, "long": 0.22, "bun": 0.1, "volume": 0.16}, p_cap=0.2,
)


def _rgb(c) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(c, 0.02, 0.98))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i, f = int(h) % 6, h - int(h)
    p, q, u = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)][i])


def skin_tone(x: float) -> np.ndarray:
    """(3,) RGB albedo at x in [0, 1] along SKIN_TONES (0 very light, 1 very dark)."""
    k = float(np.clip(x, 0.0, 1.0)) * (len(SKIN_TONES) - 1)
    i = min(int(k), len(SKIN_TONES) - 2)
    return SKIN_TONES[i] + (k - i) * (SKIN_TONES[i + 1] - SKIN_TONES[i])


def _garment(rng: np.random.Generator, style: AppearanceStyle) -> np.ndarray:
    if rng.random() < style.p_any_hue:
        return _hsv(rng.uniform(0, 6), rng.uniform(0.3, style.max_saturation), rng.uniform(0.3, 0.85))
    return style.garments[rng.integers(len(style.garments))] + rng.uniform(-0.05, 0.05, 3)


def _cloth(rng: np.random.Generator, style: AppearanceStyle, p_pattern: float) -> Material:
    base = _garment(rng, style)
    accent = _garment(rng, style)
    pattern = int(rng.choice(style.patterns)) if rng.random() < p_pattern else PLAIN
    return Material(_rgb(base), _rgb(accent), pattern, float(rng.uniform(0.04, 0.14)), float(rng.uniform(0.05, 0.15)))


def sample_field_subject(rng: np.random.Generator, style: AppearanceStyle = FIELD) -> Subject:
    """A random person of ``style``: build, skin, hair, cap, clothes (with bare arms/legs), shoes.

    Left and right limbs share materials and thickness (no artificial left/right cue).
    """
    build = float(rng.uniform(*style.build))
    heavy = max(0.0, build - 1.0)
    base_r = {"neck": 0.050, "shoulders": 0.058, "upper_arm": 0.048, "forearm": 0.038, "hand": 0.036,
              "thigh": 0.072, "shin": 0.050, "foot": 0.042}
    # Heavier builds put on more around the thighs and upper arms than the hands and feet.
    gain = {"neck": 0.8, "shoulders": 0.9, "upper_arm": 1.1, "forearm": 0.9, "hand": 0.5, "thigh": 1.2,
            "shin": 0.9, "foot": 0.3}
    radii = []
    for name in PART_NAMES:
        key = name[:-2] if name.endswith(("_l", "_r")) else name
        if key in ("head", "chest", "abdomen"):
            radii.append(1.0)
        elif name.endswith("_r"):
            radii.append(radii[PART_NAMES.index(key + "_l")])
        else:
            radii.append(base_r[key] * (1.0 + gain[key] * (build - 1.0)) * rng.uniform(0.95, 1.05))

    skin_rgb = skin_tone(rng.uniform()) + rng.uniform(-0.025, 0.025, 3)
    skin = Material(_rgb(skin_rgb), _rgb(skin_rgb * 0.92), PLAIN, 0.05, 0.05)
    top = _cloth(rng, style, style.p_patterned)
    over = _cloth(rng, style, 0.2) if rng.random() < 0.15 else top      # a vest or jacket front over the top
    bottom = _cloth(rng, style, 0.5 * style.p_patterned)
    shoe = _rgb(SHOE_COLOURS[rng.integers(len(SHOE_COLOURS))] + rng.uniform(-0.03, 0.03, 3))
    shoes = Material(shoe, shoe, PLAIN, 0.05, 0.05)
    r = rng.random()
    sleeves = "none" if r < style.p_sleeveless else ("short" if r < style.p_sleeveless + style.p_short_sleeves
                                                      else "long")
    shorts = rng.random() < style.p_shorts
    barefoot = rng.random() < style.p_barefoot

    mats = []
    for name in PART_NAMES:
        key = name[:-2] if name.endswith(("_l", "_r")) else name
        if key in ("head", "neck", "hand"):
            m = skin
        elif key == "chest":
            m = over
        elif key == "shoulders":
            m = top if sleeves != "none" else skin
        elif key == "upper_arm":
            m = skin if sleeves == "none" else top
        elif key == "forearm":
            m = top if sleeves == "long" else skin
        elif key in ("abdomen", "thigh"):
            m = bottom
        elif key == "shin":
            m = skin if shorts else bottom
        else:
            m = skin if barefoot else shoes
        mats.append(m)

    hair_rgb = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] + rng.uniform(-0.03, 0.03, 3)
    hair_mat = Material(_rgb(hair_rgb), _rgb(hair_rgb * 0.7), STRIPES_ALONG, 0.012, 0.3)   # strands
    names = sorted(style.hair)
    weights = np.array([style.hair[n] for n in names], dtype=np.float64)
    hair_style = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    accessories = [Accessory(n, c, a, hair_mat) for n, c, a in HAIR_STYLES[hair_style]]
    if rng.random() < style.p_cap:
        cap = _cloth(rng, style, 0.0)
        accessories += [Accessory(n, c, a, cap) for n, c, a in CAP]
    return Subject(
        radii=tuple(float(v) for v in radii),
        torso_width=float(rng.uniform(0.14, 0.18) * (1.0 + 0.55 * (build - 1.0))),
        torso_depth=float(rng.uniform(0.095, 0.12) * (1.0 + 0.7 * (build - 1.0))),
        hip_width=float(rng.uniform(0.13, 0.16) * (1.0 + 0.5 * (build - 1.0))),
        head_scale=float(rng.uniform(0.92, 1.06)),
        materials=tuple(mats),
        hair=_rgb(hair_rgb),
        accessories=tuple(accessories),
        scalp_hair=hair_style != "bald",
        belly=float(0.95 + 0.5 * heavy + rng.uniform(0.0, 0.1)),
    )


def describe(subject: Subject) -> dict:
    """A short manifest entry of a field subject's look (for people reading the manifest)."""
    worn = [a.name for a in subject.accessories]
    hair = next((n for n in ("hair_volume", "hair_long", "hair_bun", "hair_short") if n in worn), "bald")
    return {"hair": hair.replace("hair_", ""), "cap": "cap_crown" in worn,
            "skin": [round(v, 3) for v in subject.materials[PART_NAMES.index("head")].base],
            "bare_forearms": subject.materials[PART_NAMES.index("forearm_l")] == subject.materials[0],
            "bare_shins": subject.materials[PART_NAMES.index("shin_l")] == subject.materials[0],
            "thigh_radius_m": round(subject.radii[PART_NAMES.index("thigh_l")], 4)}
