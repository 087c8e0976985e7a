"""Temporal windows: each training sample comes with frames of the same clip a few frames away (``loss.temporal``).

Why: the multi-view losses reward any labelling of the keypoints that every view of one frame agrees on, and
"the limb nearer the door" or "the higher hand" are such labellings. They swap a keypoint between the left and
right limbs whenever the body turns or the hands cross, which no map to named joints can undo.
:func:`kp3d_core.losses.temporal_loss` charges a finite difference of each keypoint over the window: its move
between two frames (``loss.temporal_order`` 1), which charges a keypoint jumping across the body but also every
moving limb, so it draws keypoints to the trunk; or its second difference over three (order 2), which leaves a
limb's steady motion free and still charges a label handed from one limb to the other ("the leading foot" passes
between the feet as they cross, hip-width apart: a short jump, and the velocity flips).

A window is ``length`` dataset samples, in time order; :class:`TemporalWindows` yields them stacked on a new axis,
and :func:`flatten_windows` turns a collated batch of P windows into a batch of length * P frames, the frames of
window i at rows length * i ... length * i + length - 1 (the layout the loss reads). Frames with the same clip id
whose frame numbers differ by multiples of the offset are taken to be that far apart in time: true of studio
folders (each clip id one continuous window, its neighbours in the file another subject) and of a bag (one
recording, clip id -1).
"""
from __future__ import annotations

import numpy as np
import torch


def temporal_windows(frames, clips, offset: int, length: int = 2) -> np.ndarray:
    """(N, length) sample indices of each sample's window: ``length`` frames of its clip ``offset`` apart, in time
    order, among ``frames``; the one that starts at the sample if it exists, else the one that starts an offset
    earlier, and so on; the sample repeated (no motion) if its clip holds none.

    Args: frames (N,) frame numbers; clips (N,) clip id of each; offset >= 1 frames; length >= 2 frames.
    """
    frames, clips = np.asarray(frames, dtype=np.int64).tolist(), np.asarray(clips).tolist()
    if offset < 1:
        raise ValueError(f"temporal offset must be >= 1 frame, got {offset}")
    if length < 2:
        raise ValueError(f"temporal window length must be >= 2 frames, got {length}")
    where = {(f, c): i for i, (f, c) in enumerate(zip(frames, clips))}
    windows = np.repeat(np.arange(len(frames))[:, None], length, axis=1)
    steps = [offset * j for j in range(length)]
    for i, (f, c) in enumerate(zip(frames, clips)):
        for back in steps:
            idx = [where.get((f - back + s, c)) for s in steps]
            if all(j is not None for j in idx):
                windows[i] = idx
                break
    return windows


class TemporalWindows(torch.utils.data.Dataset):
    """Wraps a dataset of samples: item i is sample i's window (:func:`temporal_windows`), every tensor stacked on a
    new first axis (length, ...).

    Frames and clip ids are a :class:`~kp3d_core.data.cache.CachedDataset`'s exposed frames and their clip ids;
    any other dataset is taken as one clip of consecutive frames.
    """

    def __init__(self, dataset, offset: int, length: int = 2) -> None:
        self.dataset = dataset
        if hasattr(dataset, "frames") and hasattr(dataset, "labels"):
            frames, clips = dataset.frames, dataset.labels("clip")
        else:
            frames, clips = np.arange(len(dataset)), np.zeros(len(dataset), dtype=np.int64)
        self.windows = temporal_windows(frames, clips, offset, length)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return torch.utils.data.default_collate([self.dataset[int(j)] for j in self.windows[i]])


def flatten_windows(batch: dict) -> dict:
    """A collated batch of P windows (every tensor (P, L, ...)) -> a batch of L * P frames, window i at rows
    L * i ... L * i + L - 1, with ``temporal_window`` = L for the loss."""
    length = next(v.shape[1] for v in batch.values() if torch.is_tensor(v))
    out = {k: v.reshape(-1, *v.shape[2:]) if torch.is_tensor(v) else v for k, v in batch.items()}
    out["temporal_window"] = int(length)
    return out
