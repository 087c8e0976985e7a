"""Ray-cast the studio subject into every camera of a rig, with the calibration's exact geometry.

Geometry matches the rig file exactly: each raw (distorted) pixel's ray is the direction of its
undistorted position (``Camera.undistort_pixels`` of the whole pixel grid, computed once per
camera), so the image is what the distorted camera sees; ground-truth 2D joints are
``Camera.project`` (= ``cv2.projectPoints``) of the 3D joints.

Speed: the room is static, so its image and depth are ray-cast once per camera and cached. Per frame
only the pixels inside each body primitive's projected bounding box are intersected (analytic
ray-capsule and ray-ellipsoid, NumPy float32), then a depth test against the room, Lambert shading
with a slowly moving light, a per-camera exposure gain and sensor noise from a pre-drawn bank.

Visibility rule (per joint and view): ``in_frame`` when the joint is in front of the camera, projects
inside the image and the pixel's own ray points at it (guards against distortion folding far-off
points into the image). ``visible`` when in frame and not occluded: along the exact ray from the
camera centre to the joint, no other body part's surface lies more than ``OCCLUSION_TOLERANCE_M``
in front of the point where the ray enters the joint's own parts (the primitives containing it,
``Primitives.joint_parts``: the two bones meeting there, the torso for hips/spine/pelvis/thorax), and
no room surface lies in front of the joint. So a joint hidden by another limb or the torso is
occluded; one seen through its own adjacent bones (an elbow behind its forearm pointing at the
camera) counts as visible, as annotators usually mark it.

:class:`~kp3d_core.studio.field_render.FieldRenderer` reuses ``draw_body`` (one body into an image, depth
tested against what is there) to add bystanders, changing light and other camera effects.

Example::

    renderer = StudioRenderer(rig, scene, seed=0)
    frame = renderer.render(joints3d[t], subject, t)   # frame.images[v] (H, W, 3) uint8 RGB
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..camera import Camera
from ..rig import Rig
from .body import (
    BLOTCHES,
    CHECKS,
    DIAGONAL,
    PART,
    PLAIN,
    STRIPES_ALONG,
    STRIPES_AROUND,
    Primitives,
    Subject,
    body_primitives,
)
from .scene import Scene, render_background, scene_depth

OCCLUSION_TOLERANCE_M = 0.02   # another surface this far in front of the joint's own surface occludes it
NOISE_MARGIN = 24              # the noise bank is larger than the image by this, for random offsets
GAMMA = 1.0 / 1.15             # mild tone curve from shading space to 8-bit


@dataclass
class Frame:
    """One rendered multi-view frame.

    images: V arrays (H, W, 3) uint8 RGB; masks: V arrays (H, W) bool (body pixels);
    joints2d: (V, 17, 2) float64 pixels as imaged (distortion applied);
    in_frame, visible: (V, 17) bool; extras: name -> array of this frame, written to gt.npz stacked over
    frames (empty for the plain renderer; the field renderer adds e.g. bystander pixel counts).
    """

    images: list[np.ndarray]
    masks: list[np.ndarray]
    joints2d: np.ndarray
    in_frame: np.ndarray
    visible: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)   # per-frame extra ground truth (gt.npz keys)


@dataclass
class _CameraCache:
    cam: Camera
    origin: np.ndarray          # (3,) camera centre, world, float64
    rays: np.ndarray            # (H, W, 3) float32 unit ray directions, world
    norm_lo: np.ndarray         # (2,) smallest undistorted normalised x, y of any pixel
    norm_hi: np.ndarray         # (2,) largest
    bg: np.ndarray              # (H, W, 3) uint8 RGB background (before gain and noise)
    bg_depth: np.ndarray        # (H, W) float32 ray distance to the room, metres
    noise: np.ndarray           # (H + NOISE_MARGIN, W + NOISE_MARGIN, 3) int16 sensor noise bank
    gain_phase: float


def pixel_rays(cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Rays of every raw pixel centre.

    Returns:
        rays (H, W, 3) float64 unit directions in the world; normalised (H, W, 2) undistorted
        image-plane coordinates x/z, y/z in the camera frame.
    """
    W, H = cam.size
    uu, vv = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    uv = np.stack([uu, vv], axis=-1)
    ideal = cam.undistort_pixels(uv)                      # (H, W, 2) ideal pinhole pixels, same K
    K = cam.K
    y = (ideal[..., 1] - K[1, 2]) / K[1, 1]
    x = (ideal[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    d_cam = np.stack([x, y, np.ones_like(x)], axis=-1)
    d_cam /= np.linalg.norm(d_cam, axis=-1, keepdims=True)
    return d_cam @ cam.R, np.stack([x, y], axis=-1)       # R^T d as row vectors


_TONE_LUT = (np.linspace(0.0, 1.0, 4096) ** GAMMA * 255.0 + 0.5).astype(np.uint8)


def _to_u8(rgb: np.ndarray) -> np.ndarray:
    """Shading-space colour in [0, 1] (values outside are clipped) -> 8-bit through the tone curve."""
    idx = np.clip(rgb * 4095.0, 0, 4095).astype(np.int32)
    return _TONE_LUT[idx]


# --------------------------------------------------------------------------- analytic intersection
def capsule_entry(o: np.ndarray, D: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Ray-capsule entry distance.

    Args:
        o: (3,) ray origin; D: (..., 3) unit directions; a, b: (3,) end points; r: radius (metres).
    Returns:
        (...) distance along each ray to the first capsule surface point in front of ``o``; inf if missed.
    """
    ba = (b - a).astype(D.dtype)
    oa = (o - a).astype(D.dtype)
    baba, baoa, oaoa = float(ba @ ba), float(ba @ oa), float(oa @ oa)
    bard = D @ ba
    rdoa = D @ oa
    r2 = r * r
    with np.errstate(invalid="ignore", divide="ignore"):
        k2 = baba - bard * bard
        k1 = baba * rdoa - baoa * bard
        k0 = baba * oaoa - baoa * baoa - r2 * baba
        t = (-k1 - np.sqrt(k1 * k1 - k2 * k0)) / k2
        y = baoa + t * bard
        t = np.where((y > 0) & (y < baba), t, np.nan)
        ta = -rdoa - np.sqrt(rdoa * rdoa - (oaoa - r2))
        rdob = rdoa - bard
        obob = oaoa - 2 * baoa + baba
        tb = -rdob - np.sqrt(rdob * rdob - (obob - r2))
    t = np.fmin(np.fmin(t, ta), tb)
    return np.where(t > 1e-4, t, np.inf)


def ellipsoid_entry(o: np.ndarray, D: np.ndarray, c: np.ndarray, R: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Ray-ellipsoid entry distance (centre c, axes = columns of R, semi-axes s); inf if missed."""
    M = (R / s[None, :]).astype(D.dtype)                  # world direction -> unit-sphere space
    op = ((o - c) @ R) / s
    Dp = D @ M
    A = np.einsum("...i,...i->...", Dp, Dp)
    B = Dp @ op.astype(D.dtype)
    C = float(op @ op) - 1.0
    with np.errstate(invalid="ignore"):
        t = (-B - np.sqrt(B * B - A * C)) / A
    return np.where(t > 1e-4, t, np.inf)


def primitive_entry(prims: Primitives, i: int, o: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Entry distance of rays D (..., 3) from o into primitive i (capsules first, then ellipsoids)."""
    C = prims.num_capsules
    if i < C:
        return capsule_entry(o, D, prims.cap_a[i], prims.cap_b[i], prims.cap_r[i])
    e = i - C
    return ellipsoid_entry(o, D, prims.ell_c[e], prims.ell_R[e], prims.ell_s[e])


# ----------------------------------------------------------------------------------- renderer
class StudioRenderer:
    """Renders a dressed skeleton into every camera of a rig (see the module docstring).

    Args:
        rig: the cameras (any size, any plumb_bob distortion).
        scene: the room; its background is cached per camera here.
        seed: seeds sensor noise, exposure and light variation (per-frame values depend only on
            (seed, frame index), so any slice of frames renders identically on its own).
        noise_sigma: sensor noise standard deviation, 8-bit levels.
        light_speed: radians per frame of the key light's azimuth drift.
    """

    def __init__(self, rig: Rig, scene: Scene, seed: int = 0, noise_sigma: float = 2.5, light_speed: float = 0.004):
        self.rig = rig
        self.scene = scene
        self.seed = int(seed)
        self.noise_sigma = float(noise_sigma)
        self.light_speed = float(light_speed)
        rng = np.random.default_rng([self.seed, 7])
        self.light_phase = rng.uniform(0, 2 * np.pi, 3)
        self._cams: list[_CameraCache] = []
        for v, cam in enumerate(rig.cameras):
            rays, norm = pixel_rays(cam)
            rgb, depth = self._room(v, cam, rays)
            rgb = cv2.GaussianBlur(rgb, (0, 0), 0.6)     # the lens's slight blur; also anti-aliases
            W, H = cam.size
            nrng = np.random.default_rng([self.seed, 11, v])
            noise = np.round(nrng.normal(0.0, self.noise_sigma, (H + NOISE_MARGIN, W + NOISE_MARGIN, 3)))
            self._cams.append(_CameraCache(
                cam, cam.center.copy(), rays.astype(np.float32),
                norm.reshape(-1, 2).min(axis=0), norm.reshape(-1, 2).max(axis=0),
                _to_u8(rgb), depth, noise.astype(np.int16), float(nrng.uniform(0, 2 * np.pi))))

    def _room(self, v: int, cam: Camera, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The room seen by camera v: rgb (H, W, 3) in shading space and depth (H, W) metres (a subclass may
        keep more of it, e.g. the window light as a layer of its own)."""
        return render_background(self.scene, cam.center, rays)

    @property
    def backgrounds(self) -> list[np.ndarray]:
        """Per camera the true static background (H, W, 3) uint8 RGB (no gain, no noise)."""
        return [c.bg for c in self._cams]

    # ------------------------------------------------------------------------------ lighting
    def light(self, frame_index: int) -> tuple[np.ndarray, float]:
        """Unit direction towards the key light and its intensity at a frame (slowly varying)."""
        f = float(frame_index)
        az = self.light_phase[0] + self.light_speed * f
        el = 0.75 + 0.3 * np.sin(self.light_phase[1] + 0.011 * f)
        power = 0.62 + 0.12 * np.sin(self.light_phase[2] + 0.017 * f)
        return np.array([np.cos(az) * np.cos(el), np.sin(az) * np.cos(el), np.sin(el)]), float(power)

    # ------------------------------------------------------------------------------ per frame
    def render(self, joints: np.ndarray, subject: Subject, frame_index: int,
               views: list[int] | None = None) -> Frame:
        """Render one frame.

        Args:
            joints: (17, 3) joint positions, metres, world; subject: the person's look.
            frame_index: selects the light, exposure and noise (deterministic per (seed, index)).
            views: camera indices to render (default all); ground truth is always for all views.
        """
        joints = np.asarray(joints, dtype=np.float64)
        prims = body_primitives(joints, subject)
        light_dir, power = self.light(frame_index)
        V = len(self._cams)
        uv = np.zeros((V, len(joints), 2))
        in_frame = np.zeros((V, len(joints)), dtype=bool)
        visible = np.zeros((V, len(joints)), dtype=bool)
        images, masks = [], []
        for v in range(V):
            uv[v], in_frame[v], visible[v] = self.joint_visibility(v, joints, prims)
        for v in (range(V) if views is None else views):
            img, mask = self._render_view(v, prims, subject, light_dir, power, frame_index)
            images.append(img)
            masks.append(mask)
        return Frame(images, masks, uv, in_frame, visible)

    def joint_visibility(self, v: int, joints: np.ndarray, prims: Primitives):
        """(17, 2) imaged pixels, (17,) in_frame, (17,) visible for view v (see the module docstring)."""
        cc = self._cams[v]
        cam = cc.cam
        uv = cam.project(joints)
        z = cam.world_to_camera(joints)[:, 2]
        W, H = cam.size
        inside = (z > 1e-3) & (uv[:, 0] >= -0.5) & (uv[:, 0] < W - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] < H - 0.5)
        diff = joints - cc.origin
        dist = np.linalg.norm(diff, axis=1)
        D = diff / dist[:, None]
        # The nearest pixel's ray must point at the joint (within 3 px): distortion can fold far-off points inside.
        px = np.clip(np.round(uv).astype(np.int64), [0, 0], [W - 1, H - 1])
        cosang = np.einsum("ij,ij->i", cc.rays[px[:, 1], px[:, 0]].astype(np.float64), D)
        in_frame = inside & (cosang > np.cos(3.0 / cam.K[0, 0]))
        t_all = np.stack([primitive_entry(prims, i, cc.origin, D) for i in range(prims.num)], axis=1)  # (17, P)
        first = t_all.min(axis=1)
        own = np.array([t_all[j, list(parts)].min() for j, parts in enumerate(prims.joint_parts)])
        t_room, _, _ = scene_depth(self.scene, cc.origin, D)
        occluded = (first < own - OCCLUSION_TOLERANCE_M) | (t_room < dist)
        return uv, in_frame, in_frame & ~occluded

    def _boxes(self, cc: _CameraCache, prims: Primitives) -> np.ndarray:
        """(P, 4) pixel boxes u0, v0, u1, v1 (exclusive) that contain each primitive's image."""
        cam = cc.cam
        W, H = cam.size
        centres = np.concatenate([prims.cap_a, prims.cap_b, prims.ell_c])
        radii = np.concatenate([prims.cap_r, prims.cap_r, prims.ell_s.max(axis=1)])
        pc = cam.world_to_camera(centres)
        X, Y, Z = pc[:, 0:1], pc[:, 1:2], pc[:, 2:3]
        r = radii[:, None]
        near = (Z[:, 0] - radii) < 0.05
        Zs = np.maximum(np.concatenate([Z - r, Z + r], axis=1), 1e-3)
        # Over the sphere's bounding box the ratio X/Z is extreme at the corners.
        xs = np.concatenate([(X - r) / Zs, (X + r) / Zs], axis=1)
        ys = np.concatenate([(Y - r) / Zs, (Y + r) / Zs], axis=1)
        lo = np.stack([xs.min(axis=1), ys.min(axis=1)], axis=1)
        hi = np.stack([xs.max(axis=1), ys.max(axis=1)], axis=1)
        C, E = prims.num_capsules, len(prims.ell_s)
        plo = np.concatenate([np.minimum(lo[:C], lo[C:2 * C]), lo[2 * C:]])
        phi = np.concatenate([np.maximum(hi[:C], hi[C:2 * C]), hi[2 * C:]])
        pnear = np.concatenate([near[:C] | near[C:2 * C], near[2 * C:]])
        # Only directions some pixel sees matter; clipping also keeps the distortion polynomial monotonic.
        plo = np.clip(plo, cc.norm_lo, cc.norm_hi)
        phi = np.clip(phi, cc.norm_lo, cc.norm_hi)
        s = np.linspace(0.0, 1.0, 5)
        # Rectangle boundary samples in normalised coordinates -> distorted pixels (cv2.projectPoints).
        fx = np.concatenate([s, s, np.zeros(5), np.ones(5)])
        fy = np.concatenate([np.zeros(5), np.ones(5), s, s])
        bx = plo[:, 0:1] + (phi[:, 0:1] - plo[:, 0:1]) * fx
        by = plo[:, 1:2] + (phi[:, 1:2] - plo[:, 1:2]) * fy
        pts = np.stack([bx, by, np.ones_like(bx)], axis=-1).reshape(-1, 3)
        pix, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), cam.K, cam.dist)
        pix = pix.reshape(len(plo), -1, 2)
        u0 = np.floor(pix[..., 0].min(axis=1)) - 2
        v0 = np.floor(pix[..., 1].min(axis=1)) - 2
        u1 = np.ceil(pix[..., 0].max(axis=1)) + 3
        v1 = np.ceil(pix[..., 1].max(axis=1)) + 3
        boxes = np.stack([u0, v0, u1, v1], axis=1)
        boxes[pnear] = [0, 0, W, H]
        boxes = np.clip(boxes, 0, [W, H, W, H]).astype(np.int64)
        return boxes

    def _render_view(self, v: int, prims: Primitives, subject: Subject, light_dir: np.ndarray, power: float,
                     frame_index: int) -> tuple[np.ndarray, np.ndarray]:
        cc = self._cams[v]
        W, H = cc.cam.size
        img = cc.bg.copy()
        mask = self.draw_body(v, img, cc.bg_depth, prims, subject, light_dir, power)
        # Exposure drift per camera, then sensor noise at a per-frame random offset into the bank.
        gain = 1.0 + 0.04 * np.sin(cc.gain_phase + 0.05 * frame_index)
        img = cv2.convertScaleAbs(img, alpha=gain)
        rng = np.random.default_rng([self.seed, 13, frame_index, v])
        dy, dx = rng.integers(0, NOISE_MARGIN, 2)
        img = cv2.add(img, cc.noise[dy:dy + H, dx:dx + W], dtype=cv2.CV_8U)
        return img, mask

    def draw_body(self, v: int, img: np.ndarray, depth: np.ndarray, prims: Primitives, subject: Subject,
                  light_dir: np.ndarray, power: float, colour_scale: float = 1.0,
                  write_depth: bool = False) -> np.ndarray:
        """Ray-cast one body into view v's image in place, behind anything nearer than ``depth``.

        Args:
            img: (H, W, 3) uint8 or float32 image (8-bit levels), drawn into.
            depth: (H, W) float32 ray distance of what is already there (the room, other people), metres;
                updated in place with the body's depth when ``write_depth`` (so a body drawn later is
                hidden behind this one), else only read.
            colour_scale: factor on the shading-space colour (room light level; 1 = as lit).
        Returns:
            (H, W) bool mask of the pixels where this body is the nearest surface.
        """
        cc = self._cams[v]
        W, H = cc.cam.size
        o = cc.origin
        boxes = self._boxes(cc, prims)
        nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        mask = np.zeros((H, W), dtype=bool)
        if np.any(nonempty):
            bu0, bv0 = boxes[nonempty, 0].min(), boxes[nonempty, 1].min()
            bu1, bv1 = boxes[nonempty, 2].max(), boxes[nonempty, 3].max()
            crop_depth = depth[bv0:bv1, bu0:bu1].copy()
            pid = np.full(crop_depth.shape, -1, dtype=np.int16)
            for i in np.flatnonzero(nonempty):
                u0, v0_, u1, v1 = boxes[i]
                D = cc.rays[v0_:v1, u0:u1]
                t = primitive_entry(prims, int(i), o, D)
                sub = crop_depth[v0_ - bv0:v1 - bv0, u0 - bu0:u1 - bu0]
                closer = t < sub
                sub[closer] = t[closer]
                pid[v0_ - bv0:v1 - bv0, u0 - bu0:u1 - bu0][closer] = i
            hit = pid >= 0
            if np.any(hit):
                crop = img[bv0:bv1, bu0:bu1]
                rows, cols, colour = self._shade(cc, prims, subject, pid, crop_depth, (bu0, bv0), light_dir, power)
                if colour_scale != 1.0:
                    colour *= np.float32(colour_scale)
                crop[rows, cols] = _to_u8(colour)
                # Anti-alias the silhouette: blend a blurred copy into a one-pixel band around it.
                band = cv2.dilate(hit.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~cv2.erode(
                    hit.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                blurred = cv2.GaussianBlur(crop, (3, 3), 0.7)
                crop[band] = blurred[band]
                mask[bv0:bv1, bu0:bu1] = hit
                if write_depth:
                    depth[bv0:bv1, bu0:bu1] = crop_depth
        return mask

    def _shade(self, cc: _CameraCache, prims: Primitives, subject: Subject, pid: np.ndarray, depth: np.ndarray,
               offset: tuple[int, int], light_dir: np.ndarray, power: float):
        """Shaded colours of the hit pixels (pid >= 0).

        Returns:
            rows, cols (N,) pixel indices into ``pid``; colour (N, 3) float32 in shading space.
        """
        rows, cols = np.nonzero(pid >= 0)
        ids = pid[rows, cols]
        order = np.argsort(ids, kind="stable")          # contiguous runs per primitive
        rows, cols, ids = rows[order], cols[order], ids[order]
        D = cc.rays[rows + offset[1], cols + offset[0]]
        P = cc.origin.astype(np.float32) + D * depth[rows, cols, None]
        N = len(P)
        normal = np.empty((N, 3), dtype=np.float32)
        albedo = np.empty((N, 3), dtype=np.float32)
        bounds = np.searchsorted(ids, np.arange(prims.num + 1))
        C = prims.num_capsules
        for i in range(prims.num):
            s0, s1 = bounds[i], bounds[i + 1]
            if s0 == s1:
                continue
            q = P[s0:s1]
            hair = None
            if i < C:
                a, b, r = prims.cap_a[i], prims.cap_b[i], prims.cap_r[i]
                ba = b - a
                L = max(float(np.linalg.norm(ba)), 1e-9)
                axis = (ba / L).astype(np.float32)
                rel = q - a.astype(np.float32)
                y = np.clip(rel @ axis, 0.0, L)
                radial = rel - y[:, None] * axis
                n = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
                e1 = prims.cap_ref[i].astype(np.float32)
                e2 = np.cross(axis, e1)
                along, around = y, np.arctan2(n @ e2, n @ e1) * r
                part = int(prims.cap_part[i])
            else:
                e = i - C
                c, R, sa = prims.ell_c[e], prims.ell_R[e], prims.ell_s[e]
                loc = (q - c.astype(np.float32)) @ (R / sa[None, :]).astype(np.float32)   # on the unit sphere
                n = (loc / sa.astype(np.float32)) @ R.T.astype(np.float32)
                n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
                along = loc[:, 2] * sa[2]
                around = np.arctan2(loc[:, 1], loc[:, 0]) * (0.5 * (sa[0] + sa[1]))
                part = int(prims.ell_part[e])
                if part == PART["head"] and subject.scalp_hair:
                    hair = (loc[:, 2] > 0.45) | ((loc[:, 1] < -0.25) & (loc[:, 2] > -0.45))
            m = subject.material(part)
            pv = _pattern(m.pattern, along, around, m.period)
            base, accent = np.asarray(m.base, np.float32), np.asarray(m.accent, np.float32)
            col = base + (accent - base) * pv[:, None]
            col *= (1.0 + m.grain * _grain(along * 90.0, around * 90.0 + 37 * part))[:, None]
            if hair is not None and hair.any():
                g = 1.0 + 0.4 * _grain(along[hair] * 150.0, around[hair] * 25.0)
                col[hair] = np.asarray(subject.hair, np.float32)[None, :] * g[:, None]
            normal[s0:s1] = n
            albedo[s0:s1] = col
        # Normals facing away at grazing angles (numerical noise) are flipped toward the camera.
        cosv = np.einsum("ij,ij->i", normal, D)
        normal[cosv > 0] *= -1
        diffuse = np.clip(normal @ light_dir.astype(np.float32), 0.0, None) * power
        ambient = 0.32 + 0.12 * normal[:, 2]
        rim = 0.08 * (1.0 - np.abs(cosv)) ** 2
        return rows, cols, albedo * (ambient + diffuse + rim)[:, None]


def _make_grain(size: int = 256, seed: int = 1234) -> np.ndarray:
    """A tileable smooth noise texture (size, size) float32, zero mean, values about in [-0.5, 0.5]."""
    g = np.random.default_rng(seed).normal(size=(size, size)).astype(np.float32)
    big = cv2.GaussianBlur(np.tile(g, (3, 3)), (0, 0), 1.5)   # blur the 3x3 tiling: seamless wrap
    g = big[size:2 * size, size:2 * size]
    return np.clip(g / (3.0 * g.std()), -0.5, 0.5)


_GRAIN = _make_grain()


def _grain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Look up the grain texture at texel coordinates (nearest texel, wrapping)."""
    return _GRAIN[v.astype(np.int64) & 255, u.astype(np.int64) & 255]


def _pattern(kind: int, along: np.ndarray, around: np.ndarray, period: float) -> np.ndarray:
    """Accent weight in [0, 1] of a material pattern at surface coordinates (metres)."""
    if kind == PLAIN:
        return np.zeros_like(along)
    w = 2 * np.pi / period
    if kind == STRIPES_ALONG:
        s = np.sin(along * w)
    elif kind == STRIPES_AROUND:
        s = np.sin(around * w)
    elif kind == CHECKS:
        s = np.sin(along * w) * np.sin(around * w)
    elif kind == DIAGONAL:
        s = np.sin((along + around) * (w / np.sqrt(2.0)))
    elif kind == BLOTCHES:
        # Camouflage-like blobs about one period across, from the tileable grain texture.
        return np.clip(0.5 + 8.0 * _grain(along * (4.0 / period) + 91.0, around * (4.0 / period) + 17.0), 0.0, 1.0)
    else:
        raise ValueError(f"unknown material pattern {kind}")
    return np.clip(0.5 + 2.0 * s, 0.0, 1.0)
