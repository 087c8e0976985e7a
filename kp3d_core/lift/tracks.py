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
import torch
from tqdm import tqdm

from ..camera import Camera
from ..data.sessions import read_split
from ..data.studio import StudioFolder
from ..geometry import pixels_to_rays
from ..inference.pipeline import EstimatorSettings, build_estimator

DEFAULT_CHUNK = 40
"""Consecutive frames per track: enough for a temporal window and the tracker to settle."""
DEFAULT_EVERY = 160
"""Frames from one track's start to the next: a quarter of a long recording is read, spread over all of it."""


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
        """(T, V, K, 2) normalised undistorted image coordinates of the keypoints (NaN where missing)."""
        out = np.full(self.keypoints2d.shape, np.nan)
        for v, cam in enumerate(self.cameras):
            kp = torch.from_numpy(self.keypoints2d[:, v])
            r = pixels_to_rays(torch.nan_to_num(kp), torch.from_numpy(cam.K), torch.from_numpy(cam.dist)).numpy()
            out[:, v] = np.where(np.isfinite(self.keypoints2d[:, v]), r, np.nan)
        return out

    def in_camera(self) -> np.ndarray:
        """(T, V, K, 3) the triangulated keypoints in each camera's frame, metres (NaN where invalid)."""
        return np.stack([self.keypoints3d @ c.R.T + c.t for c in self.cameras], axis=1)


def run_track(estimator, folder: StudioFolder, frames, stamps_ns: np.ndarray | None = None) -> Track:
    """The estimator over ``frames`` (consecutive indices of ``folder``), from a fresh track (its background kept)."""
    frames = np.asarray(list(frames), dtype=np.int64)
    V, K = len(folder.cameras), estimator.num_keypoints
    kp = np.full((len(frames), V, K, 2), np.nan)
    conf = np.zeros((len(frames), V, K))
    X = np.full((len(frames), K, 3), np.nan)
    valid = np.zeros((len(frames), K), bool)
    poses = np.full((len(frames), 17, 3), np.nan)
    stamps = np.arange(folder.num_frames, dtype=np.int64) * 33_333_333 if stamps_ns is None else stamps_ns
    estimator.reset()
    for i, t in enumerate(frames):
        out = estimator.process(folder.read_images(int(t)), int(stamps[t]))
        kp[i] = np.where(out.found[:, None, None], out.keypoints2d, np.nan)
        conf[i] = np.where(out.found[:, None], out.confidence, 0.0)
        if out.single_view is None:  # a lifted estimate is no label for the lifter
            X[i], valid[i] = out.keypoints3d, out.valid
            if out.pose is not None:
                poses[i] = out.pose
    gt = np.asarray(folder.gt["joints3d"][frames], dtype=np.float64)
    return Track(list(folder.cameras), kp, conf, X, valid, poses, frames, gt)


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
