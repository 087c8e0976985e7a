"""A calibrated pinhole camera with OpenCV plumb_bob distortion, in the ROS optical-frame convention.

Frames (REP-103 optical frame): camera z forward, x right, y down. A world point ``X_world`` (metres)
maps to the camera frame as ``X_cam = R_cam_world @ X_world + t_cam_world``; pixels are
``u = K @ distort(X_cam / z)``. ``T_world_cam`` (4x4) is the camera's pose in the world.

Example::

    cam = Camera.from_pose("cam0", K, dist, 640, 480, T_world_cam)
    uv = cam.project(points_world)          # (N, 2) pixels, distortion applied (= cv2.projectPoints)
    uv_ideal = cam.undistort_pixels(uv)     # (N, 2) pixels of the ideal pinhole camera K
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


class CalibrationError(ValueError):
    """Invalid calibration; the message names the camera and the field."""


def _fail(camera: str, field_name: str, problem: str) -> CalibrationError:
    return CalibrationError(f"camera '{camera}': field '{field_name}': {problem}")


@dataclass(frozen=True)
class Camera:
    """One calibrated camera.

    Attributes:
        name: camera name (also the key in rig files and the topic prefix).
        K: (3, 3) intrinsics of the raw (distorted) image, pixels.
        dist: (5,) plumb_bob coefficients k1, k2, p1, p2, k3.
        width, height: image size in pixels.
        R: (3, 3) rotation world -> camera optical frame.
        t: (3,) translation world -> camera optical frame, metres.
        frame_id: the optical frame id used in ROS headers.
    """

    name: str
    K: np.ndarray
    dist: np.ndarray
    width: int
    height: int
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    t: np.ndarray = field(default_factory=lambda: np.zeros(3))
    frame_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _as_array(self.name, "camera_matrix", self.K, (3, 3)))
        object.__setattr__(self, "dist", _as_array(self.name, "distortion_coefficients", self.dist, (5,)))
        object.__setattr__(self, "R", _as_array(self.name, "T_world_cam (rotation)", self.R, (3, 3)))
        object.__setattr__(self, "t", _as_array(self.name, "T_world_cam (translation)", self.t, (3,)))
        if not self.frame_id:
            object.__setattr__(self, "frame_id", f"{self.name}_optical_frame")
        self.validate()

    # ----------------------------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise :class:`CalibrationError` naming the camera and field if anything is invalid."""
        n = self.name
        if not isinstance(self.width, (int, np.integer)) or not isinstance(self.height, (int, np.integer)):
            raise _fail(n, "image_width/image_height", f"must be integers, got {self.width!r}, {self.height!r}")
        if self.width <= 0 or self.height <= 0:
            raise _fail(n, "image_width/image_height", f"must be positive, got {self.width}x{self.height}")
        if self.K[0, 0] == 0.0:
            raise _fail(n, "camera_matrix", "K[0] == 0: the camera is uncalibrated")
        if self.K[0, 0] < 0 or self.K[1, 1] <= 0:
            raise _fail(n, "camera_matrix", f"focal lengths must be positive, got fx={self.K[0, 0]}, fy={self.K[1, 1]}")
        if not np.allclose(self.K[2], [0.0, 0.0, 1.0]) or self.K[1, 0] != 0.0:
            raise _fail(n, "camera_matrix", f"not an upper-triangular intrinsics matrix: {self.K.tolist()}")
        if not np.allclose(self.R @ self.R.T, np.eye(3), atol=1e-6) or np.linalg.det(self.R) < 0:
            raise _fail(n, "T_world_cam (rotation)", "is not a proper orthonormal rotation")

    # ------------------------------------------------------------------------------ properties
    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.width), int(self.height)

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix K [R | t] of the ideal (undistorted) camera, world -> pixels."""
        return self.K @ np.hstack([self.R, self.t[:, None]])

    @property
    def T_world_cam(self) -> np.ndarray:
        """(4, 4) pose of the camera optical frame in the world (world <- camera)."""
        T = np.eye(4)
        T[:3, :3] = self.R.T
        T[:3, 3] = -self.R.T @ self.t
        return T

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in the world, metres."""
        return -self.R.T @ self.t

    @classmethod
    def from_pose(
        cls, name: str, K, dist, width: int, height: int, T_world_cam, frame_id: str = ""
    ) -> "Camera":
        """Build a camera from its pose ``T_world_cam`` (4x4, or 16 row-major values)."""
        T = np.asarray(T_world_cam, dtype=np.float64)
        if T.size != 16:
            raise _fail(name, "T_world_cam", f"needs 16 values (4x4 row-major), got {T.size}")
        T = T.reshape(4, 4)
        if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
            raise _fail(name, "T_world_cam", f"last row must be [0, 0, 0, 1], got {T[3].tolist()}")
        R_world_cam = T[:3, :3]
        if not np.allclose(R_world_cam @ R_world_cam.T, np.eye(3), atol=1e-6) or np.linalg.det(R_world_cam) < 0:
            raise _fail(name, "T_world_cam (rotation)", "is not a proper orthonormal rotation")
        R = R_world_cam.T
        return cls(name, K, dist, width, height, R, -R @ T[:3, 3], frame_id)

    def with_pose(self, T_world_cam) -> "Camera":
        """This camera's intrinsics at another pose."""
        return Camera.from_pose(self.name, self.K, self.dist, self.width, self.height, T_world_cam, self.frame_id)

    # ------------------------------------------------------------------------------ projection
    def world_to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points, metres -> (N, 3) camera-frame points, metres."""
        return np.asarray(points_world, dtype=np.float64) @ self.R.T + self.t

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world points, metres -> (..., 2) pixels with distortion (same as cv2.projectPoints)."""
        pts = np.asarray(points_world, dtype=np.float64)
        flat = pts.reshape(-1, 3)
        rvec, _ = cv2.Rodrigues(self.R)
        uv, _ = cv2.projectPoints(flat, rvec, self.t, self.K, self.dist)
        return uv.reshape(*pts.shape[:-1], 2)

    def undistort_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) distorted pixels -> (..., 2) pixels of the ideal pinhole camera with the same K."""
        px = np.asarray(pixels, dtype=np.float64)
        if not np.any(self.dist):
            return px.copy()
        flat = px.reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
        out = cv2.undistortPoints(flat, self.K, self.dist, None, None, self.K, criteria)
        return out.reshape(px.shape)

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) distorted pixels -> (..., 2) normalised image coordinates ``K^-1 [u, v, 1]`` of the ideal camera:
        the direction (x, y, 1) of each pixel's ray in the camera frame. NaN stays NaN."""
        px = np.asarray(pixels, dtype=np.float64)
        ok = np.isfinite(px).all(-1)
        out = np.full(px.shape, np.nan)
        if ok.any():
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
            out[ok] = cv2.undistortPoints(px[ok].reshape(-1, 1, 2), self.K, self.dist, None, None, None,
                                          criteria).reshape(-1, 2)
        return out

    def in_image(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> (...) bool, inside the image bounds."""
        px = np.asarray(pixels)
        return (px[..., 0] >= 0) & (px[..., 0] < self.width) & (px[..., 1] >= 0) & (px[..., 1] < self.height)

    # ------------------------------------------------------------------------------ CameraInfo
    def camera_info_fields(self) -> dict:
        """The fields of a sensor_msgs/CameraInfo for the raw image (lower-case ROS 2 names).

        R is identity and P = [K | 0]: the raw, unrectified monocular case.
        """
        return {
            "width": int(self.width),
            "height": int(self.height),
            "distortion_model": "plumb_bob",
            "d": self.dist.tolist(),
            "k": self.K.reshape(-1).tolist(),
            "r": np.eye(3).reshape(-1).tolist(),
            "p": np.hstack([self.K, np.zeros((3, 1))]).reshape(-1).tolist(),
            "frame_id": self.frame_id,
        }

    @classmethod
    def from_camera_info_fields(cls, name: str, fields: dict, T_world_cam=None) -> "Camera":
        """Build a camera from CameraInfo fields (as :meth:`camera_info_fields` returns) and a pose."""
        for key in ("width", "height", "k", "d"):
            if key not in fields:
                raise _fail(name, f"CameraInfo.{key}", "missing")
        model = fields.get("distortion_model", "plumb_bob") or "plumb_bob"
        d = np.asarray(fields["d"], dtype=np.float64).reshape(-1)
        if model not in ("plumb_bob", "rational_polynomial") and d.size:
            raise _fail(name, "CameraInfo.distortion_model", f"unsupported model '{model}'")
        if d.size == 0:
            d = np.zeros(5)
        elif d.size != 5:
            if model == "rational_polynomial" and not np.any(d[5:]):
                d = d[:5]
            else:
                raise _fail(name, "CameraInfo.d", f"plumb_bob needs 5 coefficients, got {d.size}")
        k = np.asarray(fields["k"], dtype=np.float64)
        if k.size != 9:
            raise _fail(name, "CameraInfo.k", f"needs 9 values, got {k.size}")
        T = np.eye(4) if T_world_cam is None else T_world_cam
        return cls.from_pose(
            name, k.reshape(3, 3), d, int(fields["width"]), int(fields["height"]), T, fields.get("frame_id", "")
        )


def _as_array(camera: str, field_name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise _fail(camera, field_name, f"not numeric: {exc}") from None
    if arr.shape != shape:
        if arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        else:
            raise _fail(camera, field_name, f"expected shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise _fail(camera, field_name, "contains NaN or infinity")
    return arr


def projection_matrices(cameras: list[Camera]) -> np.ndarray:
    """(V, 3, 4) ideal projection matrices of the cameras, world -> undistorted pixels."""
    return np.stack([c.P for c in cameras])


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) T_world_cam of an optical frame at ``eye`` looking at ``target`` (world z up)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to 'up'")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, z], axis=1)
    T[:3, 3] = eye
    return T
