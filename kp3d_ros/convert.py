"""ROS 2 messages <-> kp3d_core types: stamps, images, CameraInfo, poses, markers, diagnostics, TF.

Pure conversions (no node, no I/O); the maths lives in kp3d_core. Units: metres, pixels, nanoseconds.

Published conventions (also sent, latched, on ``~/joint_names`` as JSON, see :func:`joint_names_msg`):

* ``PoseArray`` of the mapped pose: 17 poses in the order of ``kp3d_core.skeleton.JOINT_NAMES``;
  ``PoseArray`` of the raw keypoints: K poses in the model's keypoint order (``kp00`` .. ``kpK-1``).
* Every pose has a unit quaternion (RViz rejects a zero one). A valid joint has the identity
  (x, y, z, w) = (0, 0, 0, 1); a joint that could not be estimated (fewer than two confident views,
  a rejected estimate, or a non-finite model output) has position (0, 0, 0) and the half turn about x,
  :data:`MISSING_QUATERNION` = (1, 0, 0, 0), i.e. ``orientation.w == 0``. :func:`pose_array_to_numpy`
  decodes it (an all-zero quaternion, the convention of older versions, also reads as missing). No NaN
  is ever published.
"""
from __future__ import annotations

import json

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseArray, TransformStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from kp3d_core.bagio import stamp_to_ns  # one conversion for rclpy and rosbags messages alike
from kp3d_core.camera import Camera
from kp3d_core.image_encoding import image_msg_to_rgb, rgb_to_image_fields
from kp3d_core.inference.health import ERROR, OK, STALE, WARN, Status
from kp3d_core.skeleton import BONES, JOINT_NAMES

__all__ = [
    "stamp_to_ns", "ns_to_stamp", "image_msg_to_rgb", "rgb_to_image_msg", "camera_info_msg", "camera_info_fields",
    "camera_from_camera_info", "pose_array", "pose_array_to_numpy", "skeleton_markers", "camera_transforms",
    "delete_all_markers", "diagnostic_status", "diagnostic_statuses", "diagnostic_array", "joint_names_msg",
    "keypoint_names", "OK", "WARN", "ERROR", "STALE", "MISSING_QUATERNION",
]

#: (x, y, z, w) of a missing joint: a unit quaternion (the half turn about x) that RViz accepts.
MISSING_QUATERNION = (1.0, 0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------------------ stamps
def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"stamp: expected nanoseconds >= 0, got {ns}")
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


# ------------------------------------------------------------------------------------------ images
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


def camera_info_fields(msg) -> dict:
    """A CameraInfo (rclpy or rosbags) as the plain fields of ``Camera.from_camera_info_fields``."""
    return {
        "width": int(msg.width), "height": int(msg.height), "k": list(msg.k), "d": list(msg.d),
        "distortion_model": msg.distortion_model, "frame_id": msg.header.frame_id,
    }


def camera_from_camera_info(name: str, msg, T_world_cam) -> Camera:
    """A :class:`Camera` from a CameraInfo (rclpy or rosbags) and its pose (4x4, world <- optical).

    Raises CalibrationError naming the camera if the message is uncalibrated (K[0] == 0) or malformed.
    """
    return Camera.from_camera_info_fields(name, camera_info_fields(msg), T_world_cam)


# ------------------------------------------------------------------------------------------ poses
def pose_array(points: np.ndarray, valid: np.ndarray | None, stamp_ns: int, frame_id: str) -> PoseArray:
    """(K, 3) points, metres, and (K,) validity -> PoseArray (invalid or non-finite: :data:`MISSING_QUATERNION` at 0)."""
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
            q = pose.orientation
            q.x, q.y, q.z, q.w = MISSING_QUATERNION
        poses.append(pose)
    msg.poses = poses
    return msg


def pose_array_to_numpy(msg) -> tuple[np.ndarray, np.ndarray]:
    """PoseArray -> ((K, 3) float64 metres, NaN where missing; (K,) bool valid). Missing: ``orientation.w == 0``."""
    pts = np.full((len(msg.poses), 3), np.nan)
    valid = np.zeros(len(msg.poses), dtype=bool)
    for i, pose in enumerate(msg.poses):
        if pose.orientation.w != 0.0:
            valid[i] = True
            pts[i] = (pose.position.x, pose.position.y, pose.position.z)
    return pts, valid


# ------------------------------------------------------------------------------------------ TF
def camera_transforms(cameras, world_frame: str, stamp_ns: int) -> list[TransformStamped]:
    """world -> each camera's optical frame (``frame_id``), from its ``T_world_cam`` (world <- optical).

    The transforms of ``/tf_static`` (tf2_msgs/TFMessage.transforms): parent ``world_frame``, child the
    camera's optical frame, translation metres, rotation a unit quaternion.
    """
    out = []
    for cam in cameras:
        T = np.asarray(cam.T_world_cam, dtype=np.float64)
        t = TransformStamped()
        t.header.stamp = ns_to_stamp(stamp_ns)
        t.header.frame_id = world_frame.lstrip("/")
        t.child_frame_id = cam.frame_id.lstrip("/")
        tr, q = t.transform.translation, t.transform.rotation
        tr.x, tr.y, tr.z = (float(v) for v in T[:3, 3])
        q.x, q.y, q.z, q.w = (float(v) for v in Rotation.from_matrix(T[:3, :3]).as_quat())
        out.append(t)
    return out


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
    single_view: bool = False,
) -> MarkerArray:
    """Markers of one person: DELETEALL, raw keypoints (SPHERE_LIST), mapped joints and bones (LINE_LIST).

    Args:
        keypoints3d: (K, 3) metres or None; keypoints_valid: (K,) bool or None.
        pose: (17, 3) metres or None (joints in ``JOINT_NAMES`` order; non-finite joints skipped).
        lifetime_s: markers vanish after this long if no new set arrives (stale output).
        single_view: the points were lifted from one camera (no triangulation): drawn in magenta, so that a
            person watching RViz sees the estimate is the less certain kind.

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
            m.color = _color(1.0, 0.0, 1.0) if single_view else _color(1.0, 0.55, 0.0)
            m.points = _points(kp[ok])
            markers.append(m)
    if pose is not None:
        pj = np.asarray(pose, dtype=np.float64)
        ok = np.isfinite(pj).all(axis=1)
        if ok.any():
            m = _marker(Marker.SPHERE_LIST, f"{ns_prefix}/joints", stamp_ns, frame_id, lifetime_s, 0.04)
            m.color = _color(0.8, 0.2, 0.8) if single_view else _color(0.1, 0.6, 1.0)
            m.points = _points(pj[ok])
            markers.append(m)
        seg = [(a, b) for a, b in BONES if ok[a] and ok[b]]
        if seg:
            m = _marker(Marker.LINE_LIST, f"{ns_prefix}/skeleton", stamp_ns, frame_id, lifetime_s, 0.02)
            m.color = _color(1.0, 0.4, 1.0) if single_view else _color(0.2, 0.9, 0.3)
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


def diagnostic_statuses(statuses: list[Status], prefix: str) -> list[DiagnosticStatus]:
    """kp3d_core health statuses -> DiagnosticStatus named ``<prefix>: <status name>``."""
    return [diagnostic_status(f"{prefix}: {s.name}", s.level, s.message, s.values, s.hardware_id) for s in statuses]


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
def keypoint_names(num_keypoints: int, named: bool = False) -> list[str]:
    """``kp00``, ``kp01``, ... for discovered keypoints; the joint names for a skeleton model's (``named``)."""
    return list(JOINT_NAMES) if named else [f"kp{i:02d}" for i in range(int(num_keypoints))]


def joint_names_msg(num_keypoints: int, frame_id: str, named: bool = False) -> String:
    """JSON document naming the order of both PoseArrays and the missing-joint convention; ``named``: the
    keypoints are themselves the 17 joints (a skeleton model, no labels)."""
    doc = {
        "frame_id": frame_id,
        "pose": list(JOINT_NAMES),
        "keypoints": keypoint_names(num_keypoints, named),
        "bones": [list(b) for b in BONES],
        "missing": "position (0,0,0) and orientation quaternion (x,y,z,w) = (1,0,0,0), i.e. w = 0; "
                   "valid joints have the identity (0,0,0,1)",
    }
    return String(data=json.dumps(doc))
