"""Training samples from a user's own recording: any rosbag2 bag with Image + CameraInfo topics.

Intrinsics come from each camera's CameraInfo in the bag, extrinsics (``T_world_cam``) from a rig file
(cameras matched by name = topic namespace, e.g. ``/cam0/image_raw`` -> ``cam0``). Frames are the
synchronised sets of :func:`kp3d_core.bagio.read_camera_frames`. The bag is read twice: a first pass
keeps evenly spaced frames for the per-camera background and counts the frames; the second crops
every ``stride``-th frame into a crop cache (same layout as studio caches, no labels), which
:class:`kp3d_core.data.cache.CachedDataset` reads::

    cache = build_bag_cache("my_bag", "my_rig.yaml", SampleParams(size=64))
    ds = CachedDataset(cache, SampleParams(size=64))
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..background import BACKGROUND_METHODS, load_stored_backgrounds
from ..bagio import BagError, camera_topics, read_camera_frames
from ..camera import CalibrationError, Camera
from ..rig import load_rig
from .cache import CACHE_VERSION, cache_root, write_cache
from .studio import SampleParams


def bag_cameras(infos: dict[str, dict], rig_path: str | Path, names: list[str]) -> list[Camera]:
    """Cameras from the bag's CameraInfo fields (intrinsics) and the rig file (poses), in ``names`` order."""
    rig = load_rig(rig_path)
    cams = []
    for n in names:
        if n not in rig.names:
            raise CalibrationError(f"{rig_path}: no camera '{n}' (the bag's camera; rig has {rig.names})")
        cams.append(Camera.from_camera_info_fields(n, infos[n], rig[n].T_world_cam))
    return cams


def _frames(bag, names, slop_ns, stride):

    for i, frame in enumerate(read_camera_frames(bag, names, slop_ns)):
        if i % stride == 0:
            yield frame


def bag_key(bag: str | Path, rig_path: str | Path, params: SampleParams, names, slop_ns: int, stride: int,
            backgrounds: str | Path | None = None) -> str:
    """Hash of the bag's metadata, the rig file, the sampling parameters and the stored backgrounds' bytes, if any
    (16 hex chars)."""
    meta = Path(bag) / "metadata.yaml"
    if not meta.is_file():
        raise FileNotFoundError(f"{bag}: not a rosbag2 bag directory (no metadata.yaml)")
    h = hashlib.sha1(f"v{CACHE_VERSION};bag;{params.key()};{names};{slop_ns};{stride}".encode())
    h.update(meta.read_bytes())
    h.update(Path(rig_path).read_bytes())
    if backgrounds:
        for name in names:
            h.update((Path(backgrounds) / f"{name}.png").read_bytes())
    return h.hexdigest()[:16]


def build_bag_cache(bag: str | Path, rig_path: str | Path, params: SampleParams = SampleParams(),
                    cameras: list[str] | None = None, slop_ns: int = 5_000_000, stride: int = 1,
                    root: str | Path | None = None, progress: bool = True,
                    backgrounds: str | Path | None = None) -> Path:
    """Crop cache of a bag (built once, keyed by bag metadata + rig + parameters); returns its directory.

    Args:
        bag: rosbag2 directory (MCAP or sqlite3) with ``/<cam>/image_raw`` + ``/<cam>/camera_info``.
        rig_path: rig file giving each camera's ``T_world_cam`` (its intrinsics are ignored: CameraInfo wins).
        cameras: camera names (default: every camera of the bag).
        slop_ns: largest header-stamp spread within one multi-camera frame.
        stride: keep every stride-th synchronised frame.
        root: cache root folder (default: :func:`kp3d_core.data.cache.cache_root`'s, the user cache).
    """
    from tqdm import tqdm

    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    names = list(cameras) if cameras else list(camera_topics(bag))
    key = bag_key(bag, rig_path, params, names, slop_ns, stride, backgrounds)
    out = cache_root(root) / f"bag-{Path(bag).resolve().name}-{key}"
    if (out / "meta.json").is_file():
        return out
    # Pass 1: count frames, keep an evenly spaced subset for the background (thinned by 2 whenever it fills).
    kept: list[list[np.ndarray]] = []
    every, count, infos = 1, 0, None
    for frame in tqdm(_frames(bag, names, slop_ns, stride), desc="bag background pass", disable=not progress, unit="frame"):
        infos = infos or frame.infos
        if count % every == 0:
            kept.append([frame.images[n] for n in names])
            if len(kept) >= 2 * params.background_samples:
                kept, every = kept[::2], every * 2
        count += 1
    if count == 0:
        raise BagError(f"bag {bag}: no synchronised frame of cameras {names} (slop {slop_ns} ns)")
    cams = bag_cameras(infos, rig_path, names)
    if backgrounds:
        backgrounds = load_stored_backgrounds(backgrounds, cams)
    else:
        estimate = BACKGROUND_METHODS[params.background_method]
        backgrounds = [estimate(np.stack([k[v] for k in kept])) for v in range(len(names))]
    # Pass 2: crops of every frame, no labels.
    frames = (([f.images[n] for n in names], None) for f in _frames(bag, names, slop_ns, stride))
    meta = {"source": str(Path(bag).resolve()), "rig": str(Path(rig_path).resolve()), "stride": stride,
            "slop_ns": slop_ns}
    return write_cache(out, count, cams, backgrounds, frames, params, meta, desc=f"caching bag crops S={params.size}",
                       progress=progress)


def main(argv: list[str] | None = None) -> int:
    """``python -m kp3d_core.data.bag BAG --rig RIG.yaml [--size 64]``: build the crop cache, print its folder."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m kp3d_core.data.bag", description="Build the crop cache of a rosbag2 camera bag (to train on your own recordings); prints its folder.")
    p.add_argument("bag", help="rosbag2 directory with /<cam>/image_raw + /<cam>/camera_info topics")
    p.add_argument("--rig", required=True, help="rig file with each camera's T_world_cam")
    p.add_argument("--size", type=int, default=64, help="crop side S in pixels (default 64)")
    p.add_argument("--cameras", nargs="*", default=None, help="camera names (default: all in the bag)")
    p.add_argument("--slop-ms", type=float, default=5.0, help="largest stamp spread within one frame (default 5 ms)")
    p.add_argument("--stride", type=int, default=1, help="keep every stride-th frame (default 1)")
    p.add_argument("--backgrounds", default=None, help="folder of empty-scene backgrounds <camera>.png (kp3d "
                   "background); default: estimated from the bag")
    a = p.parse_args(argv)
    out = build_bag_cache(a.bag, a.rig, SampleParams(size=a.size), a.cameras, int(a.slop_ms * 1e6), a.stride,
                          backgrounds=a.backgrounds)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
