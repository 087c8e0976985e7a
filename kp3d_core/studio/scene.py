"""The studio room around the subject: textured floor, walls, ceiling and furniture-like boxes.

The room is static, so each camera's background is ray-cast once (``render_background``) and cached
by the renderer. World frame: z up, floor at z = 0, room centred on the origin.

Cluttered rooms (kp3d_core/studio/room.py) also use floor mats, windows (bright wall panels whose
daylight falls on the room: ``render_background_layers`` returns it as a separate layer, so a window
can brighten over a clip), concrete or rubber floors and brick walls; rooms of ``sample_scene`` have
none of these.

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
    """A rectangle on a wall (poster, door, window): wall index 0..3, span along the wall and in z.

    kind: PANEL_PAINTED (poster, door, whiteboard: an albedo) or PANEL_WINDOW (glass showing daylight:
    ``colour`` is its emitted brightness, above 1 = overexposed, and it lights the room).
    """

    wall: int
    s0: float
    s1: float
    z0: float
    z1: float
    colour: tuple[float, float, float]
    kind: int = 0


PANEL_PAINTED, PANEL_WINDOW = 0, 1
FLOOR_PLANKS, FLOOR_TILES, FLOOR_CARPET, FLOOR_CONCRETE, FLOOR_RUBBER = 0, 1, 2, 3, 4
WALL_PAINTED, WALL_BRICK = 0, 1


@dataclass(frozen=True)
class Mat:
    """A flat rectangle on the floor (a rug, a gym or yoga mat): corners x0, y0, x1, y1 in metres, colour,
    pattern 0 plain, 1 stripes across x, 2 puzzle tiles of ``period`` metres."""

    x0: float
    y0: float
    x1: float
    y1: float
    colour: tuple[float, float, float]
    pattern: int = 0
    period: float = 0.5


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
    mats: tuple[Mat, ...] = ()            # drawn over the floor, in order
    wall_kind: int = WALL_PAINTED         # WALL_PAINTED or WALL_BRICK


def _rgb(rng, lo, hi) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def segment_hits_box(p0: np.ndarray, p1: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
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
        if any(segment_hits_box(c, tgt + off, lo, hi) for c in cc for off in
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
    elif scene.floor_kind == 2:    # carpet: fine noise plus large blotches
        fine = _hash(np.floor(x * 150), np.floor(y * 150), s)
        v = (0.8 + 0.25 * value_noise(x * 1.3, y * 1.3, s)) * (0.85 + 0.3 * fine)
    elif scene.floor_kind == FLOOR_CONCRETE:   # stains, pores and saw-cut joints every `period` metres
        stains = 0.75 + 0.4 * value_noise(x * 0.7, y * 0.7, s) * value_noise(x * 3.1, y * 2.3, s + 5)
        pores = 0.93 + 0.1 * _hash(np.floor(x * 300), np.floor(y * 300), s)
        tx, ty = x / p, y / p
        joint = ((tx - np.floor(tx)) < 0.004 * 3.0 / p) | ((ty - np.floor(ty)) < 0.004 * 3.0 / p)
        v = np.where(joint, 0.55, stains * pores)
    elif scene.floor_kind == FLOOR_RUBBER:     # gym rubber: dark with bright speckles, square tiles
        speck = _hash(np.floor(x * 220), np.floor(y * 220), s) > 0.93
        tx, ty = x / p, y / p
        seam = ((tx - np.floor(tx)) < 0.008) | ((ty - np.floor(ty)) < 0.008)
        v = np.where(speck, 2.2, 0.9 + 0.15 * value_noise(x * 2, y * 2, s)) * np.where(seam, 0.6, 1.0)
    else:
        raise ValueError(f"unknown floor kind {scene.floor_kind}")
    out = base[None, :] * v[:, None]
    for m in scene.mats:
        inside = (x >= m.x0) & (x <= m.x1) & (y >= m.y0) & (y <= m.y1)
        if not np.any(inside):
            continue
        u, w = x[inside] - m.x0, y[inside] - m.y0
        edge = np.minimum.reduce([u, w, m.x1 - x[inside], m.y1 - y[inside]]) < 0.02
        if m.pattern == 1:
            tone = np.where(((u / m.period) % 1.0) < 0.5, 1.0, 0.7)
        elif m.pattern == 2:
            ix, iy = np.floor(u / m.period), np.floor(w / m.period)
            tone = np.where((ix + iy) % 2 == 0, 1.0, 0.8)
        else:
            tone = np.ones(len(u))
        tone = tone * (0.92 + 0.16 * value_noise(u * 9, w * 9, s + 40))
        col = np.asarray(m.colour)[None, :] * np.where(edge, 0.75, tone)[:, None]
        out[inside] = col
    return out


def _wall_albedo(scene: Scene, wall: int, s_along: np.ndarray, z: np.ndarray) -> np.ndarray:
    base = np.asarray(scene.wall_colours[wall])
    v = 0.92 + 0.12 * value_noise(s_along * 2.0, z * 2.0, scene.seed + 10 + wall)
    v *= 0.97 + 0.06 * _hash(np.floor(s_along * 200), np.floor(z * 200), scene.seed)
    if scene.wall_kind == WALL_BRICK:   # running bond, 0.25 x 0.075 m bricks with mortar, per-brick tone
        row = np.floor(z / 0.075)
        col = np.floor(s_along / 0.25 + 0.5 * (row % 2))
        mortar = ((z / 0.075 - row) < 0.14) | ((s_along / 0.25 + 0.5 * (row % 2) - col) < 0.04)
        v = v * np.where(mortar, 1.35, 0.75 + 0.35 * _hash(row, col, scene.seed + 3))
    out = base[None, :] * v[:, None]
    out[z < 0.1] = 0.35 * base + 0.1
    for p in scene.panels:
        if p.wall != wall or p.kind != PANEL_PAINTED:
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


def _nearest_box(o: np.ndarray, d: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab test of rays against boxes, keeping the nearest box per ray.

    Args:
        o: (3,) origin; d: (N, 3) unit directions; lo, hi: (B, 3) box corners.
    Returns:
        t (N,) entry distance into the nearest box (inf where none is hit), k (N,) its index (the lowest of
        equal ones; 0 where none), axis (N,) of its entry face in 0..2 (where hit).
    """
    N = len(d)
    t_best = np.full(N, np.inf)
    k_best = np.zeros(N, dtype=np.int64)
    a_best = np.zeros(N, dtype=np.int64)
    # Only rays inside the cone of a box's bounding sphere can hit it: a cluttered room has many small boxes,
    # each seen by few pixels. The cone test runs in float32 for 16 boxes at a time; its margin (1e-4 on the
    # cosine) keeps every ray that could touch the box, and the exact test below decides.
    oc = 0.5 * (lo + hi) - o                                   # (B, 3)
    dist = np.linalg.norm(oc, axis=1)
    radius = 0.5 * np.linalg.norm(hi - lo, axis=1)
    outside = dist > radius * 1.001                            # origin outside the sphere: cull by the cone
    axis = (oc / np.maximum(dist, 1e-12)[:, None]).astype(np.float32)
    cos_cone = np.sqrt(np.clip(1.0 - (radius / np.maximum(dist, 1e-12)) ** 2, 0.0, 1.0)) - 1e-4
    d32 = d.astype(np.float32)
    cands: list[np.ndarray | None] = []
    for g in range(0, len(lo), 16):
        cos = axis[g:g + 16] @ d32.T                           # (<=16, N)
        for j in range(cos.shape[0]):
            cands.append(np.flatnonzero(cos[j] >= cos_cone[g + j]) if outside[g + j] else None)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_all = 1.0 / d
        for b in range(len(lo)):          # per box and axis on (N,) arrays: faster than (N, B, 3) reductions
            rows = cands[b]
            if rows is not None and len(rows) == 0:
                continue
            inv = inv_all if rows is None else inv_all[rows]
            near, far = [], []
            for k in range(3):
                t0, t1 = (lo[b, k] - o[k]) * inv[:, k], (hi[b, k] - o[k]) * inv[:, k]
                near.append(np.fmin(t0, t1))   # fmin/fmax skip the NaN of 0 * inf on a slab's plane
                far.append(np.fmax(t0, t1))
            tn = np.fmax(np.fmax(near[0], near[1]), near[2])
            tf = np.fmin(np.fmin(far[0], far[1]), far[2])
            tb = np.where((tf >= tn) & (tn > 1e-6), tn, np.inf)
            better = tb < (t_best if rows is None else t_best[rows])   # strict: the lowest index wins ties
            idx = np.flatnonzero(better) if rows is None else rows[better]
            t_best[idx] = tb[better]
            k_best[idx] = b
            a_best[idx] = np.where(near[0][better] >= np.fmax(near[1][better], near[2][better]), 0,
                                   np.where(near[1][better] >= near[2][better], 1, 2))
    return t_best, k_best, a_best


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
        tk, k, ax = _nearest_box(o, d, lo, hi)
        closer = tk < t
        t = np.where(closer, tk, t)
        surf = np.where(closer, 6 + k, surf)
        face = np.where(closer, ax, face)
    return t, surf, face


def render_background(scene: Scene, origin: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the room for one camera.

    Args:
        origin: (3,) camera centre, metres, world. rays: (H, W, 3) unit ray directions, world.
    Returns:
        rgb (H, W, 3) float32 linear-ish colour in [0, 1]; depth (H, W) float32 ray distance, metres.
        Windows shine at their steady level (``render_background_layers`` gives their extra light apart).
    """
    rgb, _, depth = render_background_layers(scene, origin, rays)
    return rgb, depth


def render_background_layers(scene: Scene, origin: np.ndarray,
                             rays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast the room for one camera, with the windows' daylight as a second layer.

    Args:
        origin: (3,) camera centre, metres, world. rays: (H, W, 3) unit ray directions, world.
    Returns:
        base (H, W, 3) float32 colour in [0, 1] with windows at their steady level; window (H, W, 3)
        float32, the extra light when every window shines at twice its steady level (zeros when the room
        has no window: base + s * window is the room with the daylight scaled by 1 + s); depth (H, W)
        float32 ray distance, metres.
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
    albedo = rgb
    rgb = rgb * (lam * ao * falloff)[:, None]
    window = np.zeros((H, W, 3), dtype=np.float32)
    if any(pn.kind == PANEL_WINDOW for pn in scene.panels):
        glass, daylight = _window_light(scene, p, normal, surf)
        # Daylight through the windows: half of it is steady (in the base), the layer adds as much again.
        rgb = rgb + 0.5 * albedo * daylight
        window = (albedo * daylight * 0.5)
        has = glass[0] >= 0
        rgb[has] = glass[1][has]
        window[has] = 0.4 * glass[1][has]
        window = np.clip(rgb + window, 0, 1) - np.clip(rgb, 0, 1)
        window = window.reshape(H, W, 3).astype(np.float32)
    return (np.clip(rgb, 0, 1).reshape(H, W, 3).astype(np.float32), window,
            t.reshape(H, W).astype(np.float32))


def _wall_point(scene: Scene, wall: int, s_along: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """World point (3,) of wall coordinates (along, z) and the wall's inward unit normal (3,)."""
    hx, hy = scene.half_x, scene.half_y
    point = {0: (hx, s_along), 1: (-hx, -s_along), 2: (-s_along, hy), 3: (s_along, -hy)}[wall]
    normal = {0: (-1.0, 0.0), 1: (1.0, 0.0), 2: (0.0, -1.0), 3: (0.0, 1.0)}[wall]
    return np.array([point[0], point[1], z]), np.array([normal[0], normal[1], 0.0])


def _window_light(scene: Scene, p: np.ndarray, normal: np.ndarray,
                  surf: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Windows seen directly and the daylight they throw on the room's surfaces.

    Args:
        p: (N, 3) surface points; normal: (N, 3) their normals; surf: (N,) surface ids (scene_depth).
    Returns:
        ((N,) index of the window seen at each point or -1, (N, 3) its glass colour with frame bars),
        daylight (N, 3): irradiance from every window (an area light at its centre, cosine at both ends).
    """
    N = len(p)
    which = np.full(N, -1)
    glass = np.zeros((N, 3))
    daylight = np.zeros((N, 3))
    for i, pn in enumerate(scene.panels):
        if pn.kind != PANEL_WINDOW:
            continue
        axis, sign = ((0, 1), (0, -1), (1, 1), (1, -1))[pn.wall]
        m = surf == pn.wall
        along = p[m, 1 - axis] * (sign if axis == 0 else -sign)
        z = p[m, 2]
        inside = (along >= pn.s0) & (along <= pn.s1) & (z >= pn.z0) & (z <= pn.z1)
        idx = np.flatnonzero(m)[inside]
        u = (along[inside] - pn.s0) / max(pn.s1 - pn.s0, 1e-6)
        w = (z[inside] - pn.z0) / max(pn.z1 - pn.z0, 1e-6)
        panes = max(int(round((pn.s1 - pn.s0) / 0.6)), 1)
        bar = (u < 0.03) | (u > 0.97) | (w < 0.04) | (w > 0.96) | (np.abs((u * panes) % 1.0 - 0.5) > 0.485)
        sky = np.asarray(pn.colour)[None, :] * (0.85 + 0.25 * w[:, None]) * (
            0.8 + 0.3 * value_noise(u * 6, w * 4, scene.seed + 50 + i))[:, None]
        glass[idx] = np.where(bar[:, None], 0.8, sky)
        which[idx] = i
        centre, nw = _wall_point(scene, pn.wall, 0.5 * (pn.s0 + pn.s1), 0.5 * (pn.z0 + pn.z1))
        area = (pn.s1 - pn.s0) * (pn.z1 - pn.z0)
        d = centre[None, :] - p
        dist2 = np.einsum("ij,ij->i", d, d)
        lhat = d / np.sqrt(np.maximum(dist2, 1e-9))[:, None]
        cos_surface = np.clip(np.einsum("ij,ij->i", normal, lhat), 0, None)
        cos_window = np.clip(-lhat @ nw, 0, None)
        strength = 0.35 * area * cos_surface * cos_window / (dist2 + 1.0)
        daylight += strength[:, None] * np.minimum(np.asarray(pn.colour), 1.0)[None, :]
    return (which, glass), daylight
