"""ROS 2 messages <-> kp3d_core types: stamps, images, CameraInfo, poses, markers, diagnostics.

Pure conversions (no node, no I/O); the maths lives in kp3d_core. Units: metres, pixels, nanoseconds.

Published conventions (also sent, latched, on ``~/joint_names`` as JSON, see :func:`joint_names_msg`):

* ``PoseArray`` of the mapped pose: 17 poses in the order of ``kp3d_core.skeleton.JOINT_NAMES``;
  ``PoseArray`` of the raw keypoints: K poses in the model's keypoint order (``kp00`` .. ``kpK-1``).
* A joint that could not be estimated (fewer than two confident views, or a non-finite model
  output) has position (0, 0, 0) and the all-zero quaternion (0, 0, 0, 0); a valid joint has the
  identity quaternion (w = 1). No NaN is ever published.
"""
from __future__ import annotations

import json

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseArray
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from kp3d_core.bagio import stamp_to_ns  # one conversion for rclpy and rosbags messages alike
from kp3d_core.camera import Camera
from kp3d_core.image_encoding import SUPPORTED_ENCODINGS, image_msg_to_rgb, rgb_to_image_fields
from kp3d_core.skeleton import BONES, JOINT_NAMES

__all__ = [
    "stamp_to_ns", "ns_to_stamp", "image_msg_to_rgb", "image_header_problem", "camera_info_problem", "rgb_to_image_msg", "camera_info_msg",
    "camera_from_camera_info", "pose_array", "pose_array_to_numpy", "skeleton_markers",
    "delete_all_markers", "diagnostic_status", "diagnostic_array", "joint_names_msg", "keypoint_names",
]

# Diagnostic levels as plain ints (DiagnosticStatus.OK etc. are bytes in rclpy).
OK, WARN, ERROR, STALE = 0, 1, 2, 3


# ------------------------------------------------------------------------------------------ stamps
def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"stamp: expected nanoseconds >= 0, got {ns}")
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# ------------------------------------------------------------------------------------------ images
def image_header_problem(msg, camera: Camera) -> tuple[str, str] | None:
    """Cheap check of an Image's fields against the camera (no pixel access): (reason, text) or None.

    Reasons: ``unsupported_encoding``, ``size_mismatch`` (vs the calibration), ``bad_buffer``
    (``len(data) != height * step``). Full decoding errors are caught later by :func:`image_msg_to_rgb`.
    """
    if msg.encoding not in SUPPORTED_ENCODINGS:
        return "unsupported_encoding", (
            f"unsupported image encoding '{msg.encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        )
    if (msg.width, msg.height) != (camera.width, camera.height):
        return "size_mismatch", (
            f"image {msg.width}x{msg.height} does not match the calibration {camera.width}x{camera.height}"
        )
    if len(msg.data) != msg.height * msg.step:
        return "bad_buffer", f"image data has {len(msg.data)} bytes, expected height*step = {msg.height * msg.step}"
    return None


def camera_info_problem(msg, camera: Camera, rtol: float = 0.01) -> str | None:
    """How a CameraInfo disagrees with the calibration (size, or K beyond ``rtol``), or None.

    An uncalibrated CameraInfo (K[0] == 0) is not a disagreement: the rig file is the calibration.
    """
    if (msg.width, msg.height) != (camera.width, camera.height):
        return f"CameraInfo size {msg.width}x{msg.height} != calibration {camera.width}x{camera.height}"
    k = np.asarray(msg.k, dtype=np.float64)
    if k.size == 9 and k[0] != 0.0 and not np.allclose(k.reshape(3, 3), camera.K, rtol=rtol, atol=rtol * camera.K[0, 0]):
        return f"CameraInfo K {k.round(2).tolist()} differs from the calibration {camera.K.reshape(-1).round(2).tolist()}"
    return None


def rgb_to_image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image with the given stamp and frame."""
    fields = rgb_to_image_fields(rgb, encoding)
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = fields["encoding"], 0, fields["step"]
    msg.data = fields["data"].tobytes()
    return msg


def camera_info_msg(camera: Camera, stamp_ns: int) -> CameraInfo:
    """sensor_msgs/CameraInfo of the raw image of ``camera`` (R = I, P = [K | 0])."""
    f = camera.camera_info_fields()
    msg = CameraInfo()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = f["frame_id"]
    msg.width, msg.height = f["width"], f["height"]
    msg.distortion_model = f["distortion_model"]
    msg.d, msg.k, msg.r, msg.p = f["d"], f["k"], f["r"], f["p"]
    return msg


def camera_from_camera_info(name: str, msg, T_world_cam) -> Camera:
    """A :class:`Camera` from a CameraInfo (rclpy or rosbags) and its pose (4x4, world <- optical).

    Raises CalibrationError naming the camera if the message is uncalibrated (K[0] == 0) or malformed.
    """
    fields = {
        "width": int(msg.width), "height": int(msg.height), "k": list(msg.k), "d": list(msg.d),
        "distortion_model": msg.distortion_model, "frame_id": msg.header.frame_id,
    }
    return Camera.from_camera_info_fields(name, fields, T_world_cam)


# ------------------------------------------------------------------------------------------ poses
def pose_array(points: np.ndarray, valid: np.ndarray | None, stamp_ns: int, frame_id: str) -> PoseArray:
    """(K, 3) points, metres, and (K,) validity -> PoseArray (invalid or non-finite: zero quaternion at 0)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points: expected shape (K, 3), got {pts.shape}")
    ok = np.isfinite(pts).all(axis=1)
    if valid is not None:
        v = np.asarray(valid, dtype=bool)
        if v.shape != (pts.shape[0],):
            raise ValueError(f"valid: expected shape ({pts.shape[0]},), got {v.shape}")
        ok &= v
    msg = PoseArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    poses = []
    for p, good in zip(pts, ok):
        pose = Pose()
        if good:
            pose.position.x, pose.position.y, pose.position.z = float(p[0]), float(p[1]), float(p[2])
            pose.orientation.w = 1.0
        else:
            pose.orientation.w = 0.0  # the documented "missing joint" marker
        poses.append(pose)
    msg.poses = poses
    return msg


def pose_array_to_numpy(msg) -> tuple[np.ndarray, np.ndarray]:
    """PoseArray -> ((K, 3) float64 metres, NaN where missing; (K,) bool valid)."""
    pts = np.full((len(msg.poses), 3), np.nan)
    valid = np.zeros(len(msg.poses), dtype=bool)
    for i, pose in enumerate(msg.poses):
        if pose.orientation.w != 0.0:
            valid[i] = True
            pts[i] = (pose.position.x, pose.position.y, pose.position.z)
    return pts, valid


# ------------------------------------------------------------------------------------------ markers
def _color(r: float, g: float, b: float, a: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(a))


def _points(pts: np.ndarray) -> list[Point]:
    return [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pts]


def _marker(kind: int, ns: str, stamp_ns: int, frame_id: str, lifetime_s: float, scale: float) -> Marker:
    m = Marker()
    m.header.stamp = ns_to_stamp(stamp_ns)
    m.header.frame_id = frame_id.lstrip("/")
    m.ns, m.id, m.type, m.action = ns, 0, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = m.scale.y = m.scale.z = float(scale)
    m.lifetime.sec = int(lifetime_s)
    m.lifetime.nanosec = int(round((lifetime_s - int(lifetime_s)) * 1e9))
    return m


def delete_all_markers(stamp_ns: int, frame_id: str) -> Marker:
    """A DELETEALL marker (clears this publisher's markers in RViz)."""
    m = Marker()
    m.header.stamp = ns_to_stamp(stamp_ns)
    m.header.frame_id = frame_id.lstrip("/")
    m.action = Marker.DELETEALL
    return m


def skeleton_markers(
    keypoints3d: np.ndarray | None,
    keypoints_valid: np.ndarray | None,
    pose: np.ndarray | None,
    stamp_ns: int,
    frame_id: str,
    lifetime_s: float = 0.5,
    ns_prefix: str = "person0",
) -> MarkerArray:
    """Markers of one person: DELETEALL, raw keypoints (SPHERE_LIST), mapped joints and bones (LINE_LIST).

    Args:
        keypoints3d: (K, 3) metres or None; keypoints_valid: (K,) bool or None.
        pose: (17, 3) metres or None (joints in ``JOINT_NAMES`` order; non-finite joints skipped).
        lifetime_s: markers vanish after this long if no new set arrives (stale output).

    Namespaces: ``<prefix>/keypoints``, ``<prefix>/joints``, ``<prefix>/skeleton``.
    """
    out = MarkerArray()
    markers = [delete_all_markers(stamp_ns, frame_id)]
    if keypoints3d is not None:
        kp = np.asarray(keypoints3d, dtype=np.float64)
        ok = np.isfinite(kp).all(axis=1)
        if keypoints_valid is not None:
            ok &= np.asarray(keypoints_valid, dtype=bool)
        if ok.any():
            m = _marker(Marker.SPHERE_LIST, f"{ns_prefix}/keypoints", stamp_ns, frame_id, lifetime_s, 0.05)
            m.color = _color(1.0, 0.55, 0.0)
            m.points = _points(kp[ok])
            markers.append(m)
    if pose is not None:
        pj = np.asarray(pose, dtype=np.float64)
        ok = np.isfinite(pj).all(axis=1)
        if ok.any():
            m = _marker(Marker.SPHERE_LIST, f"{ns_prefix}/joints", stamp_ns, frame_id, lifetime_s, 0.04)
            m.color = _color(0.1, 0.6, 1.0)
            m.points = _points(pj[ok])
            markers.append(m)
        seg = [(a, b) for a, b in BONES if ok[a] and ok[b]]
        if seg:
            m = _marker(Marker.LINE_LIST, f"{ns_prefix}/skeleton", stamp_ns, frame_id, lifetime_s, 0.02)
            m.color = _color(0.2, 0.9, 0.3)
            m.points = _points(np.stack([pj[[a, b]] for a, b in seg]).reshape(-1, 3))
            markers.append(m)
    out.markers = markers
    return out


# ------------------------------------------------------------------------------------------ diagnostics
def diagnostic_status(name: str, level: int, message: str, values: dict, hardware_id: str = "") -> DiagnosticStatus:
    """One DiagnosticStatus; ``values`` become KeyValue strings (floats with 4 significant digits)."""
    st = DiagnosticStatus()
    st.level = bytes([int(level)])
    st.name, st.message, st.hardware_id = name, message, hardware_id
    st.values = [KeyValue(key=str(k), value=(f"{v:.4g}" if isinstance(v, float) else str(v))) for k, v in values.items()]
    return st


def diagnostic_array(stamp_ns: int, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.status = statuses
    return msg


def diagnostic_values(status) -> dict[str, str]:
    """KeyValue list of a DiagnosticStatus -> dict (for subscribers and tests)."""
    return {kv.key: kv.value for kv in status.values}


def diagnostic_level(status) -> int:
    lvl = status.level
    return lvl[0] if isinstance(lvl, (bytes, bytearray)) else int(lvl)


# ------------------------------------------------------------------------------------------ names
def keypoint_names(num_keypoints: int) -> list[str]:
    return [f"kp{i:02d}" for i in range(int(num_keypoints))]


def joint_names_msg(num_keypoints: int, frame_id: str) -> String:
    """JSON document naming the order of both PoseArrays and the missing-joint convention."""
    doc = {
        "frame_id": frame_id,
        "pose": list(JOINT_NAMES),
        "keypoints": keypoint_names(num_keypoints),
        "bones": [list(b) for b in BONES],
        "missing": "position (0,0,0) and orientation quaternion (0,0,0,0); valid joints have w = 1",
    }
    return String(data=json.dumps(doc))
