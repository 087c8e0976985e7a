"""Frame offsets between unsynchronised videos of one rig, estimated from motion energy.

Per camera a motion-energy signal: for each pair of consecutive frames, downsampled to ``width_px`` and
grey, the fraction of pixels whose absolute difference exceeds twice that pair's median difference plus
one grey level (the median is the sensor noise: most of a studio view is static background). The signal
is high-passed (minus its centred moving average over ``highpass_s``), which removes what differs most
between views: how large the subject appears as it walks nearer or further. Each camera's signal is
cross-correlated (Pearson, over the overlap) with the reference camera's for every lag within
``+-max_offset_frames``; the best lag is the offset.

An estimate is accepted only if it is both strong and unique:

* ``correlation``: the Pearson correlation at the best lag (at least ``min_correlation``);
* ``peak_ratio``: that correlation over the best one further than ``lobe_frames`` from it, the
  second-best peak outside the main lobe (at least ``min_peak_ratio``; guards against periodic motion).

What works (docs/own_rig.md has the figures): whole-body motion that every camera sees and that does
not repeat within the lag window, such as a few jumps. Walking alone often does not: each view sees a
different share of every step; those estimates are mostly refused, and none was accepted wrong.

Offsets follow the clock of :mod:`kp3d_core.video_bag`: frame ``i`` of camera ``c`` shows the instant of
reference frame ``i - offset_c`` (a camera that started recording 2 frames earlier has offset +2).

Example::

    energy = {name: video_motion_energy(path) for name, path in videos.items()}
    estimates = estimate_offsets(energy, reference="cam0", config=SyncConfig(max_offset_frames=30), fps=30.0)
    estimates["cam1"].offset_frames, estimates["cam1"].accepted
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np


@dataclass(frozen=True)
class SyncConfig:
    """How offsets are estimated and when an estimate is trusted."""

    max_offset_frames: int | None = None
    """Lags searched: -max_offset_frames .. +max_offset_frames (None: one second of frames)."""
    min_correlation: float = 0.7
    """Fewest Pearson correlation at the best lag for an accepted estimate. On the synthetic studio (procedural
    motion, 4 views; docs/own_rig.md) wrong estimates reached 0.62 (besides those one period off in
    periodic motion, left to min_peak_ratio), a subject standing still 0.53, and jumping jacks seen by
    every view gave 0.70 and more."""
    min_peak_ratio: float = 1.2
    """Fewest ratio of the best correlation to the best outside the main lobe (periodic motion: jumping jacks
    one period apart look alike). With lags up to +-40 frames it removed the remaining wrong estimates."""
    min_overlap_frames: int = 60
    """Fewest motion-energy samples (frame pairs) two signals are compared over, at any lag. Random signals
    reach a correlation of 0.6 at some lag within +-6 in 0.7 % of trials over 60 samples, 12 % over 30."""
    lobe_frames: int = 2
    """Half width of the main lobe, frames: lags this close to the best do not count as a second peak."""
    highpass_s: float = 0.3
    """Window of the moving average subtracted from the signal, seconds."""
    width_px: int = 64
    """Frames are downsampled to this width (aspect kept) before differencing."""

    def __post_init__(self) -> None:
        if self.max_offset_frames is not None and int(self.max_offset_frames) < 1:
            raise ValueError(f"max_offset_frames must be >= 1, got {self.max_offset_frames}")
        if self.lobe_frames < 0 or self.width_px < 8 or not self.highpass_s > 0 or self.min_overlap_frames < 3:
            raise ValueError(f"invalid SyncConfig: {self}")


@dataclass(frozen=True)
class OffsetEstimate:
    """One camera's estimated offset against the reference, with the evidence for it."""

    camera: str
    offset_frames: int
    correlation: float
    """Pearson correlation at the best lag (0 where a signal is flat: no motion)."""
    peak_ratio: float
    """Best correlation / best correlation outside the main lobe (inf when that one is <= 0)."""
    accepted: bool

    def describe(self) -> str:
        verdict = "accepted" if self.accepted else "REFUSED"
        return (f"camera {self.camera}: offset {self.offset_frames:+d} frames, correlation {self.correlation:.2f}, "
                f"peak ratio {self.peak_ratio:.2f}: {verdict}")


# ------------------------------------------------------------------------------------- signals
def small_grey(rgb_or_bgr: np.ndarray, width_px: int) -> np.ndarray:
    """(H, W, 3) uint8 colour frame -> (h, width_px) float32 grey, area-averaged (h keeps the aspect)."""
    h, w = rgb_or_bgr.shape[:2]
    height_px = max(1, round(h * width_px / w))
    # channel order does not matter for an energy; averaging the channels avoids choosing one
    grey = rgb_or_bgr.mean(axis=2, dtype=np.float32)
    return cv2.resize(grey, (width_px, height_px), interpolation=cv2.INTER_AREA)


def motion_energy(frames: Iterable[np.ndarray], width_px: int = 64) -> np.ndarray:
    """Colour frames (each (H, W, 3) uint8) -> (T - 1,) motion energy, fraction of changed pixels in [0, 1].

    Element ``i`` compares frames ``i`` and ``i + 1``.
    """
    out, previous = [], None
    for frame in frames:
        grey = small_grey(frame, width_px)
        if previous is not None:
            diff = np.abs(grey - previous)
            threshold = 2.0 * float(np.median(diff)) + 1.0
            out.append(float(np.mean(diff > threshold)))
        previous = grey
    return np.asarray(out, dtype=np.float64)


def video_motion_energy(path: str | Path, width_px: int = 64, first_frame: int = 0,
                        num_frames: int | None = None) -> np.ndarray:
    """Motion energy of a video file's frames ``first_frame ..`` (all, or ``num_frames``): (T - 1,)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open the video")

    def frames():
        index = 0
        while num_frames is None or index < first_frame + num_frames:
            if index < first_frame:
                ok = cap.grab()   # skip without converting the picture
            else:
                ok, frame = cap.read()
                if ok:
                    yield frame
            if not ok:
                return
            index += 1

    try:
        return motion_energy(frames(), width_px)
    finally:
        cap.release()


def highpass(signal: np.ndarray, window: int) -> np.ndarray:
    """(T,) signal minus its centred moving average over ``window`` samples (edges padded by repetition)."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.size == 0:
        return signal
    if window < 2:
        return signal - signal.mean()
    padded = np.pad(signal, (window // 2, window - 1 - window // 2), mode="edge")
    return signal - np.convolve(padded, np.ones(window) / window, mode="valid")


# ----------------------------------------------------------------------------------- correlation
def lag_correlation(signal: np.ndarray, reference: np.ndarray, max_lag: int,
                    min_overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of ``signal[i]`` with ``reference[i - lag]`` over their overlap.

    Returns (lags (2 max_lag + 1,) int, r (2 max_lag + 1,)); r is 0 where the overlap is shorter than
    ``min_overlap`` or either part is flat.
    """
    lags = np.arange(-max_lag, max_lag + 1)
    r = np.zeros(lags.size)
    for j, lag in enumerate(lags):
        lo, hi = max(0, lag), min(signal.size, reference.size + lag)
        if hi - lo < min_overlap:
            continue
        a, b = signal[lo:hi], reference[lo - lag:hi - lag]
        a, b = a - a.mean(), b - b.mean()
        norm = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
        if norm > 1e-12:
            r[j] = float(np.dot(a, b)) / norm
    return lags, r


def best_lag(lags: np.ndarray, r: np.ndarray, lobe_frames: int) -> tuple[int, float, float]:
    """(lag, correlation, peak ratio) of the highest correlation; the ratio compares it with the highest
    outside ``+-lobe_frames`` of it (inf when that is <= 0, 1 when every lag is inside the lobe)."""
    k = int(np.argmax(r))
    outside = r[np.abs(lags - lags[k]) > lobe_frames]
    second = float(outside.max()) if outside.size else float(r[k])
    ratio = float(r[k] / second) if second > 0 else float("inf")
    return int(lags[k]), float(r[k]), ratio


def estimate_offset(signal: np.ndarray, reference: np.ndarray, config: SyncConfig,
                    fps: float) -> tuple[int, float, float]:
    """(offset frames, correlation, peak ratio) of one camera's motion energy against the reference's.

    Both are (T,) motion energies (any lengths) at the same ``fps``. A lag counts only where the overlap
    holds ``config.min_overlap_frames`` samples and half of the shorter signal, so that neither chance
    nor sliding one signal off the other makes a peak (:func:`frames_needed` is the length to ask for).
    """
    window = max(2, round(config.highpass_s * fps))
    a, b = highpass(signal, window), highpass(reference, window)
    min_overlap = max(config.min_overlap_frames, min(a.size, b.size) // 2)
    lags, r = lag_correlation(a, b, max_lag_frames(config, fps), min_overlap)
    if not np.any(r):
        return 0, 0.0, 1.0   # flat signals: no motion to align
    return best_lag(lags, r, config.lobe_frames)


def max_lag_frames(config: SyncConfig, fps: float) -> int:
    """The lag window's half width, frames: ``max_offset_frames``, or one second of frames."""
    return int(config.max_offset_frames) if config.max_offset_frames is not None else max(1, round(fps))


def frames_needed(config: SyncConfig, fps: float) -> int:
    """Fewest frames per video for which every lag of the window has the minimum overlap."""
    return config.min_overlap_frames + max_lag_frames(config, fps) + 1


def estimate_offsets(energy: dict[str, np.ndarray], reference: str, config: SyncConfig,
                     fps: float) -> dict[str, OffsetEstimate]:
    """Offsets of every camera but ``reference`` (offset 0 by definition) from their motion energies."""
    if reference not in energy:
        raise ValueError(f"reference camera '{reference}' has no motion energy (cameras: {sorted(energy)})")
    out = {}
    for name, signal in energy.items():
        if name == reference:
            continue
        offset, corr, ratio = estimate_offset(signal, energy[reference], config, fps)
        ok = corr >= config.min_correlation and ratio >= config.min_peak_ratio
        out[name] = OffsetEstimate(name, offset, corr, ratio, ok)
    return out
