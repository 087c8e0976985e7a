"""A crop cache per dataset folder, so training never decodes full-size JPEGs in its loop.

One pass over a studio folder (progress bar) writes uint8 crops of image and estimated background,
the per-view matrices and the labels into ``.npy`` files (read back as memmaps), under
``<root>/<key>/`` where the key hashes the folder's manifest, rig and ground truth plus the sample
parameters, and ``<root>`` is ``crops/`` in the user cache (``$KP3D_CACHE`` or ``~/.cache/kp3d``) unless a
root is given (``data.cache_dir``). The background is estimated from the folder's own frames (without labels), or
read from stored empty-scene backgrounds (``backgrounds``: :func:`resolve_backgrounds`). All cameras are cached; a dataset may then select a subset of views (2/3/4-view runs
share one cache). The soft foreground is recomputed from the cached crops on read (cheap, and
identical to :func:`kp3d_core.crop.soft_foreground`).

Example::

    ds = CachedDataset("out/studio-bench/train", SampleParams(size=64))   # builds once
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)))
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ..crop import CropParams, image_to_crop
from ..inference.interface import default_cache_dir
from .studio import SampleParams, StudioFolder, camera_arrays, crop_views

CACHE_VERSION = 5  # 4: gain-normalised difference, multi-view blob choice, stored backgrounds; 5: gain on a 16-px grid

_ARRAYS = ("image", "background", "crop_to_image", "box", "valid_view", "joints2d", "visible", "joints3d", "clip")


def cache_root(root: str | Path | None = None) -> Path:
    """The crop caches' root folder: ``root`` when given (``data.cache_dir``), else ``crops/`` in the user cache
    (:func:`kp3d_core.inference.interface.default_cache_dir`: ``$KP3D_CACHE`` or ``~/.cache/kp3d``), never the
    working directory."""
    return default_cache_dir() / "crops" if root is None else Path(root)


def resolve_backgrounds(path: str | Path, backgrounds: str | Path | None) -> Path | None:
    """The folder of stored backgrounds (``<camera>.png`` per camera) for the studio folder ``path``, or None.

    ``backgrounds``: None or "" (estimate them from the frames); a relative name that is a folder inside ``path``
    (e.g. ``backgrounds``: each session of a split its own empty room); else a folder path. A folder that does not
    exist is an error naming it.
    """
    if backgrounds is None or str(backgrounds) == "":
        return None
    inside = Path(path) / backgrounds
    if not Path(backgrounds).is_absolute() and inside.is_dir():
        return inside
    if not Path(backgrounds).is_dir():
        raise FileNotFoundError(f"backgrounds {backgrounds}: not a folder (nor one inside {path}); expected "
                                f"<camera>.png per camera")
    return Path(backgrounds)


def dataset_key(path: str | Path, params: SampleParams, backgrounds: str | Path | None = None) -> str:
    """Hash of the folder's manifest, rig, ground truth, image file sizes and times, the sample parameters and
    the stored backgrounds' bytes, if any (16 hex chars)."""
    path = Path(path)
    h = hashlib.sha1(f"v{CACHE_VERSION};{params.key()}".encode())
    stored = resolve_backgrounds(path, backgrounds)
    if stored is not None:
        for f in sorted(stored.glob("*.png")):
            h.update(f"stored:{f.name}:".encode())
            h.update(f.read_bytes())
    for name in ("manifest.yaml", "rig.yaml", "gt.npz"):
        f = path / name
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (not a studio dataset folder?)")
        h.update(name.encode())
        h.update(f.read_bytes())
    # Images re-rendered under the same ground truth must not reuse stale crops: their sizes and times count.
    images = path / "images"
    if images.is_dir():
        for cam in sorted(os.scandir(images), key=lambda e: e.name):
            if cam.is_dir():
                for e in sorted(os.scandir(cam.path), key=lambda e: e.name):
                    st = e.stat()
                    h.update(f"{cam.name}/{e.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def cache_dir(path: str | Path, params: SampleParams, root: str | Path | None = None,
              backgrounds: str | Path | None = None) -> Path:
    """Where the cache of this folder and these parameters lives (it may not exist yet); root None: :func:`cache_root`."""
    return cache_root(root) / f"{Path(path).resolve().name}-{dataset_key(path, params, backgrounds)}"


def build_cache(path: str | Path, params: SampleParams = SampleParams(), root: str | Path | None = None,
                progress: bool = True, backgrounds: str | Path | None = None) -> Path:
    """Build (once) the crop cache of a studio folder; returns its directory. Existing caches are reused.

    ``backgrounds``: stored empty-scene backgrounds (:func:`resolve_backgrounds`: a folder, or a folder name inside
    ``path``); None: estimated from the folder's frames without labels.
    """
    out = cache_dir(path, params, root, backgrounds)
    if (out / "meta.json").is_file():
        return out
    folder = StudioFolder(path)
    stored = resolve_backgrounds(path, backgrounds)
    if stored is not None:
        from ..background import load_stored_backgrounds

        bgs = load_stored_backgrounds(stored, folder.cameras)
    else:
        bgs = folder.estimate_backgrounds(params.background_samples, progress=progress,
                                          method=params.background_method)
    backgrounds = bgs
    frames = ((folder.read_images(t), folder.labels(t)) for t in range(folder.num_frames))
    meta = {"source": str(folder.path.resolve()), "manifest": folder.manifest,
            "backgrounds": "estimated" if stored is None else str(stored.resolve())}
    return write_cache(out, folder.num_frames, folder.cameras, backgrounds, frames, params, meta,
                       desc=f"caching {folder.path.name} crops S={params.size}", progress=progress)


def write_cache(out: Path, num_frames: int, cameras: list, backgrounds: list[np.ndarray], frames: Iterable,
                params: SampleParams, meta: dict, desc: str = "caching crops", progress: bool = True) -> Path:
    """Write a cache directory (atomically: a temporary folder renamed into place).

    ``frames`` yields ``(images, labels)`` per frame: V (H, W, 3) uint8 RGB images in camera order and the
    labels dict of :meth:`StudioFolder.labels` or None (unlabelled recordings: NaN joints, ``has_labels``
    False). Exactly ``num_frames`` frames must come.
    """
    T, V, S = num_frames, len(cameras), params.size
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "backgrounds").mkdir(parents=True)
    for cam, bg in zip(cameras, backgrounds):
        cv2.imwrite(str(tmp / "backgrounds" / f"{cam.name}.png"), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
    shapes = {
        "image": ((T, V, 3, S, S), np.uint8), "background": ((T, V, 3, S, S), np.uint8),
        "crop_to_image": ((T, V, 3, 3), np.float64), "box": ((T, V, 3), np.float64),
        "valid_view": ((T, V), np.bool_), "joints2d": ((T, V, 17, 2), np.float64),
        "visible": ((T, V, 17), np.bool_), "joints3d": ((T, 17, 3), np.float64), "clip": ((T,), np.int64),
    }
    arrays = {k: np.lib.format.open_memmap(tmp / f"{k}.npy", mode="w+", dtype=dt, shape=sh) for k, (sh, dt) in shapes.items()}
    has_labels = True
    count = 0
    for t, (images, labels) in enumerate(tqdm(frames, total=T, desc=desc, disable=not progress, unit="frame")):
        if t >= T:
            raise ValueError(f"write_cache: more than the announced {T} frames")
        crops = crop_views(images, backgrounds, params, cameras)
        arrays["image"][t] = crops["image"].transpose(0, 3, 1, 2)
        arrays["background"][t] = crops["background"].transpose(0, 3, 1, 2)
        for k in ("crop_to_image", "box", "valid_view"):
            arrays[k][t] = crops[k]
        if labels is None:
            has_labels = False
            arrays["joints2d"][t], arrays["joints3d"][t], arrays["clip"][t] = np.nan, np.nan, -1
        else:
            arrays["joints2d"][t] = labels["joints2d"]
            arrays["visible"][t] = labels["visible"]
            arrays["joints3d"][t] = labels["joints3d"]
            arrays["clip"][t] = labels["clip"]
        count += 1
    if count != T:
        raise ValueError(f"write_cache: {count} frames came, {T} announced")
    for a in arrays.values():
        a.flush()
    del arrays
    np.savez(tmp / "calib.npz", **camera_arrays(cameras))
    meta = {"version": CACHE_VERSION, "num_frames": T, "cameras": [c.name for c in cameras], "size": S,
            "params": params.key(), "has_labels": has_labels, **meta}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def soft_foreground_batch(image: np.ndarray, background: np.ndarray, crop: CropParams) -> np.ndarray:
    """(..., 3, S, S) uint8 crops x2 -> (..., 1, S, S) float32 soft foreground (as crop.soft_foreground)."""
    d = np.abs(image.astype(np.int16) - background.astype(np.int16)).max(axis=-3, keepdims=True)
    d = d.astype(np.float32) / 255.0
    return np.clip((d - crop.soft_low) / max(crop.soft_high - crop.soft_low, 1e-6), 0.0, 1.0)


class CachedDataset(torch.utils.data.Dataset):
    """Samples of the contract (docs/interfaces.md, "Training samples") read from the crop cache.

    Args:
        path: studio dataset folder (the cache is built on first use unless ``build`` is False), or a
            cache directory itself (as :func:`kp3d_core.data.bag.build_bag_cache` returns).
        params: sample parameters (crop size, detection).
        cameras: camera names to use, in order (default: all).
        frames: frame indices to expose (default: all), e.g. a labelled fraction.
        root: cache root folder (default: :func:`cache_root`'s).
        backgrounds: stored empty-scene backgrounds instead of estimated ones (:func:`resolve_backgrounds`; e.g.
            ``"backgrounds"``: each studio folder's own ``backgrounds/``).
    """

    def __init__(self, path: str | Path, params: SampleParams = SampleParams(), cameras: list[str] | None = None,
                 frames=None, root: str | Path | None = None, build: bool = True, progress: bool = True,
                 backgrounds: str | Path | None = None):
        self.params = params
        if (Path(path) / "meta.json").is_file():  # a cache directory itself (e.g. from data.bag)
            self.dir = Path(path)
        else:
            self.dir = build_cache(path, params, root, progress, backgrounds) if build else \
                cache_dir(path, params, root, backgrounds)
        meta_path = self.dir / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{self.dir}: no crop cache (build it with build_cache)")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("params") != params.key():
            raise ValueError(f"{self.dir}: cache built with other sample parameters ({self.meta.get('params')}) "
                             f"than requested ({params.key()})")
        names = self.meta["cameras"]
        self.cameras = list(cameras) if cameras else list(names)
        unknown = [c for c in self.cameras if c not in names]
        if unknown:
            raise ValueError(f"cameras {unknown} not in the dataset (cameras: {names})")
        self.views = np.array([names.index(c) for c in self.cameras])
        self._arrays, self._pid = None, None
        with np.load(self.dir / "calib.npz") as c:
            self.calib = {k: torch.from_numpy(c[k][self.views]) for k in c.files}
        T = int(self.meta["num_frames"])
        self.frames = np.arange(T) if frames is None else np.asarray(frames, dtype=np.int64)
        if self.frames.size and (self.frames.min() < 0 or self.frames.max() >= T):
            raise IndexError(f"frames outside [0, {T})")

    def __len__(self) -> int:
        return int(self.frames.size)

    @property
    def arrays(self) -> dict:
        """The cache's memory maps, opened lazily in each process (DataLoader workers must not pickle them)."""
        import os

        if self._arrays is None or self._pid != os.getpid():
            self._arrays = {k: np.load(self.dir / f"{k}.npy", mmap_mode="r") for k in _ARRAYS}
            self._pid = os.getpid()
        return self._arrays

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None
        return state

    def labels(self, key: str) -> np.ndarray:
        """A label array over the exposed frames: 'joints3d' (N, 17, 3), 'joints2d' (N, V, 17, 2) px, ..."""
        a = self.arrays[key][self.frames]
        return a[:, self.views] if a.ndim >= 2 and key in ("joints2d", "visible", "crop_to_image", "box", "valid_view") else a

    def __getitem__(self, i: int) -> dict:
        t = int(self.frames[i])
        a, v = self.arrays, self.views
        img = np.array(a["image"][t][v])
        bg = np.array(a["background"][t][v])
        M = np.array(a["crop_to_image"][t][v])
        sample = {
            "image": torch.from_numpy(img.astype(np.float32) / 255.0),
            "background": torch.from_numpy(bg.astype(np.float32) / 255.0),
            "fg": torch.from_numpy(soft_foreground_batch(img, bg, self.params.crop)),
            "crop_to_image": torch.from_numpy(M),
            "box": torch.from_numpy(np.array(a["box"][t][v])),
            "valid_view": torch.from_numpy(np.array(a["valid_view"][t][v])),
            "joints2d_crop": torch.from_numpy(image_to_crop(np.array(a["joints2d"][t][v]), M)),
            "visible": torch.from_numpy(np.array(a["visible"][t][v])),
            "joints3d": torch.from_numpy(np.array(a["joints3d"][t])),
            "has_labels": bool(self.meta.get("has_labels", True)),
            "frame": t,
            "clip": int(a["clip"][t]),
        }
        sample.update(self.calib)
        return sample
