"""Pseudo-labels for the lifter: the multi-view estimator run over recordings, each view beside the triangulation.

A :class:`Track` is one run of consecutive frames of one rig, processed in order exactly as the node processes
them (the same crops, tracking and plausibility gate): each view's 2D keypoints and confidences, and the 3D
keypoints the views triangulate together. No ground truth is read: the triangulated keypoints are the labels.
Studio folders also carry their true joints, kept aside for benchmarks only (``Track.gt``).

Example::

    est = build_estimator(EstimatorSettings(backgrounds=folder.path / "backgrounds"), folder.rig)
    track = run_track(est, folder, range(0, 60))
    track.keypoints2d.shape        # (60, V, K, 2) raw pixels
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..bagio import BagError, camera_topics, read_camera_frames
from ..camera import Camera
from ..data.sessions import read_split
from ..data.studio import StudioFolder
from ..inference.pipeline import EstimatorSettings, build_estimator
from ..inference.single_view import levelled_rays, levelling
from ..rig import Rig

DEFAULT_CHUNK = 40
"""Consecutive frames per track: enough for a temporal window and the tracker to settle."""
DEFAULT_EVERY = 80
"""Frames from one track's start to the next: half of a long recording is read, spread over all of it (measured on
studio-bench-open: 6000 frames instead of 3000 lowered the single-view P-MPJPE from 85.3 to 81.8 mm)."""


@dataclass
class Track:
    """T consecutive frames of V cameras: what the estimator saw and triangulated."""

    cameras: list[Camera]
    keypoints2d: np.ndarray
    """(T, V, K, 2) raw image pixels, NaN where the view found no person."""
    confidence: np.ndarray
    """(T, V, K) in [0, 1], 0 where the view found no person."""
    keypoints3d: np.ndarray
    """(T, K, 3) world metres, triangulated from the views (NaN: invalid)."""
    valid: np.ndarray
    """(T, K) bool."""
    poses: np.ndarray
    """(T, 17, 3) world metres, the mapped multi-view pose (NaN: none)."""
    frames: np.ndarray
    """(T,) frame indices in the recording."""
    gt: np.ndarray | None = None
    """(T, 17, 3) world metres, true joints of a studio recording (benchmarks only; None otherwise)."""

    def rays(self) -> np.ndarray:
        """(T, V, K, 2) the keypoints' rays as normalised coordinates in each camera's levelled frame
        (:func:`~kp3d_core.inference.single_view.levelled_rays`; NaN where missing)."""
        return np.stack([levelled_rays(cam, self.keypoints2d[:, v]) for v, cam in enumerate(self.cameras)], axis=1)

    def in_camera(self) -> np.ndarray:
        """(T, V, K, 3) the triangulated keypoints in each camera's levelled frame, metres (NaN where invalid)."""
        return np.stack([(self.keypoints3d @ c.R.T + c.t) @ levelling(c).T for c in self.cameras], axis=1)


class _Recorder:
    """Collects one track's per-frame arrays from the estimator's outputs."""

    def __init__(self, cameras: list[Camera], num_keypoints: int) -> None:
        self.cameras, self.K = cameras, num_keypoints
        self.rows: dict[str, list] = {k: [] for k in ("keypoints2d", "confidence", "keypoints3d", "valid", "poses",
                                                       "frames")}

    def add(self, frame: int, out) -> None:
        """One :class:`~kp3d_core.inference.estimator.Estimate` of frame index ``frame``."""
        r = self.rows
        r["keypoints2d"].append(np.where(out.found[:, None, None], out.keypoints2d, np.nan))
        r["confidence"].append(np.where(out.found[:, None], out.confidence, 0.0))
        multi = out.single_view is None  # a lifted estimate is no label for the lifter
        r["keypoints3d"].append(out.keypoints3d if multi else np.full((self.K, 3), np.nan))
        r["valid"].append(out.valid if multi else np.zeros(self.K, bool))
        r["poses"].append(out.pose if multi and out.pose is not None else np.full((17, 3), np.nan))
        r["frames"].append(frame)

    def __len__(self) -> int:
        return len(self.rows["frames"])

    def track(self, gt: np.ndarray | None = None) -> Track:
        arrays = {k: np.asarray(v) for k, v in self.rows.items()}
        return Track(self.cameras, gt=gt, **arrays)


def run_track(estimator, folder: StudioFolder, frames, stamps_ns: np.ndarray | None = None) -> Track:
    """The estimator over ``frames`` (consecutive indices of ``folder``), from a fresh track (its background kept)."""
    frames = np.asarray(list(frames), dtype=np.int64)
    rec = _Recorder(list(folder.cameras), estimator.num_keypoints)
    stamps = np.arange(folder.num_frames, dtype=np.int64) * 33_333_333 if stamps_ns is None else stamps_ns
    estimator.reset()
    for t in frames:
        rec.add(int(t), estimator.process(folder.read_images(int(t)), int(stamps[t])))
    return rec.track(np.asarray(folder.gt["joints3d"][frames], dtype=np.float64))


def studio_folders(data: str | Path) -> list[StudioFolder]:
    """The studio folders of a studio folder or a sessions folder."""
    return [StudioFolder(s.path) for s in read_split(data).sessions]


def collect_tracks(data: str | Path, model: str | Path | None = None, chunk: int | None = DEFAULT_CHUNK,
                   every: int = DEFAULT_EVERY, progress: bool = True) -> list[Track]:
    """Tracks of ``chunk`` consecutive frames every ``every`` frames of each folder of ``data`` (chunk None: one
    track over every frame), with ``model`` (None: the shipped model) and the folder's stored backgrounds when it
    has them (``backgrounds/``), else learnt from its frames as the node does."""
    tracks = []
    folders = studio_folders(data)
    total = sum(_count(len(f), chunk, every) for f in folders)
    bar = tqdm(total=total, desc="multi-view pseudo-labels", unit="frame", disable=not progress)
    for folder in folders:
        stored = folder.path / "backgrounds"
        est = build_estimator(EstimatorSettings(model=model, backgrounds=stored if stored.is_dir() else None),
                              folder.rig)
        est.lifter = None  # the labels come from the views together, never from a lifter the model may carry
        stamps = folder.gt.get("stamps_ns")
        starts = [0] if chunk is None else range(0, max(1, len(folder) - chunk + 1), every)
        for s in starts:
            end = len(folder) if chunk is None else min(len(folder), s + chunk)
            tracks.append(run_track(est, folder, range(s, end), stamps))
            bar.update(end - s)
    bar.close()
    return tracks


def collect_bag_tracks(bag: str | Path, rig: Rig, model: str | Path | None = None, chunk: int = DEFAULT_CHUNK,
                       every: int = DEFAULT_EVERY, backgrounds: str | Path | None = None, slop_ns: int = 5_000_000,
                       progress: bool = True) -> list[Track]:
    """Tracks of ``chunk`` consecutive synchronised frames every ``every`` frames of a rosbag2 bag of ``rig``'s
    cameras, with ``model`` (None: the shipped model) and stored ``backgrounds`` (None: learnt from the first frames
    as the node does; the warm-up frames then give no label). The tracks carry no ground truth."""
    names = [n for n in camera_topics(bag) if n in rig.names]
    rig = rig.subset(names)
    est = build_estimator(EstimatorSettings(model=model, backgrounds=Path(backgrounds) if backgrounds else None), rig)
    est.lifter = None
    tracks, rec = [], None
    bar = tqdm(desc="multi-view pseudo-labels", unit="frame", disable=not progress)
    for i, frame in enumerate(read_camera_frames(bag, names, slop_ns=slop_ns)):
        if i % every == 0:
            if rec is not None and len(rec):
                tracks.append(rec.track())
            rec = _Recorder(list(rig.cameras), est.num_keypoints)
            est.reset()
        if i % every < chunk:
            rec.add(i, est.process([frame.images[n] for n in names], frame.stamp_ns))
            bar.update()
    if rec is not None and len(rec):
        tracks.append(rec.track())
    bar.close()
    if not tracks:
        raise BagError(f"bag {bag}: no synchronised frame of cameras {names}")
    return tracks


def _count(n: int, chunk: int | None, every: int) -> int:
    return n if chunk is None else len(range(0, max(1, n - chunk + 1), every)) * min(chunk, n)


_ARRAYS = ("keypoints2d", "confidence", "keypoints3d", "valid", "poses", "frames")


def save_tracks(path: str | Path, tracks: list[Track]) -> Path:
    """Write tracks to one .npz (cameras as plain arrays), atomically; returns the path."""
    path = Path(path)
    out = {"count": np.array(len(tracks))}
    for i, tr in enumerate(tracks):
        for k in _ARRAYS:
            out[f"{i}/{k}"] = getattr(tr, k)
        if tr.gt is not None:
            out[f"{i}/gt"] = tr.gt
        out[f"{i}/names"] = np.array([c.name for c in tr.cameras])
        for k in ("K", "dist", "R", "t"):
            out[f"{i}/cam_{k}"] = np.stack([getattr(c, k) for c in tr.cameras])
        out[f"{i}/cam_size"] = np.array([[c.width, c.height] for c in tr.cameras])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **out)
    tmp.replace(path)
    return path


def load_tracks(path: str | Path) -> list[Track]:
    """Tracks written by :func:`save_tracks`."""
    with np.load(path) as z:
        tracks = []
        for i in range(int(z["count"])):
            cams = [Camera(str(n), z[f"{i}/cam_K"][v], z[f"{i}/cam_dist"][v], int(z[f"{i}/cam_size"][v][0]),
                           int(z[f"{i}/cam_size"][v][1]), z[f"{i}/cam_R"][v], z[f"{i}/cam_t"][v])
                    for v, n in enumerate(z[f"{i}/names"])]
            gt = z[f"{i}/gt"] if f"{i}/gt" in z.files else None
            tracks.append(Track(cams, *(z[f"{i}/{k}"] for k in _ARRAYS), gt=gt))
    return tracks
