"""Synthetic multi-view samples of the training-sample contract, for tests and smoke runs.

A random stick figure (the 17 studio joints, random yaw, limb swings and position) seen by a ring of
calibrated cameras with lens distortion; each view is cropped around the projected joints and the
body is drawn as thick limb segments over a smooth background. Geometrically exact (the same chain as
real data: distortion, crop similarity, P), so tests exercise the real triangulation path.
Shapes as in docs/interfaces.md ("Training samples"); ``fg`` is the true body mask here.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import geometry
from ..crop import CropBox, crop_to_image_matrix, image_to_crop
from ..render_keypoints import segment_maps, soft_union
from ..rig import Rig, ring_rig
from ..skeleton import BONES, NUM_JOINTS

# A standing pose (metres, z up, facing +x) in joint order.
_TEMPLATE = np.array([
    [0.0, 0.0, 0.95], [0.0, -0.12, 0.93], [0.02, -0.13, 0.50], [0.0, -0.13, 0.08],
    [0.0, 0.12, 0.93], [0.02, 0.13, 0.50], [0.0, 0.13, 0.08], [0.0, 0.0, 1.20],
    [0.0, 0.0, 1.45], [0.0, 0.0, 1.55], [0.0, 0.0, 1.72], [0.0, 0.19, 1.45],
    [0.0, 0.22, 1.17], [0.05, 0.23, 0.92], [0.0, -0.19, 1.45], [0.0, -0.22, 1.17], [0.05, -0.23, 0.92],
])


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """(17, 3) joints in metres: template with random arm/leg swings, yaw and floor position."""
    j = _TEMPLATE.copy()
    for shoulder, elbow, wrist in ((11, 12, 13), (14, 15, 16)):
        a = rng.uniform(-0.5, 2.5)  # raise the arm sideways
        side = np.sign(j[shoulder, 1])
        for c in (elbow, wrist):
            r = j[c] - j[shoulder]
            y, z = r[1], r[2]
            j[c, 1] = j[shoulder, 1] + y * np.cos(a) - side * z * np.sin(a)
            j[c, 2] = j[shoulder, 2] + side * y * np.sin(a) + z * np.cos(a)
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        a = rng.uniform(-0.5, 0.5)  # swing the leg forward/back
        for c in (knee, ankle):
            r = j[c] - j[hip]
            j[c, 0] = j[hip, 0] + r[0] * np.cos(a) - r[2] * np.sin(a)
            j[c, 2] = j[hip, 2] + r[0] * np.sin(a) + r[2] * np.cos(a)
    yaw = rng.uniform(-np.pi, np.pi)
    R = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    return j @ R.T + np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.0])


def synthetic_rig(num_views: int = 4) -> Rig:
    """A ring of ``num_views`` 640x480 cameras 4 m away with mild barrel distortion."""
    return ring_rig(num_views, radius=4.0, heights=1.6, dist=(-0.05, 0.01, 0.0, 0.0, 0.0))


def synthetic_sample(rng: np.random.Generator, rig: Rig, crop_size: int) -> dict:
    """One sample dict (torch tensors) of the training-sample contract, with labels."""
    V, S = len(rig), crop_size
    X = random_pose(rng)
    K = np.stack([c.K for c in rig.cameras])
    dist = np.stack([c.dist for c in rig.cameras])
    P = np.stack([c.P for c in rig.cameras])
    Xt = torch.from_numpy(X)[None]
    uv = geometry.distort_pixels(geometry.project(Xt, torch.from_numpy(P)[None]), torch.from_numpy(K)[None],
                                 torch.from_numpy(dist)[None])[0].numpy()  # (V, 17, 2) imaged px
    c2i = []
    for v in range(V):
        lo, hi = uv[v].min(0), uv[v].max(0)
        side = 1.25 * float((hi - lo).max())
        centre = (lo + hi) / 2 + rng.normal(0, 0.03 * side, 2)  # detector jitter
        c2i.append(crop_to_image_matrix(CropBox(float(centre[0]), float(centre[1]), side), S))
    c2i = np.stack(c2i)
    j2d = image_to_crop(uv, c2i)  # (V, 17, 2) crop px
    pairs = torch.tensor(BONES)
    body = soft_union(segment_maps(torch.from_numpy(j2d).float(), pairs, S, S, sigma=0.025 * S))  # (V, 1, S, S)
    ramp = torch.linspace(0, 1, S)
    bg = torch.stack([
        torch.from_numpy(rng.uniform(0.2, 0.5, 3)).float()[:, None, None] + 0.2 * ramp[None, :, None] * (v % 2)
        + 0.2 * ramp[None, None, :] * ((v + 1) % 2)
        for v in range(V)
    ]).clamp(0, 1)  # (V, 3, S, S)
    # Limbs coloured by side so that left/right is visible to the encoder, as clothing would be.
    colour = torch.tensor([0.9, 0.3, 0.2])[None, :, None, None]
    image = bg * (1 - body) + colour * body
    return {
        "image": image.float(), "background": bg.float(), "fg": body.float(),
        "crop_to_image": torch.from_numpy(c2i), "box": torch.zeros(V, 3, dtype=torch.float64),
        "K": torch.from_numpy(K), "dist": torch.from_numpy(dist), "P": torch.from_numpy(P),
        "image_size": torch.tensor([[c.width, c.height] for c in rig.cameras]),
        "valid_view": torch.ones(V, dtype=torch.bool),
        "joints2d_crop": torch.from_numpy(j2d), "visible": torch.ones(V, NUM_JOINTS, dtype=torch.bool),
        "joints3d": torch.from_numpy(X), "has_labels": True, "frame": 0, "clip": 0,
    }


class SyntheticDataset(torch.utils.data.Dataset):
    """``num`` fixed synthetic samples (seeded), V views, crop side S."""

    def __init__(self, num: int = 16, num_views: int = 4, crop_size: int = 64, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        rig = synthetic_rig(num_views)
        self.samples = []
        for i in range(num):
            s = synthetic_sample(rng, rig, crop_size)
            s["frame"] = i
            self.samples.append(s)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]
