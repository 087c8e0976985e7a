"""One video file per camera + a rig file -> one rosbag2 bag with Image (rgb8) + CameraInfo per camera.

The job of ``kp3d bag from-videos`` (:mod:`kp3d_core.bag_cli`; the user's guide is docs/own_rig.md).

* **Cameras.** Each video belongs to one rig camera: named explicitly in video order, or found by the
  camera's name appearing in the file name as a whole word (``cam1`` matches ``day2_cam1.mp4``, not
  ``cam10.mp4``; case ignored). No match, two matches or two videos for one camera are errors.
* **Sizes.** A video must show the calibrated image, at most resized as a whole: its sides within one
  pixel of the calibration's times one factor. The bag's images are the frames resized to the output
  size (default: the video's own) and CameraInfo is the calibration scaled to that size exactly
  (:func:`kp3d_core.camera_scale.scaled_camera`). Anything else (a crop, padding) is an error naming the
  camera and both sizes: such a video needs its own calibration.
* **Clock.** Frame ``i`` of camera ``c`` has the common index ``k = i - offset_c`` and is stamped
  ``t0 + k / fps`` (header and bag time); ``k = 0`` is frame 0 of the cameras with offset 0. A window
  ``start_s <= k / fps < end_s`` and a ``stride`` apply to ``k``, so every camera keeps the same
  instants. A video that ends early ends its camera only.

Example::

    options = ConvertOptions(scale=0.5, offsets_frames={"cam1": 3})
    summary = videos_to_bag(load_rig("rig.yaml"), [Path("a_cam0.mp4"), Path("a_cam1.mp4")], "out/bag", options)
    summary.frames            # {"cam0": 300, "cam1": 297}
"""
from __future__ import annotations

import math
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .bagio import STORAGES, BagWriter
from .camera import Camera
from .camera_scale import scaled_camera
from .rig import Rig
from .studio.dataset import DEFAULT_START_NS
from .video_sync import OffsetEstimate, SyncConfig, estimate_offsets, frames_needed, video_motion_energy

FPS_RELATIVE_TOLERANCE = 1e-4
"""Videos whose frame rates differ by more are different clocks (29.97 vs 30 fps drifts 1 frame in 33 s)."""
SIZE_TOLERANCE_PX = 1.0
"""A resized image's sides may each be this far from the exact scale (rounding to whole pixels)."""


class VideoBagError(ValueError):
    """A user error; the one-line message names the file, camera or option."""


# ------------------------------------------------------------------------------------------- videos
@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as decoded by OpenCV."""

    path: Path
    width_px: int
    height_px: int
    fps: float
    """Frame rate the container states (0 when it states none)."""
    frame_count: int
    """Frames the container states (may be approximate or 0: reading stops at the last decodable frame)."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width_px, self.height_px


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and decode its first frame (the size comes from the frame, not the container)."""
    path = Path(path)
    if not path.is_file():
        raise VideoBagError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise VideoBagError(f"{path}: cannot open as a video (OpenCV/FFmpeg)")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoBagError(f"{path}: no frame could be decoded")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return VideoInfo(path, int(frame.shape[1]), int(frame.shape[0]), fps if math.isfinite(fps) else 0.0,
                     max(count, 0))


class FrameReader:
    """Frames of one video by increasing index; skipped frames are grabbed, not converted."""

    def __init__(self, video: VideoInfo) -> None:
        self.video = video
        self._cap = cv2.VideoCapture(str(video.path))
        if not self._cap.isOpened():
            raise VideoBagError(f"{video.path}: cannot open as a video (OpenCV/FFmpeg)")
        self._next = 0  # index of the frame the next read returns

    def read_bgr(self, index: int) -> np.ndarray | None:
        """Frame ``index`` as (H, W, 3) uint8 BGR, or None past the end. Indices must increase."""
        if index < self._next:
            raise ValueError(f"{self.video.path}: frame {index} requested after frame {self._next - 1}")
        # Seeking (CAP_PROP_POS_FRAMES) lands on a nearby keyframe with some codecs; grabbing is exact.
        while self._next < index:
            if not self._cap.grab():
                return None
            self._next += 1
        ok, frame = self._cap.read()
        self._next += 1
        if not ok or frame is None:
            return None
        if frame.shape[:2] != (self.video.height_px, self.video.width_px):
            raise VideoBagError(f"{self.video.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                                f"the first frame was {self.video.width_px}x{self.video.height_px}")
        return frame

    def close(self) -> None:
        self._cap.release()


# ------------------------------------------------------------------------------------------ cameras
def _name_in(name: str, filename: str) -> bool:
    """Whether ``name`` appears in ``filename`` as a whole word (not inside a longer letter/digit run)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", filename.lower()) is not None


def match_cameras(videos: list[Path], rig_names: list[str], cameras: list[str] | None = None) -> list[str]:
    """The rig camera of each video, in video order: ``cameras`` checked, or matched by file name."""
    if cameras is not None:
        if len(cameras) != len(videos):
            raise VideoBagError(f"--cameras names {len(cameras)} cameras for {len(videos)} videos (one per video, "
                                "in video order)")
        for name in cameras:
            if name not in rig_names:
                raise VideoBagError(f"--cameras: camera '{name}' is not in the rig (rig cameras: {rig_names})")
        names = list(cameras)
    else:
        names = []
        for video in videos:
            found = [n for n in rig_names if _name_in(n, video.name)]
            if len(found) != 1:
                problem = "names no rig camera" if not found else f"names several rig cameras {found}"
                raise VideoBagError(f"{video}: the file name {problem} (rig cameras: {rig_names}); "
                                    "give --cameras with one camera per video, in video order")
            names.append(found[0])
    seen: dict[str, Path] = {}
    for name, video in zip(names, videos):
        if name in seen:
            raise VideoBagError(f"camera '{name}': two videos, {seen[name]} and {video}; "
                                "give --cameras with one camera per video, in video order")
        seen[name] = video
    return names


def common_fps(videos: dict[str, VideoInfo], fps: float | None = None) -> float:
    """The frame rate of all videos: ``fps`` when given, else the videos' own, which must agree."""
    if fps is not None:
        if not fps > 0:
            raise VideoBagError(f"--fps must be > 0, got {fps}")
        return float(fps)
    for name, video in videos.items():
        if not video.fps > 0:
            raise VideoBagError(f"camera '{name}': {video.path} states no frame rate; give --fps")
    rates = {name: v.fps for name, v in videos.items()}
    lo, hi = min(rates.values()), max(rates.values())
    if hi - lo > FPS_RELATIVE_TOLERANCE * hi:
        listed = ", ".join(f"{n} {r:g} fps" for n, r in rates.items())
        raise VideoBagError(f"the videos differ in frame rate ({listed}); give --fps to stamp them all at one rate")
    return next(iter(rates.values()))


def is_resized_copy(size: tuple[int, int], of_size: tuple[int, int], tolerance_px: float = SIZE_TOLERANCE_PX) -> bool:
    """Whether a (W, H) ``size`` is ``of_size`` resized as a whole: one factor gives both sides within
    ``tolerance_px`` (the factor taken from the longer side, the more precise one)."""
    (w, h), (w0, h0) = size, of_size
    s = w / w0 if w0 >= h0 else h / h0
    return abs(s * w0 - w) <= tolerance_px and abs(s * h0 - h) <= tolerance_px


def output_size(name: str, video_size: tuple[int, int], scale: float | None = None,
                size_px: tuple[int, int] | None = None) -> tuple[int, int]:
    """The bag's image size for one camera: the video's, ``scale`` times it, or ``size_px`` (same aspect)."""
    w, h = video_size
    if scale is not None:
        if not scale > 0:
            raise VideoBagError(f"--scale must be > 0, got {scale}")
        out = (max(1, round(w * scale)), max(1, round(h * scale)))
    elif size_px is not None:
        out = (int(size_px[0]), int(size_px[1]))
        if min(out) < 1:
            raise VideoBagError(f"--size must be positive, got {out[0]}x{out[1]}")
        if not is_resized_copy(out, video_size):
            raise VideoBagError(f"--size {out[0]}x{out[1]} does not keep camera '{name}''s aspect ({w}x{h}); "
                                "use --scale or a size of the same aspect")
    else:
        out = (w, h)
    return out


def camera_for_video(camera: Camera, video: VideoInfo, size_px: tuple[int, int]) -> Camera:
    """The calibration of ``camera`` for the video's frames resized to ``size_px`` (W, H).

    The video must be the calibrated image resized as a whole (:func:`is_resized_copy`); otherwise the
    pixel geometry is unknown (a crop, padding) and the error names the camera and both sizes.
    """
    if not is_resized_copy(video.size, camera.size):
        (w, h), (cw, ch) = video.size, camera.size
        raise VideoBagError(
            f"camera '{camera.name}': {video.path} is {w}x{h} but the calibration is {cw}x{ch}, and "
            f"{w}x{h} is not {cw}x{ch} resized (aspect {w / h:.4f} vs {cw / ch:.4f}); calibrate the camera "
            "at the video's size, or bring the video back to the calibrated geometry first")
    return scaled_camera(camera, *size_px)


# -------------------------------------------------------------------------------------------- clock
@dataclass(frozen=True)
class Clock:
    """The common clock: stamps of common frame indices, and which indices are written."""

    fps: float
    t0_ns: int = DEFAULT_START_NS
    """Stamp of common index 0 (default: the fixed epoch ``kp3d synth`` uses, for reproducible bags)."""
    start_s: float | None = None
    """First time written, seconds on the common clock (None: the earliest frame of any camera)."""
    end_s: float | None = None
    """Times from here on are not written (None: until every video ends)."""
    stride: int = 1
    """Keep every stride-th common index from the first."""

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise VideoBagError(f"--fps must be > 0, got {self.fps}")
        if int(self.stride) < 1:
            raise VideoBagError(f"--stride must be >= 1, got {self.stride}")
        if self.start_s is not None and self.end_s is not None and not self.end_s > self.start_s:
            raise VideoBagError(f"--end ({self.end_s} s) must be after --start ({self.start_s} s)")

    def stamp_ns(self, index: int) -> int:
        """Stamp of common frame index ``index``, integer nanoseconds."""
        return int(self.t0_ns) + round(index * 1e9 / self.fps)

    def _index_at(self, seconds: float) -> int:
        # the first index at or after `seconds`; the epsilon absorbs 1.0 * 30 = 30.000000000000004
        return math.ceil(seconds * self.fps - 1e-6)

    def first_index(self, offsets_frames: dict[str, int]) -> int:
        """The first common index written: at --start, else the earliest frame of any camera."""
        if self.start_s is not None:
            return self._index_at(self.start_s)
        return min(-o for o in offsets_frames.values())

    def end_index(self) -> int | None:
        """The first common index not written (None: no end)."""
        return None if self.end_s is None else self._index_at(self.end_s)

    def frames_written(self, offset_frames: int, frame_count: int, first: int) -> int:
        """How many of a camera's ``frame_count`` frames fall on written indices (for the progress bar)."""
        end = self.end_index()
        lo, hi = max(first, -offset_frames), frame_count - offset_frames
        hi = hi if end is None else min(hi, end)
        if hi <= lo:
            return 0
        lo = first + math.ceil((lo - first) / self.stride) * self.stride
        return max(0, math.ceil((hi - lo) / self.stride))


# ------------------------------------------------------------------------------------------ writing
@dataclass(frozen=True)
class CameraStream:
    """One camera's video and what goes into the bag for it."""

    name: str
    video: VideoInfo
    camera: Camera
    """Calibration at the output size (CameraInfo and the image size of the bag)."""
    offset_frames: int = 0


@dataclass
class BagSummary:
    """What :func:`write_bag` wrote."""

    bag: Path
    cameras: list[str]
    frames: dict[str, int]
    fps: float
    offsets_frames: dict[str, int]
    sizes_px: dict[str, tuple[int, int]]
    first_stamp_ns: int | None = None
    last_stamp_ns: int | None = None
    offset_reference: str | None = None
    """The camera auto offsets refer to (None: offsets were given)."""
    offset_estimates: dict[str, OffsetEstimate] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Seconds from the first stamp to the last."""
        if self.first_stamp_ns is None:
            return 0.0
        return (self.last_stamp_ns - self.first_stamp_ns) / 1e9

    def to_json(self) -> dict:
        """The one-line JSON report of ``kp3d bag from-videos``."""
        out = {
            "bag": str(self.bag.resolve()),
            "cameras": self.cameras,
            "frames": self.frames,
            "fps": self.fps,
            "offsets_frames": self.offsets_frames,
            "size_px": {n: list(s) for n, s in self.sizes_px.items()},
            "duration_s": round(self.duration_s, 6),
        }
        if self.offset_reference is not None:
            out["offset_reference"] = self.offset_reference
            out["offset_confidence"] = {
                n: {"correlation": round(e.correlation, 4),
                    "peak_ratio": round(e.peak_ratio, 4) if math.isfinite(e.peak_ratio) else None}
                for n, e in self.offset_estimates.items()}
        return out


def prepare_output(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready to become the bag folder: absent, or an empty folder (removed, BagWriter makes it).

    A non-empty folder is replaced only with ``overwrite`` and only if it is a bag (has metadata.yaml),
    so a mistyped --out never deletes other work.
    """
    if out.exists() and not out.is_dir():
        raise VideoBagError(f"--out {out}: is a file; give the folder the bag should be")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise VideoBagError(f"--out {out}: exists and is not empty (use --overwrite to replace a bag there)")
        if not (out / "metadata.yaml").is_file():
            raise VideoBagError(f"--out {out}: --overwrite replaces only a bag folder (with metadata.yaml), "
                                "and this folder holds other files")
        shutil.rmtree(out)
    elif out.is_dir():
        out.rmdir()
    out.parent.mkdir(parents=True, exist_ok=True)


def to_output_rgb(frame_bgr: np.ndarray, size_px: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (h, w, 3) uint8 RGB at ``size_px`` (w, h), resized with cv2.resize (the pixel
    convention of :mod:`kp3d_core.camera_scale`): area averaging when shrinking, bilinear otherwise."""
    rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    if (w, h) == tuple(size_px):
        return rgb
    shrink = size_px[0] < w and size_px[1] < h
    return cv2.resize(rgb, tuple(size_px), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def write_bag(streams: list[CameraStream], out: str | Path, clock: Clock, storage: str = "mcap",
              overwrite: bool = False, progress: bool = True) -> BagSummary:
    """Write the bag folder ``out`` (metadata.yaml at its top level) from the streams on ``clock``.

    Messages go in stamp order: for each written common index, every camera that has that frame.
    """
    from tqdm import tqdm

    if storage not in STORAGES:
        raise VideoBagError(f"--storage must be one of {STORAGES}, got '{storage}'")
    out = Path(out)
    offsets = {s.name: s.offset_frames for s in streams}
    first, end = clock.first_index(offsets), clock.end_index()
    if clock.stamp_ns(first) < 0:
        raise VideoBagError(f"--t0 {clock.t0_ns / 1e9} s: the first stamps would be negative")
    total = None  # unknown when a container states no frame count
    if all(s.video.frame_count > 0 for s in streams):
        total = sum(clock.frames_written(s.offset_frames, s.video.frame_count, first) for s in streams)
        if total == 0:
            raise VideoBagError(f"--out {out}: no frame lies between --start and --end (nothing to write)")
    prepare_output(out, overwrite)
    summary = BagSummary(out, [s.name for s in streams], {s.name: 0 for s in streams}, clock.fps, offsets,
                         {s.name: s.camera.size for s in streams})
    readers = {s.name: FrameReader(s.video) for s in streams}
    live = {s.name for s in streams}
    try:
        with BagWriter(out, storage=storage) as bag, tqdm(total=total, unit="frame", desc=f"bag {out.name}",
                                                          disable=not progress) as bar:
            for s in streams:
                bag.add_camera(s.name)
            index = first
            while live and (end is None or index < end):
                stamp = clock.stamp_ns(index)
                for s in streams:
                    frame_index = index + s.offset_frames
                    if s.name not in live or frame_index < 0:
                        continue  # ended, or not started yet on the common clock
                    frame = readers[s.name].read_bgr(frame_index)
                    if frame is None:
                        live.discard(s.name)
                        continue
                    bag.write_image(s.name, stamp, to_output_rgb(frame, s.camera.size), s.camera)
                    summary.frames[s.name] += 1
                    if summary.first_stamp_ns is None:
                        summary.first_stamp_ns = stamp
                    summary.last_stamp_ns = stamp
                    bar.update(1)
                index += clock.stride
    finally:
        for reader in readers.values():
            reader.close()
    if summary.first_stamp_ns is None:
        raise VideoBagError(f"--out {out}: no frame lies between --start and --end; the bag is empty")
    return summary


# ------------------------------------------------------------------------------------------- the job
@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``kp3d bag from-videos`` takes besides the rig, the videos and the output folder."""

    cameras: tuple[str, ...] | None = None
    """The rig camera of each video, in video order (None: matched by file name)."""
    scale: float | None = None
    """Resize the images by this factor (CameraInfo scaled with them)."""
    size_px: tuple[int, int] | None = None
    """Resize the images to this (width, height); must keep every video's aspect."""
    fps: float | None = None
    """Frame rate of every video (None: their own, which must agree)."""
    offsets_frames: dict[str, int] | None = None
    """Per camera frame offsets (cameras not named: 0)."""
    auto_offset: SyncConfig | None = None
    """Estimate the offsets from motion energy with this configuration (exclusive with offsets_frames)."""
    reference: str | None = None
    """Camera of the auto offset estimate's clock (None: the first video's)."""
    start_s: float | None = None
    end_s: float | None = None
    stride: int = 1
    t0_ns: int = DEFAULT_START_NS
    storage: str = "mcap"
    overwrite: bool = False


def _given_offsets(offsets: dict[str, int] | None, names: list[str]) -> dict[str, int]:
    offsets = dict(offsets or {})
    for name in offsets:
        if name not in names:
            raise VideoBagError(f"--offset: camera '{name}' has no video (cameras: {names})")
    return {n: int(offsets.get(n, 0)) for n in names}


def auto_offsets(videos: dict[str, VideoInfo], reference: str, config: SyncConfig, fps: float,
                 clock: Clock, progress: bool = True) -> dict[str, OffsetEstimate]:
    """Estimate every camera's offset from the motion energy of its frames in the --start/--end window
    (the same frame indices of every video: the lag search covers their offsets)."""
    from tqdm import tqdm

    first = max(0, clock.first_index({reference: 0}))
    end = clock.end_index()
    num = None if end is None else max(0, end - first)
    energy = {name: video_motion_energy(v.path, config.width_px, first, num)
              for name, v in tqdm(videos.items(), desc="motion energy", unit="video", disable=not progress)}
    needed = frames_needed(config, fps)
    for name, signal in energy.items():
        if signal.size + 1 < needed:
            raise VideoBagError(
                f"--auto-offset: camera '{name}' has {signal.size + 1} frames in the --start/--end window, the "
                f"estimate needs {needed} ({config.min_overlap_frames} compared + the lag window of "
                f"{needed - config.min_overlap_frames - 1}); use longer videos or a smaller --max-offset")
    return estimate_offsets(energy, reference, config, fps)


def refusal(estimates: dict[str, OffsetEstimate], config: SyncConfig) -> str | None:
    """The one-line error for estimates below the thresholds, or None when all are accepted."""
    refused = [e for e in estimates.values() if not e.accepted]
    if not refused:
        return None
    listed = ", ".join(f"{e.camera} ({e.offset_frames:+d} frames, correlation {e.correlation:.2f}, "
                       f"peak ratio {e.peak_ratio:.2f})" for e in refused)
    return (f"--auto-offset: no reliable offset for {listed}; thresholds: correlation >= {config.min_correlation}, "
            f"peak ratio >= {config.min_peak_ratio}. Record whole-body motion every camera sees (a few jumps), "
            "narrow --max-offset, or give --offset CAMERA=FRAMES")


def videos_to_bag(rig: Rig, videos: list[Path], out: str | Path, options: ConvertOptions = ConvertOptions(),
                  progress: bool = True, log: Callable[[str], None] | None = None) -> BagSummary:
    """The whole job: match, check sizes, settle offsets and write the bag. ``log`` gets the auto
    offset estimates (default: stderr)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    videos = [Path(v) for v in videos]
    names = match_cameras(videos, rig.names, list(options.cameras) if options.cameras else None)
    infos = {name: probe_video(path) for name, path in zip(names, videos)}
    fps = common_fps(infos, options.fps)
    cameras = {n: camera_for_video(rig[n], v, output_size(n, v.size, options.scale, options.size_px))
               for n, v in infos.items()}
    clock = Clock(fps, int(options.t0_ns), options.start_s, options.end_s, int(options.stride))
    estimates: dict[str, OffsetEstimate] = {}
    reference = None
    if options.auto_offset is not None:
        if options.offsets_frames:
            raise VideoBagError("give either --offset or --auto-offset, not both")
        reference = options.reference or names[0]
        if reference not in names:
            raise VideoBagError(f"--reference: camera '{reference}' has no video (cameras: {names})")
        estimates = auto_offsets(infos, reference, options.auto_offset, fps, clock, progress)
        for e in estimates.values():
            log(f"auto offset {e.describe()}")
        problem = refusal(estimates, options.auto_offset)
        if problem:
            raise VideoBagError(problem)
        offsets = {n: estimates[n].offset_frames if n != reference else 0 for n in names}
    else:
        offsets = _given_offsets(options.offsets_frames, names)
    streams = [CameraStream(n, infos[n], cameras[n], offsets[n]) for n in names]
    summary = write_bag(streams, out, clock, options.storage, options.overwrite, progress)
    summary.offset_reference, summary.offset_estimates = reference, estimates
    return summary
