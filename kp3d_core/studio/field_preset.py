"""``studio-field`` and ``studio-field-new``: presets of SESSIONS that look like real rigs.

Each split is a set of sessions; a session is an ordinary studio dataset folder (docs/interfaces.md "Studio
dataset folder") with its own rig, room, people, light and camera settings, one subject in one continuous
clip present from the first frame::

    <out>/<split>/manifest.yaml      kind: sessions, name, split, sessions: [names], seeds, sources, licences, ...
    <out>/<split>/<session>/         manifest.yaml, rig.yaml, gt.npz, images/, masks/, backgrounds/

A session is drawn from its seed alone (``split seed * 1000 + index``), so any session, and any first N
frames of it (``frames_limit``), renders byte for byte as within the whole split. Splits differ in people,
rooms, rigs and procedural seeds (all drawn from split-specific seeds) and hold out whole CMU clips as
studio-bench does. ``studio-field-new`` uses appearance, rig and room styles that studio-field never draws
(neon clothes with blotch patterns; all-portrait rigs high up; warehouses): a domain the shipped model has
not seen, for adaptation benchmarks.

Example::

    generate_field("studio-field", "test", "out/studio-field", sessions_limit=1, frames_limit=10)
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..cli_args import UsageError
from . import appearance, rigs, room
from .bystanders import sample_bystanders
from .camera_effects import sample_camera_effects, sample_session_effects
from .dataset import GENERATOR_VERSION, Segment, Summary, render_dataset
from .field_motion import FIELD_SOURCES, session_motion
from .field_render import FieldRenderer
from .lighting import sample_light_schedule
from .presets import LICENCES, SOURCE_DIRS, default_motion_root, split_clips
from .proportions import sample_proportions
from .scene import PANEL_WINDOW

FPS = 30.0
FIELD_LICENCES = {**{k: LICENCES[k] for k in ("procedural", "cmu")},
                  "generator": "kp3d's own varied-pose generator (project licence)"}


@dataclass(frozen=True)
class FieldSplit:
    """Sessions of a split, frames per session, and the split's seed."""

    sessions: int
    frames: int
    seed: int


@dataclass(frozen=True)
class FieldPreset:
    """A sessions preset: the styles it draws from, its splits, and how its sessions are mixed.

    shares: fraction of sessions per motion source; p_stay: fraction of the non-CMU sessions that stay in
    place; bystanders: probabilities of one and of two bystanders in a session.
    """

    appearance: appearance.AppearanceStyle
    rigs: rigs.RigStyle
    rooms: room.RoomStyle
    splits: dict
    shares: dict
    p_stay: float = 0.35
    bystanders: tuple[float, float] = (0.4, 0.15)


FIELD_PRESETS: dict[str, FieldPreset] = {
    "studio-field": FieldPreset(
        appearance.FIELD, rigs.FIELD, room.FIELD,
        {"train": FieldSplit(40, 250, 111), "val": FieldSplit(5, 240, 222), "test": FieldSplit(5, 240, 333)},
        {"procedural": 0.5, "cmu": 0.15, "generator": 0.35}),
    "studio-field-new": FieldPreset(
        appearance.NEW, rigs.NEW, room.NEW,
        {"train": FieldSplit(8, 250, 444), "val": FieldSplit(2, 240, 555), "test": FieldSplit(5, 240, 666)},
        {"procedural": 0.5, "cmu": 0.15, "generator": 0.35}),
}


@dataclass(frozen=True)
class SessionPlan:
    """What a session is before it is drawn: folder name, seed, motion source, stay-in-place, frames."""

    name: str
    seed: int
    source: str
    stay: bool
    frames: int


def _quota(n: int, shares: dict) -> list[str]:
    """n items split by shares (largest remainder), in the order of ``shares``."""
    keys = list(shares)
    raw = np.array([shares[k] for k in keys], dtype=np.float64)
    raw = raw / raw.sum() * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return [k for k, c in zip(keys, counts) for _ in range(c)]


def plan_sessions(preset: str, split: str, sources: list[str] | None = None) -> list[SessionPlan]:
    """The sessions of a split: sources by quota (shares of ``sources``, default all), shuffled with the
    split's seed; a share of the non-CMU sessions stays in place."""
    spec = _preset(preset)
    if split not in spec.splits:
        raise UsageError(f"--split: unknown split '{split}' (train, val, test, all)")
    sp = spec.splits[split]
    shares = {k: v for k, v in spec.shares.items() if sources is None or k in sources}
    if not shares:
        raise UsageError(f"--sources: none of {sources} is a studio-field source ({', '.join(FIELD_SOURCES)})")
    rng = np.random.default_rng([sp.seed, 1])
    order = [str(s) for s in rng.permutation(_quota(sp.sessions, shares))]
    can_stay = [i for i, s in enumerate(order) if s != "cmu"]
    stay = set(rng.permutation(can_stay)[: int(round(spec.p_stay * len(can_stay)))].tolist())
    return [SessionPlan(f"session{i:03d}", sp.seed * 1000 + i, s, i in stay, sp.frames) for i, s in enumerate(order)]


def _preset(name: str) -> FieldPreset:
    if name not in FIELD_PRESETS:
        raise UsageError(f"--preset: unknown sessions preset '{name}' (presets: {sorted(FIELD_PRESETS)})")
    return FIELD_PRESETS[name]


def build_session(preset: str, split: str, plan: SessionPlan, motion_root: Path):
    """Draw everything of one session from its seed.

    Returns:
        (renderer, rig, clip (field_motion.SessionClip), subject, session_effects, manifest extra dict)
    """
    spec = _preset(preset)

    def rng(k: int) -> np.random.Generator:
        return np.random.default_rng([plan.seed, k])

    props = sample_proportions(rng(1))
    subject = appearance.sample_field_subject(rng(2), spec.appearance)
    volume_radius = float(rng(3).uniform(1.0, 1.5))
    cmu = split_clips(sorted((motion_root / SOURCE_DIRS["cmu"]).rglob("*.bvh")), split) \
        if (motion_root / SOURCE_DIRS["cmu"]).is_dir() else []
    clip = session_motion(rng(4), plan.source, plan.stay, plan.frames, FPS, props, volume_radius, cmu)
    kx, ky, kr = clip.keep_out()
    frame_radius = float(np.hypot(kx, ky) + kr - 0.2) if clip.stay else volume_radius
    rig = rigs.field_rig(rng(5), spec.rigs, volume_radius_m=frame_radius)
    r = rng(6).random()
    count = 2 if r < spec.bystanders[1] else (1 if r < spec.bystanders[0] + spec.bystanders[1] else 0)
    T = len(clip.joints3d)
    people = sample_bystanders(rng(6), rig, (kx, ky, kr), count, T, FPS, spec.appearance)
    inside = np.array([[b.centre[0] + sx * b.radius, b.centre[1] + sy * b.radius] for b in people
                       for sx in (-1, 1) for sy in (-1, 1)]).reshape(-1, 2)
    keep_out = [(kx, ky, kr)] + [(b.centre[0], b.centre[1], b.radius + 0.2) for b in people]
    scene, room_info = room.sample_field_room(rng(7), spec.rooms, np.stack([c.center for c in rig.cameras]),
                                              keep_out, platform=clip.platform, inside=inside)
    fx_rng = rng(8)
    cam_info = rigs.describe(rig)
    effects = [sample_camera_effects(fx_rng, c["hfov_deg"]) for c in cam_info]
    session = sample_session_effects(fx_rng)
    light = sample_light_schedule(rng(9), T, any(p.kind == PANEL_WINDOW for p in scene.panels))
    renderer = FieldRenderer(rig, scene, plan.seed, effects, light, T, [b.person for b in people],
                             track=clip.joints3d, session=session)
    for c, fx in zip(cam_info, effects):
        c.update(fx.describe())
    extra = {
        "preset": preset,
        "session": plan.name,
        "source": clip.source,
        "requested_source": plan.source,
        "stay_in_place": clip.stay,
        "notes": clip.notes,
        "licences": {clip.source: FIELD_LICENCES[clip.source]},
        "room": room_info,
        "bystanders": [b.describe() for b in people],
        "camera_settings": cam_info,
        "shutter": round(session.shutter, 3),
        "jpeg_quality": session.jpeg_quality,
        "light": light.describe(),
    }
    return renderer, rig, clip, subject, session, {**extra, "height_m": round(props.height, 4)}


def render_session(preset: str, split: str, plan: SessionPlan, out: Path, motion_root: Path, *,
                   frames_limit: int | None = None, preview: bool = False, progress: bool = True,
                   bag_storage: str | None = None, jitter_ms: float = 0.0, overwrite: bool = False) -> Summary:
    """Render one session into ``out`` (an ordinary studio dataset folder)."""
    start = time.perf_counter()
    renderer, rig, clip, subject, session, extra = build_session(preset, split, plan, motion_root)
    setup_s = time.perf_counter() - start
    height = extra.pop("height_m")
    extra["frames_limit"] = frames_limit
    info = [{"id": 0, "height_m": height, **appearance.describe(subject)}]
    summary = render_dataset(out, rig, [Segment(clip.joints3d, 0, 0)], [clip.name], [subject], seed=plan.seed,
                             fps=FPS, name=preset, split=split, subject_info=info, bag_storage=bag_storage,
                             jitter_ms=jitter_ms, frames_limit=frames_limit, preview=preview, progress=progress,
                             overwrite=overwrite, extra_manifest=extra, renderer=renderer,
                             jpeg_quality=session.jpeg_quality)
    summary.seconds += setup_s        # (not in the manifest: files stay byte-identical on re-runs)
    return summary


def generate_field(preset: str, split: str, out: str | Path, *, sources: list[str] | None = None,
                   motion_root: str | Path | None = None, sessions_limit: int | None = None,
                   frames_limit: int | None = None, preview: bool = False, overwrite: bool = False,
                   progress: bool = True, bag_storage: str | None = None, jitter_ms: float = 0.0,
                   log=print) -> list[Summary]:
    """Render a sessions preset's split(s) into ``out/<split>/``; ``split='all'`` renders train, val and test.

    ``sessions_limit`` renders the first N sessions, ``frames_limit`` the first N frames of each: a slice that
    is byte-identical to the same files of the whole split.
    """
    spec = _preset(preset)
    for s in sources or []:
        if s not in FIELD_SOURCES:
            raise UsageError(f"--sources: unknown source '{s}' for {preset} (sources: {', '.join(FIELD_SOURCES)})")
    if sessions_limit is not None and sessions_limit < 1:
        raise UsageError(f"--sessions-limit must be >= 1, got {sessions_limit}")
    root = Path(motion_root) if motion_root is not None else default_motion_root()
    splits = list(spec.splits) if split == "all" else [split]
    for s in splits:
        if s not in spec.splits:
            raise UsageError(f"--split: unknown split '{s}' (train, val, test, all)")
        folder = Path(out) / s
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise FileExistsError(f"{folder}: exists and is not empty (use --overwrite)")
    summaries: list[Summary] = []
    for s in splits:
        folder = Path(out) / s
        if folder.exists() and overwrite:
            shutil.rmtree(folder)           # stale sessions of an earlier, larger run must not stay behind
        folder.mkdir(parents=True, exist_ok=True)
        plans = plan_sessions(preset, s, sources)[:sessions_limit]
        done, notes, used = [], [], []
        for plan in plans:
            summary = render_session(preset, s, plan, folder / plan.name, root, frames_limit=frames_limit,
                                     preview=preview, progress=progress, bag_storage=bag_storage,
                                     jitter_ms=jitter_ms, overwrite=overwrite)
            m = summary.manifest
            for n in m["notes"]:
                log(f"warning: {plan.name}: {n}")
                notes.append(f"{plan.name}: {n}")
            if m["source"] not in used:
                used.append(m["source"])
            done.append({"name": plan.name, "num_frames": summary.num_frames, "cameras": len(m["cameras"]),
                         "image_size": m["image_size"], "source": m["source"], "stay_in_place": m["stay_in_place"],
                         "bystanders": len(m["bystanders"]), "room": m["room"]["kind"],
                         "seconds": round(summary.seconds, 1)})
            summaries.append(summary)
        manifest = {
            "kind": "sessions",
            "name": preset,
            "split": s,
            "generator": GENERATOR_VERSION,
            "sessions": [d["name"] for d in done],
            "num_frames": int(sum(d["num_frames"] for d in done)),
            "fps": FPS,
            "seeds": {"split": spec.splits[s].seed, "sessions": [p.seed for p in plans]},
            "sources": used,
            "missing_sources": notes,
            "licences": {k: FIELD_LICENCES[k] for k in used},
            "sessions_limit": sessions_limit,
            "frames_limit": frames_limit,
            "session_summary": [{k: v for k, v in d.items() if k != "seconds"} for d in done],
        }
        (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None))
        if preview:
            sheet = sessions_sheet([folder / d["name"] / "preview.png" for d in done])
            cv2.imwrite(str(folder / "preview.png"), sheet)
    return summaries


def sessions_sheet(previews: list[Path], width: int = 960, columns: int = 2, limit: int = 6) -> np.ndarray:
    """(H, W, 3) uint8 BGR: up to ``limit`` sessions' preview.png, each scaled to ``width`` / ``columns`` wide,
    in ``columns`` columns (top-aligned)."""
    tiles = [cv2.imread(str(p)) for p in previews[:limit] if p.is_file()]
    if not tiles:
        return np.zeros((8, width, 3), np.uint8)
    tw = width // columns
    tiles = [cv2.resize(t, (tw, max(1, int(round(t.shape[0] * tw / t.shape[1])))), interpolation=cv2.INTER_AREA)
             for t in tiles]
    cols = [tiles[i::columns] for i in range(columns)]
    heights = [sum(t.shape[0] for t in c) for c in cols]
    sheet = np.zeros((max(heights), width, 3), np.uint8)
    for c, col in enumerate(cols):
        y = 0
        for t in col:
            sheet[y:y + t.shape[0], c * tw:(c + 1) * tw] = t
            y += t.shape[0]
    return sheet
