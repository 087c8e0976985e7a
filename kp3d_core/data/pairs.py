"""Temporal pairs: each training sample comes with a frame of the same clip a few frames away (``loss.temporal``).

Why: the multi-view losses reward any labelling of the keypoints that every view of one frame agrees on, and
"the limb nearer the door" or "the higher hand" are such labellings. They swap a keypoint between the left and
right limbs whenever the body turns or the hands cross, which no map to named joints can undo. A keypoint that
stays on its body part moves a few centimetres in a tenth of a second; one that changes part jumps across the
body, and :func:`kp3d_core.losses.temporal_loss` charges the jump.

A pair is two dataset samples; :class:`TemporalPairs` yields them stacked on a new axis, and
:func:`flatten_pairs` turns a collated batch of P pairs into a batch of 2P frames, the frames of pair i at
rows 2i and 2i + 1 (the layout the loss reads). Frames with the same clip id whose frame numbers differ by the
offset are taken to be that far apart in time: true of studio folders (each clip id one continuous window,
its neighbours in the file another subject) and of a bag (one recording, clip id -1).
"""
from __future__ import annotations

import numpy as np
import torch


def temporal_partners(frames, clips, offset: int) -> np.ndarray:
    """(N,) index of each sample's partner: the frame ``offset`` later in the same clip if it is among ``frames``,
    else the one ``offset`` earlier, else the sample itself (a clip shorter than the offset).

    Args: frames (N,) frame numbers; clips (N,) clip id of each; offset >= 1 frames.
    """
    frames, clips = np.asarray(frames, dtype=np.int64), np.asarray(clips)
    if offset < 1:
        raise ValueError(f"temporal offset must be >= 1 frame, got {offset}")
    where = {int(f): i for i, f in enumerate(frames)}
    partners = np.arange(len(frames))
    for i, (f, c) in enumerate(zip(frames, clips)):
        for g in (f + offset, f - offset):
            j = where.get(int(g))
            if j is not None and clips[j] == c:
                partners[i] = j
                break
    return partners


class TemporalPairs(torch.utils.data.Dataset):
    """Wraps a dataset of samples: item i is sample i and its partner, every tensor stacked on a new first axis (2, ...).

    Frames and clip ids are a :class:`~kp3d_core.data.cache.CachedDataset`'s exposed frames and their clip ids;
    any other dataset is taken as one clip of consecutive frames.
    """

    def __init__(self, dataset, offset: int) -> None:
        self.dataset = dataset
        if hasattr(dataset, "frames") and hasattr(dataset, "labels"):
            frames, clips = dataset.frames, dataset.labels("clip")
        else:
            frames, clips = np.arange(len(dataset)), np.zeros(len(dataset), dtype=np.int64)
        self.partners = temporal_partners(frames, clips, offset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return torch.utils.data.default_collate([self.dataset[i], self.dataset[int(self.partners[i])]])


def flatten_pairs(batch: dict) -> dict:
    """A collated batch of P pairs (every tensor (P, 2, ...)) -> a batch of 2P frames, pair i at rows 2i, 2i + 1,
    marked ``temporal_pairs`` True for the loss."""
    out = {k: v.reshape(-1, *v.shape[2:]) if torch.is_tensor(v) else v for k, v in batch.items()}
    out["temporal_pairs"] = True
    return out
