"""Geodesic pixel weights of Mask as Supervision (seed 002), from a label-free foreground mask.

Inside the silhouette, d is the geodesic distance (fast marching, scikit-fmm) from the silhouette's centroid,
travelling only through the silhouette; outside, d is the distance to the silhouette. Each is normalised by its
largest value in the crop (d in [0, 1]), and the weight is::

    w = exp(2 d) + 1   inside   (2 at the centroid .. e^2 + 1 ~ 8.4 at the far end of a limb)
    w = 3 d + 20       outside  (20 next to the body .. 23 at the farthest pixel)

Why: the far ends of the limbs are the pixels a skeleton misses first (hence the growing weight inside), and a
skeleton drawn outside the body is always wrong (hence the large weight outside). The weights depend on the
foreground alone, so they are computed once per batch, on the CPU, with NumPy, and carry no gradient.

Cost (one thread of the 2-core development CPU, loaded): about 0.2 ms per 32 x 32 map and 1-2 ms per 64 x 64 map,
a Python loop over the maps. mas.yaml compares masks at 32 x 32: 7 ms for its 36 maps (9 frames x 4 views), 4 % of
its ~0.56 s step.
"""
from __future__ import annotations

import numpy as np
import skfmm


def _inside_distance(mask: np.ndarray) -> np.ndarray:
    """(S, S) geodesic distance in cells from the mask pixel nearest the mask's centroid, through the mask; 0
    outside. A C-shaped silhouette can have its centroid outside it, hence the nearest mask pixel."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    phi = np.ones(mask.shape)
    phi[ys[i], xs[i]] = 0.0  # a zero of phi is a source at distance 0 (on the cell, not half a cell away)
    d = skfmm.distance(np.ma.MaskedArray(phi, ~mask))
    # Parts of the mask cut off from the source (a detached blob) are left masked by fmm: give them the farthest
    # reached distance, the hardest pixels.
    reached = ~np.ma.getmaskarray(d) & mask
    out = np.where(reached, np.ma.getdata(d), 0.0)
    out[mask & ~reached] = out.max() if reached.any() else 0.0
    return out


def _outside_distance(mask: np.ndarray) -> np.ndarray:
    """(S, S) distance in cells from each pixel outside the mask to the nearest mask pixel (about 1 next to it);
    0 inside."""
    # fmm's zero level lies half a cell between a mask pixel and its neighbour: + 0.5 counts from pixel centres.
    d = skfmm.distance(np.where(mask, -1.0, 1.0)) + 0.5
    return np.where(mask, 0.0, np.maximum(d, 0.0))


def geodesic_weights(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Pixel weights (N, S, S) float32 of soft or binary masks (N, S, S) (foreground where mask > ``threshold``).

    A crop with no foreground pixel gets weight 1 everywhere (nothing to say about it); one with no background
    pixel gets only the inside weights.
    """
    m = np.asarray(mask)
    if m.ndim != 3 or m.shape[1] != m.shape[2]:
        raise ValueError(f"mask: expected shape (N, S, S), got {m.shape}")
    fg = m > threshold
    out = np.ones(m.shape, dtype=np.float32)
    for n in range(m.shape[0]):
        inside = fg[n]
        if not inside.any():
            continue
        d_in = _inside_distance(inside)
        w = np.exp(2.0 * d_in / max(d_in.max(), 1e-6)) + 1.0
        if not inside.all():
            d_out = _outside_distance(inside)
            w = np.where(inside, w, 3.0 * d_out / max(d_out.max(), 1e-6) + 20.0)
        out[n] = w
    return out
