"""Cameras: projection against OpenCV, undistortion, CameraInfo round trip, invalid input."""
import cv2
import numpy as np
import pytest

from kp3d_core.camera import CalibrationError, Camera, look_at

K = np.array([[500.0, 0.0, 320.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.21, 0.04, 0.0012, -0.0008, 0.003])


@pytest.fixture
def cam() -> Camera:
    return Camera.from_pose("cam0", K, DIST, 640, 480, look_at([3.0, 1.0, 1.6], [0.0, 0.0, 1.0]))


def test_project_matches_opencv(cam):
    pts = np.random.default_rng(0).normal([0.0, 0.0, 1.0], 0.5, size=(200, 3))
    rvec, _ = cv2.Rodrigues(cam.R)
    ref, _ = cv2.projectPoints(pts, rvec, cam.t, K, DIST)
    np.testing.assert_allclose(cam.project(pts), ref.reshape(-1, 2), atol=1e-9)
    assert cam.project(pts.reshape(10, 20, 3)).shape == (10, 20, 2)


def test_undistort_inverts_distortion(cam):
    pts = np.random.default_rng(1).normal([0.0, 0.0, 1.0], 0.5, size=(100, 3))
    ideal = pts @ cam.P[:, :3].T + cam.P[:, 3]
    ideal = ideal[:, :2] / ideal[:, 2:]
    np.testing.assert_allclose(cam.undistort_pixels(cam.project(pts)), ideal, atol=1e-6)


def test_pose_round_trip_and_projection_matrix(cam):
    T = cam.T_world_cam
    again = cam.with_pose(T)
    np.testing.assert_allclose(again.R, cam.R, atol=1e-12)
    np.testing.assert_allclose(again.t, cam.t, atol=1e-12)
    np.testing.assert_allclose(cam.center, T[:3, 3])
    # The optical axis (camera z) points at the target.
    z_world = T[:3, 2]
    to_target = np.array([0.0, 0.0, 1.0]) - cam.center
    assert np.dot(z_world, to_target / np.linalg.norm(to_target)) > 0.999
    assert cam.P.shape == (3, 4)


def test_camera_info_round_trip(cam):
    fields = cam.camera_info_fields()
    assert fields["distortion_model"] == "plumb_bob" and len(fields["k"]) == 9 and len(fields["p"]) == 12
    back = Camera.from_camera_info_fields("cam0", fields, cam.T_world_cam)
    np.testing.assert_allclose(back.K, cam.K)
    np.testing.assert_allclose(back.dist, cam.dist)
    assert back.size == (640, 480) and back.frame_id == cam.frame_id


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(K=np.zeros((3, 3))), "camera_matrix"),
        (dict(K=np.diag([-500.0, 500.0, 1.0])), "camera_matrix"),
        (dict(K=np.eye(2)), "camera_matrix"),
        (dict(dist=np.zeros(4)), "distortion_coefficients"),
        (dict(R=np.diag([1.0, 2.0, 1.0])), "rotation"),
        (dict(width=0), "image_width"),
    ],
)
def test_invalid_calibration_names_camera_and_field(kwargs, field):
    args = dict(name="left", K=K, dist=DIST, width=640, height=480)
    args.update(kwargs)
    with pytest.raises(CalibrationError) as err:
        Camera(**args)
    assert "'left'" in str(err.value) and field in str(err.value)


def test_uncalibrated_camera_info_is_rejected():
    fields = {"width": 640, "height": 480, "k": [0.0] * 9, "d": []}
    with pytest.raises(CalibrationError, match="K\\[0\\] == 0"):
        Camera.from_camera_info_fields("cam3", fields)


def test_bad_pose_is_rejected():
    T = np.eye(4)
    T[0, 0] = 2.0
    with pytest.raises(CalibrationError, match="'cam1'.*T_world_cam"):
        Camera.from_pose("cam1", K, DIST, 640, 480, T)
    with pytest.raises(CalibrationError, match="16 values"):
        Camera.from_pose("cam1", K, DIST, 640, 480, np.eye(3))
