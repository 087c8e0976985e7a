"""Body proportions of studio subjects: segment lengths from standing height (anthropometric ratios).

Example::

    props = sample_proportions(np.random.default_rng(3))   # a random subject, 1.55-1.95 m
    props.bone_lengths()                                     # (16,) metres, skeleton.BONES order
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import BONES, JOINT_INDEX, NUM_JOINTS

# --------------------------------------------------------------------------------------------
# Body proportions
# --------------------------------------------------------------------------------------------
# Segment lengths as fractions of standing height (anthropometric tables, Drillis & Contini
# style); the vertical chain ankle_height + shin + thigh + hip_drop + spine + thorax + neck +
# head adds up to 1 so that the head top of a straight pose is at the standing height.
_RATIOS = {
    "ankle_height": 0.039, "shin": 0.246, "thigh": 0.245, "hip_drop": 0.020,
    "spine": 0.130, "thorax": 0.140, "neck": 0.070, "head": 0.110,
    "hip_half_width": 0.052, "shoulder_half_width": 0.106, "shoulder_drop": 0.012,
    "upper_arm": 0.172, "forearm": 0.150,
}
_VERTICAL = ("ankle_height", "shin", "thigh", "hip_drop", "spine", "thorax", "neck", "head")


@dataclass(frozen=True)
class BodyProportions:
    """Segment lengths of one subject, metres.

    Attributes:
        height: standing height (floor to head top).
        ankle_height: ankle joint above the floor when standing.
        shin: knee -> ankle. thigh: hip -> knee.
        hip_drop: hip joints below the pelvis joint. hip_half_width: pelvis -> hip, sideways.
        spine: pelvis -> spine. thorax: spine -> thorax. neck: thorax -> neck.
        head: neck -> head top.
        shoulder_half_width: thorax -> shoulder, sideways. shoulder_drop: shoulder below thorax.
        upper_arm: shoulder -> elbow. forearm: elbow -> wrist.
    """

    height: float
    ankle_height: float
    shin: float
    thigh: float
    hip_drop: float
    hip_half_width: float
    spine: float
    thorax: float
    neck: float
    head: float
    shoulder_half_width: float
    shoulder_drop: float
    upper_arm: float
    forearm: float

    @classmethod
    def from_height(cls, height: float) -> "BodyProportions":
        """Average proportions for a standing height in metres."""
        if not 0.5 < height < 2.8:
            raise ValueError(f"height must be in metres (0.5..2.8), got {height}")
        return cls(height=float(height), **{k: v * height for k, v in _RATIOS.items()})

    @property
    def leg_length(self) -> float:
        """Hip joint to floor with straight legs (thigh + shin + ankle height), metres."""
        return self.thigh + self.shin + self.ankle_height

    def rest_offsets(self) -> np.ndarray:
        """(17, 3) offset of each joint from its parent in a standing pose, body frame
        (x forward, y to the subject's left, z up), arms hanging; row 0 (pelvis) is zero."""
        o = np.zeros((NUM_JOINTS, 3))
        J = JOINT_INDEX
        o[J["right_hip"]] = (0, -self.hip_half_width, -self.hip_drop)
        o[J["left_hip"]] = (0, self.hip_half_width, -self.hip_drop)
        for side in ("right", "left"):
            o[J[f"{side}_knee"]] = (0, 0, -self.thigh)
            o[J[f"{side}_ankle"]] = (0, 0, -self.shin)
            o[J[f"{side}_elbow"]] = (0, 0, -self.upper_arm)
            o[J[f"{side}_wrist"]] = (0, 0, -self.forearm)
        o[J["spine"]] = (0, 0, self.spine)
        o[J["thorax"]] = (0, 0, self.thorax)
        o[J["neck"]] = (0, 0, self.neck)
        o[J["head"]] = (0, 0, self.head)
        o[J["left_shoulder"]] = (0, self.shoulder_half_width, -self.shoulder_drop)
        o[J["right_shoulder"]] = (0, -self.shoulder_half_width, -self.shoulder_drop)
        return o

    def bone_lengths(self) -> np.ndarray:
        """(16,) metres in `skeleton.BONES` order."""
        o = self.rest_offsets()
        return np.linalg.norm(o[[c for _, c in BONES]], axis=-1)


def sample_proportions(rng: np.random.Generator,
                       height_range: tuple[float, float] = (1.55, 1.95)) -> BodyProportions:
    """A random subject: uniform height in `height_range` (metres), each segment ratio varied by
    about 4 % (widths 8 %), the vertical chain renormalised to the sampled height."""
    lo, hi = height_range
    if not 0.5 < lo <= hi < 2.8:
        raise ValueError(f"height_range must be metres with 0.5 < lo <= hi < 2.8, got {height_range}")
    height = float(rng.uniform(lo, hi))
    r = {}
    for k, v in _RATIOS.items():
        sd = 0.08 if "width" in k else 0.04
        r[k] = v * float(np.clip(rng.normal(1.0, sd), 1 - 2.5 * sd, 1 + 2.5 * sd))
    total = sum(r[k] for k in _VERTICAL)
    for k in _VERTICAL:
        r[k] /= total
    return BodyProportions(height=height, **{k: v * height for k, v in r.items()})
