"""Run the estimator over a recording and keep, per frame, the arrays the label-free figures need.

The run-time estimator (:class:`~kp3d_core.inference.estimator.MultiViewEstimator`) processes the bag's
synchronised frames in order, exactly as the node would (the same background warm-up, tracking and
plausibility gate). Beside each :class:`~kp3d_core.inference.estimator.Estimate` this keeps the crop
boxes (the estimate's) and, once the background is ready, each view's label-free
foreground mask against the background the predictor used for that frame: the distance of every 2D
keypoint to it, its area, and the share of it outside the crop box (a ghost the background holds where
the person stood during its warm-up is a second silhouette beside the person). While the predictor learns its
background (no stored one), the frames it learns from are kept small, to measure how much of the view moved
meanwhile: a person in view then leaves a ghost in the background. A few frames spread evenly over the
recording are kept whole for the montages.

Example::

    est = build_estimator(rig)                      # the shipped model, backgrounds learnt from the first frames
    run = run_check("out/take1", rig, est, max_frames=300)
    run.keypoints2d.shape     # (T, V, K, 2) raw pixels
    run.rejected[:3]          # ['background_warmup', 'background_warmup', None]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..background import load_stored_backgrounds
from ..bagio import BagError, read_camera_frames
from ..camera import CalibrationError
from ..checkpoint import CheckpointError
from ..cli_args import UsageError
from ..crop import foreground_mask
from ..inference.estimator import MultiViewEstimator
from ..inference.pipeline import camera_info_mismatch
from ..inference.predictor import PredictorConfig
from ..rig import Rig
from ..skeleton import NUM_JOINTS
from .figures import distance_to_mask, moving_fraction, outside_box


@dataclass
class ViewSample:
    """One view of a frame kept for the montage (raw image pixels)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    background: np.ndarray  # (H, W, 3) uint8 RGB, the one the predictor used
    mask: np.ndarray  # (H, W) uint8 {0, 1}, label-free foreground
    keypoints2d: np.ndarray  # (K, 2), NaN when not found
    confidence: np.ndarray  # (K,)
    box: np.ndarray  # (3,) [cx, cy, side], NaN when not found


@dataclass
class FrameSample:
    """A frame kept for the montage: its index among the processed frames, why it was rejected, its views."""

    index: int
    rejected: str | None
    views: list[ViewSample]


@dataclass
class CheckRun:
    """Per-frame arrays of one run (``T`` processed frames, ``V`` cameras in rig order, ``K`` keypoints).

    Attributes:
        bag: the bag folder; cameras: camera names; image_sizes: (V, 2) (width, height) pixels.
        P: (V, 3, 4) projection matrices (world metres -> ideal pixels); rig: the cameras.
        stamps_ns: (T,) set stamps; frame_index: (T,) index of each frame among the bag's synchronised sets.
        keypoints2d: (T, V, K, 2) raw pixels, NaN where not found; confidence: (T, V, K); found: (T, V).
        boxes: (T, V, 3) crop boxes [cx, cy, side] raw pixels, NaN where not found.
        rejected: T entries, None or the estimator's reason (``background_warmup``, ``reprojection``).
        valid: (T, K) valid 3D keypoints; poses: (T, 17, 3) metres, NaN rows where no pose.
        estimator_error: (T,) the estimator's median reprojection error, crop-box sides.
        analysed: (T,) the background was ready (the foreground figures exist for the frame).
        fg_distance: (T, V, K) pixels from each keypoint to the foreground mask (0: on it); NaN where not
            found or not analysed.
        fg_area: (T, V) foreground fraction of the image; NaN where not analysed.
        warmup_moving: (V,) fraction of the image where something moved during the background warm-up (frames
            compared at most 240 px on the shorter side); NaN without a warm-up (stored backgrounds).
        fg_outside: (T, V) share of the foreground outside the crop box (1 when no box); NaN where not analysed
            or there is no foreground.
        has_mapping: the model maps keypoints to a pose (an ONNX file does not).
        stored_backgrounds: the predictor started from stored backgrounds (else it learnt them from the first frames).
        samples: frames kept whole for the montage; notes: camera -> remarks (e.g. CameraInfo disagreeing).
        timings_ms: (T,) the estimator's time per frame; backend: the backend's name; seconds: wall time.
    """

    bag: Path
    cameras: list[str]
    image_sizes: np.ndarray
    P: np.ndarray
    rig: Rig
    stamps_ns: np.ndarray
    frame_index: np.ndarray
    keypoints2d: np.ndarray
    confidence: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    rejected: list
    valid: np.ndarray
    poses: np.ndarray
    estimator_error: np.ndarray
    analysed: np.ndarray
    fg_distance: np.ndarray
    fg_area: np.ndarray
    fg_outside: np.ndarray
    warmup_moving: np.ndarray
    has_mapping: bool
    stored_backgrounds: bool
    samples: list = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    timings_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    backend: str = ""
    seconds: float = 0.0

    @property
    def num_frames(self) -> int:
        return len(self.stamps_ns)


class EvenSampler:
    """Keep at most ``2 * n`` items spread evenly over a stream of unknown length.

    Items whose position is a multiple of ``step`` are kept; when more than ``2 * n`` are held the step
    doubles and every other item is dropped. :meth:`items` then returns ``n`` of them, evenly spaced.
    """

    def __init__(self, n: int):
        if n < 0:
            raise ValueError(f"EvenSampler: n must be >= 0, got {n}")
        self.n, self.step, self.seen, self._kept = int(n), 1, 0, []

    def wants(self) -> bool:
        """Whether the next item would be kept (so that a caller builds it only then)."""
        return self.n > 0 and self.seen % self.step == 0

    def offer(self, make) -> None:
        """Count one item; keep ``make()`` if :meth:`wants` said so."""
        if self.wants():
            self._kept.append((self.seen, make()))
            if len(self._kept) > 2 * self.n:
                self.step *= 2
                self._kept = [(i, x) for i, x in self._kept if i % self.step == 0]
        self.seen += 1

    def items(self) -> list:
        if len(self._kept) <= self.n:
            return [x for _, x in self._kept]
        pick = np.unique(np.round(np.linspace(0, len(self._kept) - 1, self.n)).astype(int))
        return [self._kept[i][1] for i in pick]


def _small(image: np.ndarray, side: int = 240) -> np.ndarray:
    """A copy with the shorter side at most ``side`` pixels."""
    f = side / min(image.shape[:2])
    if f >= 1.0:
        return image.copy()
    return cv2.resize(image, (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f))),
                      interpolation=cv2.INTER_AREA)


def build_estimator(rig: Rig, model: str | Path | None = None, backend: str = "auto",
                    backgrounds: str | Path | None = None,
                    predictor_config: PredictorConfig = PredictorConfig()) -> MultiViewEstimator:
    """The run-time estimator for ``rig`` with the node's defaults; ``backgrounds``: a folder of ``<camera>.png``.

    Raises CheckpointError for a missing model file, FileNotFoundError / UsageError naming a background file.
    """
    if model is not None and not Path(model).is_file():
        raise CheckpointError(f"{model}: checkpoint file not found")
    stored = None
    if backgrounds is not None:
        if not Path(backgrounds).is_dir():
            raise FileNotFoundError(f"--backgrounds {backgrounds}: not a folder (expected <camera>.png per camera)")
        try:
            stored = load_stored_backgrounds(backgrounds, rig.cameras)
        except ValueError as exc:  # a size that is not the camera's
            raise UsageError(f"--backgrounds: {exc}") from None
    return MultiViewEstimator.load(model, rig, backend=backend, backgrounds=stored, predictor_config=predictor_config)


def _check_frame(frame, rig: Rig, bag: Path, rig_source: str) -> dict:
    """Image sizes against the calibration (CalibrationError naming the camera); CameraInfo remarks."""
    notes = {}
    for cam in rig.cameras:
        img = frame.images[cam.name]
        if img.shape[:2] != (cam.height, cam.width):
            raise CalibrationError(
                f"{rig_source}: camera '{cam.name}' is calibrated for {cam.width}x{cam.height} but bag {bag} has "
                f"{img.shape[1]}x{img.shape[0]} images (calibrate at the recorded size, or scale the calibration)")
        problem = camera_info_mismatch(frame.infos[cam.name], cam)
        if problem:
            notes[cam.name] = f"the bag's {problem} (the rig file is used)"
    return notes


class _Rows:
    """Per-frame values appended frame by frame, stacked into a :class:`CheckRun` at the end."""

    KEYS = ("stamps", "index", "kp", "conf", "found", "boxes", "rejected", "valid", "pose", "err", "analysed",
            "fg_dist", "fg_area", "fg_out", "ms")

    def __init__(self):
        self.rows: dict[str, list] = {k: [] for k in self.KEYS}

    def __len__(self) -> int:
        return len(self.rows["stamps"])

    def add(self, index: int, est, boxes: np.ndarray, ready: bool, fg: tuple) -> None:
        pose = est.pose if est.pose is not None else np.full((NUM_JOINTS, 3), np.nan)
        values = (est.stamp_ns, index, est.keypoints2d, est.confidence, est.found, boxes, est.rejected, est.valid,
                  pose, est.reprojection_error, ready, *fg, est.timings.get("total", np.nan))
        for key, value in zip(self.KEYS, values):
            self.rows[key].append(value)

    def stacked(self) -> dict:
        r = self.rows
        return dict(
            stamps_ns=np.asarray(r["stamps"], np.int64), frame_index=np.asarray(r["index"], np.int64),
            keypoints2d=np.stack(r["kp"]).astype(np.float64), confidence=np.stack(r["conf"]).astype(np.float64),
            found=np.stack(r["found"]).astype(bool), boxes=np.stack(r["boxes"]).astype(np.float64),
            rejected=list(r["rejected"]), valid=np.stack(r["valid"]).astype(bool),
            poses=np.stack(r["pose"]).reshape(len(self), NUM_JOINTS, 3),
            estimator_error=np.asarray(r["err"], np.float64), analysed=np.asarray(r["analysed"], bool),
            fg_distance=np.stack(r["fg_dist"]), fg_area=np.stack(r["fg_area"]), fg_outside=np.stack(r["fg_out"]),
            timings_ms=np.asarray(r["ms"], np.float64))


def _foreground(images, backgrounds, boxes, est, params) -> tuple[list, tuple]:
    """Each view's mask, and (keypoint distances to it (V, K) px, its image share (V,), share outside the box (V,))."""
    V, K = est.keypoints2d.shape[:2]
    dist, area, outside = np.full((V, K), np.nan), np.full(V, np.nan), np.full(V, np.nan)
    masks = [foreground_mask(img, bg, params) for img, bg in zip(images, backgrounds)]
    for v, m in enumerate(masks):
        area[v] = float(m.mean())
        outside[v] = outside_box(m, boxes[v])
        if est.found[v]:
            dist[v] = distance_to_mask(est.keypoints2d[v], m)
    return masks, (dist, area, outside)


def _moving(warmup: list[list[np.ndarray]], V: int) -> np.ndarray:
    """(V,) :func:`moving_fraction` of each camera's warm-up frames."""
    return np.array([moving_fraction(np.stack([frames[v] for frames in warmup])) for v in range(V)])


def run_check(bag: str | Path, rig: Rig, estimator: MultiViewEstimator, *, max_frames: int | None = None,
              stride: int = 1, slop_ns: int = 0, montage_frames: int = 6, progress: bool = True,
              rig_source: str = "rig") -> CheckRun:
    """Process the bag's synchronised frames (every ``stride``-th, at most ``max_frames``) with ``estimator``.

    Args:
        bag: rosbag2 folder with ``/<camera>/image_raw`` + ``/<camera>/camera_info`` for every rig camera.
        rig: the calibration (the estimator's cameras, same order).
        estimator: a fresh estimator (e.g. :func:`build_estimator`); its state advances frame by frame.
        slop_ns: largest stamp spread within a synchronised frame (0: exact stamps).
        montage_frames: frames kept whole for the montages (after the background warm-up).
        rig_source: how error messages name the calibration (e.g. the rig file's path).

    Raises BagError (no camera topics, a rig camera missing, no synchronised frame), CalibrationError (an
    image size that is not the calibration's).
    """
    bag = Path(bag)
    if stride < 1 or (max_frames is not None and max_frames < 1) or montage_frames < 0:
        raise ValueError(f"run_check: stride {stride}, max_frames {max_frames}, montage_frames {montage_frames}")
    cams = list(rig.cameras)
    names = [c.name for c in cams]
    if [c.name for c in estimator.cameras] != names:
        raise ValueError(f"run_check: estimator cameras {[c.name for c in estimator.cameras]} != rig {names}")
    V = len(cams)
    predictor = estimator.predictor
    stored = predictor.background_ready  # before any frame: only stored backgrounds are ready
    every = max(predictor.config.background_warmup_stride, 1)
    rows, sampler, notes = _Rows(), EvenSampler(montage_frames), {}
    warmup: list[list[np.ndarray]] = []  # small copies of the frames the background is learnt from
    warmup_moving = np.full(V, np.nan)

    t_start = time.perf_counter()
    bar = tqdm(total=max_frames, desc="check", unit="frame", disable=not progress, leave=False)
    try:
        for i, frame in enumerate(read_camera_frames(bag, names, slop_ns=slop_ns)):
            if i % stride:
                continue
            if not len(rows):
                notes = _check_frame(frame, rig, bag, rig_source)
            images = [frame.images[n] for n in names]
            ready = predictor.background_ready
            if not ready and len(rows) % every == 0:  # the frames the predictor's warm-up median takes
                warmup.append([_small(img) for img in images])
            elif ready and warmup:
                warmup_moving, warmup = _moving(warmup, V), []
            bgs = [b.image() for b in predictor.backgrounds] if ready else None  # what this set is boxed against
            est = estimator.process(images, frame.stamp_ns)
            boxes = est.boxes
            fg = (np.full(est.keypoints2d.shape[:2], np.nan), np.full(V, np.nan), np.full(V, np.nan))
            if ready:
                masks, fg = _foreground(images, bgs, boxes, est, predictor.config.crop)
                sampler.offer(lambda n=len(rows): FrameSample(n, est.rejected, [
                    ViewSample(images[v], bgs[v], masks[v], est.keypoints2d[v], est.confidence[v], boxes[v])
                    for v in range(V)]))
            rows.add(i, est, boxes, ready, fg)
            bar.update()
            if max_frames is not None and len(rows) >= max_frames:
                break
    finally:
        bar.close()
    if warmup:  # the recording ended during the warm-up
        warmup_moving = _moving(warmup, V)
    if not len(rows):
        raise BagError(f"bag {bag}: no synchronised frame of cameras {names} (stamps differ by more than the slop "
                       f"of {slop_ns / 1e6:g} ms?)")
    return CheckRun(
        bag=bag, cameras=names, image_sizes=np.array([[c.width, c.height] for c in cams]),
        P=np.stack([c.P for c in cams]), rig=rig, **rows.stacked(), warmup_moving=warmup_moving,
        has_mapping=estimator.mapping is not None, stored_backgrounds=stored, samples=sampler.items(), notes=notes,
        backend=estimator.backend, seconds=time.perf_counter() - t_start)
