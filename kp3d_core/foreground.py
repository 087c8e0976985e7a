"""Which foreground blob is the subject, decided by the views together.

A single view cannot tell the subject from a bystander walking behind it, from a ghost its background holds
(where the subject stood while the background was learnt), or from clutter a lamp lit up: each is a blob of
``|I - B|``, and the largest is not always the subject. The calibrated views can: the subject's blobs are the
projections of ONE place in the world. :func:`agree_across_views` triangulates the centres of every pair of
candidate blobs of two views and keeps the 3D point that falls inside a blob in the most views (a bystander seen
by two cameras loses to a subject seen by four); each view's hint is then the box of its blob there, for
:func:`kp3d_core.crop.box_from_patch`. Used by the training crops (:func:`kp3d_core.data.studio.crop_views`) and
by the run-time predictor whenever it has no 3D keypoints to follow.

Example::

    cands = [blobs(foreground_mask(img, bg), min_area) for img, bg in zip(images, backgrounds)]
    X, hints = agree_across_views(cands, cameras)   # X (3,) world metres or None; hints: V boxes or None
    boxes = [box_from_mask(m, params, hint=h) for m, h in zip(masks, hints)]
"""
from __future__ import annotations

import numpy as np

from .camera import Camera

SLACK = 0.15
"""A projected 3D point agrees with a blob when it lies in the blob's box grown by this fraction of its longer
side (plus 4 px) on each side: blob centres are centres of silhouettes, not one exact point of the body."""


def _two_view_points(P1: np.ndarray, uv1: np.ndarray, P2: np.ndarray, uv2: np.ndarray) -> np.ndarray:
    """DLT of pixel pairs in two ideal cameras: (N, 2) x2 with (3, 4) x2 -> (N, 3) world points."""
    A = np.stack([uv1[:, 0:1] * P1[2] - P1[0], uv1[:, 1:2] * P1[2] - P1[1],
                  uv2[:, 0:1] * P2[2] - P2[0], uv2[:, 1:2] * P2[2] - P2[1]], axis=1)  # (N, 4, 4)
    A = A / np.maximum(np.linalg.norm(A, axis=-1, keepdims=True), 1e-12)
    _, _, vt = np.linalg.svd(A)
    Xh = vt[:, -1]
    w = np.where(np.abs(Xh[:, 3:]) < 1e-12, np.nan, Xh[:, 3:])
    return Xh[:, :3] / w


def agree_across_views(candidates: list[np.ndarray | None], cameras: list[Camera], min_views: int = 2,
                       slack: float = SLACK) -> tuple[np.ndarray | None, list]:
    """The subject's place in the world and, per view, the box of its blob there.

    Args:
        candidates: per view, (N_v, 7) blob rows [x0, y0, x1, y1, area, cx, cy] of the raw (distorted) image
            (:func:`kp3d_core.crop.blobs`), or None / empty for a view without any.
        cameras: the V cameras.
        min_views: fewest views whose blobs must agree.
        slack: see :data:`SLACK`.

    Returns:
        ``(X, hints)``: X (3,) world metres, or None when no point is in blobs of ``min_views`` views (then every
        hint is None); ``hints``: per view the (x0, y0, x1, y1) box of the largest blob holding X's projection
        (grown by ``slack``), or None where X is in no blob. Among points agreed by as many views, the one whose
        blobs are largest (in units of their image) wins.
    """
    V = len(cameras)
    if len(candidates) != V:
        raise ValueError(f"agree_across_views: {len(candidates)} candidate lists for {V} cameras")
    cands = [np.zeros((0, 7)) if c is None else np.asarray(c, dtype=np.float64).reshape(-1, 7) for c in candidates]
    none = (None, [None] * V)
    if sum(len(c) > 0 for c in cands) < min_views:
        return none
    ideal = [cameras[v].undistort_pixels(cands[v][:, 5:7]) if len(cands[v]) else np.zeros((0, 2)) for v in range(V)]
    P = [c.P for c in cameras]
    hyps = []
    for a in range(V):
        for b in range(a + 1, V):
            if not len(cands[a]) or not len(cands[b]):
                continue
            ia, ib = np.meshgrid(np.arange(len(cands[a])), np.arange(len(cands[b])), indexing="ij")
            hyps.append(_two_view_points(P[a], ideal[a][ia.ravel()], P[b], ideal[b][ib.ravel()]))
    X = np.concatenate(hyps)
    X = X[np.isfinite(X).all(axis=1)]
    if not len(X):
        return none
    votes = np.zeros(len(X))
    weight = np.zeros(len(X))
    inside = []  # per view: (H, N_v) bool, hypothesis h lies in blob i's grown box
    for v, cam in enumerate(cameras):
        c = cands[v]
        if not len(c):
            inside.append(np.zeros((len(X), 0), bool))
            continue
        front = cam.world_to_camera(X)[:, 2] > 0.05
        uv = cam.project(X)
        grow = slack * np.maximum(c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]) + 4.0
        within = ((uv[:, None, 0] >= c[None, :, 0] - grow) & (uv[:, None, 0] <= c[None, :, 2] + grow)
                  & (uv[:, None, 1] >= c[None, :, 1] - grow) & (uv[:, None, 1] <= c[None, :, 3] + grow)
                  & front[:, None])
        inside.append(within)
        votes += within.any(axis=1)
        weight += np.where(within, np.sqrt(c[None, :, 4] / (cam.width * cam.height)), 0.0).max(axis=1, initial=0.0)
    best = int(np.lexsort((-weight, -votes))[0])
    if votes[best] < min_views:
        return none
    hints = []
    for v in range(V):
        hit = np.flatnonzero(inside[v][best]) if inside[v].shape[1] else np.zeros(0, int)
        if not len(hit):
            hints.append(None)
            continue
        c = cands[v][hit[np.argmax(cands[v][hit, 4])]]
        g = slack * max(c[2] - c[0], c[3] - c[1]) + 4.0
        hints.append((c[0] - g, c[1] - g, c[2] + g, c[3] + g))
    return X[best], hints
