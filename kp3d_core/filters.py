"""One Euro filter (Casiez, Roussel, Vogel, CHI 2012) for streams of 3D points, vectorised.

An adaptive low-pass per coordinate: the cutoff rises with the (low-passed) speed, so slow motion
is smoothed strongly (little jitter) and fast motion weakly (little lag). Each output uses only the
current and past inputs, so no frames are buffered and no latency is added by waiting.

For sampling interval ``dt`` (s) and cutoff ``fc`` (Hz): ``alpha = 1 / (1 + tau / dt)``,
``tau = 1 / (2 pi fc)``; the speed ``dx = (x - x_hat_prev) / dt`` is low-passed with ``d_cutoff``,
then ``fc = min_cutoff + beta * |dx_hat|`` and ``x_hat = x_hat_prev + alpha * (x - x_hat_prev)``.

Example::

    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    smooth = f(points, t)      # points (K, 3) metres, t seconds -> (K, 3)
"""
from __future__ import annotations

import numpy as np


def smoothing_factor(dt: float | np.ndarray, cutoff_hz: float | np.ndarray) -> np.ndarray:
    """Exponential-smoothing weight of a first-order low-pass with ``cutoff_hz`` sampled every ``dt`` s."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over arrays of points, e.g. (K, 3) keypoints in metres.

    The last axis is a point's coordinates: a point with any NaN coordinate comes out as NaN and its
    state is reset, so it restarts unfiltered when it reappears. A timestamp that does not increase,
    or a change of shape, resets the whole filter.

    Args:
        min_cutoff: cutoff at zero speed, Hz (> 0); lower = smoother when still.
        beta: speed coefficient, Hz of cutoff per unit/s of speed (>= 0); higher = less lag when moving.
        d_cutoff: cutoff of the speed estimate, Hz (> 0).
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if not min_cutoff > 0:
            raise ValueError(f"OneEuroFilter: min_cutoff must be > 0 Hz, got {min_cutoff}")
        if not beta >= 0:
            raise ValueError(f"OneEuroFilter: beta must be >= 0, got {beta}")
        if not d_cutoff > 0:
            raise ValueError(f"OneEuroFilter: d_cutoff must be > 0 Hz, got {d_cutoff}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next input passes through unchanged."""
        self._x: np.ndarray | None = None  # last output, (..., D)
        self._dx: np.ndarray | None = None  # last low-passed speed, (..., D)
        self._t: float | None = None

    def __call__(self, x, t: float) -> np.ndarray:
        """Filter one sample.

        Args:
            x: (..., D) points (e.g. (K, 3) metres); NaN marks a missing point.
            t: its timestamp, seconds.

        Returns:
            (..., D) float64 filtered points (a new array); NaN where the input point has a NaN.
        """
        x = np.array(x, dtype=np.float64)  # copy: the caller's array is never changed
        if x.ndim == 0:
            raise ValueError(f"OneEuroFilter: input must have at least one axis, got shape {x.shape}")
        t = float(t)
        if not np.isfinite(t):
            raise ValueError(f"OneEuroFilter: timestamp must be finite, got {t}")
        missing = np.isnan(x).any(axis=-1, keepdims=True)  # (..., 1)
        x = np.where(missing, np.nan, x)
        if self._x is None or self._x.shape != x.shape or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x
        dt = t - self._t
        fresh = np.isnan(self._x)  # points with no state: start from the input
        prev = np.where(fresh, x, self._x)
        dx = (x - prev) / dt
        dx_hat = self._dx + smoothing_factor(dt, self.d_cutoff) * (dx - self._dx)
        dx_hat = np.where(fresh, 0.0, dx_hat)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        out = prev + smoothing_factor(dt, cutoff) * (x - prev)
        # missing points: output NaN and forget their state (NaN state = reset)
        self._x = np.where(missing, np.nan, out)
        self._dx = np.where(missing, 0.0, dx_hat)
        self._t = t
        return self._x.copy()
