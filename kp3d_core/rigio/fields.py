"""Reading the fields of calibration files, with errors that name the file, the camera and the field.

Every problem in an imported file is one line: ``FILE: camera 'NAME': field 'FIELD': what is wrong``
(``camera`` left out for a file-level field), raised as :class:`.errors.RigFormatError` (a
:class:`kp3d_core.camera.CalibrationError`, so callers that already catch that keep working).

Example::

    where = Where(Path("cam0.yaml"), "cam0")
    K = where.array(where.require(entry, "camera_matrix"), "camera_matrix", (3, 3))
    # -> RigFormatError("cam0.yaml: camera 'cam0': field 'camera_matrix': expected 3x3 (9 numbers), got 4 numbers")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import CalibrationError, Camera
from .errors import RigFormatError


@dataclass(frozen=True)
class Where:
    """A place in a calibration file: the file and (optionally) the camera being read."""

    path: Path
    camera: str | None = None

    def at(self, camera: str | None) -> "Where":
        """The same file, another camera."""
        return Where(self.path, camera)

    def error(self, field: str | None, problem: str) -> RigFormatError:
        parts = [str(self.path)]
        if self.camera is not None:
            parts.append(f"camera '{self.camera}'")
        if field is not None:
            parts.append(f"field '{field}'")
        return RigFormatError(": ".join(parts + [problem]))

    def require(self, mapping, key: str, field: str | None = None):
        """``mapping[key]``; a missing key (or a mapping that is not one) names ``field`` (default ``key``)."""
        field = field or key
        if not isinstance(mapping, dict):
            raise self.error(field, f"expected a mapping holding '{key}', got {type(mapping).__name__}")
        if key not in mapping or mapping[key] is None:
            raise self.error(field, "missing")
        return mapping[key]

    def array(self, value, field: str, size: int | tuple[int, ...]) -> np.ndarray:
        """A finite float64 array of ``size`` numbers (flat), or of shape ``size`` (nested lists accepted)."""
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.error(field, f"not a list of numbers: {_short(value)}") from None
        shape = (size,) if isinstance(size, int) else tuple(size)
        # flat lists are read row-major; nested lists must have the shape itself
        if arr.size != int(np.prod(shape)) or (arr.ndim > 1 and arr.shape != shape):
            raise self.error(field, f"expected {_describe(shape)}, got {_describe(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise self.error(field, "contains NaN or infinity")
        return arr.reshape(shape)

    def number(self, value, field: str) -> float:
        if isinstance(value, bool):
            raise self.error(field, f"not a number: {value!r}")
        try:
            x = float(value)
        except (TypeError, ValueError):
            raise self.error(field, f"not a number: {_short(value)}") from None
        if not np.isfinite(x):
            raise self.error(field, f"not finite: {value!r}")
        return x

    def positive_int(self, value, field: str) -> int:
        x = self.number(value, field)
        if x != int(x) or x <= 0:
            raise self.error(field, f"expected a positive integer, got {value!r}")
        return int(x)

    def rotation(self, R: np.ndarray, field: str, atol: float = 1e-3) -> np.ndarray:
        """The proper rotation nearest to (3, 3) ``R``; an error naming ``field`` if ``R`` is not one.

        Files print rotations with a few digits (QTM: 6), so ``R R^T`` misses ``I`` by ~1e-6; within
        ``atol`` the nearest rotation (SVD) is what the file means. A reflection is never accepted.
        """
        err = np.abs(R @ R.T - np.eye(3)).max()
        if not err <= atol:
            raise self.error(field, f"not a rotation matrix (R R^T differs from I by {err:.2g})")
        if np.linalg.det(R) < 0:
            raise self.error(field, "a reflection (det -1): the source frame is left-handed or an axis is flipped")
        U, _, Vt = np.linalg.svd(R)
        return U @ Vt


def _describe(shape: tuple[int, ...]) -> str:
    n = int(np.prod(shape))
    if len(shape) <= 1:
        return f"{n} number" + ("" if n == 1 else "s")
    return "x".join(str(s) for s in shape) + f" ({n} numbers)"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_camera(where: Where, name: str, K, dist, width: int, height: int, R_cam_world, t_cam_world,
                 frame_id: str = "") -> Camera:
    """A :class:`Camera` from the world -> camera rotation and translation most formats store;
    the camera's own checks (focal lengths, rotation) fail naming the file too."""
    try:
        return Camera(name, K, dist, int(width), int(height), np.asarray(R_cam_world, dtype=np.float64),
                      np.asarray(t_cam_world, dtype=np.float64).reshape(3), frame_id)
    except CalibrationError as exc:
        raise RigFormatError(f"{where.path}: {exc}") from None

