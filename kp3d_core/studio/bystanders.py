"""Bystanders: other people standing or walking in the background of some views, beyond the capture volume.

They are drawn like the subject (``appearance.sample_field_subject``, procedural motion) but are not in
the ground truth; the field renderer keeps their pixels out of the subject's mask and counts them.

Placement (world metres, horizontal): a bystander's spot is drawn in a ring around the subject, at least
1 m beyond the subject's keep-out disc plus the bystander's own wander radius; it must be at least 1.2 m from
every camera (plus the wander radius), keep clear of every camera's line of sight to the subject (so it never
hides the subject), keep clear of other bystanders, and be seen by at least one camera. A standing bystander
shifts on the spot (procedural motion without walking); a walking one wanders inside a disc of 1 m.

Example::

    people = sample_bystanders(rng, rig, subject=(0.0, 0.0, 0.8), count=2, num_frames=250, fps=30.0)
    people[0].person.joints3d.shape      # (250, 17, 3)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rig import Rig
from .appearance import FIELD, AppearanceStyle, sample_field_subject
from .field_render import Person
from .procedural import procedural_motion
from .proportions import sample_proportions

WANDER_M = {False: 0.9, True: 1.0}     # keep-out radius of a standing (arms reach out) / walking bystander


@dataclass
class Bystander:
    """One bystander: the person (look and joints), the centre and radius of the disc they keep to, metres."""

    person: Person
    centre: tuple[float, float]
    radius: float
    walking: bool

    def describe(self) -> dict:
        return {"centre_m": [round(c, 3) for c in self.centre], "walking": self.walking}


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    s = float(np.clip(np.dot(p - a, ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + s * ab)))


def _views_seeing(rig: Rig, point: np.ndarray) -> int:
    n = 0
    for cam in rig.cameras:
        z = cam.world_to_camera(point[None])[0, 2]
        if z > 0.5:
            uv = cam.project(point[None])[0]
            n += bool(0 <= uv[0] < cam.width and 0 <= uv[1] < cam.height)
    return n


def sample_bystanders(rng: np.random.Generator, rig: Rig, subject: tuple[float, float, float], count: int,
                      num_frames: int, fps: float, style: AppearanceStyle = FIELD,
                      p_walking: float = 0.5) -> list[Bystander]:
    """Up to ``count`` bystanders placed by the rules of the module docstring (fewer when no spot is found).

    Args:
        subject: (x, y, radius) metres, the disc the subject's joints stay in over the clip.
    """
    cams = np.stack([c.center for c in rig.cameras])
    sx, sy, sr = subject
    s_xy = np.array([sx, sy])
    reach = float(np.max(np.hypot(cams[:, 0] - sx, cams[:, 1] - sy)))
    out: list[Bystander] = []
    for _ in range(int(count)):
        walking = bool(rng.random() < p_walking)
        r = WANDER_M[walking]
        spot = None
        for _ in range(60):
            d = rng.uniform(sr + 1.0 + r, max(reach + 0.8, sr + 1.5 + r))
            a = rng.uniform(-np.pi, np.pi)
            p = s_xy + d * np.array([np.cos(a), np.sin(a)])
            if np.min(np.hypot(cams[:, 0] - p[0], cams[:, 1] - p[1])) < 1.2 + r:
                continue
            if any(_segment_distance(p, c[:2], s_xy) < r + sr * 0.5 + 0.3 for c in cams):
                continue
            if any(np.hypot(*(p - np.array(b.centre))) < r + b.radius + 0.4 for b in out):
                continue
            if _views_seeing(rig, np.array([p[0], p[1], 1.0])) == 0:
                continue
            spot = p
            break
        if spot is None:
            continue
        seed = int(rng.integers(2**31))
        props = sample_proportions(np.random.default_rng([seed, 1]))
        if walking:
            m = procedural_motion(num_frames, fps, seed=seed, proportions=props, volume_radius=1.0)
        else:
            m = procedural_motion(num_frames, fps, seed=seed, proportions=props, volume_radius=1.0, stay_in_place=True)
        joints = m.joints3d.copy()
        if not walking:   # the spot is where they stand
            joints[:, :, :2] -= joints[:1, :1, :2]
        joints[:, :, :2] += spot
        person = Person(sample_field_subject(np.random.default_rng([seed, 2]), style), joints)
        out.append(Bystander(person, (float(spot[0]), float(spot[1])), r, walking))
    return out
