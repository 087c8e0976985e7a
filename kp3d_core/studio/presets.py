"""Named, reproducible studio datasets: the ``studio-bench`` benchmark every accuracy figure uses.

studio-bench: the default 4-camera ring rig (``rig.ring_rig()``: radius 4 m, height 1.8 m, 640x480,
60 deg horizontal field of view), one fixed room, and three splits with fixed seeds:

=====  ======  ========  ==========================================================
split  frames  subjects  motion
=====  ======  ========  ==========================================================
train  12000   32        70 % of the BVH clips of each source, procedural seeds 1xxx
val    1200    8         10 % of the BVH clips, procedural seeds 2xxx
test   600     3         the remaining 20 % (whole clips held out), procedural 3xxx
=====  ======  ========  ==========================================================

All at 30 fps. Each split is a shuffled sequence of segments: 60-frame (2 s) contiguous windows of
real motion-capture clips (retargeted to the segment's subject proportions) and 150-frame
procedural clips. Frame shares when every source is present: Bandai-Namco 50 %, CMU 15 %,
procedural the rest; sources that are absent or not selected give their share to procedural.
Subjects (proportions, build, clothing) are drawn from split-specific seeds, so no split shares a
person. Re-running gives byte-identical files (on the same library versions).

Sources: ``procedural`` (the project's own generator), ``cmu`` (CMU mocap, free for research and
commercial use) and ``bandai`` (Bandai-Namco Research Motiondataset, CC BY-NC 4.0: benchmarks
only, never for the shipped model). ``studio-bench-open`` = procedural + cmu, the licence-clean
variant the shipped model is trained on. The manifest lists the sources used and any that were
missing. Motion clips are read from ``--motion-root``, ``$KP3D_MOTION_ROOT`` or ``../shared/data/motion``
(from the repository root) when present; otherwise the preset falls back to procedural motion and warns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cli_args import UsageError
from ..rig import Rig, ring_rig
from .body import sample_subject
from .bvh import load_bvh
from .dataset import Segment, Summary, render_dataset
from .procedural import procedural_motion
from .proportions import sample_proportions
from .retarget import retarget

REPO_ROOT = Path(__file__).resolve().parents[2]
MOTION_ROOT_ENV = "KP3D_MOTION_ROOT"
SHARED_MOTION = Path("..") / "shared" / "data" / "motion"
DEFAULT_MOTION_HELP = f"${MOTION_ROOT_ENV}, else ../shared/data/motion from the working directory or the source checkout"
SOURCES = ("procedural", "cmu", "bandai")
SOURCE_DIRS = {"cmu": "cmu_131", "bandai": "bandai_namco_1"}
LICENCES = {
    "procedural": "kp3d's own procedural generator (project licence)",
    "cmu": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), free for research and commercial "
           "use, not for resale; created with funding from NSF EIA-0196217",
    "bandai": "Bandai-Namco Research Motiondataset 1, CC BY-NC 4.0: non-commercial; do not ship models trained on it",
}
SHARES = {"bandai": 0.50, "cmu": 0.15}          # of each split's frames; procedural takes the rest
WINDOW = 60                                      # frames of one mocap window (2 s at 30 fps)
PROCEDURAL_CLIP = 150                            # frames of one procedural clip
FPS = 30.0
SCENE_SEED = 7                                   # one studio room for every split
VOLUME_RADIUS = 1.5                              # metres, the capture volume's horizontal radius


@dataclass(frozen=True)
class SplitSpec:
    """One split: frames, seed (subjects, procedural motion, noise), number of distinct subjects."""

    frames: int
    seed: int
    subjects: int


SPLITS: dict[str, SplitSpec] = {
    "train": SplitSpec(12000, 101, 32),
    "val": SplitSpec(1200, 202, 8),  # was 300 / 2: too few people to rank configs by
    "test": SplitSpec(600, 303, 3),
}
PRESETS: dict[str, tuple[str, ...]] = {
    "studio-bench": ("procedural", "cmu", "bandai"),
    "studio-bench-open": ("procedural", "cmu"),
}


def preset_rig() -> Rig:
    """The studio-bench rig: ``ring_rig()`` defaults (4 cameras, 640x480)."""
    return ring_rig()


def split_clips(paths: list[Path], split: str) -> list[Path]:
    """The whole clips of one source that belong to ``split``: a fixed shuffle, then about 20 % test
    (at least one clip when the source has two or more), 10 % val (none below 5 clips), the rest train."""
    paths = sorted(paths)
    n = len(paths)
    order = [paths[i] for i in np.random.default_rng(12345).permutation(n)]
    n_test = max(1, int(round(0.2 * n))) if n >= 2 else 0
    n_val = int(round(0.1 * n)) if n >= 5 else 0
    n_train = n - n_test - n_val
    ranges = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    lo, hi = ranges[split]
    return order[lo:hi]


def resolve_sources(preset: str, sources: list[str] | None, motion_root: Path) -> tuple[list[str], list[str]]:
    """(sources to use, notes) for a preset, an optional explicit list and the motion folder."""
    if preset not in PRESETS:
        raise UsageError(f"--preset: unknown preset '{preset}' (presets: {sorted(PRESETS)})")
    wanted = list(PRESETS[preset] if not sources else sources)
    for s in wanted:
        if s not in SOURCES:
            raise UsageError(f"--sources: unknown source '{s}' (sources: {', '.join(SOURCES)})")
    used, notes = [], []
    for s in wanted:
        if s == "procedural":
            used.append(s)
            continue
        folder = motion_root / SOURCE_DIRS[s]
        if not (folder.is_dir() and any(folder.rglob("*.bvh"))):
            notes.append(f"source '{s}' not found under {folder}: its share uses procedural motion")
        else:
            used.append(s)
    if "procedural" not in used:
        used.insert(0, "procedural")   # the fallback and the filler of every share left over
    return used, notes


def plan_split(split: str, sources: list[str], motion_root: Path, progress: bool = True):
    """Segments, clip names, subjects and manifest info of one split.

    Returns:
        (segments, clips, subjects, subject_info, segment_info)
    """

    spec = SPLITS[split]
    rng = np.random.default_rng([spec.seed, 1])
    people = []
    for k in range(spec.subjects):
        r = np.random.default_rng([spec.seed, 2, k])
        people.append((sample_proportions(r), sample_subject(r)))
    subject_info = [{"id": k, "height_m": round(p.height, 4)} for k, (p, _) in enumerate(people)]
    clips: list[str] = []
    pieces: list[tuple[str, object]] = []          # (kind, payload) before shuffling
    budget = {s: int(round(spec.frames * SHARES[s])) for s in sources if s in SHARES}
    for s, frames in budget.items():
        paths = split_clips(sorted((motion_root / SOURCE_DIRS[s]).rglob("*.bvh")), split)
        if not paths:
            budget[s] = 0
            continue
        k = 0
        while frames > 0:
            path = paths[k % len(paths)]
            pieces.append(("bvh", (s, path, min(WINDOW, frames), k)))
            frames -= min(WINDOW, frames)
            k += 1
    proc_frames = spec.frames - sum(budget.values())
    k = 0
    while proc_frames > 0:
        n = min(PROCEDURAL_CLIP, proc_frames)
        pieces.append(("procedural", (n, k)))
        proc_frames -= n
        k += 1
    order = rng.permutation(len(pieces))
    segments, seg_info = [], []
    loaded: dict[tuple[Path, int], object] = {}
    from tqdm import tqdm

    for i, idx in enumerate(tqdm(order, desc=f"motion {split}", unit="clip", disable=not progress)):
        kind, payload = pieces[idx]
        subj = i % spec.subjects
        props = people[subj][0]
        if kind == "procedural":
            n, k = payload
            seed = spec.seed * 10 + k
            motion = procedural_motion(n, FPS, seed=seed, proportions=props, volume_radius=VOLUME_RADIUS)
            name, start = f"procedural/seed{seed}", 0
            joints = motion.joints3d
        else:
            s, path, n, k = payload
            key = (path, subj)
            if key not in loaded:
                loaded[key] = retarget(load_bvh(path), fps=FPS, proportions=props, volume_radius=VOLUME_RADIUS)
            motion = loaded[key]
            T = motion.num_frames
            wrng = np.random.default_rng([spec.seed, 3, k])
            start = int(wrng.integers(0, max(T - n, 0) + 1))
            joints = motion.joints3d[start:start + n]
            name = f"{SOURCE_DIRS[s]}/{path.name}"
        if name not in clips:
            clips.append(name)
        segments.append(Segment(joints, clips.index(name), subj))
        seg_info.append({"clip": name, "subject": subj, "start": start, "frames": int(len(joints))})
    # Mocap clips shorter than a window leave a few frames short: procedural motion fills up to the size.
    short = spec.frames - sum(len(seg.joints3d) for seg in segments)
    if short > 0:
        subj = len(segments) % spec.subjects
        seed = spec.seed * 1000 + 999   # distinct from the regular procedural seeds (spec.seed * 10 + k)
        motion = procedural_motion(short, FPS, seed=seed, proportions=people[subj][0], volume_radius=VOLUME_RADIUS)
        name = f"procedural/seed{seed}"
        clips.append(name)
        segments.append(Segment(motion.joints3d, clips.index(name), subj))
        seg_info.append({"clip": name, "subject": subj, "start": 0, "frames": short})
    return segments, clips, [p[1] for p in people], subject_info, seg_info


def default_motion_root() -> Path:
    """Where the BVH datasets are looked for: ``$KP3D_MOTION_ROOT``, else ``../shared/data/motion`` beside the
    working directory (the repository root, as for every other default path), else beside the source checkout.

    The package's own location alone is not enough: the installed (non-editable) package lives under the venv,
    where ``../shared`` does not exist, and the presets would silently fall back to procedural motion.
    """
    env = os.environ.get(MOTION_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    candidates = [Path.cwd() / SHARED_MOTION, REPO_ROOT / SHARED_MOTION]
    return next((c.resolve() for c in candidates if c.is_dir()), candidates[0].resolve())


def generate(preset: str, split: str, out: str | Path, *, sources: list[str] | None = None,
             motion_root: str | Path | None = None, frames_limit: int | None = None, bag_storage: str | None = None,
             jitter_ms: float = 0.0, preview: bool = False, overwrite: bool = False, progress: bool = True,
             scene_seed: int | None = None, log=print) -> list[Summary]:
    """Render the preset's split(s) into ``out/<split>/``; ``split='all'`` renders train, val and test.

    ``scene_seed`` replaces the preset's room (and its lighting), :data:`SCENE_SEED`, and nothing else: the same
    people and motion in another room (recorded in the manifest; such a split is not the preset's benchmark).
    """
    root = Path(motion_root) if motion_root is not None else default_motion_root()
    used, notes = resolve_sources(preset, sources, root)
    for n in notes:
        log(f"warning: {n}")
    if not root.is_dir():
        log(f"warning: {root} not found: {preset} uses procedural motion only (set --motion-root or ${MOTION_ROOT_ENV})")
    splits = list(SPLITS) if split == "all" else [split]
    for s in splits:
        if s not in SPLITS:
            raise UsageError(f"--split: unknown split '{s}' (train, val, test, all)")
    summaries = []
    rig = preset_rig()
    for s in splits:
        segments, clips, subjects, subject_info, seg_info = plan_split(s, used, root, progress)
        extra = {
            "preset": preset,
            "sources": used,
            "missing_sources": notes,
            "licences": {k: LICENCES[k] for k in used},
            "frames_limit": frames_limit,
            "segments": seg_info,
        }
        if scene_seed is not None:
            extra["scene_seed"] = scene_seed
        summaries.append(render_dataset(
            Path(out) / s, rig, segments, clips, subjects, seed=SPLITS[s].seed, fps=FPS, name=preset, split=s,
            subject_info=subject_info, bag_storage=bag_storage, jitter_ms=jitter_ms, frames_limit=frames_limit,
            preview=preview, progress=progress, overwrite=overwrite, extra_manifest=extra,
            scene_seed=SCENE_SEED if scene_seed is None else scene_seed))
    return summaries
