"""The run-time pipeline behind the ROS node, ROS-free: images in, one result per synchronised set out.

Producer side (called from image callbacks; cheap, never blocks on inference):

* :meth:`Pipeline.add_image` checks an image's fields against the calibration (no pixel access) and
  pushes ``(image, arrival)`` into the synchroniser (:class:`kp3d_core.sync.ApproximateTimeSync`); each
  set it completes goes into the worker's mailbox (:mod:`kp3d_core.mailbox`): the latest set only
  (live cameras) or every set in order (``every_set``, for a recording replayed reliably);
* :meth:`Pipeline.camera_info` takes a camera's CameraInfo fields: with ``intrinsics_from_camera_info``
  they replace the rig file's intrinsics (the worker rebuilds the estimator), otherwise a disagreement
  with the rig file is reported as an input error.

Worker side (one thread, :meth:`Pipeline.start` / :meth:`Pipeline.stop`): decode the set's images
(``kp3d_core.image_encoding``: rgb8/bgr8/mono8/rgba8/bgra8, honouring ``step``), run
:class:`~kp3d_core.inference.estimator.MultiViewEstimator`, draw overlays if asked
(:mod:`kp3d_core.inference.overlay`) and hand a :class:`PipelineResult` to the ``publish`` callback.
:meth:`Pipeline.report` gives counters and diagnostic levels (:mod:`kp3d_core.inference.health`).

Images are any object with ``height``, ``width``, ``encoding``, ``step`` and ``data`` (an rclpy or
rosbags ``sensor_msgs/Image``). Stamps are integer nanoseconds, times monotonic seconds.

Example::

    est = build_estimator(EstimatorSettings(), rig)
    pipe = Pipeline(est, PipelineConfig(slop_s=0.01), publish=print, topics={"cam0": "/cam0/image_raw", ...})
    pipe.start()
    pipe.add_image("cam0", stamp_ns, image_msg)       # from each camera's callback
    pipe.report("multicam_node").statuses            # for /diagnostics
    pipe.stop()
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..background import load_stored_backgrounds
from ..camera import CalibrationError, Camera
from ..filters import OneEuroFilter
from ..image_encoding import SUPPORTED_ENCODINGS, image_msg_to_rgb
from ..mailbox import FifoQueue, LatestSlot
from ..sync import ApproximateTimeSync
from .estimator import Estimate, MultiViewEstimator
from .health import HealthConfig, HealthReport, PipelineHealth, contamination_advice
from .overlay import draw_keypoints
from .predictor import PredictorConfig

_log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ estimator
@dataclass(frozen=True)
class EstimatorSettings:
    """What the node's ``model.*`` and ``smoothing.*`` parameters choose."""

    model: Path | None = None
    """Checkpoint (.pt) or ONNX file; None: the shipped model."""
    backend: str = "auto"
    """Inference backend (:func:`kp3d_core.inference.backends.create_backend`)."""
    device: str = "cpu"
    """Torch device of the torch backend."""
    backgrounds: Path | None = None
    """Folder of stored ``<camera>.png`` backgrounds; None: learnt from the first frames."""
    background_rate: float = 0.01
    """Blend rate of the running background where no person is, [0, 1)."""
    smoothing: bool = False
    """One Euro filter on the 3D keypoints before mapping."""
    min_cutoff_hz: float = 1.0
    """One Euro minimum cutoff, Hz."""
    beta: float = 50.0
    """One Euro speed coefficient, Hz per m/s."""


def make_smoother(settings: EstimatorSettings) -> OneEuroFilter | None:
    """A fresh One Euro filter with the settings, or None when smoothing is off."""
    return OneEuroFilter(min_cutoff=settings.min_cutoff_hz, beta=settings.beta) if settings.smoothing else None


def build_estimator(settings: EstimatorSettings, rig) -> MultiViewEstimator:
    """The estimator for ``rig`` (a :class:`~kp3d_core.rig.Rig` or a list of cameras).

    Raises FileNotFoundError / ValueError naming the file or camera (model, backgrounds), CheckpointError,
    BackendUnavailable.
    """
    cameras = list(getattr(rig, "cameras", rig))
    backgrounds = None if settings.backgrounds is None else load_stored_backgrounds(settings.backgrounds, cameras)
    return MultiViewEstimator.load(
        settings.model, cameras, backend=settings.backend, device=settings.device, smoothing=make_smoother(settings),
        backgrounds=backgrounds, predictor_config=PredictorConfig(background_rate=settings.background_rate),
    )


# ------------------------------------------------------------------------------------------ input checks
def image_problem(image, camera: Camera) -> tuple[str, str] | None:
    """Cheap check of an image's fields against the camera (no pixel access): (reason, text) or None.

    Reasons: ``unsupported_encoding``, ``size_mismatch`` (vs the calibration), ``bad_buffer``
    (``len(data) != height * step``). Decoding errors are caught later by the worker.
    """
    if image.encoding not in SUPPORTED_ENCODINGS:
        return "unsupported_encoding", (
            f"unsupported image encoding '{image.encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        )
    if (image.width, image.height) != (camera.width, camera.height):
        return "size_mismatch", (
            f"image {image.width}x{image.height} does not match the calibration {camera.width}x{camera.height}"
        )
    if len(image.data) != image.height * image.step:
        return "bad_buffer", f"image data has {len(image.data)} bytes, expected height*step = {image.height * image.step}"
    return None


def camera_info_mismatch(fields: dict, camera: Camera, rtol: float = 0.01) -> str | None:
    """How CameraInfo fields (``width``, ``height``, ``k``) disagree with the calibration, or None.

    K is compared within ``rtol`` (of fx for the offsets). An uncalibrated CameraInfo (k[0] == 0) is not a
    disagreement: the rig file is the calibration.
    """
    if (fields["width"], fields["height"]) != (camera.width, camera.height):
        return f"CameraInfo size {fields['width']}x{fields['height']} != calibration {camera.width}x{camera.height}"
    k = np.asarray(fields["k"], dtype=np.float64)
    if k.size == 9 and k[0] != 0.0 and not np.allclose(k.reshape(3, 3), camera.K, rtol=rtol, atol=rtol * camera.K[0, 0]):
        return f"CameraInfo K {k.round(2).tolist()} differs from the calibration {camera.K.reshape(-1).round(2).tolist()}"
    return None


# ------------------------------------------------------------------------------------------ pipeline
@dataclass(frozen=True)
class PipelineConfig:
    """Synchronisation, worker and health settings (the node's ``sync.*``, ``worker.*``, ``diagnostics.*``)."""

    slop_s: float = 0.010
    """Largest spread of the stamps within one set, seconds."""
    min_cameras: int = 2
    """Fewest cameras in a (partial) set."""
    queue_size: int = 30
    """Per-camera queue of the synchroniser. It must hold more than the synchroniser's dead-camera timeout
    (0.5 s of stamps) or the live cameras' messages overflow while a dead camera is still waited for:
    30 is 1 s at 30 fps."""
    every_set: bool = False
    """Process every synchronised set in order (a FIFO of ``max_pending_sets``) instead of only the latest."""
    max_pending_sets: int = 60
    """With ``every_set``: sets waiting for the worker; beyond, the oldest is dropped ('slot_overflow')."""
    intrinsics_from_camera_info: bool = False
    """Take K, distortion and size from each camera's CameraInfo; sets wait ('waiting_camera_info') until all came."""
    health: HealthConfig = field(default_factory=HealthConfig)

    def __post_init__(self) -> None:
        if not self.slop_s > 0:
            raise ValueError(f"PipelineConfig.slop_s must be > 0, got {self.slop_s}")
        for name in ("min_cameras", "queue_size", "max_pending_sets"):
            if getattr(self, name) < 1:
                raise ValueError(f"PipelineConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class PipelineResult:
    """One processed set, handed to ``publish``.

    Attributes:
        stamp_ns: the set's stamp (every output carries it).
        estimate: the estimator's :class:`~kp3d_core.inference.estimator.Estimate` (empty when rejected).
        overlays: camera -> (H, W, 3) uint8 RGB with the 2D keypoints drawn (only when ``draw_overlays``).
        frame_ids: camera -> optical frame id of its calibration (for the overlays).
    """

    stamp_ns: int
    estimate: Estimate
    overlays: dict = field(default_factory=dict)
    frame_ids: dict = field(default_factory=dict)


class Pipeline:
    """Synchroniser + worker + estimator of one rig (see the module docstring).

    Args:
        estimator: the estimator; its cameras are the pipeline's cameras, in order.
        config: :class:`PipelineConfig`.
        publish: called from the worker thread with each :class:`PipelineResult`.
        topics: camera -> the name of its image source, used in messages (default: the camera name).
        log: called with a line for each unexpected error of the worker (default: this module's logger).
        clock: monotonic seconds.
        warn: called with a line when a camera's background starts or stops looking contaminated (default: this
            module's logger); while it does, the camera's status WARNs with what to do.

    Attributes:
        draw_overlays: draw the 2D keypoints into each view for ``PipelineResult.overlays`` (changeable).
    """

    def __init__(self, estimator: MultiViewEstimator, config: PipelineConfig,
                 publish: Callable[[PipelineResult], None], topics: dict | None = None,
                 log: Callable[[str], None] | None = None, clock=time.monotonic,
                 warn: Callable[[str], None] | None = None) -> None:
        self.estimator = estimator
        self.config = config
        self.cameras = [c.name for c in estimator.cameras]
        if config.min_cameras > len(self.cameras):
            raise ValueError(f"min_cameras {config.min_cameras} > number of cameras {len(self.cameras)}")
        self.topics = {c: (topics or {}).get(c, c) for c in self.cameras}
        self._publish = publish
        self._log = log or _log.error
        self._warn = warn or _log.warning
        self._clock = clock
        self._calib: dict[str, Camera] = {c.name: c for c in estimator.cameras}
        self._extrinsics = {c.name: c.T_world_cam for c in estimator.cameras}
        self.sync = ApproximateTimeSync(self.cameras, int(round(config.slop_s * 1e9)), config.min_cameras,
                                        config.queue_size)
        self._sync_lock = threading.Lock()
        self._sync_resets = 0
        self.queue = FifoQueue(config.max_pending_sets) if config.every_set else LatestSlot()
        self.health = PipelineHealth(self.cameras, self.topics, config.health, clock)
        self.draw_overlays = False
        self._info_seen: dict[str, tuple] = {}
        self._info_cams: dict[str, Camera] = {}
        self._rebuild = threading.Event()
        self._reset_estimator = threading.Event()
        self._calibrated = not config.intrinsics_from_camera_info
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._work, name="kp3d-worker", daemon=True)

    def calibration(self, camera: str) -> Camera:
        """The calibration in use for ``camera`` (from its CameraInfo once taken)."""
        return self._calib[camera]

    # ------------------------------------------------------------------------------ producer side
    def add_image(self, camera: str, stamp_ns: int, image, arrival: float | None = None) -> None:
        """One image of ``camera`` stamped ``stamp_ns`` (see the module docstring); O(1) plus the synchroniser."""
        arrival = self._clock() if arrival is None else arrival
        problem = image_problem(image, self._calib[camera])
        if problem is not None:
            reason, text = problem
            self.health.error(camera, reason, f"{self.topics[camera]}: {text}")
            self.health.image_arrived(camera, arrival)
            return
        with self._sync_lock:
            sets = self.sync.add(camera, stamp_ns, (image, arrival))
            if self.sync.resets != self._sync_resets:  # time jumped back (bag loop): forget the track
                self._sync_resets = self.sync.resets
                self._reset_estimator.set()
            self.health.image_arrived(camera, arrival)
            self.health.sets_synchronised(len(sets))  # before the worker can see them: out + drops <= in
            for s in sets:
                self.queue.put(s)

    def camera_info(self, camera: str, fields: dict) -> None:
        """A camera's CameraInfo as plain fields (``width``, ``height``, ``k``, ``d``, ``distortion_model``,
        ``frame_id``); only a change is looked at."""
        key = (fields["width"], fields["height"], tuple(fields["k"]), tuple(fields["d"]))
        if self._info_seen.get(camera) == key:
            return
        self._info_seen[camera] = key
        if not self.config.intrinsics_from_camera_info:
            problem = camera_info_mismatch(fields, self._calib[camera])
            if problem is not None:
                self.health.error(camera, "camera_info_mismatch", problem)
            return
        try:
            cam = Camera.from_camera_info_fields(camera, fields, self._extrinsics[camera])
        except CalibrationError as exc:  # uncalibrated (K[0] == 0) or malformed
            self.health.error(camera, "camera_info_invalid", str(exc))
            return
        self._info_cams[camera] = cam
        if len(self._info_cams) == len(self.cameras):
            self._rebuild.set()

    def set_smoothing(self, settings: EstimatorSettings) -> None:
        """A fresh smoothing filter with new settings (or none) for the next sets."""
        self.estimator.smoothing = make_smoother(settings)

    # ------------------------------------------------------------------------------ worker
    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the worker after the set it is on and wait for it; True if it ended within ``timeout``.
        Nothing is published after this returns True."""
        self._stop.set()
        self.queue.close()
        if self._worker.is_alive():
            self._worker.join(timeout)
        return not self._worker.is_alive()

    @property
    def idle(self) -> bool:
        """No set waits for the worker and every set taken is published or counted as dropped."""
        h = self.health
        return not self.queue.pending and h.sets_out + sum(h.drops.values()) + self.queue.dropped >= h.sets_in

    def _work(self) -> None:
        while not self._stop.is_set():
            s = self.queue.get(timeout=0.1)
            if s is None or self._stop.is_set():
                continue
            try:
                self._process(s)
            except Exception as exc:  # keep the pipeline up; report it, and count the set as dropped
                self.health.dropped("exception")
                self.health.error("pipeline", "exception", f"{type(exc).__name__}: {exc}")
                self._log(f"set {s.stamp_ns}: {type(exc).__name__}: {exc}")

    def _use_camera_infos(self) -> None:
        cams = [self._info_cams[c] for c in self.cameras]
        self.estimator = self.estimator.with_cameras(cams)
        self._calib = {c.name: c for c in cams}
        self._calibrated = True

    def _process(self, s) -> None:
        """Decode, estimate and publish one synchronised set (``s.items``: camera -> (image, arrival))."""
        if self._rebuild.is_set():
            self._rebuild.clear()
            self._use_camera_infos()
        if not self._calibrated:
            self.health.dropped("waiting_camera_info")
            return
        if self._reset_estimator.is_set():
            self._reset_estimator.clear()
            self.estimator.reset()
        images: dict[str, np.ndarray] = {}
        last_arrival = max(arrival for _, arrival in s.items.values())
        for cam, (image, _) in s.items.items():
            try:
                rgb = image_msg_to_rgb(image)
            except ValueError as exc:
                self.health.error(cam, "bad_image", f"{self.topics[cam]}: {exc}")
                continue
            calib = self._calib[cam]
            if rgb.shape[:2] != (calib.height, calib.width):
                self.health.error(cam, "size_mismatch", f"{self.topics[cam]}: image {rgb.shape[1]}x{rgb.shape[0]} "
                                                        f"does not match the calibration {calib.width}x{calib.height}")
                continue
            images[cam] = rgb
        if len(images) < self.config.min_cameras:
            self.health.dropped("bad_images")
            return
        est = self.estimator.process(images, s.stamp_ns)
        self._check_backgrounds()
        overlays = {}
        if self.draw_overlays:
            overlays = {c: draw_keypoints(images[c], est.keypoints2d[v], est.confidence[v])
                        for v, c in enumerate(self.cameras) if c in images}
        frame_ids = {c: self._calib[c].frame_id for c in overlays}
        self._publish(PipelineResult(s.stamp_ns, est, overlays, frame_ids))
        self.health.published(last_arrival, est.timings.get("total", float("nan")), est.rejected, est.single_view)

    def _check_backgrounds(self) -> None:
        """Hand each camera's background state to the health report; log a line when it changes."""
        pred = self.estimator.predictor
        stored = pred.stored_backgrounds
        for v, (cam, flagged) in enumerate(zip(self.cameras, pred.contamination)):
            problem = contamination_advice(cam, pred.monitor.reasons(v), stored) if flagged else None
            if self.health.background(cam, problem):
                self._warn(problem or f"background of camera {cam} looks clean again")

    # ------------------------------------------------------------------------------ health
    def report(self, source: str) -> HealthReport:
        """Counters and statuses now; ``source`` is the pipeline status's hardware id (e.g. the node's name)."""
        with self._sync_lock:
            sync_stats = self.sync.stats()
        return self.health.report(sync_stats, self.queue.counters, source, self.config.slop_s)
