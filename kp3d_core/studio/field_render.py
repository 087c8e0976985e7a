"""The studio renderer with what real rigs see besides the subject: bystanders, room light that changes over a
clip, and each camera's white balance, vignetting, defocus, auto-exposure, gain-dependent noise and
motion blur.

Per frame and view (8-bit levels, float32):

1. room = base * room(t)^GAMMA + window(t) * window layer (the lamp level scales the tone-mapped image by
   its power GAMMA; daylight adds its own layer: ``scene.render_background_layers``);
2. bystanders drawn into it with their depth (so the subject is hidden behind one where it should be),
   then the subject: rendered at 3 instants over the shutter and averaged when the clip has motion blur
   (the mask and the ground truth are the middle instant's, i.e. the frame's pose);
3. times white balance x vignetting x exposure gain; defocus blur; sensor noise of sigma noise_sigma x gain;
   rounded to uint8.

The exposure gain of a camera with auto-exposure follows the metered brightness of the empty room with a
lag (``camera_effects.auto_exposure_gains``). It meters the room, not the room with the people, so the gain
at frame t is a function of t alone and any slice of a clip renders as it does within the whole clip.

Extra ground truth per frame (gt.npz, stacked over frames): ``bystander_pixels`` (V,) int32 pixels showing a
bystander (never in the subject's mask), ``camera_gain`` (V,) float32 exposure gains, ``room_light`` and
``window_light`` scalars. ``backgrounds`` are the empty room as each camera sees it at frame 0 (its light,
white balance, vignetting, exposure and defocus; no noise, no compression).

Example::

    r = FieldRenderer(rig, scene, seed=5, effects=[CameraEffects()] * len(rig), light=LightSchedule(),
                      num_frames=250, bystanders=[Person(subject_b, joints_b)], track=joints3d, shutter=0.5)
    frame = r.render(joints3d[t], subject, t)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..camera import Camera
from ..rig import Rig
from .body import Primitives, Subject, body_primitives
from .camera_effects import CameraEffects, SessionEffects, auto_exposure_gains, vignette_map
from .lighting import LightSchedule
from .render import GAMMA, OCCLUSION_TOLERANCE_M, Frame, StudioRenderer, _to_u8, primitive_entry
from .scene import Scene, render_background_layers

NOISE_BANK_SIGMA = 8.0     # the int16 noise bank is drawn at this sigma and scaled per camera and frame


@dataclass
class Person:
    """Someone besides the subject: how they look and where their joints are, (T, 17, 3) metres world
    (frames past the end hold the last pose)."""

    subject: Subject
    joints3d: np.ndarray


class FieldRenderer(StudioRenderer):
    """See the module docstring.

    Args:
        rig, scene, seed: as :class:`StudioRenderer`.
        effects: one :class:`CameraEffects` per camera.
        light: the clip's room light.
        num_frames: frames of the clip (for the exposure's history; later frames hold the last gain).
        bystanders: people drawn but not in the ground truth.
        track: (T, 17, 3) the subject's joints over the clip, needed for motion blur (neighbouring frames).
        session: shutter (motion blur) of the clip; its JPEG quality is the dataset writer's business.
    """

    def __init__(self, rig: Rig, scene: Scene, seed: int, effects: list[CameraEffects], light: LightSchedule,
                 num_frames: int, bystanders: list[Person] = (), track: np.ndarray | None = None,
                 session: SessionEffects = SessionEffects()):
        if len(effects) != len(rig):
            raise ValueError(f"effects: expected one per camera ({len(rig)}), got {len(effects)}")
        if session.shutter > 0 and track is None:
            raise ValueError("track: needed for motion blur (session.shutter > 0)")
        self._window_u8: list[np.ndarray] = []
        super().__init__(rig, scene, seed=seed, noise_sigma=NOISE_BANK_SIGMA)
        self.effects = list(effects)
        self.light_schedule = light
        self.bystanders = list(bystanders)
        self.track = None if track is None else np.asarray(track, dtype=np.float64)
        self.session = session
        T = max(int(num_frames), 1)
        t = np.arange(T)
        self.room_light = light.room(t).astype(np.float64)           # (T,)
        self.window_light = light.window(t).astype(np.float64)       # (T,)
        self._base_f, self._window_f, self._static, self.gains = [], [], [], []
        for v, (cc, fx) in enumerate(zip(self._cams, self.effects)):
            W, H = cc.cam.size
            static = vignette_map(W, H, fx.vignette)[..., None] * np.asarray(fx.white_balance, np.float32)
            base = cc.bg.astype(np.float32)
            win = self._window_u8[v].astype(np.float32)
            self._base_f.append(base)
            self._window_f.append(win if win.any() else None)
            self._static.append(static.astype(np.float32))
            # Metering: mean level of the empty room as the sensor sees it before the gain.
            m_base, m_win = float((base * static).mean()), float((win * static).mean())
            metered = m_base * self.room_light ** GAMMA + m_win * self.window_light
            if fx.auto_exposure:
                g = auto_exposure_gains(metered, fx.ae_target, fx.ae_tau_frames)
            else:
                g = np.full(T, np.clip(fx.ae_target / max(metered[0], 1e-3) * fx.ae_bias, 0.35, 3.0))
            self.gains.append(g)

    def _room(self, v: int, cam: Camera, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base, window, depth = render_background_layers(self.scene, cam.center, rays)
        # The window layer goes through the same lens blur and tone curve as the base: kept as the 8-bit
        # difference it makes at its full level.
        b8 = _to_u8(cv2.GaussianBlur(base, (0, 0), 0.6)).astype(np.int16)
        w8 = _to_u8(cv2.GaussianBlur(np.clip(base + window, 0, 1), (0, 0), 0.6)).astype(np.int16)
        self._window_u8.append((w8 - b8).clip(0, 255).astype(np.uint8))
        return base, depth

    # ------------------------------------------------------------------------------ per clip
    def _level(self, series: np.ndarray, t: int) -> float:
        return float(series[min(max(t, 0), len(series) - 1)])

    def camera_gain(self, v: int, t: int) -> float:
        """Exposure gain of camera v at frame t."""
        return self._level(self.gains[v], t)

    @property
    def backgrounds(self) -> list[np.ndarray]:
        """Per camera the empty room at frame 0 as the camera records it, (H, W, 3) uint8 RGB, without noise."""
        return [self._finish(v, self._room_image(v, 0), 0, noise=False) for v in range(len(self._cams))]

    def _room_image(self, v: int, t: int) -> np.ndarray:
        img = self._base_f[v] * np.float32(self._level(self.room_light, t) ** GAMMA)
        if self._window_f[v] is not None:
            s = self._level(self.window_light, t)
            if s != 0.0:
                img += self._window_f[v] * np.float32(s)
        return img

    def _finish(self, v: int, img: np.ndarray, t: int, noise: bool = True) -> np.ndarray:
        """White balance, vignetting and exposure gain; defocus; gain-scaled sensor noise; uint8."""
        fx, cc = self.effects[v], self._cams[v]
        g = self.camera_gain(v, t)
        img = img * (self._static[v] * np.float32(g))
        if fx.defocus_px > 0:
            img = cv2.GaussianBlur(img, (0, 0), fx.defocus_px)
        if noise:
            W, H = cc.cam.size
            rng = np.random.default_rng([self.seed, 13, t, v])
            dy, dx = rng.integers(0, cc.noise.shape[0] - H + 1), rng.integers(0, cc.noise.shape[1] - W + 1)
            bank = cc.noise[dy:dy + H, dx:dx + W].astype(np.float32)
            img += bank * np.float32(fx.noise_sigma * g / NOISE_BANK_SIGMA)
        np.clip(img, 0.0, 255.0, out=img)
        return (img + 0.5).astype(np.uint8)

    # ------------------------------------------------------------------------------ per frame
    def _pose_at(self, t: float) -> np.ndarray:
        """(17, 3) the subject's joints at fractional frame t (linear between frames, clamped to the clip)."""
        T = len(self.track)
        t = min(max(t, 0.0), T - 1.0)
        i = min(int(np.floor(t)), T - 2) if T > 1 else 0
        w = t - i
        return self.track[i] if T == 1 else (1 - w) * self.track[i] + w * self.track[i + 1]

    def _occluded_by_others(self, v: int, joints: np.ndarray, others: list[Primitives]) -> np.ndarray:
        """(17,) bool: a bystander's surface lies in front of the joint along the camera's ray."""
        o = self._cams[v].origin
        diff = joints - o
        dist = np.linalg.norm(diff, axis=1)
        D = diff / dist[:, None]
        hidden = np.zeros(len(joints), dtype=bool)
        for prims in others:
            for i in range(prims.num):
                hidden |= primitive_entry(prims, i, o, D) < dist - OCCLUSION_TOLERANCE_M
        return hidden

    def render(self, joints: np.ndarray, subject: Subject, frame_index: int,
               views: list[int] | None = None) -> Frame:
        """Render one frame (arguments as :meth:`StudioRenderer.render`); adds the extras of the module docstring."""
        t = int(frame_index)
        joints = np.asarray(joints, dtype=np.float64)
        prims = body_primitives(joints, subject)
        others = [body_primitives(p.joints3d[min(t, len(p.joints3d) - 1)], p.subject) for p in self.bystanders]
        light_dir, power = self.light(t)
        room = self._level(self.room_light, t)
        V = len(self._cams)
        uv = np.zeros((V, len(joints), 2))
        in_frame = np.zeros((V, len(joints)), dtype=bool)
        visible = np.zeros((V, len(joints)), dtype=bool)
        for v in range(V):
            uv[v], in_frame[v], visible[v] = self.joint_visibility(v, joints, prims)
            if others:
                visible[v] &= ~self._occluded_by_others(v, joints, others)
        blur, ends = [], None
        if self.session.shutter > 0:
            half = 0.5 * self.session.shutter
            ends = (self._pose_at(t - half), self._pose_at(t + half))
            blur = [body_primitives(ends[0], subject), body_primitives(ends[1], subject)]
        images, masks = [], []
        bystander_px = np.zeros(V, dtype=np.int32)
        for v in (range(V) if views is None else views):
            img = self._room_image(v, t)
            depth = self._cams[v].bg_depth
            seen = np.zeros(depth.shape, dtype=bool)
            if others:
                depth = depth.copy()
                for p, person in zip(others, self.bystanders):
                    seen |= self.draw_body(v, img, depth, p, person.subject, light_dir, power, room, write_depth=True)
            # Blur only where the body moves a pixel or more over the shutter (most frames of a still pose).
            if blur and np.abs(self._cams[v].cam.project(ends[1]) - self._cams[v].cam.project(ends[0])).max() >= 1.0:
                acc = np.zeros_like(img)
                for pr in blur:
                    sub = img.copy()
                    self.draw_body(v, sub, depth, pr, subject, light_dir, power, room)
                    acc += sub
                mask = self.draw_body(v, img, depth, prims, subject, light_dir, power, room)
                img = (acc + img) * np.float32(1.0 / 3.0)
            else:
                mask = self.draw_body(v, img, depth, prims, subject, light_dir, power, room)
            bystander_px[v] = int((seen & ~mask).sum())
            images.append(self._finish(v, img, t))
            masks.append(mask)
        extras = {
            "bystander_pixels": bystander_px,
            "camera_gain": np.array([self.camera_gain(v, t) for v in range(V)], dtype=np.float32),
            "room_light": np.float32(room),
            "window_light": np.float32(self._level(self.window_light, t)),
        }
        return Frame(images, masks, uv, in_frame, visible, extras)
