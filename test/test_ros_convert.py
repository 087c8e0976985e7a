"""kp3d_ros.convert: ROS messages <-> kp3d_core values, checked value by value."""
import json

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from visualization_msgs.msg import Marker  # noqa: E402

from kp3d_core.rig import ring_rig  # noqa: E402
from kp3d_core.skeleton import BONES, JOINT_NAMES  # noqa: E402
from kp3d_ros import convert  # noqa: E402


def test_stamps_round_trip_and_reject_negative():
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_732_000_000_123_456_789):
        assert convert.stamp_to_ns(convert.ns_to_stamp(ns)) == ns
    with pytest.raises(ValueError, match="stamp"):
        convert.ns_to_stamp(-1)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_image_round_trip(encoding):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    msg = convert.rgb_to_image_msg(rgb, 42, "cam0_optical_frame", encoding)
    assert (msg.width, msg.height, msg.step, msg.encoding) == (7, 5, 21, encoding)
    assert convert.stamp_to_ns(msg.header.stamp) == 42
    np.testing.assert_array_equal(convert.image_msg_to_rgb(msg), rgb)


def test_image_with_padded_rows_and_bad_encoding():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = convert.rgb_to_image_msg(rgb, 0, "f")
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    msg.step, msg.data = 12, padded.tobytes()
    np.testing.assert_array_equal(convert.image_msg_to_rgb(msg), rgb)
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="yuv422"):
        convert.image_msg_to_rgb(msg)


def test_camera_info_round_trip():
    cam = ring_rig(2)[1]
    msg = convert.camera_info_msg(cam, 5)
    back = convert.camera_from_camera_info("cam1", msg, cam.T_world_cam)
    np.testing.assert_allclose(back.K, cam.K)
    np.testing.assert_allclose(back.P, cam.P, atol=1e-9)
    assert (back.width, back.height, back.frame_id) == (cam.width, cam.height, cam.frame_id)
    msg.k = [0.0] * 9
    with pytest.raises(ValueError, match="cam1.*uncalibrated"):
        convert.camera_from_camera_info("cam1", msg, cam.T_world_cam)


def test_pose_array_never_publishes_nan_and_marks_missing_joints():
    pts = np.arange(17 * 3, dtype=np.float64).reshape(17, 3) / 10
    pts[3] = np.nan
    valid = np.ones(17, bool)
    valid[5] = False
    msg = convert.pose_array(pts, valid, 7, "world")
    assert msg.header.frame_id == "world" and convert.stamp_to_ns(msg.header.stamp) == 7
    flat = [v for p in msg.poses for v in (p.position.x, p.position.y, p.position.z, p.orientation.w)]
    assert np.isfinite(flat).all()
    back, ok = convert.pose_array_to_numpy(msg)
    assert ok.tolist() == [i not in (3, 5) for i in range(17)]
    np.testing.assert_allclose(back[ok], pts[ok])
    assert np.isnan(back[~ok]).all()
    # every quaternion is a unit quaternion (RViz rejects zero ones): identity if valid, the half turn if missing
    quats = np.array([[p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w] for p in msg.poses])
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0)
    assert tuple(quats[3]) == convert.MISSING_QUATERNION == (1.0, 0.0, 0.0, 0.0) and tuple(quats[0]) == (0, 0, 0, 1)
    assert msg.poses[3].position.x == msg.poses[3].position.y == msg.poses[3].position.z == 0.0
    # the older all-zero quaternion still decodes as missing
    msg.poses[0].orientation.w = 0.0
    assert not convert.pose_array_to_numpy(msg)[1][0]
    with pytest.raises(ValueError, match="points"):
        convert.pose_array(np.zeros((4, 2)), None, 0, "world")


def test_skeleton_markers_namespaces_types_and_bones():
    pose = np.random.default_rng(1).normal(size=(17, 3))
    pose[10] = np.nan  # head missing: its bone (neck-head) is dropped
    kp = np.random.default_rng(2).normal(size=(8, 3))
    ok = np.ones(8, bool)
    ok[0] = False
    arr = convert.skeleton_markers(kp, ok, pose, 11, "/world", lifetime_s=0.25)
    m = {x.ns: x for x in arr.markers}
    assert arr.markers[0].action == Marker.DELETEALL
    assert m["person0/keypoints"].type == Marker.SPHERE_LIST and len(m["person0/keypoints"].points) == 7
    lines = m["person0/skeleton"]
    assert lines.type == Marker.LINE_LIST and len(lines.points) == 2 * (len(BONES) - 1)
    assert lines.header.frame_id == "world"  # no leading slash
    assert lines.lifetime.nanosec == 250_000_000
    first = np.array([[p.x, p.y, p.z] for p in lines.points[:2]])
    a, b = BONES[0]
    np.testing.assert_allclose(first, pose[[a, b]])
    for x in arr.markers[1:]:
        assert 0 <= x.color.r <= 1 and x.color.a == 1.0
    # a pose lifted from one camera is drawn in other colours, each marker of it
    lone = convert.skeleton_markers(kp, ok, pose, 11, "/world", single_view=True)
    for usual, other in zip(arr.markers[1:], lone.markers[1:]):
        assert usual.ns == other.ns and (usual.color.r, usual.color.g, usual.color.b) != (
            other.color.r, other.color.g, other.color.b)


def test_diagnostics_and_joint_names():
    from kp3d_core.inference.health import Status

    st = convert.diagnostic_status("n: pipeline", convert.ERROR, "bad", {"rate": 29.987654, "drops": 3})
    assert convert.diagnostic_level(st) == convert.ERROR
    assert convert.diagnostic_values(st) == {"rate": "29.99", "drops": "3"}
    (cam,) = convert.diagnostic_statuses([Status("camera cam2", convert.WARN, "not alive", "cam2", {"images": 4})],
                                         "/multicam_node")
    assert (cam.name, cam.hardware_id, cam.message) == ("/multicam_node: camera cam2", "cam2", "not alive")
    assert convert.diagnostic_level(cam) == convert.WARN and convert.diagnostic_values(cam) == {"images": "4"}
    doc = json.loads(convert.joint_names_msg(8, "world").data)
    assert doc["pose"] == list(JOINT_NAMES) and doc["keypoints"][-1] == "kp07" and doc["frame_id"] == "world"
    assert "(1,0,0,0)" in doc["missing"]


def test_camera_transforms_for_tf_static():
    """world -> optical frame per camera: the quaternion (x, y, z, w), written out by hand, and the translation
    give back T_world_cam."""
    rig = ring_rig(3)
    tfs = convert.camera_transforms(rig.cameras, "world", 5)
    assert [t.child_frame_id for t in tfs] == [c.frame_id for c in rig.cameras]
    p_cam = np.array([0.3, -0.2, 2.0])
    for t, cam in zip(tfs, rig.cameras):
        assert t.header.frame_id == "world" and convert.stamp_to_ns(t.header.stamp) == 5
        q = t.transform.rotation
        tr = t.transform.translation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-12
        x, y, z, w = q.x, q.y, q.z, q.w
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        np.testing.assert_allclose(R, cam.T_world_cam[:3, :3], atol=1e-12)
        np.testing.assert_allclose([tr.x, tr.y, tr.z], cam.T_world_cam[:3, 3], atol=1e-12)
        np.testing.assert_allclose(R @ p_cam + [tr.x, tr.y, tr.z], cam.T_world_cam[:3, :3] @ p_cam + cam.T_world_cam[:3, 3])
