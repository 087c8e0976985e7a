"""``multicam_node``: N synchronised, calibrated camera streams in, 3D keypoints and the mapped pose out.

A thin adapter over :class:`kp3d_core.inference.pipeline.Pipeline` (synchroniser, worker thread,
estimator, health): this node declares and validates the parameters, converts messages
(:mod:`kp3d_ros.convert`), hands images to the pipeline from the callbacks, and publishes what the
pipeline's worker hands back (with the input set's stamp) and its health report on ``/diagnostics``.

Topics (relative names, so ``--ros-args -r __ns:=/x`` moves them):
``~/markers`` (MarkerArray), ``~/pose`` (PoseArray, 17 joints), ``~/keypoints`` (PoseArray, K raw
keypoints), ``~/joint_names`` (std_msgs/String JSON, transient local), ``~/overlay/<camera>``
(Image, optional), ``/diagnostics``, ``/tf_static`` (world -> camera optical frames, where tf2_msgs is
installed). Joint order and the missing-joint convention: kp3d_ros.convert.

Run: ``multicam_node --ros-args --params-file config/multicam.yaml``; ``multicam_node --help`` lists
the parameters.
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from kp3d_core.camera import CalibrationError
from kp3d_core.checkpoint import CheckpointError
from kp3d_core.inference.health import HealthConfig
from kp3d_core.inference.interface import BackendUnavailable
from kp3d_core.inference.pipeline import EstimatorSettings, Pipeline, PipelineConfig, PipelineResult, build_estimator
from kp3d_core.inference.process import tune_process
from kp3d_core.models.mapping import describe_mapping, named_joints
from kp3d_core.rig import load_rig

from . import convert
from .paths import resolve_path

BACKENDS = ("auto", "torch", "pytorch", "onnxruntime", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt")
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)

# name -> (default, description, read_only). Validation: _validate().
PARAMETERS: dict[str, tuple[object, str, bool]] = {
    "cameras": (["cam0", "cam1", "cam2", "cam3"], "camera names, in rig order (keys of the rig file)", True),
    "image_topic_format": ("/{camera}/image_raw", "image topic of each camera; {camera} is replaced by its name", True),
    "camera_info_topic_format": ("/{camera}/camera_info", "CameraInfo topic of each camera ({camera} as above)", True),
    "rig_file": ("config/studio_rig.yaml", "rig file (kp3d_core.rig YAML): intrinsics and T_world_cam per camera; a "
                 "relative path is looked up in the current directory, the installed share/kp3d_ros, then the "
                 "source checkout", True),
    "intrinsics_from_camera_info": (
        False, "take K, distortion and image size from each camera's CameraInfo (the rig file then gives only "
        "the extrinsics); sets are dropped ('waiting_camera_info') until every camera sent one", True,
    ),
    "world_frame": ("world", "frame_id of every 3D output (the rig's world frame)", True),
    "image_qos": ("sensor_data", "image subscription QoS: sensor_data (best effort) or reliable", True),
    "sync.slop_s": (0.010, "maximum spread of header stamps within one synchronised set, seconds", True),
    "sync.min_cameras": (1, "minimum number of cameras in a (partial) set; with 1, a person seen by one camera "
                            "still gets a pose when the model carries a single-view lifter", True),
    "sync.queue_size": (30, "per-camera queue length of the synchroniser; must hold more than its 0.5 s dead-camera "
                            "timeout of frames (30 = 1 s at 30 fps) or live cameras overflow while a dead one is "
                            "still waited for", True),
    "worker.every_set": (False, "process every synchronised set in order (for a bag replayed with image_qos "
                                "reliable) instead of only the latest (live cameras)", True),
    "worker.max_pending_sets": (60, "with worker.every_set: sets waiting for the worker; beyond, the oldest is "
                                    "dropped ('slot_overflow')", True),
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
    "publish.pose": (True, "publish ~/pose (PoseArray, 17 mapped joints; empty when there is no complete pose)", False),
    "publish.keypoints": (True, "publish ~/keypoints (PoseArray, raw 3D keypoints)", False),
    "publish.overlays": (False, "publish ~/overlay/<camera> images with the 2D keypoints drawn", False),
    "publish.marker_lifetime_s": (0.5, "marker lifetime so stale markers vanish, seconds (> 0)", False),
    "diagnostics.period_s": (1.0, "period of /diagnostics, seconds (> 0)", True),
    "diagnostics.camera_timeout_s": (1.0, "a camera without images for this long is reported not alive", True),
    "diagnostics.output_timeout_s": (2.0, "the pipeline status WARNs when no set was published for this long, "
                                          "seconds", True),
}
POSITIVE = ("sync.slop_s", "smoothing.min_cutoff_hz", "publish.marker_lifetime_s", "diagnostics.period_s",
            "diagnostics.camera_timeout_s", "diagnostics.output_timeout_s")


def _validate(name: str, value) -> str | None:
    """Reason why ``value`` is invalid for parameter ``name``, or None."""
    if name == "cameras":
        if not value or any(not str(c).strip() for c in value):
            return "needs at least one non-empty camera name"
        if len(set(value)) != len(value):
            return f"duplicate camera names in {list(value)}"
    elif name in ("image_topic_format", "camera_info_topic_format") and "{camera}" not in value:
        return f"must contain '{{camera}}', got '{value}'"
    elif name == "image_qos" and value not in ("sensor_data", "reliable"):
        return f"must be 'sensor_data' or 'reliable', got '{value}'"
    elif name == "model.backend" and value not in BACKENDS:
        return f"must be one of {', '.join(BACKENDS)}, got '{value}'"
    elif name == "world_frame" and (not value or value.startswith("/")):
        return f"must be a non-empty frame id without a leading slash, got '{value}'"
    elif name in ("sync.min_cameras", "sync.queue_size", "worker.max_pending_sets") and value < 1:
        return f"must be >= 1, got {value}"
    elif name in POSITIVE and not value > 0:
        return f"must be > 0, got {value}"
    elif name == "model.background_rate" and not 0.0 <= value < 1.0:
        return f"must be in [0, 1), got {value}"
    elif name == "smoothing.beta" and value < 0:
        return f"must be >= 0, got {value}"
    return None


def usage() -> str:
    """``multicam_node --help``: every parameter with its default and description."""
    lines = [__doc__.split("\n", 1)[0].replace("`", ""), "",
             "usage: multicam_node [--ros-args [--params-file FILE] [-p NAME:=VALUE ...] [--log-level LEVEL]]", "",
             "parameters (default; 'start-up' ones are read-only, the others can be set at run time):"]
    for name, (default, desc, read_only) in PARAMETERS.items():
        lines += [f"  {name} = {default!r}{'  (start-up)' if read_only else ''}", f"      {desc}"]
    return "\n".join(lines)


class MultiCamNode(Node):
    """The node. Raises CalibrationError / FileNotFoundError / ValueError at start-up on bad configuration."""

    def __init__(self, **kwargs) -> None:
        super().__init__("multicam_node", **kwargs)
        for name, (default, desc, read_only) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=desc, read_only=read_only))
        p = self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        for name, value in p.items():
            reason = _validate(name, value)
            if reason:
                raise ValueError(f"parameter '{name}': {reason}")
        self.cameras, self.frame = list(p["cameras"]), p["world_frame"]
        if p["sync.min_cameras"] > len(self.cameras):
            raise ValueError(f"parameter 'sync.min_cameras': {p['sync.min_cameras']} > number of cameras {len(self.cameras)}")
        self.rig = self._load_rig()
        self.settings = EstimatorSettings(
            model=resolve_path(p["model.path"], "model.path") if p["model.path"] else None,
            backend=p["model.backend"], device=p["model.device"],
            backgrounds=resolve_path(p["model.backgrounds"], "model.backgrounds") if p["model.backgrounds"] else None,
            background_rate=p["model.background_rate"], smoothing=p["smoothing.enabled"],
            min_cutoff_hz=p["smoothing.min_cutoff_hz"], beta=p["smoothing.beta"])
        self.topics = {c: p["image_topic_format"].replace("{camera}", c) for c in self.cameras}
        config = PipelineConfig(
            slop_s=p["sync.slop_s"], min_cameras=p["sync.min_cameras"], queue_size=p["sync.queue_size"],
            every_set=p["worker.every_set"], max_pending_sets=p["worker.max_pending_sets"],
            intrinsics_from_camera_info=p["intrinsics_from_camera_info"],
            health=HealthConfig(camera_timeout_s=p["diagnostics.camera_timeout_s"],
                                output_timeout_s=p["diagnostics.output_timeout_s"]))
        estimator = build_estimator(self.settings, self.rig)
        self.pipeline = Pipeline(estimator, config, self._publish, self.topics, log=self.get_logger().error,
                                 warn=self.get_logger().warning)
        self.pipeline.draw_overlays = p["publish.overlays"]

        self.pub_names = self.create_publisher(String, "~/joint_names", LATCHED)
        self.pub_markers = self.create_publisher(MarkerArray, "~/markers", 10)
        self.pub_pose = self.create_publisher(PoseArray, "~/pose", 10)
        self.pub_keypoints = self.create_publisher(PoseArray, "~/keypoints", 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.pub_overlay = {c: self.create_publisher(Image, f"~/overlay/{c}", 2) for c in self.cameras}
        self.pub_names.publish(convert.joint_names_msg(estimator.num_keypoints, self.frame, named_joints(estimator.mapping)))
        self._publish_camera_frames()

        qos = qos_profile_sensor_data if p["image_qos"] == "sensor_data" else QoSProfile(depth=10)
        for cam in self.cameras:  # callbacks only stamp and push
            info_topic = p["camera_info_topic_format"].replace("{camera}", cam)
            self.create_subscription(Image, self.topics[cam], lambda m, c=cam: self._on_image(c, m), qos)
            self.create_subscription(CameraInfo, info_topic, lambda m, c=cam: self._on_camera_info(c, m), qos)
        self.create_timer(p["diagnostics.period_s"], self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline.start()
        self.get_logger().info(
            f"cameras {self.cameras}, rig {self.rig_path}, model {self.settings.model or 'shipped'} "
            f"({estimator.backend}), slop {p['sync.slop_s'] * 1e3:.1f} ms, min cameras {p['sync.min_cameras']}, "
            f"{'every set' if p['worker.every_set'] else 'latest set'}; ~/pose: {describe_mapping(estimator.mapping)}")

    def _load_rig(self):
        self.rig_path = resolve_path(self.p["rig_file"], "rig_file")
        rig = load_rig(self.rig_path)
        missing = [c for c in self.cameras if c not in rig.names]
        if missing:
            raise CalibrationError(
                f"no calibration for camera(s) {missing} in rig file {self.rig_path} (it has {rig.names}); "
                "add them to the rig file or remove them from parameter 'cameras'")
        if rig.world_frame != self.frame:
            self.get_logger().warning(f"rig world_frame '{rig.world_frame}' != parameter world_frame '{self.frame}'")
        return rig.subset(self.cameras)

    def _publish_camera_frames(self) -> None:
        """world -> each camera optical frame on /tf_static, as tf2's static broadcaster does."""
        try:
            from tf2_msgs.msg import TFMessage  # optional: no PyPI wheel of tf2_msgs for Jazzy
        except ImportError:
            self.get_logger().info("tf2_msgs is not installed: the camera frames are not published on /tf_static")
            return
        self.pub_tf = self.create_publisher(TFMessage, "/tf_static", LATCHED)
        stamp = self.get_clock().now().nanoseconds
        self.pub_tf.publish(TFMessage(transforms=convert.camera_transforms(self.rig.cameras, self.frame, stamp)))

    def _on_set_parameters(self, params) -> SetParametersResult:
        for prm in params:
            reason = _validate(prm.name, prm.value) if prm.name in PARAMETERS else None
            if reason:
                return SetParametersResult(successful=False, reason=f"parameter '{prm.name}': {reason}")
        self.p.update({prm.name: prm.value for prm in params if prm.name in PARAMETERS})
        self.pipeline.draw_overlays = self.p["publish.overlays"]
        if any(prm.name.startswith("smoothing.") for prm in params):
            self.settings = dataclasses.replace(
                self.settings, smoothing=self.p["smoothing.enabled"], min_cutoff_hz=self.p["smoothing.min_cutoff_hz"],
                beta=self.p["smoothing.beta"])
            self.pipeline.set_smoothing(self.settings)
        return SetParametersResult(successful=True)

    def _on_image(self, camera: str, msg: Image) -> None:
        self.pipeline.add_image(camera, convert.stamp_to_ns(msg.header.stamp), msg)

    def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
        self.pipeline.camera_info(camera, convert.camera_info_fields(msg))

    def _publish(self, result: PipelineResult) -> None:
        """Worker thread: one processed set's outputs, all with its stamp."""
        est, stamp, p = result.estimate, result.stamp_ns, self.p
        if p["publish.keypoints"]:
            self.pub_keypoints.publish(convert.pose_array(est.keypoints3d, est.valid, stamp, self.frame))
        if p["publish.pose"]:
            pose = np.zeros((0, 3)) if est.pose is None else est.pose
            self.pub_pose.publish(convert.pose_array(pose, None, stamp, self.frame))
        if p["publish.markers"]:
            self.pub_markers.publish(convert.skeleton_markers(
                est.keypoints3d, est.valid, est.pose, stamp, self.frame, p["publish.marker_lifetime_s"],
                single_view=est.single_view is not None))
        for cam, img in result.overlays.items():
            self.pub_overlay[cam].publish(convert.rgb_to_image_msg(img, stamp, result.frame_ids[cam]))

    def _publish_diagnostics(self) -> None:
        name = self.get_fully_qualified_name()
        statuses = convert.diagnostic_statuses(self.pipeline.report(name).statuses, name)
        self.pub_diag.publish(convert.diagnostic_array(self.get_clock().now().nanoseconds, statuses))

    def destroy_node(self) -> None:
        # the worker publishes: it must be stopped while the context and publishers are still valid
        if not self.pipeline.stop():
            self.get_logger().warning("the worker did not stop within 10 s")
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script ``multicam_node``: exit 0 on Ctrl-C/SIGTERM, 2 on a configuration error."""
    args = list(sys.argv if argv is None else argv)
    own = args[1 : args.index("--ros-args")] if "--ros-args" in args else args[1:]
    if "-h" in own or "--help" in own:
        print(usage())
        return 0
    tune_process()  # no page faults for every image, no OpenCV thread pool (kp3d_core.inference.process)
    # rclpy's own SIGINT handler shuts the context down at once, while the worker may be publishing:
    # this process handles the signals, stops the worker, then shuts down.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        try:
            node = MultiCamNode()
        except (CalibrationError, FileNotFoundError, ValueError, CheckpointError, BackendUnavailable) as exc:
            # one clear line naming the parameter, file or camera; no traceback for a user error
            print(f"multicam_node: configuration error: {exc}", file=sys.stderr)
            return 2
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        executor = EventsExecutor()  # 4 cameras' images + infos at 30 Hz: 6 % of a core, 10 % single-threaded
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except KeyboardInterrupt:  # Ctrl-C while the model loads
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
