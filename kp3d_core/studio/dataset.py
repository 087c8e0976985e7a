"""Write a studio dataset folder (layout: docs/interfaces.md "Studio dataset folder"), frame by frame.

Images and masks stream to disk as they are rendered, so memory stays bounded whatever the length;
only the small ground-truth arrays (about 1 kB per frame) are kept until ``close``. Every file is
byte-for-byte reproducible: JPEG/PNG encoders are deterministic, the manifest has no dates, and
gt.npz is written with fixed zip timestamps.

``render_dataset`` is the whole job: dress and render every frame of a list of motion segments and
write the folder (and optionally a rosbag2 bag through :mod:`kp3d_core.bagio`).

Example::

    segments = [Segment(motion.joints3d, clip=0, subject=0)]
    summary = render_dataset("out/studio", rig, segments, clips=["procedural/seed0"],
                             subjects=[sample_subject(rng)], seed=0)
"""
from __future__ import annotations

import io
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..bagio import BagWriter
from ..cli_args import UsageError
from ..rig import Rig, save_rig
from ..skeleton import BONES, JOINT_NAMES, NUM_JOINTS
from .body import Subject
from .render import OCCLUSION_TOLERANCE_M, Frame, StudioRenderer
from .scene import sample_scene

GENERATOR_VERSION = "kp3d-studio 3"
DEFAULT_START_NS = 1_700_000_000_000_000_000   # fixed epoch of frame 0 (2023-11-14), for reproducible stamps
JPEG_QUALITY = 95


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez-compatible file with fixed zip timestamps (byte-identical on re-runs)."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def _write_image(path: Path, ext: str, image: np.ndarray, params: list[int]) -> None:
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise OSError(f"{path}: image encoding failed")
    path.write_bytes(buf.tobytes())


class DatasetWriter:
    """Streams rendered frames into a dataset folder; ``close`` writes gt.npz and manifest.yaml.

    Args:
        out: folder to create (an existing non-empty folder needs ``overwrite=True``).
        rig: the cameras (written as rig.yaml); fps: frame rate; seed: recorded in the manifest.
        bag_storage: None, "mcap" or "sqlite3": also write DIR/bag with /<cam>/image_raw + camera_info.
        jitter_ms: per-camera uniform stamp jitter (+-) of the bag header stamps (= bag times);
            gt.npz keeps the true frame stamps and adds camera_stamps_ns (T, V).
        jpeg_quality: of the written images, 1..100 (a camera's compression; the bag gets raw images).
    Frames' ``extras`` (same keys every frame) are stacked over frames into gt.npz under their own names.
    """

    def __init__(self, out: str | Path, rig: Rig, *, name: str = "studio", split: str = "custom", seed: int = 0,
                 fps: float = 30.0, bag_storage: str | None = None, jitter_ms: float = 0.0,
                 start_ns: int = DEFAULT_START_NS, overwrite: bool = False, jpeg_quality: int = JPEG_QUALITY):
        self.out = Path(out)
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.jpeg_quality = int(jpeg_quality)
        if not 0 <= jitter_ms < 500.0 / fps:
            # beyond half a frame period a camera's stamps could go backwards
            raise UsageError(f"--jitter-ms must be in [0, {500.0 / fps:.1f}) at {fps} fps, got {jitter_ms}")
        if bag_storage not in (None, "mcap", "sqlite3"):
            raise ValueError(f"bag storage must be 'mcap' or 'sqlite3', got '{bag_storage}'")
        if self.out.exists() and any(self.out.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{self.out}: exists and is not empty (use --overwrite)")
            shutil.rmtree(self.out)
        self.rig, self.name, self.split, self.seed, self.fps = rig, name, split, int(seed), float(fps)
        self.jitter_ns = int(round(jitter_ms * 1e6))
        self.start_ns = int(start_ns)
        for cam in rig.cameras:
            (self.out / "images" / cam.name).mkdir(parents=True, exist_ok=True)
            (self.out / "masks" / cam.name).mkdir(parents=True, exist_ok=True)
        (self.out / "backgrounds").mkdir(parents=True, exist_ok=True)
        save_rig(rig, self.out / "rig.yaml")
        self._gt: dict[str, list] = {k: [] for k in ("joints3d", "joints2d", "visible", "in_frame", "stamps_ns",
                                                      "camera_stamps_ns", "clip", "subject")}
        self._extras: dict[str, list] = {}                    # Frame.extras, per key one array per frame
        self.seen = np.zeros(len(rig), dtype=np.int64)        # frames in which each camera sees body pixels
        self.bag = None
        if bag_storage:

            self.bag = BagWriter(self.out / "bag", storage=bag_storage).open()
            for cam in rig.cameras:
                self.bag.add_camera(cam.name)

    @property
    def num_frames(self) -> int:
        return len(self._gt["clip"])

    def write_backgrounds(self, backgrounds: list[np.ndarray]) -> None:
        """The true static backgrounds, (H, W, 3) uint8 RGB per camera."""
        for cam, bg in zip(self.rig.cameras, backgrounds):
            _write_image(self.out / "backgrounds" / f"{cam.name}.png", ".png", cv2.cvtColor(bg, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_PNG_COMPRESSION, 3])

    def add(self, frame: Frame, joints3d: np.ndarray, clip: int, subject: int) -> None:
        """Append the next frame: images and masks go to disk now, ground truth to memory."""
        t = self.num_frames
        stamp = self.start_ns + int(round(t * 1e9 / self.fps))
        cams = np.full(len(self.rig), stamp, dtype=np.int64)
        if self.jitter_ns:
            rng = np.random.default_rng([self.seed, 17, t])
            cams += rng.integers(-self.jitter_ns, self.jitter_ns + 1, len(self.rig))
        for v, cam in enumerate(self.rig.cameras):
            img, mask = frame.images[v], frame.masks[v]
            _write_image(self.out / "images" / cam.name / f"{t:06d}.jpg", ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            # 1-bit PNG: 6x faster to encode than 8-bit, and reads back as uint8 0/255.
            _write_image(self.out / "masks" / cam.name / f"{t:06d}.png", ".png", mask.astype(np.uint8) * 255,
                         [cv2.IMWRITE_PNG_BILEVEL, 1])
            self.seen[v] += bool(mask.any())
            if self.bag is not None:
                self.bag.write_image(cam.name, int(cams[v]), img, cam)
        g = self._gt
        g["joints3d"].append(np.asarray(joints3d, dtype=np.float64))
        g["joints2d"].append(frame.joints2d)
        g["visible"].append(frame.visible)
        g["in_frame"].append(frame.in_frame)
        g["stamps_ns"].append(stamp)
        g["camera_stamps_ns"].append(cams)
        g["clip"].append(int(clip))
        g["subject"].append(int(subject))
        if set(frame.extras) != set(self._extras) and t > 0:
            raise ValueError(f"frame {t}: extras {sorted(frame.extras)} differ from earlier frames' {sorted(self._extras)}")
        for key, value in frame.extras.items():
            self._extras.setdefault(key, []).append(np.asarray(value))

    @property
    def unseen_cameras(self) -> list[str]:
        """Names of cameras whose images never contained the subject so far."""
        return [n for n, s in zip(self.rig.names, self.seen) if s == 0]

    def close(self, motion: list[str], subjects: list, extra: dict | None = None) -> dict:
        """Write gt.npz and manifest.yaml, close the bag; returns the manifest."""
        if self.bag is not None:
            self.bag.close()
        T, V = self.num_frames, len(self.rig)
        g = self._gt
        arrays = {
            "joints3d": np.asarray(g["joints3d"], dtype=np.float64).reshape(T, NUM_JOINTS, 3),
            "joints2d": np.asarray(g["joints2d"], dtype=np.float64).reshape(T, V, NUM_JOINTS, 2),
            "visible": np.asarray(g["visible"], dtype=bool).reshape(T, V, NUM_JOINTS),
            "in_frame": np.asarray(g["in_frame"], dtype=bool).reshape(T, V, NUM_JOINTS),
            "stamps_ns": np.asarray(g["stamps_ns"], dtype=np.int64).reshape(T),
            "clip": np.asarray(g["clip"], dtype=np.int32).reshape(T),
            "subject": np.asarray(g["subject"], dtype=np.int32).reshape(T),
            "camera_stamps_ns": np.asarray(g["camera_stamps_ns"], dtype=np.int64).reshape(T, V),
        }
        for key, values in self._extras.items():
            if key in arrays:
                raise ValueError(f"frame extra '{key}' would replace a ground-truth array")
            arrays[key] = np.stack(values)
        write_npz(self.out / "gt.npz", arrays)
        W, H = self.rig.cameras[0].size
        manifest = {
            "name": self.name,
            "split": self.split,
            "seed": self.seed,
            "num_frames": T,
            "fps": self.fps,
            "cameras": self.rig.names,
            "image_size": [int(W), int(H)],
            "motion": list(motion),
            "subjects": list(subjects),
            "joint_names": list(JOINT_NAMES),
            "generator": GENERATOR_VERSION,
            "occlusion_tolerance_m": OCCLUSION_TOLERANCE_M,
            "stamp_jitter_ms": self.jitter_ns / 1e6,
            "bag": (self.bag.storage if self.bag is not None else None),
            "cameras_never_seeing_subject": self.unseen_cameras,
        }
        manifest.update(extra or {})
        (self.out / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, default_flow_style=None))
        return manifest


@dataclass
class Segment:
    """A stretch of motion rendered with one subject: joints3d (T, 17, 3) m world; indices into the
    dataset's clip and subject lists."""

    joints3d: np.ndarray
    clip: int
    subject: int


@dataclass
class Summary:
    """What ``render_dataset`` did: frames, views, seconds, cameras that never saw the subject."""

    out: Path
    num_frames: int
    num_views: int
    seconds: float
    unseen_cameras: list[str] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)


def render_dataset(out: str | Path, rig: Rig, segments: list[Segment], clips: list[str], subjects: list[Subject],
                   *, seed: int = 0, fps: float = 30.0, name: str = "studio", split: str = "custom",
                   subject_info: list | None = None, bag_storage: str | None = None, jitter_ms: float = 0.0,
                   frames_limit: int | None = None, preview: bool = False, progress: bool = True,
                   overwrite: bool = False, extra_manifest: dict | None = None, scene_seed: int | None = None,
                   warn=None, renderer: StudioRenderer | None = None, jpeg_quality: int = JPEG_QUALITY) -> Summary:
    """Render every frame of ``segments`` (in order) from every camera of ``rig`` into folder ``out``.

    Args:
        clips: names of the motion clips (manifest ``motion``; gt ``clip`` indexes it).
        subjects: the appearance of each subject (gt ``subject`` indexes it); subject_info: their
            manifest entries (default ``subject<i>``).
        seed: seeds the renderer's noise/light (and the room unless ``scene_seed``).
        frames_limit: render only the first N frames (a reproducible slice of the full dataset).
        preview: also write DIR/preview.png, a contact sheet of the middle frame with joints drawn.
        warn: callable(str) for warnings (default: print to stderr).
        renderer: a ready renderer for ``rig`` (its room and seed are used; default: built here).
        jpeg_quality: of the written images (default 95).
    """
    import time

    from tqdm import tqdm

    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    total = sum(len(s.joints3d) for s in segments)
    if frames_limit is not None:
        if frames_limit < 1:
            raise ValueError(f"frames_limit must be >= 1, got {frames_limit}")
        total = min(total, int(frames_limit))
    if total < 1:
        raise ValueError("render_dataset: no frames to render (empty motion)")
    writer = DatasetWriter(out, rig, name=name, split=split, seed=seed, fps=fps, bag_storage=bag_storage,
                           jitter_ms=jitter_ms, overwrite=overwrite, jpeg_quality=jpeg_quality)
    if renderer is None:
        centres = np.stack([c.center for c in rig.cameras])
        scene = sample_scene(np.random.default_rng([seed if scene_seed is None else scene_seed, 3]), centres)
        renderer = StudioRenderer(rig, scene, seed=seed)
    writer.write_backgrounds(renderer.backgrounds)
    preview_at = total // 2
    start = time.perf_counter()
    t = 0
    with tqdm(total=total, desc=f"synth {name}/{split}", unit="frame", disable=not progress) as bar:
        for seg in segments:
            for joints in seg.joints3d:
                if t >= total:
                    break
                frame = renderer.render(joints, subjects[seg.subject], t)
                writer.add(frame, joints, seg.clip, seg.subject)
                if preview and t == preview_at:
                    sheet = contact_sheet(frame, rig.names)
                    cv2.imwrite(str(writer.out / "preview.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
                t += 1
                bar.update(1)
    seconds = time.perf_counter() - start
    info = subject_info if subject_info is not None else [f"subject{i}" for i in range(len(subjects))]
    manifest = writer.close(clips, info, extra_manifest)
    for cam in writer.unseen_cameras:
        warn(f"camera '{cam}' never sees the subject in {t} frames (check its pose in the rig file)")
    return Summary(writer.out, t, t * len(rig), seconds, writer.unseen_cameras, manifest)


def contact_sheet(frame: Frame, names: list[str], columns: int | None = None) -> np.ndarray:
    """(H', W', 3) uint8 RGB tiles of the views with bones and joints drawn (green visible, red occluded,
    joints out of frame omitted) and the camera name."""

    n = len(frame.images)
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    H, W = frame.images[0].shape[:2]
    sheet = np.zeros((rows * H, cols * W, 3), dtype=np.uint8)
    for v, img in enumerate(frame.images):
        tile = img.copy()
        uv, vis, inf = frame.joints2d[v], frame.visible[v], frame.in_frame[v]
        for a, b in BONES:
            if inf[a] and inf[b]:
                cv2.line(tile, tuple(int(x) for x in np.round(uv[a])), tuple(int(x) for x in np.round(uv[b])),
                         (255, 255, 0), 1, cv2.LINE_AA)
        for j in range(len(uv)):
            if inf[j]:
                cv2.circle(tile, tuple(int(x) for x in np.round(uv[j])), 3, (0, 220, 0) if vis[j] else (230, 0, 0), -1,
                           cv2.LINE_AA)
        cv2.putText(tile, names[v], (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        r, c = divmod(v, cols)
        sheet[r * H:(r + 1) * H, c * W:(c + 1) * W] = tile
    return sheet
