"""Per-camera background images estimated without labels.

Offline: a robust temporal mode over frames sampled evenly through a recording (per pixel, the most
populated brightness cluster of its samples), which also survives a subject standing in one place for
more than half of the recording, where the plain temporal median (also provided) leaves a ghost.
Run time: :class:`RunningBackground` starts from such an image (or the median of the first frames) and
blends new frames in slowly, only where no foreground was detected, to follow lighting drift.
"""
from __future__ import annotations

import mmap
from typing import Callable, Sequence

import cv2
import numpy as np
from tqdm import tqdm


def sample_indices(num_frames: int, num_samples: int) -> np.ndarray:
    """(n,) int64 indices spread evenly over [0, num_frames), n = min(num_frames, num_samples)."""
    if num_frames <= 0:
        raise ValueError(f"sample_indices: num_frames must be positive, got {num_frames}")
    n = max(1, min(num_frames, num_samples))
    return np.unique(np.round(np.linspace(0, num_frames - 1, n)).astype(np.int64))


def median_background(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Temporal median: (N, H, W, C) uint8 frames of one static camera -> (H, W, C) uint8."""
    stack = np.asarray(frames)
    if stack.ndim != 4 or stack.shape[0] == 0:
        raise ValueError(f"median_background: expected (N, H, W, C) frames with N >= 1, got shape {stack.shape}")
    # np.median over uint8 returns float; the middle value rounded is what we want.
    return np.round(np.median(stack, axis=0)).astype(stack.dtype)


def mode_background(frames: np.ndarray | Sequence[np.ndarray], tolerance: float = 20.0, rows: int = 32) -> np.ndarray:
    """Robust background: per pixel, the mean of the densest colour cluster of the samples.

    For each pixel, every sample counts the samples within ``tolerance`` of it (largest channel
    difference, 0..255 units); the sample with the most neighbours is the mode, and the mean of its
    neighbours is returned. The static background repeats within its noise while a subject's colours
    spread (shading, motion, different people), so the background wins even where a subject stands for
    more than half of the recording and the plain median bakes a ghost into the image (studio-bench
    test, 60 samples: pixels > 15/255 off the true background cam0 2683 -> 327, cam2 3791 -> 552).
    (N, H, W, C) uint8 -> (H, W, C) uint8; O(N^2) per pixel (3-40 s for 60 samples of 640x480, offline only).
    """
    stack = np.asarray(frames)
    if stack.ndim != 4 or stack.shape[0] == 0:
        raise ValueError(f"mode_background: expected (N, H, W, C) frames with N >= 1, got shape {stack.shape}")
    n = stack.shape[0]
    out = np.empty(stack.shape[1:], dtype=stack.dtype)
    for y0 in range(0, stack.shape[1], rows):  # row chunks bound the memory
        f = stack[:, y0 : y0 + rows].astype(np.int16)  # (N, rows, W, C)
        count = np.zeros(f.shape[:-1], np.int16)
        for j in range(n):
            count += np.abs(f - f[j]).max(-1) <= tolerance
        mode = np.take_along_axis(f, count.argmax(0)[None, ..., None], 0)  # (1, rows, W, C)
        near = (np.abs(f - mode).max(-1) <= tolerance)[..., None]
        out[y0 : y0 + rows] = np.round((f * near).sum(0) / near.sum(0))
    return out


BACKGROUND_METHODS = {"mode": mode_background, "median": median_background}


def estimate_background(
    read_frame: Callable[[int], np.ndarray],
    num_frames: int,
    num_samples: int = 60,
    desc: str | None = None,
    method: str = "mode",
) -> np.ndarray:
    """Background of ``num_samples`` frames spread evenly over a recording; ``read_frame(t) -> (H, W, C)``.

    ``method``: 'mode' (:func:`mode_background`, default) or 'median' (:func:`median_background`).
    """
    if method not in BACKGROUND_METHODS:
        raise ValueError(f"background method must be one of {sorted(BACKGROUND_METHODS)}, got {method!r}")
    idx = sample_indices(num_frames, num_samples)
    frames = [read_frame(int(t)) for t in tqdm(idx, desc=desc or "background", leave=False, disable=desc is None)]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"estimate_background: frames differ in shape {sorted(shapes)}")
    return BACKGROUND_METHODS[method](np.stack(frames))


class RunningBackground:
    """Slowly updated background of one camera for run-time use.

    ``update(image, foreground)`` blends ``rate`` of the new image into the model where the (dilated)
    foreground is off; pixels under the subject keep their value. Before ``warmup`` frames have been
    seen (and without an initial image), the model is the median of the frames received so far.

    Memory and time: the warm-up frames go into one buffer of ``warmup`` frames mapped from the OS and
    handed back once the median is taken (the node's resident memory returns to where it was: frames
    copied one by one left ~100 MB of heap behind on 4 cameras); the median partitions that buffer in
    place (no copy); updates and :meth:`image` work in preallocated buffers. Results are those of
    :func:`median_background` and of the plain NumPy blend, bit for bit.
    """

    def __init__(self, initial: np.ndarray | None = None, rate: float = 0.01, warmup: int = 15):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"RunningBackground: rate must be in [0, 1], got {rate}")
        self.rate = float(rate)
        self.warmup = int(warmup)
        self._frames: np.ndarray | None = None  # (warmup, H, W, C) uint8 during the warm-up
        self._count = 0  # frames in _frames
        self._model = None if initial is None else np.asarray(initial, dtype=np.float32).copy()
        self._scratch: np.ndarray | None = None  # float32 like the model: the blend's difference

    @property
    def ready(self) -> bool:
        """True once a background image exists (an initial image, or at least one frame seen)."""
        return self._model is not None or self._count > 0

    def image(self) -> np.ndarray:
        """The current background, (H, W, C) uint8."""
        if self._model is None:
            if not self._count:
                raise RuntimeError("RunningBackground: no frame seen yet and no initial image")
            return _median_in_place(self._frames[: self._count])
        # round half to even and saturate, as np.clip(np.round(model), 0, 255).astype(uint8) in one pass
        # (the model stays within [0, 255]: a blend of 8-bit images)
        return cv2.convertScaleAbs(self._model)

    def rescale(self, gain) -> None:
        """Multiply the model by a per-channel ``gain`` (3,): the room's light or the camera's exposure changed
        as a whole (:func:`kp3d_core.crop.estimate_gain`). No effect during the warm-up."""
        if self._model is not None:
            np.multiply(self._model, np.asarray(gain, dtype=np.float32), out=self._model)
            np.clip(self._model, 0.0, 255.0, out=self._model)

    def update(self, image: np.ndarray, foreground: np.ndarray | None = None,
               foreground_box: tuple[int, int, int, int] | None = None, heal: np.ndarray | None = None,
               heal_rate: float = 0.5) -> None:
        """Add one (H, W, C) uint8 frame; ``foreground`` (H, W) bool/0-1 marks pixels not to learn from, or
        ``foreground_box`` (x0, y0, x1, y1) does for the pixels [y0:y1, x0:x1] (the same as that mask, faster).

        ``heal`` (H, W) bool: pixels learnt at ``heal_rate`` instead of ``rate`` (a ghost: foreground that stays
        where no subject is, :class:`kp3d_core.inference.predictor.Predictor`); the foreground mask and box win
        over it. Ignored during the warm-up.
        """
        image = np.asarray(image)
        if self._model is None:
            if self._frames is None:
                self._frames = _os_buffer((max(self.warmup, 1),) + image.shape, image.dtype)
            elif image.shape != self._frames.shape[1:]:
                raise ValueError(f"RunningBackground.update: image shape {image.shape} != {self._frames.shape[1:]}")
            self._frames[self._count] = image
            self._count += 1
            if self._count >= self.warmup:
                self._model = _median_in_place(self._frames[: self._count]).astype(np.float32)
                self._frames, self._count = None, 0  # unmapped: the memory goes back to the OS
            return
        if image.shape != self._model.shape:
            raise ValueError(f"RunningBackground.update: image shape {image.shape} != background {self._model.shape}")
        # model += w * (image - model), w = rate off the (dilated) foreground and 0 on it: the same float32
        # operations as that expression, a band of rows at a time in one small buffer (no full-size temporaries)
        h, w = image.shape[:2]
        # Dilate the foreground so the subject's blurred outline does not bleed into the model.
        box = None
        if foreground_box is not None:
            x0, y0, x1, y1 = (int(v) for v in foreground_box)
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)  # the mask's rectangle
            if x1 > x0 and y1 > y0:  # dilated by the 7x7 square: 3 px more on each side
                box = (max(x0 - 3, 0), max(y0 - 3, 0), min(x1 + 3, w), min(y1 + 3, h))
        fg = None
        if foreground is not None:
            fg = cv2.dilate((np.asarray(foreground) > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        rate = np.float32(self.rate)
        fast = np.float32(heal_rate) if heal is not None and np.any(heal) else None
        for r0 in range(0, h, _BAND):
            r1 = min(r0 + _BAND, h)
            model = self._model[r0:r1]
            if self._scratch is None or self._scratch.shape[1:] != model.shape[1:]:
                self._scratch = np.empty((_BAND,) + model.shape[1:], np.float32)
            diff = self._scratch[: r1 - r0]
            np.subtract(image[r0:r1], model, out=diff, dtype=np.float32)
            if fast is not None and heal[r0:r1].any():
                rows = heal[r0:r1]
                diff[rows] *= fast
                np.multiply(diff, np.where(rows, np.float32(1.0), rate)[..., None], out=diff)
            else:
                np.multiply(diff, rate, out=diff)
            if box is not None and box[1] < r1 and box[3] > r0:
                diff[max(box[1] - r0, 0) : box[3] - r0, box[0] : box[2]] = 0.0
            if fg is not None and fg[r0:r1].any():
                diff[fg[r0:r1]] = 0.0
            np.add(model, diff, out=model)


_BAND = 32  # rows per step of RunningBackground.update (a 240 kB buffer at 640 px RGB)


def _os_buffer(shape: tuple, dtype) -> np.ndarray:
    """A zeroed array in its own anonymous memory map: unmapped (returned to the OS) when the array goes,
    whatever the allocator's thresholds."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer(mmap.mmap(-1, max(nbytes, 1)), dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def _median_in_place(frames: np.ndarray) -> np.ndarray:
    """:func:`median_background` of (N, H, W, C) uint8 frames, reordering them along N in place (each pixel
    keeps its set of values, so later medians are unchanged) instead of copying them."""
    if frames.dtype != np.uint8:
        return median_background(frames)
    n = frames.shape[0]
    k = n // 2
    if n % 2:
        frames.partition(k, axis=0)
        return frames[k].copy()
    frames.partition([k - 1, k], axis=0)
    # np.median's mean of the two middle values, rounded half to even: exact in float32 (at most 255.5)
    mid = frames[k - 1].astype(np.float32)
    mid += frames[k]
    mid *= np.float32(0.5)
    return np.rint(mid, out=mid).astype(frames.dtype)


def load_stored_backgrounds(folder, cameras) -> list[np.ndarray]:
    """Stored backgrounds ``folder/<camera.name>.png`` -> one (H, W, 3) uint8 RGB image per camera.

    The layout of a crop cache's ``backgrounds/`` folder (estimated without labels), or shots of the empty
    scene. A missing or unreadable file, or a size that is not the camera's, raises naming the file.
    """
    from pathlib import Path

    images = []
    for cam in cameras:
        path = Path(folder) / f"{cam.name}.png"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"no readable background {path} for camera '{cam.name}'")
        if bgr.shape[:2] != (cam.height, cam.width):
            raise ValueError(f"background {path} is {bgr.shape[1]}x{bgr.shape[0]}, camera '{cam.name}' is "
                             f"{cam.width}x{cam.height}")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images
