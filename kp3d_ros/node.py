"""``multicam_node``: N synchronised, calibrated camera streams in, 3D keypoints and the mapped pose out.

A thin adapter over kp3d_core (no maths here):

* image callbacks only hand ``(message, arrival time)`` to the ROS-free synchroniser
  (:class:`kp3d_core.sync.ApproximateTimeSync`); each complete set goes into a
  :class:`kp3d_core.mailbox.LatestSlot` (an older set not yet taken is dropped and counted);
* a worker thread takes the latest set, decodes the images (rgb8/bgr8/mono8, honouring ``step``),
  runs :class:`kp3d_core.inference.estimator.MultiViewEstimator` and publishes with the set's stamp;
* a timer publishes ``/diagnostics`` (output rate, latency p50/p95, drops by reason, cameras alive).

Topics (relative names, so ``--ros-args -r __ns:=/x`` moves them):
``~/markers`` (MarkerArray), ``~/pose`` (PoseArray, 17 joints), ``~/keypoints`` (PoseArray, K raw
keypoints), ``~/joint_names`` (std_msgs/String JSON, transient local), ``~/overlay/<camera>``
(Image, optional), ``/diagnostics``. Joint order and the missing-joint convention: kp3d_ros.convert.

Run: ``ros2 run kp3d_ros multicam_node --ros-args --params-file config/multicam.yaml`` (or the
``multicam_node`` console script of a pip install).
"""
from __future__ import annotations

import collections
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from kp3d_core.background import load_stored_backgrounds
from kp3d_core.camera import CalibrationError
from kp3d_core.checkpoint import CheckpointError
from kp3d_core.filters import OneEuroFilter
from kp3d_core.inference.estimator import MultiViewEstimator
from kp3d_core.inference.interface import BackendUnavailable
from kp3d_core.inference.predictor import Predictor, PredictorConfig
from kp3d_core.mailbox import LatestSlot
from kp3d_core.rig import Rig, load_rig
from kp3d_core.sync import ApproximateTimeSync

from . import convert

PACKAGE = "kp3d_ros"
REPO_ROOT = Path(__file__).resolve().parent.parent

ERROR_HOLD_S = 5.0  # an input error keeps the 'input' diagnostic at ERROR this long

BACKENDS = ("auto", "torch", "pytorch", "onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt")

# name -> (default, description, read_only). Validation: _validate().
PARAMETERS: dict[str, tuple[object, str, bool]] = {
    "cameras": (["cam0", "cam1", "cam2", "cam3"], "camera names, in rig order (keys of the rig file)", True),
    "image_topic_format": ("/{camera}/image_raw", "image topic of each camera; {camera} is replaced by its name", True),
    "camera_info_topic_format": ("/{camera}/camera_info", "CameraInfo topic of each camera ({camera} as above)", True),
    "rig_file": ("config/studio_rig.yaml", "rig file (kp3d_core.rig YAML): intrinsics and T_world_cam per camera", True),
    "intrinsics_from_camera_info": (
        False, "take K, distortion and image size from each camera's CameraInfo (the rig file then gives only "
        "the extrinsics); sets are dropped ('waiting_camera_info') until every camera sent one", True,
    ),
    "world_frame": ("world", "frame_id of every 3D output (the rig's world frame)", True),
    "image_qos": ("sensor_data", "image subscription QoS: sensor_data (best effort) or reliable", True),
    "sync.slop_s": (0.010, "maximum spread of header stamps within one synchronised set, seconds", True),
    "sync.min_cameras": (2, "minimum number of cameras in a (partial) set", True),
    "sync.queue_size": (10, "per-camera queue length of the synchroniser", True),
    "model.path": ("", "model checkpoint (.pt) or ONNX file; empty: the shipped kp3d_core/assets/model.pt", True),
    "model.backend": ("auto", f"inference backend: {', '.join(BACKENDS)}", True),
    "model.device": ("cpu", "torch device for the torch backend (cpu, cuda)", True),
    "model.backgrounds": ("", "folder of stored backgrounds, <camera>.png per camera (e.g. the backgrounds/ of a "
                              "training crop cache, or a shot of the empty scene); empty: learnt from the first frames",
                          True),
    "model.background_rate": (0.01, "blend rate of the running background where no person is, in [0, 1); "
                                    "0 keeps a stored background fixed (a static scene)", True),
    "smoothing.enabled": (False, "One Euro filter on the 3D points before mapping (buffers no frame)", False),
    "smoothing.min_cutoff_hz": (1.0, "One Euro minimum cutoff frequency, Hz (> 0)", False),
    "smoothing.beta": (50.0, "One Euro speed coefficient, Hz of cutoff per m/s (>= 0); low values lag moving limbs",
                       False),
    "publish.markers": (True, "publish ~/markers (MarkerArray for RViz)", False),
    "publish.pose": (True, "publish ~/pose (PoseArray, 17 mapped joints)", False),
    "publish.keypoints": (True, "publish ~/keypoints (PoseArray, raw 3D keypoints)", False),
    "publish.overlays": (False, "publish ~/overlay/<camera> images with the 2D keypoints drawn", False),
    "publish.marker_lifetime_s": (0.5, "marker lifetime so stale markers vanish, seconds (> 0)", False),
    "diagnostics.period_s": (1.0, "period of /diagnostics, seconds (> 0)", True),
    "diagnostics.camera_timeout_s": (1.0, "a camera without images for this long is reported not alive", False),
}

def _validate(name: str, value) -> str | None:
    """Reason why ``value`` is invalid for parameter ``name``, or None."""
    if name == "cameras":
        if not value or any(not str(c).strip() for c in value):
            return "needs at least one non-empty camera name"
        if len(set(value)) != len(value):
            return f"duplicate camera names in {list(value)}"
    elif name in ("image_topic_format", "camera_info_topic_format"):
        if "{camera}" not in value:
            return f"must contain '{{camera}}', got '{value}'"
    elif name == "image_qos" and value not in ("sensor_data", "reliable"):
        return f"must be 'sensor_data' or 'reliable', got '{value}'"
    elif name == "model.backend" and value not in BACKENDS:
        return f"must be one of {', '.join(BACKENDS)}, got '{value}'"
    elif name == "world_frame" and (not value or value.startswith("/")):
        return f"must be a non-empty frame id without a leading slash, got '{value}'"
    elif name == "sync.min_cameras" and value < 1:
        return f"must be >= 1, got {value}"
    elif name == "sync.queue_size" and value < 1:
        return f"must be >= 1, got {value}"
    elif name in ("sync.slop_s", "smoothing.min_cutoff_hz", "publish.marker_lifetime_s",
                  "diagnostics.period_s", "diagnostics.camera_timeout_s") and not value > 0:
        return f"must be > 0, got {value}"
    elif name == "model.background_rate" and not 0.0 <= value < 1.0:
        return f"must be in [0, 1), got {value}"
    elif name == "smoothing.beta" and value < 0:
        return f"must be >= 0, got {value}"
    return None


def resolve_path(path: str, kind: str) -> Path:
    """A file named in a parameter: as given, else under share/kp3d_ros, else under the source checkout."""
    p = Path(os.path.expanduser(path))
    if p.is_absolute() or p.exists():
        return p
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(PACKAGE)) / p)
    except Exception:  # package not in AMENT_PREFIX_PATH (plain checkout): fall through
        pass
    candidates.append(REPO_ROOT / p)
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{kind} '{path}' not found (looked in {Path.cwd()}, {', '.join(map(str, candidates))})")


@dataclass
class Stats:
    """Counters and recent timings shared by callbacks, worker and diagnostics (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    images_in: collections.Counter = field(default_factory=collections.Counter)
    last_arrival: dict = field(default_factory=dict)  # camera -> monotonic seconds
    sets_in: int = 0  # synchronised sets handed to the worker's slot
    sets_out: int = 0  # sets published
    drops: collections.Counter = field(default_factory=collections.Counter)  # node-level reasons
    latencies_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    estimate_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))  # estimator total
    out_times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    errors: collections.Counter = field(default_factory=collections.Counter)  # "camera: reason" -> count
    error_text: dict = field(default_factory=dict)  # "camera: reason" -> latest message
    error_time: dict = field(default_factory=dict)  # "camera: reason" -> monotonic seconds


class MultiCamNode(Node):
    """The node. Raises CalibrationError / FileNotFoundError / ValueError at start-up on bad configuration."""

    def __init__(self, **kwargs) -> None:
        super().__init__("multicam_node", **kwargs)
        for name, (default, desc, read_only) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc, read_only=read_only))
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        for name, value in self.p.items():
            reason = _validate(name, value)
            if reason:
                raise ValueError(f"parameter '{name}': {reason}")
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.cameras: list[str] = list(self.p["cameras"])
        self.frame = self.p["world_frame"]
        self.rig = self._load_rig()
        self.estimator = self._build_estimator()
        self._from_info = bool(self.p["intrinsics_from_camera_info"])
        self._info_cams: dict = {}  # camera -> Camera built from its latest CameraInfo (intrinsics_from_camera_info)
        self._rebuild = threading.Event()
        self._calibrated = not self._from_info  # False until every camera's CameraInfo is in use


        if self.p["sync.min_cameras"] > len(self.cameras):
            raise ValueError(
                f"parameter 'sync.min_cameras': {self.p['sync.min_cameras']} > number of cameras {len(self.cameras)}"
            )
        self.sync = ApproximateTimeSync(
            self.cameras, int(round(self.p["sync.slop_s"] * 1e9)), self.p["sync.min_cameras"], self.p["sync.queue_size"]
        )
        self.sync_lock = threading.Lock()
        self._sync_resets = 0
        self._reset_estimator = threading.Event()
        self.slot = LatestSlot()
        self.stats = Stats()

        # outputs
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_names = self.create_publisher(String, "~/joint_names", latched)
        self.pub_markers = self.create_publisher(MarkerArray, "~/markers", 10)
        self.pub_pose = self.create_publisher(PoseArray, "~/pose", 10)
        self.pub_keypoints = self.create_publisher(PoseArray, "~/keypoints", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.pub_overlay = {c: self.create_publisher(Image, f"~/overlay/{c}", 2) for c in self.cameras}
        self.pub_names.publish(convert.joint_names_msg(self.estimator.num_keypoints, self.frame))

        # inputs: callbacks only stamp and push
        qos = qos_profile_sensor_data if self.p["image_qos"] == "sensor_data" else QoSProfile(depth=10)
        self._info_seen: dict[str, tuple] = {}
        self.topics: dict[str, str] = {}
        for cam in self.cameras:
            topic = self.topics[cam] = self.p["image_topic_format"].replace("{camera}", cam)
            info_topic = self.p["camera_info_topic_format"].replace("{camera}", cam)
            self.create_subscription(Image, topic, lambda m, c=cam: self._on_image(c, m), qos)
            self.create_subscription(CameraInfo, info_topic, lambda m, c=cam: self._on_camera_info(c, m), qos)

        self.create_timer(self.p["diagnostics.period_s"], self._publish_diagnostics)
        self._stop = threading.Event()
        self.worker = threading.Thread(target=self._work, name="kp3d-worker", daemon=True)
        self.worker.start()
        self.get_logger().info(
            f"cameras {self.cameras}, rig {self.rig_path}, model {self.estimator_desc}, "
            f"slop {self.p['sync.slop_s'] * 1e3:.1f} ms, min cameras {self.p['sync.min_cameras']}"
        )

    # ------------------------------------------------------------------------------ start-up
    def _load_rig(self) -> Rig:
        self.rig_path = resolve_path(self.p["rig_file"], "parameter 'rig_file'")
        rig = load_rig(self.rig_path)
        missing = [c for c in self.cameras if c not in rig.names]
        if missing:
            raise CalibrationError(
                f"no calibration for camera(s) {missing} in rig file {self.rig_path} (it has {rig.names}); "
                "add them to the rig file or remove them from parameter 'cameras'"
            )
        if rig.world_frame != self.frame:
            self.get_logger().warning(f"rig world_frame '{rig.world_frame}' != parameter world_frame '{self.frame}'")
        return rig.subset(self.cameras)

    def _build_estimator(self):

        path = self.p["model.path"]
        model = resolve_path(path, "parameter 'model.path'") if path else None
        est = MultiViewEstimator.load(
            model, self.rig, backend=self.p["model.backend"], device=self.p["model.device"],
            smoothing=self._make_smoother(), backgrounds=self._load_backgrounds(),
            predictor_config=PredictorConfig(background_rate=self.p["model.background_rate"]),
        )
        self.estimator_desc = f"{model or 'shipped'} ({getattr(est, 'backend', self.p['model.backend'])})"
        return est

    def _load_backgrounds(self) -> list | None:
        """Stored per-camera backgrounds from parameter 'model.backgrounds' (a folder), or None."""
        if not self.p["model.backgrounds"]:
            return None

        folder = resolve_path(self.p["model.backgrounds"], "parameter 'model.backgrounds'")
        try:
            return load_stored_backgrounds(folder, [self.rig[c] for c in self.cameras])
        except (FileNotFoundError, ValueError) as exc:
            raise type(exc)(f"parameter 'model.backgrounds': {exc}") from None

    def _make_smoother(self):
        """One Euro filter on the 3D keypoints (applied by the estimator before mapping), or None."""
        if not self.p["smoothing.enabled"]:
            return None

        return OneEuroFilter(min_cutoff=self.p["smoothing.min_cutoff_hz"], beta=self.p["smoothing.beta"])

    def _on_set_parameters(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name in PARAMETERS:
                reason = _validate(prm.name, prm.value)
                if reason:
                    return SetParametersResult(successful=False, reason=f"parameter '{prm.name}': {reason}")
        for prm in params:
            if prm.name in PARAMETERS:
                self.p[prm.name] = prm.value
        if any(prm.name.startswith("smoothing.") for prm in params):
            self.estimator.smoothing = self._make_smoother()  # a fresh filter with the new settings
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------ callbacks
    def _on_image(self, camera: str, msg: Image) -> None:
        arrival = time.monotonic()
        problem = convert.image_header_problem(msg, self._calib(camera))  # O(1): fields only, no pixels
        if problem is not None:
            reason, text = problem
            self._error(camera, f"topic {self.topics[camera]}: {text}", reason)
            with self.stats.lock:
                self.stats.images_in[camera] += 1
                self.stats.last_arrival[camera] = arrival
            return
        stamp = convert.stamp_to_ns(msg.header.stamp)
        st = self.stats
        with self.sync_lock:
            sets = self.sync.add(camera, stamp, (msg, arrival))
            if self.sync.resets != self._sync_resets:  # time jumped back (bag loop): forget the track
                self._sync_resets = self.sync.resets
                self._reset_estimator.set()
            with st.lock:  # counted before the worker can see them: sets_out + drops <= sets_in always
                st.images_in[camera] += 1
                st.last_arrival[camera] = arrival
                st.sets_in += len(sets)
            for s in sets:
                self.slot.put(s)

    def _calib(self, camera: str):
        """The calibration in use for ``camera`` (from its CameraInfo when intrinsics_from_camera_info)."""
        return self._info_cams.get(camera) or self.rig[camera]

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        """Only when a camera's CameraInfo changes: with intrinsics_from_camera_info, take it (the worker
        rebuilds the estimator's cameras); otherwise check it against the rig file (a mismatch is an input error)."""
        key = (msg.width, msg.height, tuple(msg.k), tuple(msg.d))
        if self._info_seen.get(camera) == key:
            return
        self._info_seen[camera] = key
        topic = self.p["camera_info_topic_format"].replace("{camera}", camera)
        if self._from_info:
            try:
                cam = convert.camera_from_camera_info(camera, msg, self.rig[camera].T_world_cam)
            except ValueError as exc:  # CalibrationError: uncalibrated (K[0] == 0) or malformed
                self._error(camera, f"topic {topic}: {exc}", "camera_info_invalid")
                return
            self._info_cams[camera] = cam
            if len(self._info_cams) == len(self.cameras):
                self._rebuild.set()
            return
        problem = convert.camera_info_problem(msg, self.rig[camera])
        if problem is not None:
            self._error(camera, f"topic {topic}: {problem}", "camera_info_mismatch")

    def _use_camera_infos(self) -> None:
        """Worker thread: the estimator on the CameraInfo intrinsics (same network, mapping and settings)."""

        old = self.estimator
        cams = [self._info_cams[c] for c in self.cameras]
        predictor = Predictor(old.predictor.backend, cams, old.predictor.config)
        self.estimator = MultiViewEstimator(
            predictor, cams, mapping=old.mapping, min_views=old.min_views, conf_threshold=old.conf_threshold,
            smoothing=old.smoothing, refine_iterations=old.refine_iterations, track_max_age=old.track_max_age,
        )
        self.rig = Rig(tuple(cams), self.rig.world_frame)
        self._calibrated = True
        self.get_logger().info(f"using the CameraInfo intrinsics of {self.cameras}")

    # ------------------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            s = self.slot.get(timeout=0.1)
            if s is None:
                continue
            if self._rebuild.is_set():
                self._rebuild.clear()
                self._use_camera_infos()
            if not self._calibrated:
                with self.stats.lock:
                    self.stats.drops["waiting_camera_info"] += 1
                continue
            if self._reset_estimator.is_set():
                self._reset_estimator.clear()
                self.estimator.reset()
            try:
                self._process(s)
            except Exception as exc:  # keep the node up; report it, and count the set as dropped
                with self.stats.lock:
                    self.stats.drops["exception"] += 1
                self._error("pipeline", f"{type(exc).__name__}: {exc}", "exception")
                self.get_logger().error(f"set {s.stamp_ns}: {type(exc).__name__}: {exc}")

    def _error(self, camera: str, text: str, reason: str) -> None:
        st = self.stats
        with st.lock:
            key = f"{camera}: {reason}"
            st.errors[key] += 1
            st.error_text[key] = f"camera '{camera}': {text}" if camera != "pipeline" else text
            st.error_time[key] = time.monotonic()

    def _process(self, s) -> None:
        """Decode, estimate and publish one synchronised set (``s.items``: camera -> (Image, arrival))."""
        images: dict[str, np.ndarray] = {}
        last_arrival = 0.0
        for cam, (msg, arrival) in s.items.items():
            last_arrival = max(last_arrival, arrival)
            calib = self.rig[cam]
            try:
                rgb = convert.image_msg_to_rgb(msg)
            except ValueError as exc:
                self._error(cam, f"topic {self.topics[cam]}: {exc}", "bad_image")
                continue
            if rgb.shape[:2] != (calib.height, calib.width):
                self._error(
                    cam, f"image {msg.width}x{msg.height} does not match the calibration {calib.width}x{calib.height}",
                    "size_mismatch",
                )
                continue
            images[cam] = rgb
        if len(images) < self.p["sync.min_cameras"]:
            with self.stats.lock:
                self.stats.drops["bad_images"] += 1
            return
        est = self.estimator.process(images, s.stamp_ns)
        self._publish(est, s.stamp_ns, images)
        now = time.monotonic()
        with self.stats.lock:
            self.stats.sets_out += 1
            self.stats.latencies_ms.append((now - last_arrival) * 1e3)
            self.stats.estimate_ms.append(float(est.timings.get("total", float("nan"))))
            self.stats.out_times.append(now)

    def _publish(self, est, stamp_ns: int, images: dict[str, np.ndarray]) -> None:
        kp = np.asarray(est.keypoints3d, dtype=np.float64)
        kp_valid = np.asarray(est.valid, dtype=bool) & np.isfinite(kp).all(axis=1)
        pose = None if est.pose is None else np.asarray(est.pose, dtype=np.float64)
        if not np.isfinite(kp[np.asarray(est.valid, dtype=bool)]).all() or (
            pose is not None and not np.isfinite(pose).all()
        ):
            self._error("pipeline", "model output contains NaN/inf; those joints are published as missing", "nan_output")
        p = self.p
        if p["publish.keypoints"]:
            self.pub_keypoints.publish(convert.pose_array(kp, kp_valid, stamp_ns, self.frame))
        if p["publish.pose"]:
            if pose is None:
                self.pub_pose.publish(convert.pose_array(np.zeros((0, 3)), None, stamp_ns, self.frame))
            else:
                self.pub_pose.publish(convert.pose_array(pose, None, stamp_ns, self.frame))
        if p["publish.markers"]:
            self.pub_markers.publish(
                convert.skeleton_markers(kp, kp_valid, pose, stamp_ns, self.frame, p["publish.marker_lifetime_s"])
            )
        if p["publish.overlays"]:
            self._publish_overlays(est, stamp_ns, images)

    def _publish_overlays(self, est, stamp_ns: int, images: dict[str, np.ndarray]) -> None:
        import cv2

        kp2d = np.asarray(est.keypoints2d)
        conf = np.asarray(est.confidence)
        for v, cam in enumerate(self.cameras):
            if cam not in images:
                continue
            img = np.ascontiguousarray(images[cam]).copy()
            for (u, w), c in zip(kp2d[v], conf[v]):
                if np.isfinite(u) and np.isfinite(w) and c > 0:
                    cv2.circle(img, (int(round(u)), int(round(w))), 4, (255, int(255 * (1 - c)), 0), -1)
            self.pub_overlay[cam].publish(convert.rgb_to_image_msg(img, stamp_ns, self.rig[cam].frame_id))

    # ------------------------------------------------------------------------------ diagnostics
    def diagnostics_snapshot(self) -> dict:
        """Counters and rates as plain values (also used by the benchmark and tests)."""
        st = self.stats
        now = time.monotonic()
        timeout = self.p["diagnostics.camera_timeout_s"]
        with self.sync_lock:
            sync_drops = dict(self.sync.counters)
            sync_stats = {"sync_resets": self.sync.resets, "partial_sets": self.sync.partial_sets}
        with st.lock:
            lat = np.asarray(st.latencies_ms, dtype=np.float64)
            est_ms = np.asarray(st.estimate_ms, dtype=np.float64)
            recent = [t for t in st.out_times if now - t <= 5.0]
            rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
            drops = {f"sync_{k}": int(v) for k, v in sync_drops.items()}
            drops.update({f"slot_{k}": int(v) for k, v in self.slot.counters.items()})
            drops.update({k: int(v) for k, v in st.drops.items()})
            return {
                "images_in": dict(st.images_in),
                "sets_in": st.sets_in,
                "sets_out": st.sets_out,
                "output_rate_hz": rate,
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "estimator_p50_ms": float(np.nanmedian(est_ms)) if est_ms.size else float("nan"),
                "drops": drops,
                "alive": {c: (c in st.last_arrival and now - st.last_arrival[c] <= timeout) for c in self.cameras},
                "errors": dict(st.errors),
                # errors of the last ERROR_HOLD_S seconds, one line per camera and reason
                "recent_errors": [st.error_text[k] for k in sorted(st.error_time) if now - st.error_time[k] <= ERROR_HOLD_S],
                **sync_stats,
            }

    def _publish_diagnostics(self) -> None:
        snap = self.diagnostics_snapshot()
        stamp = self.get_clock().now().nanoseconds
        name = self.get_fully_qualified_name()
        pipe = {
            "sets_in": snap["sets_in"], "sets_out": snap["sets_out"], "output_rate_hz": snap["output_rate_hz"],
            "latency_p50_ms": snap["latency_p50_ms"], "latency_p95_ms": snap["latency_p95_ms"],
            "estimator_p50_ms": snap["estimator_p50_ms"],
            "drops_total": sum(snap["drops"].values()),
            "partial_sets": snap["partial_sets"], "sync_resets": snap["sync_resets"],
        }
        pipe.update({f"drops.{k}": v for k, v in sorted(snap["drops"].items())})
        dead = [c for c, ok in snap["alive"].items() if not ok]
        cams = {c: ("alive" if ok else "not alive") for c, ok in snap["alive"].items()}
        cams.update({f"{c}.images": snap["images_in"].get(c, 0) for c in self.cameras})
        statuses = [
            convert.diagnostic_status(f"{name}: pipeline", convert.OK, f"{snap['output_rate_hz']:.1f} Hz", pipe),
            convert.diagnostic_status(
                f"{name}: cameras", convert.WARN if dead else convert.OK,
                f"not alive: {', '.join(dead)}" if dead else "all cameras alive", cams,
            ),
            convert.diagnostic_status(
                f"{name}: input", convert.ERROR if snap["recent_errors"] else convert.OK,
                "; ".join(snap["recent_errors"]) or "ok", snap["errors"],
            ),
        ]
        self.pub_diag.publish(convert.diagnostic_array(stamp, statuses))

    def destroy_node(self) -> None:
        self._stop.set()
        self.slot.close()
        if self.worker.is_alive():
            self.worker.join(timeout=2.0)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script ``multicam_node``: exit 0 on Ctrl-C/shutdown, 2 on a configuration error."""
    rclpy.init(args=sys.argv if argv is None else argv)
    node = None
    try:

        try:
            node = MultiCamNode()
        except (CalibrationError, FileNotFoundError, ValueError, CheckpointError, BackendUnavailable) as exc:
            # one clear line naming the parameter, file or camera; no traceback for a user error
            print(f"multicam_node: configuration error: {exc}", file=sys.stderr)
            return 2
        try:
            rclpy.spin(node)
        except Exception:
            # SIGINT can shut the context down while spin builds its wait set (RCLError "context is not
            # valid"): that is the requested shutdown, not a failure. Anything else with the context up is.
            if rclpy.ok():
                raise
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
