"""Training items of a sessions split, and batches drawn from one session at a time.

A collated batch stacks (B, V, ...) tensors, so its frames must share the view count V, and the sessions of a split
may have 3 to 8 cameras. Each batch is therefore drawn from ONE session (:class:`SessionBatchSampler`): every
session's items are shuffled and cut into full batches, and the batches of all sessions are shuffled together, so a
session comes up in proportion to its frames and every frame once per epoch (bar each session's remainder of less
than a batch, which changes from epoch to epoch).

Why not pad every frame to the largest rig with ``valid_view`` False: the losses would ignore padded views (they
average over valid views), but the encoder and decoder would still run on them (a 3-camera session padded to 8
views spends 5/8 of a step on blanks), padded views need calibration (K, P) that is made up, and every other reader
of a batch (triangulation weights, the background-swap augmentation that draws other views' backgrounds, previews)
would have to know to skip them. One session per batch gives each rig as it is, with no fake data anywhere.

Under DDP all ranks draw the same epoch's batch list (seed + epoch) and take every ``world``-th batch from their rank
on, as DistributedSampler splits samples; ranks may then train on different sessions in one step, which DDP allows
(it averages gradients, not inputs).

Example::

    ds = SessionsDataset([CachedDataset(s.path, params) for s in split.sessions], [s.name for s in split.sessions])
    loader = DataLoader(ds, batch_sampler=SessionBatchSampler(ds.sizes, batch_size=8, seed=0))
"""
from __future__ import annotations

import numpy as np
import torch


class SessionsDataset(torch.utils.data.ConcatDataset):
    """The items of several sessions' datasets, numbered across sessions in order (session 0's, then 1's, ...).

    Item i is item ``i - offset`` of its session's dataset, so it carries that session's views (V may differ between
    sessions) and calibration; windows of consecutive frames (:class:`~kp3d_core.data.pairs.TemporalWindows`) are
    built inside each session's dataset, so they never cross sessions.
    """

    def __init__(self, datasets, names) -> None:
        datasets, names = list(datasets), [str(n) for n in names]
        if len(datasets) != len(names):
            raise ValueError(f"SessionsDataset: {len(datasets)} datasets but {len(names)} names")
        super().__init__(datasets)
        self.names = names

    @property
    def sizes(self) -> list[int]:
        """Items per session, in order."""
        return [len(d) for d in self.datasets]

    def session_of(self, items) -> np.ndarray:
        """(N,) session index of each of the items (N,) int."""
        return np.searchsorted(np.asarray(self.cumulative_sizes), np.asarray(items, dtype=np.int64), side="right")

    def by_session(self, items) -> list[np.ndarray]:
        """The items (N,) int grouped by session, sessions in order, each group in the given order (empty groups
        left out)."""
        items = np.asarray(items, dtype=np.int64)
        which = self.session_of(items)
        return [items[which == s] for s in range(len(self.datasets)) if (which == s).any()]

    def map(self, fn) -> "SessionsDataset":
        """A SessionsDataset of ``fn(dataset)`` for each session's dataset (same names), e.g. temporal windows."""
        return SessionsDataset([fn(d) for d in self.datasets], self.names)


def session_batches(sizes, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """One epoch's batches: each session's items shuffled and cut into full batches of ``batch_size`` (the rest
    dropped), then all batches shuffled together. Items are numbered across sessions as in :class:`SessionsDataset`.

    Args: sizes (S,) items per session; batch_size >= 1; generator: the only source of randomness.
    Returns: lists of ``batch_size`` item indices, each from one session.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches, start = [], 0
    for n in sizes:
        order = (torch.randperm(n, generator=generator) + start).tolist()
        batches += [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
        start += n
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


class SessionBatchSampler(torch.utils.data.Sampler):
    """Batch sampler over a :class:`SessionsDataset` (``DataLoader(batch_sampler=...)``): batches from one session
    each (:func:`session_batches`), reshuffled per epoch (:meth:`set_epoch`, as DistributedSampler), this rank's
    share of them under DDP.

    Args: sizes (S,) items per session; batch_size items per batch; seed: with the epoch, the batch order, the same
    on every rank; rank, world: this process's place (every ``world``-th batch from ``rank`` on, the list first cut
    to a multiple of ``world`` so that all ranks take as many steps).
    """

    def __init__(self, sizes, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, {world}), got {rank}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sizes, self.batch_size = [int(n) for n in sizes], int(batch_size)
        self.seed, self.rank, self.world, self.epoch = int(seed), int(rank), int(world), 0

    def set_epoch(self, epoch: int) -> None:
        """Batches of another epoch (call before iterating, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(n // self.batch_size for n in self.sizes) // self.world

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        batches = session_batches(self.sizes, self.batch_size, g)
        yield from batches[self.rank:len(self) * self.world:self.world]
