"""Cluttered rooms as real labs are: furniture, equipment, mats, windows, and objects in the cameras' views,
some of them hiding the subject's feet or legs from a camera or two.

``sample_field_room(rng, style, camera_centres, keep_out)`` returns a :class:`~kp3d_core.studio.scene.Scene`
(the renderer needs nothing else) and a short description for the manifest. Furniture is built from
axis-aligned boxes (tables with legs, chairs, sofas, shelves, racks, light stands, benches, crates, ...),
placed anywhere in the room (not only along the walls) with these rules, all in world metres:

- nothing stands inside a keep-out disc (the subject's footprint over the clip, each bystander's);
- nothing within 0.4 m of a camera;
- no box cuts the line from any camera to the subject's hips or head (at 1.0 and 1.6 m above each keep-out
  centre): the subject's torso stays in every view. Lower objects (up to 0.8 m) may hide legs and feet;
  ``occluders`` of them are placed on purpose between a camera and the subject.

Room kinds: ``lab``, ``living``, ``gym``, ``studio`` (studio-field) and ``warehouse`` (concrete floor, brick
walls, high ceiling: held out for studio-field-new).

Example::

    scene, info = sample_field_room(rng, FIELD, camera_centres, keep_out=[(0.0, 0.0, 0.8)])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import (
    FLOOR_CARPET,
    FLOOR_CONCRETE,
    FLOOR_PLANKS,
    FLOOR_RUBBER,
    FLOOR_TILES,
    PANEL_PAINTED,
    PANEL_WINDOW,
    WALL_BRICK,
    WALL_PAINTED,
    Box,
    Mat,
    Panel,
    Scene,
    segment_hits_box,
)

ROOM_KINDS = ("lab", "living", "gym", "studio", "warehouse")


@dataclass(frozen=True)
class RoomStyle:
    """Ranges of the room generator."""

    kinds: tuple[str, ...]                # room kinds drawn from (equally likely)
    furniture: tuple[float, float]        # pieces of furniture or equipment per square metre of floor
    occluders: tuple[int, int]            # low objects placed between a camera and the subject
    windows: tuple[int, int]              # windows (inclusive; a warehouse has at least 2)
    mats: tuple[int, int]                 # floor mats and rugs
    wall_margin_m: tuple[float, float]    # free floor behind the outermost camera


FIELD = RoomStyle(kinds=("lab", "living", "gym", "studio"), furniture=(0.12, 0.25), occluders=(0, 2),
                  windows=(0, 3), mats=(0, 3), wall_margin_m=(0.3, 2.0))
NEW = RoomStyle(kinds=("warehouse",), furniture=(0.10, 0.18), occluders=(0, 2), windows=(2, 4), mats=(0, 1),
                wall_margin_m=(0.8, 3.0))
MAX_FURNITURE = 40        # pieces; each box costs background render time

_WOOD = ([0.45, 0.30, 0.17], [0.72, 0.55, 0.36])
_WHITE = ([0.78, 0.78, 0.76], [0.93, 0.93, 0.91])
_DARK = ([0.06, 0.06, 0.07], [0.22, 0.22, 0.24])
_METAL = ([0.45, 0.46, 0.48], [0.70, 0.71, 0.73])
_BRIGHT = ([0.10, 0.10, 0.10], [0.95, 0.85, 0.80])


def _rgb(rng, lo_hi) -> tuple[float, float, float]:
    lo, hi = lo_hi
    return tuple(float(v) for v in rng.uniform(lo, hi, 3))


def _bright(rng) -> tuple[float, float, float]:
    """A saturated plastic/fabric colour (mats, plyo boxes, balls, bins)."""
    h = rng.uniform(0, 6)
    i, f = int(h) % 6, h - int(h)
    v, s = rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.9)
    p, q, u = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return tuple(float(x) for x in [(v, u, p), (q, v, p), (p, v, u), (p, q, v), (u, p, v), (v, p, q)][i])


# ------------------------------------------------------------------------------------------ furniture
# A piece is a list of (lo (3,), hi (3,), colour, shelves) in its own frame: x across its width, y its depth,
# z up, origin on the floor at its centre.
def _legs(w, d, h, t, colour):
    return [((sx * (w / 2 - t), sy * (d / 2 - t), 0.0), t, h, colour) for sx in (-1, 1) for sy in (-1, 1)]


def _piece(rng, kind: str) -> tuple[str, list]:
    parts = []

    def box(lo, hi, colour, shelves=0.0):
        parts.append((np.array(lo, float), np.array(hi, float), colour, shelves))

    def leg(c, t, h, colour):
        box((c[0] - t / 2, c[1] - t / 2, 0.0), (c[0] + t / 2, c[1] + t / 2, h), colour)

    if kind == "table":
        w, d, h = rng.uniform(0.8, 1.8), rng.uniform(0.6, 0.9), rng.uniform(0.72, 0.76)
        top = _rgb(rng, _WOOD if rng.random() < 0.5 else _WHITE)
        box((-w / 2, -d / 2, h - 0.03), (w / 2, d / 2, h), top)
        for c, t, hh, col in _legs(w, d, h - 0.03, 0.05, _rgb(rng, _METAL)):
            leg(c, t, hh, col)
        if rng.random() < 0.5:   # a monitor or a box of equipment on it
            mw = rng.uniform(0.4, 0.6)
            box((-mw / 2, d / 2 - 0.15, h), (mw / 2, d / 2 - 0.1, h + rng.uniform(0.3, 0.4)), _rgb(rng, _DARK))
    elif kind == "chair":
        s, h = rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.48)
        col = _rgb(rng, _DARK if rng.random() < 0.5 else _BRIGHT)
        box((-s / 2, -s / 2, h - 0.05), (s / 2, s / 2, h), col)
        box((-s / 2, s / 2 - 0.05, h), (s / 2, s / 2, h + rng.uniform(0.35, 0.5)), col)
        for c, t, hh, lc in _legs(s, s, h - 0.05, 0.035, _rgb(rng, _METAL)):
            leg(c, t, hh, lc)
    elif kind == "stool":
        s, h = rng.uniform(0.3, 0.4), rng.uniform(0.45, 0.75)
        box((-s / 2, -s / 2, h - 0.04), (s / 2, s / 2, h), _rgb(rng, _WOOD))
        leg((0, 0), 0.05, h - 0.04, _rgb(rng, _METAL))
        box((-s / 2, -0.02, 0.0), (s / 2, 0.02, 0.03), _rgb(rng, _METAL))
    elif kind == "shelf":
        w, d, h = rng.uniform(0.6, 1.5), rng.uniform(0.3, 0.45), rng.uniform(1.2, 2.1)
        box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, h), _rgb(rng, _WOOD if rng.random() < 0.6 else _WHITE),
            float(rng.uniform(0.3, 0.4)))
    elif kind == "cabinet":
        w, d, h = rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.7, 1.2)
        box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, h), _rgb(rng, _WHITE if rng.random() < 0.5 else _METAL))
    elif kind == "rack":
        w, d, h = rng.uniform(0.5, 0.7), rng.uniform(0.5, 0.8), rng.uniform(1.0, 1.9)
        box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, h), _rgb(rng, _DARK), float(rng.uniform(0.08, 0.15)))
    elif kind == "sofa":
        w, d = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
        col = _rgb(rng, _BRIGHT)
        box((-w / 2, -d / 2, 0.0), (w / 2, d / 2, 0.42), col)
        box((-w / 2, d / 2 - 0.2, 0.42), (w / 2, d / 2, rng.uniform(0.8, 0.9)), col)
        for sx in (-1, 1):
            box((sx * w / 2 - 0.1 - sx * 0.1, -d / 2, 0.42), (sx * w / 2 + 0.1 - sx * 0.1, d / 2, 0.62), col)
    elif kind == "light_stand":
        h = rng.uniform(1.5, 2.3)
        leg((0, 0), 0.035, h, _rgb(rng, _DARK))
        box((-0.18, -0.14, h), (0.18, 0.14, h + 0.28), _rgb(rng, _DARK if rng.random() < 0.7 else _METAL))
        box((-0.4, -0.02, 0.0), (0.4, 0.02, 0.04), _rgb(rng, _DARK))
        box((-0.02, -0.4, 0.0), (0.02, 0.4, 0.04), _rgb(rng, _DARK))
    elif kind == "tripod_camera":   # someone else's camera on a tripod
        h = rng.uniform(1.0, 1.8)
        leg((0, 0), 0.03, h, _rgb(rng, _DARK))
        box((-0.06, -0.1, h), (0.06, 0.1, h + 0.1), _rgb(rng, _DARK))
        box((-0.35, -0.015, 0.0), (0.35, 0.015, 0.03), _rgb(rng, _DARK))
    elif kind == "crates":
        z = 0.0
        for _ in range(int(rng.integers(1, 4))):
            s = rng.uniform(0.3, 0.6)
            off = rng.uniform(-0.05, 0.05, 2)
            hh = rng.uniform(0.25, 0.45)
            box((off[0] - s / 2, off[1] - s / 2, z), (off[0] + s / 2, off[1] + s / 2, z + hh),
                _rgb(rng, _WOOD) if rng.random() < 0.5 else _bright(rng))
            z += hh
    elif kind == "bench":
        w, h = rng.uniform(1.1, 1.6), rng.uniform(0.42, 0.5)
        box((-w / 2, -0.17, h - 0.06), (w / 2, 0.17, h), _rgb(rng, _DARK if rng.random() < 0.5 else _WOOD))
        for sx in (-1, 1):
            box((sx * (w / 2 - 0.1) - 0.03, -0.15, 0.0), (sx * (w / 2 - 0.1) + 0.03, 0.15, h - 0.06),
                _rgb(rng, _METAL))
    elif kind == "plyo_box":
        s, h = rng.uniform(0.5, 0.75), rng.uniform(0.3, 0.75)
        box((-s / 2, -s * 0.4, 0.0), (s / 2, s * 0.4, h), _bright(rng) if rng.random() < 0.5 else _rgb(rng, _WOOD))
    elif kind == "whiteboard":
        w = rng.uniform(1.2, 1.8)
        box((-w / 2, -0.02, 0.75), (w / 2, 0.02, 1.8), _rgb(rng, _WHITE))
        for sx in (-1, 1):
            leg((sx * w / 2, 0), 0.04, 1.85, _rgb(rng, _METAL))
            box((sx * w / 2 - 0.02, -0.3, 0.0), (sx * w / 2 + 0.02, 0.3, 0.04), _rgb(rng, _METAL))
    elif kind == "bin":
        s = rng.uniform(0.28, 0.4)
        box((-s / 2, -s / 2, 0.0), (s / 2, s / 2, rng.uniform(0.4, 0.7)), _bright(rng))
    elif kind == "pallet":
        box((-0.6, -0.4, 0.0), (0.6, 0.4, 0.14), _rgb(rng, _WOOD))
        if rng.random() < 0.6:
            box((-0.55, -0.35, 0.14), (0.55, 0.35, 0.14 + rng.uniform(0.3, 1.2)), _rgb(rng, _WOOD), 0.0)
    elif kind == "pallet_rack":
        w, h = rng.uniform(1.8, 2.8), rng.uniform(2.2, 3.2)
        blue = rng.random() < 0.5        # racking is painted blue or orange
        box((-w / 2, -0.5, 0.0), (w / 2, 0.5, h),
            _rgb(rng, ([0.10, 0.20, 0.45], [0.20, 0.30, 0.60]) if blue else ([0.75, 0.35, 0.08], [0.90, 0.50, 0.15])),
            float(rng.uniform(0.8, 1.1)))
    else:
        raise ValueError(f"unknown furniture kind '{kind}'")
    return kind, parts


_FURNITURE = {
    "lab": ("table", "table", "chair", "chair", "shelf", "cabinet", "rack", "light_stand", "tripod_camera",
            "whiteboard", "bin", "crates", "stool"),
    "living": ("sofa", "table", "chair", "chair", "shelf", "shelf", "cabinet", "bin", "stool", "light_stand"),
    "gym": ("bench", "bench", "plyo_box", "plyo_box", "rack", "crates", "shelf", "bin", "stool", "cabinet"),
    "studio": ("light_stand", "light_stand", "light_stand", "tripod_camera", "crates", "stool", "chair", "table",
               "rack", "cabinet"),
    "warehouse": ("pallet", "pallet", "pallet_rack", "crates", "crates", "table", "bin", "rack", "stool",
                  "light_stand"),
}
_LOW = ("crates", "stool", "bench", "plyo_box", "bin", "chair", "cabinet")   # occluder candidates (<= ~0.9 m)


def _place(parts, x, y, quarter: int) -> list[Box]:
    """Boxes of a piece turned by quarter * 90 deg about z and moved to (x, y)."""
    out = []
    for lo, hi, colour, shelves in parts:
        if quarter % 2:
            lo, hi = np.array([lo[1], lo[0], lo[2]]), np.array([hi[1], hi[0], hi[2]])
        if quarter >= 2:
            lo, hi = np.array([-hi[0], -hi[1], lo[2]]), np.array([-lo[0], -lo[1], hi[2]])
        off = np.array([x, y, 0.0])
        out.append(Box(tuple((lo + off).tolist()), tuple((hi + off).tolist()), colour, shelves))
    return out


def _footprint(boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    lo = np.min([b.lo for b in boxes], axis=0)
    hi = np.max([b.hi for b in boxes], axis=0)
    return lo, hi


def _rect_disc_distance(lo, hi, x, y) -> float:
    return float(np.hypot(np.clip(x, lo[0], hi[0]) - x, np.clip(y, lo[1], hi[1]) - y))




class _Layout:
    """Placement bookkeeping: the room bounds, what is occupied, and the lines of sight to keep clear."""

    def __init__(self, half_x, half_y, cams, keep_out, sight_targets):
        self.half_x, self.half_y = half_x, half_y
        self.cams, self.keep_out, self.sight = cams, keep_out, sight_targets
        self.rects: list[tuple[np.ndarray, np.ndarray]] = []
        self.boxes: list[Box] = []

    def fits(self, boxes: list[Box], clear_sight: bool = True) -> bool:
        lo, hi = _footprint(boxes)
        if lo[0] < -self.half_x + 0.03 or hi[0] > self.half_x - 0.03 or lo[1] < -self.half_y + 0.03 \
                or hi[1] > self.half_y - 0.03:
            return False
        if any(_rect_disc_distance(lo, hi, x, y) < r for x, y, r in self.keep_out):
            return False
        if any(_rect_disc_distance(lo, hi, c[0], c[1]) < 0.4 for c in self.cams):
            return False
        if any(np.all(lo[:2] < h[:2] + 0.05) and np.all(hi[:2] > l[:2] - 0.05) for l, h in self.rects):
            return False
        if clear_sight:
            for b in boxes:
                blo, bhi = np.asarray(b.lo), np.asarray(b.hi)
                if any(segment_hits_box(c, t, blo, bhi) for c in self.cams for t in self.sight):
                    return False
        return True

    def add(self, boxes: list[Box]) -> None:
        self.rects.append(_footprint(boxes))
        self.boxes.extend(boxes)


def sample_field_room(rng: np.random.Generator, style: RoomStyle, camera_centres: np.ndarray,
                      keep_out: list[tuple[float, float, float]], platform: Box | None = None,
                      inside: np.ndarray | None = None) -> tuple[Scene, dict]:
    """A cluttered room around a rig (see the module docstring).

    Args:
        camera_centres: (V, 3) metres, world.
        keep_out: discs (x, y, radius) in metres where nothing may stand; the first is the subject's.
        platform: a box the subject stands on (added as is).
        inside: (N, 2) more points (x, y) the room must contain (e.g. bystanders' paths), metres.
    Returns:
        (scene, info) with info = {"kind", "furniture": [names], "occluders", "windows", "mats"}.
    """
    cams = np.asarray(camera_centres, dtype=np.float64).reshape(-1, 3)
    kind = str(rng.choice(style.kinds))
    pts = [cams[:, :2]] + ([np.asarray(inside, dtype=np.float64).reshape(-1, 2)] if inside is not None else [])
    pts = np.concatenate(pts + [np.array([[x + sx * r, y + sy * r] for x, y, r in keep_out
                                          for sx in (-1, 1) for sy in (-1, 1)])])
    # Rooms are not centred on the rig: each wall gets its own margin.
    m = rng.uniform(*style.wall_margin_m, 4)
    half_x = float(max(np.abs(pts[:, 0]).max() + max(m[0], m[1]), 2.5))
    half_y = float(max(np.abs(pts[:, 1]).max() + max(m[2], m[3]), 2.5))
    high = kind == "warehouse"
    height = float(max(cams[:, 2].max() + 0.4, rng.uniform(4.0, 5.5) if high else rng.uniform(2.7, 3.4)))

    floor_kind = {"lab": (FLOOR_TILES, FLOOR_CARPET), "living": (FLOOR_PLANKS, FLOOR_CARPET),
                  "gym": (FLOOR_RUBBER, FLOOR_PLANKS), "studio": (FLOOR_CARPET, FLOOR_PLANKS, FLOOR_RUBBER),
                  "warehouse": (FLOOR_CONCRETE,)}[kind]
    fk = int(rng.choice(floor_kind))
    floor_colour = {FLOOR_PLANKS: ([0.45, 0.30, 0.18], [0.70, 0.50, 0.32]),
                    FLOOR_TILES: ([0.55, 0.55, 0.55], [0.85, 0.85, 0.85]),
                    FLOOR_CARPET: ([0.15, 0.15, 0.18], [0.55, 0.45, 0.50]),
                    FLOOR_CONCRETE: ([0.50, 0.50, 0.48], [0.68, 0.66, 0.62]),
                    FLOOR_RUBBER: ([0.08, 0.08, 0.09], [0.22, 0.22, 0.25])}[fk]
    floor_rgb = _rgb(rng, floor_colour)
    if fk == FLOOR_CARPET:        # carpets are greys with a tint (blue, brown, green, red), rarely saturated
        floor_rgb = tuple(float(v) for v in np.clip(np.mean(floor_rgb) + rng.uniform(-0.07, 0.07, 3), 0.05, 0.9))
    floor_period = float(rng.uniform(3.0, 4.0) if fk == FLOOR_CONCRETE else rng.uniform(0.15, 0.6))
    if kind == "studio" and rng.random() < 0.5:      # black or grey studio walls
        wall_range = ([0.08, 0.08, 0.08], [0.35, 0.35, 0.36])
    elif kind == "living":
        wall_range = ([0.45, 0.40, 0.30], [0.95, 0.90, 0.80])
    elif high:
        wall_range = ([0.45, 0.22, 0.15], [0.70, 0.40, 0.30])    # brick
    else:
        wall_range = ([0.60, 0.60, 0.58], [0.95, 0.95, 0.93])
    walls = tuple(_rgb(rng, wall_range) for _ in range(4))

    # Lines of sight kept clear: each camera to the hips and head above each keep-out centre of the subject.
    x0, y0, r0 = keep_out[0]
    sight = [np.array([x0, y0, z]) for z in (1.0, 1.6)]
    lay = _Layout(half_x, half_y, cams, keep_out, sight)
    if platform is not None:
        lay.add([platform])
        lay.rects.pop()                      # the platform is under the subject: keep-out already covers it
    names = []
    count = int(np.clip(round(4 * half_x * half_y * rng.uniform(*style.furniture)), 6, MAX_FURNITURE))
    for _ in range(count * 6):
        if len(names) >= count:
            break
        name, parts = _piece(rng, str(rng.choice(_FURNITURE[kind])))
        quarter = int(rng.integers(4))
        if rng.random() < 0.5:    # against a wall, its back to it
            wall = int(rng.integers(4))
            along = rng.uniform(-1, 1)
            span = half_y if wall < 2 else half_x
            probe = _place(parts, 0.0, 0.0, quarter)
            lo, hi = _footprint(probe)
            if wall == 0:
                x, y = half_x - 0.05 - hi[0], along * (span - 0.6)
            elif wall == 1:
                x, y = -half_x + 0.05 - lo[0], along * (span - 0.6)
            elif wall == 2:
                x, y = along * (span - 0.6), half_y - 0.05 - hi[1]
            else:
                x, y = along * (span - 0.6), -half_y + 0.05 - lo[1]
        else:                     # anywhere, often in the cameras' views
            x, y = rng.uniform(-half_x, half_x), rng.uniform(-half_y, half_y)
        boxes = _place(parts, x, y, quarter)
        if lay.fits(boxes):
            lay.add(boxes)
            names.append(name)

    # Low objects between a camera and the subject: they hide its feet or shins from that camera.
    occluders = 0
    n_occ = int(rng.integers(style.occluders[0], style.occluders[1] + 1))
    for _ in range(n_occ * 8):
        if occluders >= n_occ:
            break
        cam = cams[int(rng.integers(len(cams)))]
        to = np.array([x0, y0]) - cam[:2]
        dist = float(np.hypot(*to))
        gap = r0 + rng.uniform(0.35, 0.9)            # from the subject's keep-out edge
        if dist - gap < 1.0:
            continue
        at = np.array([x0, y0]) - to / dist * gap + rng.normal(0, 0.1, 2)
        name, parts = _piece(rng, str(rng.choice(_LOW)))
        boxes = _place(parts, float(at[0]), float(at[1]), int(rng.integers(4)))
        if _footprint(boxes)[1][2] <= 0.95 and lay.fits(boxes):
            lay.add(boxes)
            names.append(name)
            occluders += 1

    mats = []
    n_mats = int(rng.integers(style.mats[0], style.mats[1] + 1))
    for _ in range(n_mats):
        if kind == "gym" or rng.random() < 0.3:      # a gym/yoga mat, possibly under the subject
            w, d = (rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0)) if rng.random() < 0.5 else (0.6, 1.8)
            colour, pattern = _bright(rng), int(rng.choice([0, 2]))
        else:                                         # a rug
            w, d = rng.uniform(1.2, 3.0), rng.uniform(1.0, 2.0)
            colour, pattern = _rgb(rng, ([0.2, 0.15, 0.1], [0.8, 0.6, 0.5])), int(rng.choice([0, 1]))
        cx, cy = rng.uniform(-half_x + w / 2, half_x - w / 2), rng.uniform(-half_y + d / 2, half_y - d / 2)
        mats.append(Mat(float(cx - w / 2), float(cy - d / 2), float(cx + w / 2), float(cy + d / 2), colour, pattern,
                        float(rng.uniform(0.4, 0.8))))

    panels = []
    n_windows = int(rng.integers(style.windows[0], style.windows[1] + 1))
    for i in range(n_windows + int(rng.integers(3, 9))):
        window = i < n_windows
        wall = int(rng.integers(4))
        span = half_y if wall < 2 else half_x
        w = rng.uniform(1.0, 2.4) if window else rng.uniform(0.5, 1.6)
        s0 = rng.uniform(-span + 0.2, span - 0.2 - w)
        if window:
            z0 = rng.uniform(0.8, 1.1) if not high else rng.uniform(2.0, 2.6)
            z1 = min(z0 + rng.uniform(1.0, 1.6), height - 0.15)
            # Daylight: bluish to warm white, 0.9 (dull) to 1.8 (overexposed) in the image.
            sky = np.array([0.92, 0.96, 1.05]) * rng.uniform(0.9, 1.8) * rng.uniform(0.95, 1.05, 3)
            panels.append(Panel(wall, float(s0), float(s0 + w), float(z0), float(z1), tuple(sky.tolist()),
                                PANEL_WINDOW))
        elif rng.random() < 0.25:    # a door
            panels.append(Panel(wall, float(s0), float(s0 + 0.9), 0.0, 2.05, _rgb(rng, _WOOD), PANEL_PAINTED))
        else:                        # posters, pictures, notice boards
            z0 = rng.uniform(0.9, 1.6)
            panels.append(Panel(wall, float(s0), float(s0 + w), float(z0), float(min(z0 + rng.uniform(0.4, 0.9),
                                                                                     height - 0.1)),
                                _rgb(rng, ([0.05, 0.05, 0.05], [0.95, 0.95, 0.95])), PANEL_PAINTED))
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.2)
    light = (float(np.cos(az) * np.cos(el)), float(np.sin(az) * np.cos(el)), float(np.sin(el)))
    scene = Scene(half_x, half_y, height, fk, floor_rgb, floor_period, walls,
                  _rgb(rng, ([0.75, 0.75, 0.75], [0.95, 0.95, 0.95])), tuple(lay.boxes), tuple(panels), light,
                  int(rng.integers(2**31)), tuple(mats), WALL_BRICK if high else WALL_PAINTED)
    info = {"kind": kind, "furniture": names, "occluders": occluders, "windows": n_windows, "mats": len(mats),
            "size_m": [round(2 * half_x, 2), round(2 * half_y, 2), round(height, 2)],
            "platform": platform is not None}
    return scene, info
