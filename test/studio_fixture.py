"""A tiny studio dataset folder for tests (the layout of docs/interfaces.md), written in well under a second.

A stick figure (17 joints, metres) walks and turns in front of a textured static background; its
bones are drawn as thick red lines into small images of a ring of cameras. Ground truth is exact.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from kp3d_core.rig import ring_rig, save_rig
from kp3d_core.skeleton import BONES, JOINT_NAMES

# Standing pose, facing +x, left = +y, z up (metres).
TEMPLATE = np.array([
    [0.0, 0.0, 1.0], [0.0, -0.1, 0.95], [0.05, -0.1, 0.5], [0.0, -0.1, 0.08],
    [0.0, 0.1, 0.95], [-0.05, 0.1, 0.5], [0.0, 0.1, 0.08],
    [0.0, 0.0, 1.2], [0.0, 0.0, 1.45], [0.0, 0.0, 1.55], [0.0, 0.0, 1.75],
    [0.0, 0.18, 1.45], [0.1, 0.22, 1.2], [0.2, 0.24, 1.0],
    [0.0, -0.18, 1.45], [-0.1, -0.22, 1.2], [-0.15, -0.24, 0.95],
])


def yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def poses(num_frames: int) -> np.ndarray:
    """(T, 17, 3) poses: walking along x and turning."""
    out = []
    for t in range(num_frames):
        a = 2 * np.pi * t / max(num_frames, 1)
        offset = np.array([1.0 * np.sin(a), 0.8 * np.cos(a), 0.0])
        out.append(TEMPLATE @ yaw(a).T + offset)
    return np.stack(out)


def background(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth grey-green texture (H, W, 3) uint8, far from the red figure."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.uniform(60, 120, (height // 8, width // 8, 3)).astype(np.float32), (width, height))
    return np.clip(noise, 0, 255).astype(np.uint8)


def draw(bg: np.ndarray, uv: np.ndarray, thickness: int = 5) -> np.ndarray:
    img = bg.copy()
    for p, c in BONES:
        cv2.line(img, tuple(np.round(uv[p]).astype(int)), tuple(np.round(uv[c]).astype(int)), (230, 30, 30), thickness)
    cv2.circle(img, tuple(np.round(uv[10]).astype(int)), thickness + 2, (230, 30, 30), -1)
    return img


def write_tiny_studio(path, num_frames: int = 12, num_cameras: int = 3, width: int = 160, height: int = 120,
                      empty_frames: tuple[int, ...] = (), seed: int = 0) -> Path:
    """Write the folder; frames in ``empty_frames`` show no person (ground truth still written)."""
    path = Path(path)
    rig = ring_rig(num_cameras, radius=4.0, heights=1.5, target=(0.0, 0.0, 1.0), width=width, height=height)
    joints3d = poses(num_frames)
    T, V = num_frames, num_cameras
    joints2d = np.stack([[cam.project(joints3d[t]) for cam in rig.cameras] for t in range(T)])
    for v, cam in enumerate(rig.cameras):
        bg = background(width, height, seed + v)
        (path / "images" / cam.name).mkdir(parents=True, exist_ok=True)
        (path / "backgrounds").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path / "backgrounds" / f"{cam.name}.png"), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
        for t in range(T):
            img = bg.copy() if t in empty_frames else draw(bg, joints2d[t, v])
            cv2.imwrite(str(path / "images" / cam.name / f"{t:06d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
    save_rig(rig, path / "rig.yaml")
    np.savez(
        path / "gt.npz", joints3d=joints3d, joints2d=joints2d, visible=np.ones((T, V, 17), bool),
        in_frame=np.ones((T, V, 17), bool), stamps_ns=np.arange(T, dtype=np.int64) * 33_333_333,
        clip=np.zeros(T, np.int32), subject=np.zeros(T, np.int32),
    )
    manifest = {
        "name": "tiny", "split": "test", "seed": seed, "num_frames": T, "fps": 30, "cameras": rig.names,
        "image_size": [width, height], "motion": ["procedural"], "subjects": ["stick"],
        "joint_names": list(JOINT_NAMES), "generator": "test-fixture",
    }
    (path / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
