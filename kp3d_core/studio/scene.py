"""The studio room around the subject: textured floor, walls, ceiling and furniture-like boxes.

The room is static, so each camera's background is ray-cast once (``render_background``) and cached
by the renderer. World frame: z up, floor at z = 0, room centred on the origin.

Example::

    scene = sample_scene(np.random.default_rng(0), camera_centres)
    rgb, depth = render_background(scene, cam.center, rays_world)   # (H, W, 3) in [0, 1], (H, W) m
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box (furniture): corners in metres, RGB colour in [0, 1], shelf-line spacing."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    colour: tuple[float, float, float]
    shelves: float = 0.0   # > 0: dark horizontal lines every `shelves` metres (a bookcase look)


@dataclass(frozen=True)
class Panel:
    """A rectangle on a wall (poster, door, window): wall index 0..3, span along the wall and in z."""

    wall: int
    s0: float
    s1: float
    z0: float
    z1: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class Scene:
    """Room half-sizes and height (m), surface colours and textures, furniture and wall panels."""

    half_x: float
    half_y: float
    height: float
    floor_kind: int                       # 0 planks, 1 tiles, 2 carpet
    floor_colour: tuple[float, float, float]
    floor_period: float                   # plank width or tile size, metres
    wall_colours: tuple[tuple[float, float, float], ...]   # walls +x, -x, +y, -y
    ceiling_colour: tuple[float, float, float]
    boxes: tuple[Box, ...]
    panels: tuple[Panel, ...]
    light_dir: tuple[float, float, float]  # unit vector towards the main light
    seed: int


def _rgb(rng, lo, hi) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def _segment_hits_box(p0: np.ndarray, p1: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    d = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = (lo - p0) / d, (hi - p0) / d
    tmin = np.nanmax(np.minimum(t0, t1))
    tmax = np.nanmin(np.maximum(t0, t1))
    return bool(tmax >= max(tmin, 0.0) and tmin <= 1.0)


def sample_scene(rng: np.random.Generator, camera_centres: np.ndarray, target=(0.0, 0.0, 1.0),
                 volume_radius: float = 2.0) -> Scene:
    """A random room that contains every camera and keeps furniture off the cameras' view of the volume.

    Args:
        camera_centres: (V, 3) camera centres, metres, world.
        target: the capture volume centre; volume_radius: its horizontal radius, metres.
    """
    cc = np.asarray(camera_centres, dtype=np.float64).reshape(-1, 3)
    reach = max(float(np.max(np.abs(cc[:, :2]))) if len(cc) else 0.0, volume_radius)
    half_x = reach + rng.uniform(1.8, 3.0)
    half_y = reach + rng.uniform(1.8, 3.0)
    height = max(float(np.max(cc[:, 2])) + 0.8 if len(cc) else 0.0, rng.uniform(2.8, 3.4))
    kind = int(rng.integers(3))
    floor_colour = [_rgb(rng, [0.45, 0.30, 0.18], [0.70, 0.50, 0.32]),
                    _rgb(rng, [0.55, 0.55, 0.55], [0.85, 0.85, 0.85]),
                    _rgb(rng, [0.20, 0.20, 0.25], [0.50, 0.45, 0.50])][kind]
    walls = tuple(_rgb(rng, [0.55, 0.55, 0.50], [0.92, 0.90, 0.88]) for _ in range(4))
    boxes: list[Box] = []
    tgt = np.asarray(target, dtype=np.float64)
    tries = 0
    while len(boxes) < 10 and tries < 200:
        tries += 1
        wall = int(rng.integers(4))
        w, d, h = rng.uniform(0.5, 2.0), rng.uniform(0.4, 0.9), rng.choice([0.45, 0.75, 0.9, 1.4, 1.9])
        along = rng.uniform(-1, 1)
        if wall < 2:
            sx = 1 if wall == 0 else -1
            xc, yc = sx * (half_x - d / 2 - 0.02), along * (half_y - w / 2)
            lo, hi = np.array([xc - d / 2, yc - w / 2, 0.0]), np.array([xc + d / 2, yc + w / 2, h])
        else:
            sy = 1 if wall == 2 else -1
            xc, yc = along * (half_x - w / 2), sy * (half_y - d / 2 - 0.02)
            lo, hi = np.array([xc - w / 2, yc - d / 2, 0.0]), np.array([xc + w / 2, yc + d / 2, h])
        near = np.hypot(np.clip(0, lo[0], hi[0]), np.clip(0, lo[1], hi[1]))
        if near < volume_radius + 1.0:
            continue
        if any(np.all(c >= lo - 0.3) and np.all(c <= hi + 0.3) for c in cc):
            continue
        if any(_segment_hits_box(c, tgt + off, lo, hi) for c in cc for off in
               (np.zeros(3), np.array([0, 0, -1.0]), np.array([0, 0, 1.0]))):
            continue
        if any(np.all(lo < np.array(b.hi)) and np.all(hi > np.array(b.lo)) for b in boxes):
            continue
        shelves = float(rng.uniform(0.3, 0.4)) if h > 1.3 and rng.random() < 0.6 else 0.0
        boxes.append(Box(tuple(lo.tolist()), tuple(hi.tolist()), _rgb(rng, [0.15, 0.12, 0.10], [0.8, 0.7, 0.6]),
                         shelves))
    panels = []
    for _ in range(int(rng.integers(4, 9))):
        wall = int(rng.integers(4))
        span = half_y if wall < 2 else half_x
        w = rng.uniform(0.5, 1.6)
        s0 = rng.uniform(-span + 0.2, span - 0.2 - w)
        if rng.random() < 0.3:   # a door
            z0, z1, col = 0.0, 2.05, _rgb(rng, [0.3, 0.2, 0.1], [0.7, 0.6, 0.5])
            w = 0.9
        else:                    # a poster or picture
            z0 = rng.uniform(0.9, 1.6)
            z1 = z0 + rng.uniform(0.4, 0.9)
            col = _rgb(rng, [0.05, 0.05, 0.05], [0.95, 0.95, 0.95])
        panels.append(Panel(wall, float(s0), float(s0 + w), float(z0), float(min(z1, height - 0.1)), col))
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.2)
    light = (float(np.cos(az) * np.cos(el)), float(np.sin(az) * np.cos(el)), float(np.sin(el)))
    return Scene(float(half_x), float(half_y), float(height), kind, floor_colour, float(rng.uniform(0.15, 0.6)),
                 walls, _rgb(rng, [0.8, 0.8, 0.8], [0.95, 0.95, 0.95]), tuple(boxes), tuple(panels), light,
                 int(rng.integers(2**31)))


# ------------------------------------------------------------------------------------- textures
def _hash(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point."""
    h = np.sin(ix * 12.9898 + iy * 78.233 + seed * 0.001 * 37.719) * 43758.5453
    return h - np.floor(h)


def value_noise(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Smooth noise in [0, 1) on the plane (bilinear interpolation of lattice hashes, smoothstep)."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy, seed), _hash(ix + 1, iy, seed)
    c, d = _hash(ix, iy + 1, seed), _hash(ix + 1, iy + 1, seed)
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def _floor_albedo(scene: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    base = np.asarray(scene.floor_colour)
    p, s = scene.floor_period, scene.seed
    if scene.floor_kind == 0:      # wooden planks along x, staggered joints, elongated grain
        row = np.floor(y / p)
        off = _hash(row, row * 0.0 + 3.0, s) * 2.0
        col = np.floor(x / 1.2 + off)
        tone = 0.8 + 0.4 * _hash(row, col, s)
        grain = 0.85 + 0.3 * value_noise(x * 1.5, y * 40.0, s + 1)
        seam = ((y / p - row) < 0.04) | ((x / 1.2 + off - col) < 0.006)
        v = tone * grain * np.where(seam, 0.55, 1.0)
    elif scene.floor_kind == 1:    # tiles with grout, a little mottling
        tx, ty = x / p, y / p
        grout = ((tx - np.floor(tx)) < 0.03) | ((ty - np.floor(ty)) < 0.03)
        v = (0.9 + 0.15 * _hash(np.floor(tx), np.floor(ty), s)) * (0.9 + 0.2 * value_noise(x * 6, y * 6, s))
        v = np.where(grout, 0.6, v)
    else:                          # carpet: fine noise plus large blotches
        fine = _hash(np.floor(x * 150), np.floor(y * 150), s)
        v = (0.8 + 0.25 * value_noise(x * 1.3, y * 1.3, s)) * (0.85 + 0.3 * fine)
    return base[None, :] * v[:, None]


def _wall_albedo(scene: Scene, wall: int, s_along: np.ndarray, z: np.ndarray) -> np.ndarray:
    base = np.asarray(scene.wall_colours[wall])
    v = 0.92 + 0.12 * value_noise(s_along * 2.0, z * 2.0, scene.seed + 10 + wall)
    v *= 0.97 + 0.06 * _hash(np.floor(s_along * 200), np.floor(z * 200), scene.seed)
    out = base[None, :] * v[:, None]
    out[z < 0.1] = 0.35 * base + 0.1
    for p in scene.panels:
        if p.wall != wall:
            continue
        inside = (s_along >= p.s0) & (s_along <= p.s1) & (z >= p.z0) & (z <= p.z1)
        if not np.any(inside):
            continue
        u = (s_along[inside] - p.s0) / max(p.s1 - p.s0, 1e-6)
        w = (z[inside] - p.z0) / max(p.z1 - p.z0, 1e-6)
        border = (u < 0.04) | (u > 0.96) | (w < 0.04) | (w > 0.96)
        pattern = 0.7 + 0.5 * value_noise(u * 5, w * 5, scene.seed + 20 + int(p.s0 * 10))
        col = np.asarray(p.colour)[None, :] * pattern[:, None]
        col[border] = 0.15
        out[inside] = col
    return out


def _box_entry(o: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test of rays against boxes.

    Args:
        o: (3,) origin; d: (N, 3) unit directions; lo, hi: (B, 3) box corners.
    Returns:
        entry t (N, B) (inf where missed or behind) and the entry face axis (N, B) in 0..2.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        T = np.full((len(d), len(lo)), np.inf)
        A = np.zeros((len(d), len(lo)), dtype=np.int64)
        for b in range(len(lo)):          # per box and axis on (N,) arrays: faster than (N, B, 3) reductions
            near, far = [], []
            for k in range(3):
                t0, t1 = (lo[b, k] - o[k]) * inv[:, k], (hi[b, k] - o[k]) * inv[:, k]
                near.append(np.fmin(t0, t1))   # fmin/fmax skip the NaN of 0 * inf on a slab's plane
                far.append(np.fmax(t0, t1))
            tn = np.fmax(np.fmax(near[0], near[1]), near[2])
            tf = np.fmin(np.fmin(far[0], far[1]), far[2])
            hit = (tf >= tn) & (tn > 1e-6)
            T[:, b] = np.where(hit, tn, np.inf)
            A[:, b] = np.where(near[0] >= np.fmax(near[1], near[2]), 0, np.where(near[1] >= near[2], 1, 2))
    return T, A


def scene_depth(scene: Scene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray distance to the first room surface.

    Args:
        origin: (3,) ray origin inside the room, metres; dirs: (N, 3) unit directions.
    Returns:
        t (N,) metres; surface id (N,): 0..3 walls (+x, -x, +y, -y), 4 floor, 5 ceiling, 6 + i box i;
        box face axis (N,) (0, 1, 2; meaningful for boxes).
    """
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(dirs, dtype=np.float64)
    hx, hy, H = scene.half_x, scene.half_y, scene.height
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.where(d[:, 0] > 0, (hx - o[0]) / d[:, 0], (-hx - o[0]) / d[:, 0])
        ty = np.where(d[:, 1] > 0, (hy - o[1]) / d[:, 1], (-hy - o[1]) / d[:, 1])
        tz = np.where(d[:, 2] > 0, (H - o[2]) / d[:, 2], (0.0 - o[2]) / d[:, 2])
    T = np.nan_to_num(np.stack([tx, ty, tz], axis=1), nan=np.inf, posinf=np.inf, neginf=np.inf)
    T[T < 0] = np.inf
    k = np.argmin(T, axis=1)
    t = T[np.arange(len(d)), k]
    surf = np.where(k == 0, np.where(d[:, 0] > 0, 0, 1), np.where(k == 1, np.where(d[:, 1] > 0, 2, 3),
                                                                  np.where(d[:, 2] > 0, 5, 4)))
    face = np.zeros(len(d), dtype=np.int64)
    if scene.boxes:
        lo = np.array([b.lo for b in scene.boxes])
        hi = np.array([b.hi for b in scene.boxes])
        tb, ax = _box_entry(o, d, lo, hi)
        k = np.argmin(tb, axis=1)
        rows = np.arange(len(d))
        tk = tb[rows, k]
        closer = tk < t
        t = np.where(closer, tk, t)
        surf = np.where(closer, 6 + k, surf)
        face = np.where(closer, ax[rows, k], face)
    return t, surf, face


def render_background(scene: Scene, origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the room for one camera.

    Args:
        origin: (3,) camera centre, metres, world. rays: (H, W, 3) unit ray directions, world.
    Returns:
        rgb (H, W, 3) float32 linear-ish colour in [0, 1]; depth (H, W) float32 ray distance, metres.
    """
    H, W, _ = rays.shape
    d = rays.reshape(-1, 3).astype(np.float64)
    o = np.asarray(origin, dtype=np.float64)
    t, surf, face = scene_depth(scene, o, d)
    p = o + d * t[:, None]
    rgb = np.zeros((len(d), 3))
    normal = np.zeros((len(d), 3))
    L = np.asarray(scene.light_dir)

    m = surf == 4
    rgb[m] = _floor_albedo(scene, p[m, 0], p[m, 1])
    normal[m] = [0, 0, 1]
    m = surf == 5
    rgb[m] = np.asarray(scene.ceiling_colour) * (0.95 + 0.05 * value_noise(p[m, 0], p[m, 1], scene.seed))[:, None]
    normal[m] = [0, 0, -1]
    for wall, (axis, sign) in enumerate(((0, 1), (0, -1), (1, 1), (1, -1))):
        m = surf == wall
        along = p[m, 1 - axis] * (sign if axis == 0 else -sign)
        rgb[m] = _wall_albedo(scene, wall, along, p[m, 2])
        n = np.zeros(3)
        n[axis] = -sign
        normal[m] = n
    for i, b in enumerate(scene.boxes):
        m = surf == 6 + i
        if not np.any(m):
            continue
        q = p[m]
        ax = face[m]
        lo, hi = np.asarray(b.lo), np.asarray(b.hi)
        n = np.zeros((len(q), 3))
        centre = 0.5 * (lo + hi)
        n[np.arange(len(q)), ax] = np.sign(q[np.arange(len(q)), ax] - centre[ax])
        grain = 0.9 + 0.2 * value_noise(q[:, 0] * 3 + q[:, 2] * 7, q[:, 1] * 3 + q[:, 2] * 7, scene.seed + 30 + i)
        col = np.asarray(b.colour)[None, :] * grain[:, None]
        edge = np.min(np.stack([q - lo, hi - q], 0), axis=0)
        edge[np.arange(len(q)), ax] = np.inf
        col[np.min(edge, axis=1) < 0.015] *= 0.6
        if b.shelves > 0:
            rel = (q[:, 2] % b.shelves) / b.shelves
            col[(rel < 0.06) & (ax != 2)] *= 0.35
        rgb[m] = col
        normal[m] = n
    # Shading: a soft overhead light plus the scene's key light, darker into the corners and far away.
    lam = 0.55 + 0.35 * np.clip(normal @ L, 0, 1) + 0.1 * normal[:, 2]
    # Ambient occlusion: darker near room edges (the second-smallest distance to a room plane).
    dists = np.sort(np.stack([scene.half_x - np.abs(p[:, 0]), scene.half_y - np.abs(p[:, 1]),
                              np.minimum(p[:, 2], scene.height - p[:, 2])], axis=1), axis=1)
    ao = 1.0 - 0.3 * np.exp(-np.maximum(dists[:, 1], 0) / 0.3)
    falloff = 0.8 + 0.2 * np.exp(-(p[:, 0] ** 2 + p[:, 1] ** 2) / 40.0)
    rgb = rgb * (lam * ao * falloff)[:, None]
    return np.clip(rgb, 0, 1).reshape(H, W, 3).astype(np.float32), t.reshape(H, W).astype(np.float32)
