"""Per-view 2D keypoints from the current images of V calibrated cameras, without labels.

For each view the subject is boxed from the difference to a per-camera background (the same detector,
crop and box rules as training and evaluation, :mod:`kp3d_core.crop`), searched first inside a region
around the previous frame's 3D keypoints projected into that view, or else around the view's previous
box (tracking: cheaper, and not fooled by other motion far away), then in the whole image. All found views go through the network in ONE
batched call; keypoints are mapped back to full-image pixels of the raw (distorted) image.

A view with no person gives ``found = False``, NaN keypoints and zero confidence: flagged, never an
exception. Bad input (wrong image size, dtype or channels for a camera) raises ``ValueError`` naming
the camera, before any state changes.

Example::

    predictor = Predictor(backend, cameras, backgrounds=bg_images)     # or learn them from the first frames
    views = predictor.predict(images, track_points3d=prev_X)          # images: V x (H, W, 3) uint8 RGB
    views.keypoints   # (V, K, 2) raw image px;  views.confidence (V, K);  views.found (V,)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..background import RunningBackground
from ..camera import Camera
from ..crop import (
    CropBox,
    CropParams,
    box_from_patch,
    crop_images,
    crop_to_image,
    crop_to_image_matrix,
    detect_box,
    open_patch,
    threshold_mask,
)
from .interface import Backend


@dataclass(frozen=True)
class PredictorConfig:
    """Run-time crop and background settings (detection itself uses ``crop``, as in training)."""

    crop: CropParams = field(default_factory=CropParams)
    """Label-free detection parameters; keep them equal to the training data's (SampleParams.crop)."""
    track: bool = True
    """Search around the previous 3D keypoints projected into each view (or, without them, around the
    view's previous box) before the whole image."""
    track_margin: float = 0.25
    """The search region extends the projected keypoints' box by this fraction of its size on each side
    (for motion), plus the detector's merge reach (``crop.merge_reach`` times the box's longer side) ..."""
    track_min_px: float = 16.0
    """... plus this many pixels."""
    background_rate: float = 0.01
    """Blend rate of the running background (where no person is)."""
    background_every: int = 10
    """Update each running background every this many frames (it drifts slowly; saves time)."""
    background_warmup: int = 15
    """Without a stored background: frames whose median starts the model ..."""
    background_warmup_stride: int = 3
    """... taking every this many frames, so that a moving subject is not in most of them."""


@dataclass
class ViewKeypoints:
    """The predictor's result for one set of V images (views in camera order).

    Attributes:
        keypoints: (V, K, 2) float64 raw (distorted) image pixels; NaN where ``found`` is False.
        confidence: (V, K) float32 in [0, 1]; 0 where ``found`` is False.
        found: (V,) bool, a person was found and the network output is finite.
        boxes: (V, 3) float64 [cx, cy, side] crop boxes, image px; NaN where nothing was found.
        tracked: (V,) bool, the box was found in the search region (around the projected 3D keypoints,
            or the view's previous box) rather than by searching the whole image.
        timings: milliseconds: ``preprocess`` (checks, detection, crops, normalisation; ``detect`` is its
            checks and detection part), ``network``,
            ``postprocess`` (back to image pixels), ``background`` (running-model update).
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    tracked: np.ndarray
    timings: dict = field(default_factory=dict)


class Predictor:
    """Images of V cameras -> per-view 2D keypoints in full-image pixels (see the module docstring).

    Args:
        backend: any :class:`~kp3d_core.inference.backends.Backend` (its crop size S is used).
        cameras: the V cameras, in the order images will be given.
        config: :class:`PredictorConfig`.
        backgrounds: optional V stored background images (H, W, 3) uint8 RGB, e.g. the temporal
            median of a recording; without them each camera learns one from its first frames.

    Stateful (backgrounds, previous boxes) and not thread-safe: call it from one worker thread.
    """

    def __init__(
        self, backend: Backend, cameras: list[Camera] | tuple[Camera, ...], config: PredictorConfig = PredictorConfig(),
        backgrounds: list[np.ndarray] | None = None,
    ):
        self.backend = backend
        self.cameras = list(cameras)
        if not self.cameras:
            raise ValueError("Predictor: needs at least one camera")
        self.config = config
        self.crop_size = backend.info.crop_size
        self.num_keypoints = backend.info.num_keypoints
        if backgrounds is not None:
            if len(backgrounds) != len(self.cameras):
                raise ValueError(f"Predictor: {len(backgrounds)} backgrounds for {len(self.cameras)} cameras")
            for cam, bg in zip(self.cameras, backgrounds):
                self._check_image(cam, bg, what="background")
        self._stored_backgrounds = backgrounds
        self.backgrounds = [
            RunningBackground(None if backgrounds is None else backgrounds[v], config.background_rate,
                              config.background_warmup)
            for v in range(len(self.cameras))
        ]
        self._bg_images: list[np.ndarray | None] = [None] * len(self.cameras)  # uint8 view of each model
        self._frames_seen = 0
        self._warmup_fed = 0
        self._learning = backgrounds is None  # still collecting the frames of the first median
        self._full_area = [c.width * c.height for c in self.cameras]
        self._last_boxes: list[CropBox | None] = [None] * len(self.cameras)
        self.last_tracked = np.zeros(len(self.cameras), bool)  # (V,) of the latest predict (diagnostics)

    @property
    def background_ready(self) -> bool:
        """True once every camera's background is trustworthy: stored, or its warm-up median complete.

        During the warm-up the median of the few frames seen still holds the moving subject (a ghost),
        and boxes found against it can be on the wrong blob in each view.
        """
        return not self._learning

    def with_cameras(self, cameras: list[Camera] | tuple[Camera, ...]) -> "Predictor":
        """A new predictor with the same network and settings on other calibrations of the same cameras (e.g.
        intrinsics from CameraInfo), keeping the stored backgrounds where the image sizes are unchanged (else
        they are learnt anew). Running state (learnt backgrounds, boxes) restarts."""
        if [c.name for c in cameras] != [c.name for c in self.cameras]:
            raise ValueError(f"Predictor.with_cameras: cameras {[c.name for c in cameras]} != {[c.name for c in self.cameras]}")
        same_size = all(a.size == b.size for a, b in zip(cameras, self.cameras))
        return Predictor(self.backend, cameras, self.config, self._stored_backgrounds if same_size else None)

    # ------------------------------------------------------------------------------ input checks
    @staticmethod
    def _check_image(cam: Camera, image, what: str = "image") -> None:
        if not isinstance(image, np.ndarray):
            raise ValueError(f"camera '{cam.name}': {what} must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"camera '{cam.name}': {what} must be uint8 RGB, got dtype {image.dtype}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"camera '{cam.name}': {what} must be (H, W, 3) RGB, got shape {image.shape}")
        if image.shape[:2] != (cam.height, cam.width):
            raise ValueError(
                f"camera '{cam.name}': {what} is {image.shape[1]}x{image.shape[0]} but the calibration is "
                f"{cam.width}x{cam.height}"
            )

    def check_images(self, images) -> None:
        """Raise ValueError naming the camera unless ``images`` are V uint8 (H, W, 3) arrays of the right size."""
        if len(images) != len(self.cameras):
            raise ValueError(f"Predictor: got {len(images)} images for {len(self.cameras)} cameras")
        for cam, img in zip(self.cameras, images):
            if img is not None:
                self._check_image(cam, img)

    # ------------------------------------------------------------------------------ detection
    def _search_region(self, v: int, points3d: np.ndarray | None) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) image region around the projected 3D keypoints or, without them, around the
        view's previous box; None when neither is available or in view."""
        cam = self.cameras[v]
        if points3d is not None:
            pts = points3d[np.isfinite(points3d).all(axis=1)]
            in_front = cam.world_to_camera(pts)[:, 2] > 0.05 if len(pts) else np.zeros(0, bool)
            if in_front.sum() < 2:
                return None
            uv = cam.project(pts[in_front])
            lo, hi = uv.min(axis=0), uv.max(axis=0)
        elif self._last_boxes[v] is not None:  # e.g. a single camera: follow the box from frame to frame
            b = self._last_boxes[v]
            half = b.side / (2.0 * self.config.crop.margin)  # the blob's half size
            lo, hi = np.array([b.cx, b.cy]) - half, np.array([b.cx, b.cy]) + half
        else:
            return None
        cfg = self.config
        # Beyond motion (track_margin), the region also holds the detector's merge reach around the subject,
        # so pieces it would join to the subject (a split-off arm) are seen: same box as a whole-image search.
        ext = cfg.track_margin * (hi - lo) + cfg.crop.merge_reach * (hi - lo).max() + cfg.track_min_px
        x0, y0 = np.floor(lo - ext).astype(int)
        x1, y1 = np.ceil(hi + ext).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, cam.width), min(y1, cam.height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        return x0, y0, x1, y1

    def _detect(self, v: int, image: np.ndarray, background: np.ndarray, region) -> CropBox | None:
        """The detector of kp3d_core.crop on the whole image or on a region (box shifted back)."""
        params = self.config.crop
        if region is None:
            return detect_box(image, background, params)
        x0, y0, x1, y1 = region
        mask = threshold_mask(image[y0:y1, x0:x1], background[y0:y1, x0:x1], params)
        h, w = mask.shape
        # the region's opened mask is zero outside this patch (kp3d_core.crop.open_patch)
        patch, px, py = open_patch(mask, params)
        if patch.size == 0:
            return None
        ph, pw = patch.shape
        # A blob cut by the region's edge (that is not the image's edge) means the region was too small.
        cam = self.cameras[v]
        if (x0 > 0 and px == 0 and patch[:, 0].any()) or (y0 > 0 and py == 0 and patch[0].any()) or \
                (x1 < cam.width and px + pw == w and patch[:, -1].any()) or \
                (y1 < cam.height and py + ph == h and patch[-1].any()):
            return None
        # Same minimum blob area in image pixels as a whole-image search.
        min_area_fraction = params.min_area_fraction * self._full_area[v] / float(h * w)
        box = box_from_patch(patch, px, py, min_area_fraction * h * w, params)
        if box is None:
            return None
        # min_side is applied in box_from_patch already; only shift the centre.
        return CropBox(box.cx + x0, box.cy + y0, box.side)

    def _background_image(self, v: int) -> np.ndarray | None:
        """Camera v's background as uint8, converted once per model update (not per frame)."""
        if self._bg_images[v] is None and self.backgrounds[v].ready:
            self._bg_images[v] = self.backgrounds[v].image()
        return self._bg_images[v]

    # ------------------------------------------------------------------------------ main entry
    def predict(self, images, track_points3d: np.ndarray | None = None) -> ViewKeypoints:
        """Keypoints of the V views.

        Args:
            images: V images (H, W, 3) uint8 RGB in camera order; ``None`` for a view with no image
                this time (reported as not found).
            track_points3d: (K, 3) world metres from the previous frame (NaN rows ignored), or None.

        Returns:
            :class:`ViewKeypoints`.
        """
        t0 = time.perf_counter()
        self.check_images(images)
        V, K, S = len(self.cameras), self.num_keypoints, self.crop_size
        if track_points3d is not None:
            track_points3d = np.asarray(track_points3d, dtype=np.float64).reshape(-1, 3)
        boxes: list[CropBox | None] = [None] * V
        tracked = np.zeros(V, bool)
        bgs = []
        for v, img in enumerate(images):
            bg = self._background_image(v) if img is not None else None
            bgs.append(bg)
            if bg is None:
                continue
            region = self._search_region(v, track_points3d) if self.config.track else None
            if region is not None:
                boxes[v] = self._detect(v, img, bg, region)
                tracked[v] = boxes[v] is not None
            if boxes[v] is None:
                boxes[v] = self._detect(v, img, bg, None)
        t_detected = time.perf_counter()
        found_idx = [v for v in range(V) if boxes[v] is not None]
        crops = crop_images([images[v] for v in found_idx], [boxes[v] for v in found_idx], S) if found_idx else \
            np.zeros((0, S, S, 3), np.uint8)
        # (N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [0, 1], one vectorised pass for all views
        batch = np.empty((len(found_idx), 3, S, S), np.float32)
        np.multiply(crops.transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=batch, casting="unsafe")
        t1 = time.perf_counter()

        kp_crop, conf_crop = self.backend.run(batch)
        t2 = time.perf_counter()

        keypoints = np.full((V, K, 2), np.nan)
        confidence = np.zeros((V, K), np.float32)
        box_arr = np.full((V, 3), np.nan)
        found = np.zeros(V, bool)
        if found_idx:
            M = np.stack([crop_to_image_matrix(boxes[v], S) for v in found_idx])  # (N, 3, 3)
            uv = crop_to_image(kp_crop.astype(np.float64), M)  # (N, K, 2)
            ok = np.isfinite(uv).all(axis=(1, 2)) & np.isfinite(conf_crop).all(axis=1)
            for n, v in enumerate(found_idx):
                box_arr[v] = boxes[v].as_array()
                if ok[n]:
                    keypoints[v], confidence[v], found[v] = uv[n], np.clip(conf_crop[n], 0.0, 1.0), True
        tracked &= found
        self._last_boxes = [boxes[v] if found[v] else None for v in range(V)]
        self.last_tracked = tracked
        t3 = time.perf_counter()

        self._update_backgrounds(images, boxes)
        t4 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "detect": (t_detected - t0) * 1e3, "network": (t2 - t1) * 1e3,
                   "postprocess": (t3 - t2) * 1e3, "background": (t4 - t3) * 1e3}
        return ViewKeypoints(keypoints, confidence, found, box_arr, tracked, timings)

    def _update_backgrounds(self, images, boxes) -> None:
        """Blend frames into the running backgrounds slowly, never under the subject's box."""
        cfg = self.config
        self._frames_seen += 1
        learning = self._learning
        if learning:
            if (self._frames_seen - 1) % max(cfg.background_warmup_stride, 1):
                return
            self._warmup_fed += 1
            self._learning = self._warmup_fed < cfg.background_warmup
        every = max(cfg.background_every, 1)
        for v, img in enumerate(images):
            # after the warm-up, cameras take turns (camera v on frames where (t + v) % every == 0),
            # so no single set pays for all V updates
            if img is None or (not learning and (self._frames_seen + v) % every):
                continue
            fg_box = None
            if boxes[v] is not None:
                b = boxes[v]
                half = b.side / 2.0
                y0, y1 = int(max(b.cy - half, 0)), int(min(b.cy + half + 1, img.shape[0]))
                x0, x1 = int(max(b.cx - half, 0)), int(min(b.cx + half + 1, img.shape[1]))
                fg_box = (x0, y0, x1, y1)
            self.backgrounds[v].update(img, foreground_box=fg_box)
            # The warm-up median of n frames costs O(n) full images: refresh it at 1, 3, 7 frames and at the end.
            if not learning or self._warmup_fed in (1, 3, 7) or not self._learning:
                self._bg_images[v] = None
