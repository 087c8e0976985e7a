"""What a real camera does to the light that reaches it: white balance, vignetting, defocus, auto-exposure
with lag, sensor noise amplified by gain; per clip a shutter time (motion blur) and a JPEG quality.

Pure helpers (``auto_exposure_gains``, ``vignette_map``) plus the per-camera and per-session settings the
field renderer applies (kp3d_core/studio/field_render.py), drawn by ``sample_camera_effects`` and
``sample_session_effects``.

Example::

    gains = auto_exposure_gains(metered_levels, target=118.0, tau_frames=12.0)    # (T,) follows with lag
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

GAIN_RANGE = (0.35, 3.0)   # what an auto-exposure can do (exposure time x analog gain), relative


@dataclass(frozen=True)
class CameraEffects:
    """One camera's lens and sensor settings (fixed over a clip).

    white_balance: (R, G, B) gains (a colour temperature error and a tint).
    vignette: relative darkening at the image corners (0 none, 0.35 strong).
    defocus_px: Gaussian blur sigma in pixels (0 sharp).
    noise_sigma: sensor noise standard deviation at gain 1, 8-bit levels (grows with the gain).
    auto_exposure: the gain follows the image brightness towards ``ae_target`` with a lag of
        ``ae_tau_frames`` (else it stays where it was set for the first frame, times ``ae_bias``).
    ae_target: the mean 8-bit level the exposure aims at.
    """

    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    vignette: float = 0.0
    defocus_px: float = 0.0
    noise_sigma: float = 2.5
    auto_exposure: bool = True
    ae_target: float = 115.0
    ae_tau_frames: float = 10.0
    ae_bias: float = 1.0

    def describe(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v] if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class SessionEffects:
    """Settings shared by a clip's cameras: shutter as a fraction of the frame period (0: no motion blur;
    the body is rendered at 3 instants over it and averaged), and the JPEG quality of the written images."""

    shutter: float = 0.0
    jpeg_quality: int = 95


def auto_exposure_gains(metered: np.ndarray, target: float, tau_frames: float,
                        gain_range: tuple[float, float] = GAIN_RANGE) -> np.ndarray:
    """Per-frame gain of an auto-exposure that follows the metered brightness with a first-order lag.

    Args:
        metered: (T,) mean 8-bit level of each frame before the gain.
        target: the level it aims at; tau_frames: time constant of the lag, frames (0: no lag).
    Returns:
        (T,) gains; frame 0 starts converged, each later frame moves a fraction 1 - exp(-1/tau) of the way
        to target / metered (clipped to ``gain_range``).
    """
    m = np.asarray(metered, dtype=np.float64).reshape(-1)
    if m.size == 0:
        raise ValueError("metered: expected at least one frame")
    want = np.clip(target / np.maximum(m, 1e-3), *gain_range)
    a = 1.0 if tau_frames <= 0 else 1.0 - np.exp(-1.0 / tau_frames)
    g = np.empty_like(want)
    g[0] = want[0]
    for t in range(1, len(want)):
        g[t] = g[t - 1] + a * (want[t] - g[t - 1])
    return g


def vignette_map(width: int, height: int, strength: float) -> np.ndarray:
    """(H, W) float32 factor: 1 at the centre, 1 - strength at the corners (cos^4-like falloff)."""
    x = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (0.5 * width)
    y = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (0.5 * height)
    r2 = (x[None, :] ** 2 + y[:, None] ** 2) / 2.0          # 1 at the corners
    return (1.0 - strength * r2 ** 1.5).astype(np.float32)


def sample_camera_effects(rng: np.random.Generator, hfov_deg: float) -> CameraEffects:
    """One camera: white balance off by up to +-15 % red/blue and +-4 % green; vignetting up to 0.35 (more with
    wider lenses); a quarter of cameras defocused (sigma 0.7-2 px); noise 1-6 levels; auto-exposure on three
    cameras in four (target 90-140, lag 3-30 frames), else a fixed exposure set 0.7-1.4x off."""
    temp = rng.uniform(-1, 1)
    wb = (1.0 + 0.15 * temp, 1.0 + rng.uniform(-0.04, 0.04), 1.0 - 0.15 * temp)
    wide = float(np.clip((hfov_deg - 45.0) / 55.0, 0.0, 1.0))
    return CameraEffects(
        white_balance=tuple(float(v) for v in wb),
        vignette=float(rng.uniform(0.0, 0.15 + 0.2 * wide)),
        defocus_px=float(rng.uniform(0.7, 2.0)) if rng.random() < 0.25 else 0.0,
        noise_sigma=float(rng.uniform(1.0, 6.0)),
        auto_exposure=bool(rng.random() < 0.75),
        ae_target=float(rng.uniform(90, 140)),
        ae_tau_frames=float(rng.uniform(3, 30)),
        ae_bias=float(rng.uniform(0.7, 1.4)),
    )


def sample_session_effects(rng: np.random.Generator) -> SessionEffects:
    """Motion blur in 40 % of clips (shutter 0.3-1.0 of the frame period); JPEG quality 90-95 (30 %),
    70-90 (40 %) or 35-70 (30 %)."""
    shutter = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.4 else 0.0
    r = rng.random()
    quality = int(rng.integers(90, 96) if r < 0.3 else rng.integers(70, 90) if r < 0.7 else rng.integers(35, 70))
    return SessionEffects(shutter, quality)
