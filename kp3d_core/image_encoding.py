"""sensor_msgs/Image buffers <-> (H, W, 3) uint8 RGB arrays, ROS-free.

Used by the bag reader and the ROS node alike (duck-typed: any object with ``height``, ``width``,
``encoding``, ``step`` and ``data`` fields works, e.g. rclpy and rosbags messages).

Only 8-bit encodings are supported: rgb8, bgr8, mono8, rgba8, bgra8. Rows may be padded
(``step >= width * channels``); the padding is skipped without copying where possible, so for
rgb8 the returned array is a zero-copy (read-only) view over ``data``.

Example::

    rgb = image_to_rgb(480, 640, "bgr8", 640 * 3, buf)      # (480, 640, 3) uint8 RGB
    fields = rgb_to_image_fields(rgb)                       # dict for a sensor_msgs/Image
"""
from __future__ import annotations

import numpy as np

#: encoding -> (channels, index of R, G, B in a pixel; None for mono)
_ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


def _as_bytes_view(data) -> np.ndarray:
    """Any buffer (bytes, bytearray, memoryview, array.array('B'), uint8 ndarray) -> flat uint8 view."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ValueError(f"image data: expected uint8 bytes, got dtype {data.dtype}")
        return data.reshape(-1)
    return np.frombuffer(data, dtype=np.uint8)


def image_to_rgb(height: int, width: int, encoding: str, step: int, data) -> np.ndarray:
    """Decode a raw image buffer to RGB.

    Args:
        height, width: image size in pixels.
        encoding: one of :data:`SUPPORTED_ENCODINGS`.
        step: bytes per row, >= width * channels (padding at the end of each row is ignored).
        data: the buffer, exactly ``height * step`` bytes.

    Returns:
        (height, width, 3) uint8 RGB. For rgb8 without row padding this is a view over ``data``
        (read-only if ``data`` is immutable); other encodings return a new array.

    Raises:
        ValueError: unknown encoding, or a size/step that does not match the buffer (the message
        names the encoding and the sizes).
    """
    if encoding not in _ENCODINGS:
        raise ValueError(
            f"unsupported image encoding '{encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        )
    channels, order = _ENCODINGS[encoding]
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ValueError(f"image ({encoding}): size must be positive, got {width}x{height}")
    if step < width * channels:
        raise ValueError(
            f"image ({encoding}, {width}x{height}): step {step} < width*channels = {width * channels}"
        )
    buf = _as_bytes_view(data)
    if buf.size != height * step:
        raise ValueError(
            f"image ({encoding}, {width}x{height}, step {step}): data has {buf.size} bytes, "
            f"expected height*step = {height * step}"
        )
    # strided view: rows of `step` bytes, only the first width*channels of each used (no copy)
    rows = buf.reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels)
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    if order == (0, 1, 2) and channels == 3:
        return pixels
    r, g, b = order
    if (r, g, b) == (0, 1, 2):
        return np.ascontiguousarray(pixels[:, :, :3])
    return pixels[:, :, [r, g, b]]


def image_msg_to_rgb(msg) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any sensor_msgs/Image-like object (rclpy, rosbags, dict-free duck typing)."""
    return image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data)


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict:
    """The payload fields of a sensor_msgs/Image holding ``rgb``.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        encoding: rgb8, bgr8, rgba8, bgra8 or mono8 (mono8 uses the ITU-R 601 luma of the RGB).

    Returns:
        dict(height, width, encoding, is_bigendian=0, step, data) with ``data`` a contiguous
        (H * step,) uint8 array (rows unpadded).
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"rgb: expected shape (H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"rgb: expected dtype uint8, got {arr.dtype}")
    if encoding not in _ENCODINGS:
        raise ValueError(
            f"unsupported image encoding '{encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})"
        )
    height, width = arr.shape[:2]
    channels, order = _ENCODINGS[encoding]
    if order is None:
        luma = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        out = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, :, None]
    else:
        out = np.empty((height, width, channels), dtype=np.uint8)
        out[:, :, list(order)] = arr
        if channels == 4:
            out[:, :, 3] = 255
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(width * channels),
        "data": np.ascontiguousarray(out).reshape(-1),
    }
