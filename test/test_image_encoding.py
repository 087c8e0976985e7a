"""image_encoding: every encoding, row padding (step), zero copy, bad input, round trips."""
from types import SimpleNamespace

import numpy as np
import pytest

from kp3d_core.image_encoding import (
    SUPPORTED_ENCODINGS,
    image_msg_to_rgb,
    image_to_rgb,
    rgb_to_image_fields,
)


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def _pad_rows(pixels: np.ndarray, pad: int) -> tuple[bytes, int]:
    """(H, W, C) -> bytes with `pad` garbage bytes after each row, and the step."""
    h, w, c = pixels.shape
    step = w * c + pad
    buf = np.full((h, step), 0xAB, dtype=np.uint8)
    buf[:, : w * c] = pixels.reshape(h, w * c)
    return buf.tobytes(), step


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb8_bgr8_rgba8_bgra8_decode(rgb, pad):
    h, w = rgb.shape[:2]
    alpha = np.full((h, w, 1), 9, np.uint8)
    layouts = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }
    for enc, pixels in layouts.items():
        data, step = _pad_rows(np.ascontiguousarray(pixels), pad)
        out = image_to_rgb(h, w, enc, step, data)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8, enc
        np.testing.assert_array_equal(out, rgb, err_msg=enc)


def test_mono8_expands_to_grey(rgb):
    grey = rgb[:, :, 0]
    data, step = _pad_rows(grey[:, :, None], 2)
    out = image_to_rgb(5, 7, "mono8", step, data)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_rgb8_is_zero_copy(rgb):
    buf = bytearray(rgb.tobytes())
    out = image_to_rgb(5, 7, "rgb8", 21, buf)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))
    buf[0] = (int(rgb[0, 0, 0]) + 1) % 256  # the view sees the change: no copy was made
    assert out[0, 0, 0] == buf[0]
    # padded rows are still a strided view, not a copy
    data, step = _pad_rows(rgb, 5)
    src = np.frombuffer(data, np.uint8)
    assert np.shares_memory(image_to_rgb(5, 7, "rgb8", step, src), src)


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="'yuv422'"):
        image_to_rgb(2, 2, "yuv422", 4, bytes(8))
    with pytest.raises(ValueError, match="'16UC1'"):
        rgb_to_image_fields(np.zeros((2, 2, 3), np.uint8), "16UC1")


def test_size_mismatch_is_named():
    with pytest.raises(ValueError, match=r"rgb8.*4x3.*35 bytes.*36"):
        image_to_rgb(3, 4, "rgb8", 12, bytes(35))
    with pytest.raises(ValueError, match="step 10 < width"):
        image_to_rgb(3, 4, "rgb8", 10, bytes(30))
    with pytest.raises(ValueError, match="size must be positive"):
        image_to_rgb(0, 4, "mono8", 4, b"")
    with pytest.raises(ValueError, match="dtype"):
        image_to_rgb(1, 1, "mono8", 1, np.zeros(1, np.float32))


@pytest.mark.parametrize("enc", [e for e in SUPPORTED_ENCODINGS if e != "mono8"])
def test_fields_round_trip(rgb, enc):
    f = rgb_to_image_fields(rgb, enc)
    channels = 4 if enc.endswith("a8") else 3
    assert (f["height"], f["width"], f["encoding"], f["is_bigendian"]) == (5, 7, enc, 0)
    assert f["step"] == 7 * channels and f["data"].size == 5 * f["step"]
    msg = SimpleNamespace(**f)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)


def test_fields_mono8_luma():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    f = rgb_to_image_fields(rgb, "mono8")
    np.testing.assert_array_equal(f["data"], [76, 150, 29, 255])  # round(0.299/0.587/0.114 * 255)


def test_fields_bad_input():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        rgb_to_image_fields(np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_image_fields(np.zeros((2, 2, 3), np.float32))
