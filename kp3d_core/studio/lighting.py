"""Room light over a clip: a slow drift, a lamp switched on or off, a window brightening (the sun coming out).

A :class:`LightSchedule` gives two per-frame levels, both pure functions of the frame index (so any slice of
a clip renders as it does in the whole clip):

- ``room(t)``: factor on the lamp-lit room and people (1 = as rendered): drift of a few percent, and a step
  with a short ramp when a lamp is switched;
- ``window(t)``: extra daylight through the windows, 0 = steady; the renderer adds ``window(t)`` times the
  room's window layer (``scene.render_background_layers``).

Example::

    sched = sample_light_schedule(np.random.default_rng(0), num_frames=250, has_windows=True)
    sched.room(np.arange(250)), sched.window(np.arange(250))      # (250,), (250,)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass(frozen=True)
class LightSchedule:
    """Room light levels over a clip (frames at the clip's rate).

    drift_amp: relative amplitude of the slow sinusoidal drift; drift_period: its period in frames.
    switch_frame: the frame a lamp is switched (None: never); switch_to: room level after it (before: 1);
    switch_ramp: frames the switch takes (a fluorescent tube's flicker-on is a few frames).
    window_start: frame the daylight starts to rise (None: steady); window_rise, window_hold, window_fall:
    frames; window_peak: extra daylight level at the top.
    """

    drift_amp: float = 0.0
    drift_period: float = 300.0
    drift_phase: float = 0.0
    switch_frame: int | None = None
    switch_to: float = 1.0
    switch_ramp: int = 3
    window_start: int | None = None
    window_rise: int = 30
    window_hold: int = 60
    window_fall: int = 60
    window_peak: float = 0.0

    def room(self, t) -> np.ndarray:
        """(...) room light factor at frame(s) t."""
        t = np.asarray(t, dtype=np.float64)
        level = 1.0 + self.drift_amp * np.sin(2 * np.pi * t / self.drift_period + self.drift_phase)
        if self.switch_frame is not None:
            w = _smoothstep((t - self.switch_frame) / max(self.switch_ramp, 1))
            level = level * (1.0 + (self.switch_to - 1.0) * w)
        return level

    def window(self, t) -> np.ndarray:
        """(...) extra daylight level at frame(s) t (>= 0)."""
        t = np.asarray(t, dtype=np.float64)
        if self.window_start is None:
            return np.zeros_like(t)
        up = _smoothstep((t - self.window_start) / max(self.window_rise, 1))
        down = _smoothstep((t - self.window_start - self.window_rise - self.window_hold) / max(self.window_fall, 1))
        return self.window_peak * up * (1.0 - 0.7 * down)      # settles at 30 % of the peak: clouds drift on

    def describe(self) -> dict:
        return {"drift_amp": round(self.drift_amp, 4), "switch_frame": self.switch_frame,
                "switch_to": round(self.switch_to, 3), "window_start": self.window_start,
                "window_peak": round(self.window_peak, 3)}


def sample_light_schedule(rng: np.random.Generator, num_frames: int, has_windows: bool) -> LightSchedule:
    """A clip's light: always a slow drift (2-8 %); in about a third of clips a lamp switched off (room light
    to 45-75 %) or on (1.3-1.8x) at a random frame; in about a third of the clips of a room
    with windows the daylight rises (to 0.5-1.5 extra) and settles."""
    n = max(int(num_frames), 2)
    drift = float(rng.uniform(0.02, 0.08))
    period = float(rng.uniform(150, 600))
    phase = float(rng.uniform(0, 2 * np.pi))
    switch_frame, switch_to = None, 1.0
    if rng.random() < 0.35:
        switch_frame = int(rng.integers(n // 5, max(n // 5 + 1, 4 * n // 5)))
        switch_to = float(rng.uniform(0.45, 0.75)) if rng.random() < 0.5 else float(rng.uniform(1.3, 1.8))
    window_start = None
    peak = 0.0
    rise, hold, fall = (int(rng.integers(15, 60)), int(rng.integers(20, 90)), int(rng.integers(30, 90)))
    if has_windows and rng.random() < 0.35:
        window_start = int(rng.integers(0, max(1, n // 2)))
        peak = float(rng.uniform(0.5, 1.5))
    return LightSchedule(drift, period, phase, switch_frame, switch_to, int(rng.integers(2, 6)), window_start,
                         rise, hold, fall, peak)
