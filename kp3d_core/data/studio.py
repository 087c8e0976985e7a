"""Multi-view training samples from a studio dataset folder (layout in docs/interfaces.md).

One sample = one frame seen by V cameras, as the dict described in docs/interfaces.md ("Training
samples"). Crops come from the label-free detector (:mod:`kp3d_core.crop`) against a background
estimated without labels (:mod:`kp3d_core.background`); ground truth (gt.npz) is read only to fill
the label fields, which the unsupervised losses never touch.

This module decodes JPEGs on every call (slow: use :mod:`kp3d_core.data.cache` for training).

Example::

    folder = StudioFolder("out/studio-bench/train")
    bgs = folder.estimate_backgrounds()
    sample = make_sample(folder.read_images(0), bgs, folder.cameras, SampleParams(size=64),
                         labels=folder.labels(0))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..background import estimate_background
from ..camera import Camera
from ..crop import (
    CropParams,
    apply_gain,
    blobs_of_patch,
    box_from_patch,
    crop_images,
    crop_to_image_matrix,
    estimate_gain,
    fallback_box,
    image_to_crop,
    open_patch,
    soft_foreground,
    threshold_mask,
)
from ..foreground import agree_across_views
from ..rig import Rig, load_rig
from ..skeleton import NUM_JOINTS


@dataclass(frozen=True)
class SampleParams:
    """Sample construction parameters (part of the cache key)."""

    size: int = 64
    """Crop side S in pixels (e.g. 64, 96, 128)."""
    crop: CropParams = field(default_factory=CropParams)
    """Label-free detection parameters."""
    background_samples: int = 60
    """Frames (evenly spaced) in the per-camera temporal background."""
    background_method: str = "mode"
    """'mode' (robust shorth, survives a subject standing still) or 'median' (kp3d_core.background)."""
    multiview: bool = True
    """Box in each view the blob the views agree on in 3D (:func:`kp3d_core.foreground.agree_across_views`), not
    the largest: a bystander or a ghost is not the subject."""

    def key(self) -> str:
        mv = ";mv=1" if self.multiview else ""
        return f"size={self.size};bg={self.background_samples};bgm={self.background_method};{self.crop.key()}{mv}"


class StudioFolder:
    """Read access to one studio dataset folder: manifest, rig, ground truth, images.

    ``cameras`` optionally selects a subset of the rig's cameras (by name, in that order).
    """

    def __init__(self, path: str | Path, cameras: list[str] | None = None):
        self.path = Path(path)
        manifest_path = self.path / "manifest.yaml"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{self.path}: not a studio dataset folder (no manifest.yaml)")
        self.manifest = yaml.safe_load(manifest_path.read_text()) or {}
        rig = load_rig(self.path / "rig.yaml")
        if cameras:
            rig = rig.subset(list(cameras))
        self.rig: Rig = rig
        gt_path = self.path / "gt.npz"
        if not gt_path.is_file():
            raise FileNotFoundError(f"{gt_path}: missing (studio folders carry ground truth for evaluation)")
        with np.load(gt_path) as gt:
            self.gt = {k: gt[k] for k in gt.files}
        for key in ("joints3d", "joints2d", "visible"):
            if key not in self.gt:
                raise ValueError(f"{gt_path}: field '{key}' missing")
        all_names = load_rig(self.path / "rig.yaml").names
        self._view_index = [all_names.index(n) for n in self.rig.names]
        self.num_frames = int(self.gt["joints3d"].shape[0])
        for v, name in zip(self._view_index, self.rig.names):
            if not (self.path / "images" / name).is_dir():
                raise FileNotFoundError(f"{self.path}: images of camera '{name}' missing (images/{name}/)")

    @property
    def cameras(self) -> list[Camera]:
        return list(self.rig.cameras)

    def __len__(self) -> int:
        return self.num_frames

    def image_path(self, camera: str, t: int) -> Path:
        return self.path / "images" / camera / f"{t:06d}.jpg"

    def read_image(self, camera: str, t: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of one camera at frame t."""
        path = self.image_path(camera, t)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"{path}: cannot read image (camera '{camera}', frame {t})")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read_images(self, t: int) -> list[np.ndarray]:
        """V images (H, W, 3) uint8 RGB of frame t, in camera order."""
        return [self.read_image(n, t) for n in self.rig.names]

    def estimate_backgrounds(self, num_samples: int = 60, progress: bool = True, method: str = "mode") -> list[np.ndarray]:
        """Per-camera temporal background over evenly spaced frames (no labels): V x (H, W, 3) uint8."""
        return [
            estimate_background(
                lambda t, n=name: self.read_image(n, t), self.num_frames, num_samples,
                desc=f"background {name}" if progress else None, method=method,
            )
            for name in self.rig.names
        ]

    def labels(self, t: int) -> dict:
        """Ground truth of frame t for the selected cameras: joints3d (17, 3) m, joints2d (V, 17, 2) px
        (distorted, as imaged), visible (V, 17) bool, clip int."""
        g = self.gt
        clip = int(g["clip"][t]) if "clip" in g else 0
        return {
            "joints3d": np.asarray(g["joints3d"][t], dtype=np.float64),
            "joints2d": np.asarray(g["joints2d"][t][self._view_index], dtype=np.float64),
            "visible": np.asarray(g["visible"][t][self._view_index], dtype=bool),
            "clip": clip,
        }


def camera_arrays(cameras: list[Camera]) -> dict:
    """Per-view calibration of the full image: K (V, 3, 3), dist (V, 5), P (V, 3, 4), image_size (V, 2)."""
    return {
        "K": np.stack([c.K for c in cameras]).astype(np.float64),
        "dist": np.stack([c.dist for c in cameras]).astype(np.float64),
        "P": np.stack([c.P for c in cameras]).astype(np.float64),
        "image_size": np.array([[c.width, c.height] for c in cameras], dtype=np.int64),
    }


def detect_boxes(images: list[np.ndarray], backgrounds: list[np.ndarray], params: SampleParams,
                 cameras: list[Camera] | None = None, gains: list | None = None) -> list:
    """Each view's box (None: no person) from |I - g B| (``gains``: per view, as :func:`kp3d_core.crop.threshold_mask`
    takes them; None: estimated), the blob chosen by the views' agreement when ``cameras`` are given and
    ``params.multiview`` (as the run-time predictor does without 3D keypoints), else the largest."""
    c = params.crop
    gains = gains or [None] * len(images)
    patches = [open_patch(threshold_mask(img, bg, c, g), c) for img, bg, g in zip(images, backgrounds, gains)]
    areas = [c.min_area_fraction * img.shape[0] * img.shape[1] for img in images]
    hints = [None] * len(images)
    if cameras is not None and params.multiview and len(cameras) >= 2:
        X, agreed = agree_across_views([blobs_of_patch(*p, a) for p, a in zip(patches, areas)], cameras)
        if X is not None:
            return [None if h is None else box_from_patch(*p, a, c, h) for p, a, h in zip(patches, areas, agreed)]
    return [box_from_patch(*p, a, c, h) for p, a, h in zip(patches, areas, hints)]


def crop_views(images: list[np.ndarray], backgrounds: list[np.ndarray], params: SampleParams,
               cameras: list[Camera] | None = None) -> dict:
    """Label-free crops of one frame's V views (boxes: :func:`detect_boxes`).

    Returns uint8 ``image`` and ``background`` (V, S, S, 3) (the background scaled by the image's gain over it,
    :func:`kp3d_core.crop.estimate_gain`, when ``params.crop.gain``), float32 ``fg`` (V, S, S) in [0, 1],
    ``crop_to_image`` (V, 3, 3) float64, ``box`` (V, 3) [cx, cy, side] px, ``valid_view`` (V,) bool.
    """
    if len(images) != len(backgrounds):
        raise ValueError(f"crop_views: {len(images)} images but {len(backgrounds)} backgrounds")
    S = params.size
    gains = [estimate_gain(img, bg) if params.crop.gain else None for img, bg in zip(images, backgrounds)]
    boxes = detect_boxes(images, backgrounds, params, cameras, gains)
    valid = np.array([b is not None for b in boxes])
    boxes = [b if b is not None else fallback_box(img.shape[1], img.shape[0]) for b, img in zip(boxes, images)]
    img_c = crop_images(images, boxes, S)
    bg_c = crop_images([apply_gain(bg, g) for bg, g in zip(backgrounds, gains)], boxes, S)
    fg = np.stack([soft_foreground(i, b, params.crop) for i, b in zip(img_c, bg_c)]).astype(np.float32)
    return {
        "image": img_c,
        "background": bg_c,
        "fg": fg,
        "crop_to_image": np.stack([crop_to_image_matrix(b, S) for b in boxes]),
        "box": np.stack([b.as_array() for b in boxes]),
        "valid_view": valid,
    }


def to_sample(crops: dict, calib: dict, labels: dict | None, frame: int) -> dict:
    """Assemble the sample dict of the contract (NumPy) from :func:`crop_views` output and labels.

    Without labels (e.g. a user's bag), joints are NaN, ``visible`` False and ``has_labels`` False.
    """
    V = crops["image"].shape[0]
    sample = {
        "image": np.ascontiguousarray(crops["image"].transpose(0, 3, 1, 2), dtype=np.float32) / 255.0,
        "background": np.ascontiguousarray(crops["background"].transpose(0, 3, 1, 2), dtype=np.float32) / 255.0,
        "fg": np.asarray(crops["fg"], dtype=np.float32)[:, None],
        "crop_to_image": np.asarray(crops["crop_to_image"], dtype=np.float64),
        "box": np.asarray(crops["box"], dtype=np.float64),
        "valid_view": np.asarray(crops["valid_view"], dtype=bool),
        "K": calib["K"], "dist": calib["dist"], "P": calib["P"], "image_size": calib["image_size"],
        "frame": int(frame),
    }
    if labels is None:
        sample.update(
            joints2d_crop=np.full((V, NUM_JOINTS, 2), np.nan), visible=np.zeros((V, NUM_JOINTS), bool),
            joints3d=np.full((NUM_JOINTS, 3), np.nan), clip=-1, has_labels=False,
        )
    else:
        sample.update(
            joints2d_crop=image_to_crop(labels["joints2d"], sample["crop_to_image"]),
            visible=np.asarray(labels["visible"], dtype=bool),
            joints3d=np.asarray(labels["joints3d"], dtype=np.float64),
            clip=int(labels.get("clip", 0)), has_labels=True,
        )
    return sample


def make_sample(
    images: list[np.ndarray], backgrounds: list[np.ndarray], cameras: list[Camera], params: SampleParams,
    labels: dict | None = None, frame: int = 0,
) -> dict:
    """One sample (NumPy dict of the contract) from V raw images. ``labels`` only fills label fields."""
    return to_sample(crop_views(images, backgrounds, params, cameras), camera_arrays(cameras), labels, frame)


def to_torch(sample: dict) -> dict:
    """NumPy sample -> torch tensors (ints and bools stay Python scalars as tensors via collate)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v for k, v in sample.items()}


class StudioDataset:
    """torch-style Dataset decoding a studio folder on the fly (slow; for tests and small checks).

    ``dataset[i]`` is the sample dict of the contract as torch tensors. Backgrounds are estimated once.
    """

    def __init__(self, path: str | Path, params: SampleParams = SampleParams(), cameras: list[str] | None = None,
                 backgrounds: list[np.ndarray] | None = None):
        self.folder = StudioFolder(path, cameras)
        self.params = params
        self.backgrounds = backgrounds or self.folder.estimate_backgrounds(
            params.background_samples, progress=False, method=params.background_method)
        self.calib = camera_arrays(self.folder.cameras)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, t: int) -> dict:
        if not 0 <= t < len(self):
            raise IndexError(f"frame {t} out of range [0, {len(self)})")
        crops = crop_views(self.folder.read_images(t), self.backgrounds, self.params, self.folder.cameras)
        return to_torch(to_sample(crops, self.calib, self.folder.labels(t), t))
