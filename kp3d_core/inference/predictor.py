"""Per-view 2D keypoints from the current images of V calibrated cameras, without labels.

For each view the subject is boxed from the difference to a per-camera background (the same detector,
crop and box rules as training and evaluation, :mod:`kp3d_core.crop`), the background scaled by the image's
gain over the room (lamps, auto-exposure). It is searched first inside a region around the previous frame's
3D keypoints projected into that view (the blob there, with every piece of the subject there: a body broken by
a ghost keeps its extremities), or else around the view's previous box (tracking: cheaper, and not fooled by
other motion far away); views not found so are searched in the whole image, where the views together pick the
blob that is the subject (:func:`kp3d_core.foreground.agree_across_views`: not a bystander, not a ghost). All
found views go through the network in ONE batched call; keypoints are mapped back to full-image pixels of the
raw (distorted) image.

Backgrounds (:mod:`kp3d_core.background`): stored ones, or the median of the first frames (the warm-up), then
kept up to date: rescaled by the image's gain, blended slowly where the subject is not (the disc of each of its
reprojected 3D keypoints, or its crop box while there are none), and healed fast where the foreground is a
ghost: foreground that stays put while no subject is there (a subject in view from the first frame leaves one
where it stood during the warm-up). Signs of a contaminated background (ghost area, a box much larger than
the subject's keypoints, a box running off the image around keypoints inside it) are tracked per camera:
:attr:`Predictor.contamination`.

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

import cv2
import numpy as np

from ..background import RunningBackground
from ..camera import Camera
from ..crop import (
    GAIN_DEAD_ZONE,
    CropBox,
    CropParams,
    blobs_of_patch,
    box_from_patch,
    crop_images,
    crop_to_image,
    crop_to_image_matrix,
    estimate_gain,
    open_patch,
    threshold_mask,
)
from ..foreground import agree_across_views
from ..ghosts import PersonRoomColours
from .interface import Backend

GHOST_EVERY = 2
"""A camera's background update looks for ghosts (and feeds the contamination signs) at every 2nd update: the test
costs a full-image difference, an opening and the colour histograms; stillness is judged between two tests."""


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
    multiview: bool = True
    """Views searched in the whole image box the blob their views agree on in 3D (not the largest)."""
    keep_radius: float = 0.2
    """Where the running background does not learn: a disc of this radius around each reprojected 3D keypoint of the
    subject, in units of the keypoints' extent in the image (longer side); the crop box while there are none."""
    heal_rate: float = 0.5
    """Blend rate of ghost pixels: foreground that stays put (the image changed less than ``static`` since the
    previous update) outside the subject. 0: no healing."""
    static: float = 20.0 / 255.0
    """Largest change (max over RGB, [0, 1]) of a pixel between two updates that counts as staying put."""
    ghost_colours: bool = True
    """Also heal still foreground INSIDE the subject's region where the background looks like the person and the
    image like the room (:class:`kp3d_core.ghosts.PersonRoomColours`): the ghost of where it stood."""


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
        self._previous: list[np.ndarray | None] = [None] * len(self.cameras)  # each camera's image at its last ghost test
        self._updates = np.zeros(len(self.cameras), int)  # background updates of each camera after the warm-up
        self.colours = [PersonRoomColours() for _ in self.cameras]
        self.monitor = ContaminationMonitor([c.name for c in self.cameras])

    @property
    def stored_backgrounds(self) -> bool:
        """The predictor started from stored backgrounds (else it learns them from the first frames)."""
        return self._stored_backgrounds is not None

    @property
    def contamination(self) -> np.ndarray:
        """(V,) bool: the camera's background looks contaminated now (:class:`ContaminationMonitor`)."""
        return self.monitor.flags

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
    def _projected(self, v: int, points3d: np.ndarray | None) -> np.ndarray | None:
        """(N, 2) raw pixels of the finite 3D points in front of camera v (None when fewer than 2)."""
        if points3d is None:
            return None
        cam = self.cameras[v]
        pts = points3d[np.isfinite(points3d).all(axis=1)]
        in_front = cam.world_to_camera(pts)[:, 2] > 0.05 if len(pts) else np.zeros(0, bool)
        if in_front.sum() < 2:
            return None
        return cam.project(pts[in_front])

    def _search_region(self, v: int, uv: np.ndarray | None, has_points: bool = False):
        """((x0, y0, x1, y1) image region, hint box or None) around the projected 3D keypoints ``uv`` or, without
        3D keypoints (``has_points`` False), around the view's previous box; (None, None) when neither is
        available or in view."""
        cam = self.cameras[v]
        hint = None
        if uv is not None:
            lo, hi = uv.min(axis=0), uv.max(axis=0)
        elif not has_points and self._last_boxes[v] is not None:  # e.g. a single camera: follow the box from frame to frame
            b = self._last_boxes[v]
            half = b.side / (2.0 * self.config.crop.margin)  # the blob's half size
            lo, hi = np.array([b.cx, b.cy]) - half, np.array([b.cx, b.cy]) + half
        else:
            return None, None
        cfg = self.config
        if uv is not None and cfg.multiview:  # where the subject's pieces are: its keypoints, moved a little
            grow = cfg.track_margin * (hi - lo) + cfg.track_min_px
            hint = (*(lo - grow), *(hi + grow))
        # Beyond motion (track_margin), the region also holds the detector's merge reach around the subject,
        # so pieces it would join to the subject (a split-off arm) are seen: same box as a whole-image search.
        ext = cfg.track_margin * (hi - lo) + cfg.crop.merge_reach * (hi - lo).max() + cfg.track_min_px
        x0, y0 = np.floor(lo - ext).astype(int)
        x1, y1 = np.ceil(hi + ext).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, cam.width), min(y1, cam.height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None, None
        return (x0, y0, x1, y1), hint

    def _patch(self, v: int, image: np.ndarray, background: np.ndarray, region, gain):
        """The opened foreground of a region (the whole image: None) as ``(patch, x0, y0)`` in image px, or None
        when a blob touches a region edge that is not the image's (the region was too small)."""
        params = self.config.crop
        cam = self.cameras[v]
        x0, y0, x1, y1 = region if region is not None else (0, 0, cam.width, cam.height)
        mask = threshold_mask(image[y0:y1, x0:x1], background[y0:y1, x0:x1], params, gain)
        h, w = mask.shape
        patch, px, py = open_patch(mask, params)  # the region's opened mask is zero outside this patch
        ph, pw = patch.shape
        if region is not None and patch.size and (
                (x0 > 0 and px == 0 and patch[:, 0].any()) or (y0 > 0 and py == 0 and patch[0].any()) or
                (x1 < cam.width and px + pw == w and patch[:, -1].any()) or
                (y1 < cam.height and py + ph == h and patch[-1].any())):
            return None
        return patch, px + x0, py + y0

    def _detect(self, v: int, image: np.ndarray, background: np.ndarray, region, hint=None,
                gain=None) -> CropBox | None:
        """The detector of kp3d_core.crop on the whole image or on a region (box in image px)."""
        found = self._patch(v, image, background, region, gain)
        if found is None or found[0].size == 0:
            return None
        params = self.config.crop
        return box_from_patch(*found, params.min_area_fraction * self._full_area[v], params, hint)

    def _gain(self, v: int, image: np.ndarray, background: np.ndarray) -> np.ndarray | None:
        """The image's per-channel gain over camera v's background (its previous box left out), or None."""
        if not self.config.crop.gain:
            return None
        b = self._last_boxes[v]
        exclude = None if b is None else (b.cx - b.side / 2, b.cy - b.side / 2, b.cx + b.side / 2, b.cy + b.side / 2)
        return estimate_gain(image, background, exclude)

    def _background_image(self, v: int) -> np.ndarray | None:
        """Camera v's background as uint8, converted once per model update (not per frame)."""
        if self._bg_images[v] is None and self.backgrounds[v].ready:
            self._bg_images[v] = self.backgrounds[v].image()
        return self._bg_images[v]

    def _whole_image(self, images, bgs, gains, boxes, todo: list[int]) -> None:
        """Boxes of the views ``todo`` from whole-image searches, the blob chosen by the views' agreement (views
        already boxed take part with their box); in place."""
        params = self.config.crop
        found = {v: self._patch(v, images[v], bgs[v], None, gains[v]) for v in todo}
        if self.config.multiview and len(self.cameras) >= 2:
            cands = [None] * len(self.cameras)
            for v, b in enumerate(boxes):
                if b is not None:
                    half = b.side / (2.0 * params.margin)
                    cands[v] = np.array([[b.cx - half, b.cy - half, b.cx + half, b.cy + half, 4 * half * half, b.cx, b.cy]])
            for v, f in found.items():
                if f is not None:
                    cands[v] = blobs_of_patch(*f, params.min_area_fraction * self._full_area[v])
            X, hints = agree_across_views(cands, self.cameras)
            if X is not None:
                for v in todo:
                    f = found[v]
                    boxes[v] = None if f is None or hints[v] is None else box_from_patch(
                        *f, params.min_area_fraction * self._full_area[v], params, hints[v])
                return
        for v in todo:
            f = found[v]
            boxes[v] = None if f is None else box_from_patch(*f, params.min_area_fraction * self._full_area[v], params)

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
        bgs: list[np.ndarray | None] = [None] * V
        gains: list[np.ndarray | None] = [None] * V
        projected: list[np.ndarray | None] = [None] * V
        todo = []
        for v, img in enumerate(images):
            bg = self._background_image(v) if img is not None else None
            if bg is None:
                continue
            bgs[v], gains[v] = bg, self._gain(v, img, bg)
            projected[v] = self._projected(v, track_points3d)
            region, hint = self._search_region(v, projected[v], track_points3d is not None) if self.config.track \
                else (None, None)
            if region is not None:
                boxes[v] = self._detect(v, img, bg, region, hint, gains[v])
                tracked[v] = boxes[v] is not None
            if boxes[v] is None:
                todo.append(v)
        if todo:
            self._whole_image(images, bgs, gains, boxes, todo)
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

        self._update_backgrounds(images, boxes, gains, projected)
        t4 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "detect": (t_detected - t0) * 1e3, "network": (t2 - t1) * 1e3,
                   "postprocess": (t3 - t2) * 1e3, "background": (t4 - t3) * 1e3}
        return ViewKeypoints(keypoints, confidence, found, box_arr, tracked, timings)

    # ------------------------------------------------------------------------------ backgrounds
    def _keep_mask(self, v: int, uv: np.ndarray | None, box: CropBox | None):
        """Where camera v's background must not learn: ``(mask or None, box or None)`` for
        :meth:`RunningBackground.update` (discs around the subject's projected keypoints, else its crop box)."""
        cam = self.cameras[v]
        if uv is not None:
            inside = cam.in_image(uv)
            if inside.any():
                r = max(self.config.keep_radius * float((uv.max(axis=0) - uv.min(axis=0)).max()), 4.0)
                mask = np.zeros((cam.height, cam.width), np.uint8)
                for x, y in np.round(uv[inside]).astype(int):
                    cv2.circle(mask, (int(x), int(y)), int(np.ceil(r)), 1, -1)
                return mask, None
        if box is None:
            return None, None
        return None, box.pixel_rect(cam.width, cam.height)

    def _ghost(self, v: int, image: np.ndarray, gain, keep: np.ndarray | None, keep_box, box: CropBox | None):
        """(H, W) bool ghost pixels of camera v: opened foreground that stayed put since the camera's previous
        update, outside where the subject is (``keep`` mask or box, grown) or, inside, where its colours say the
        background shows the person and the image the room; None without a previous image."""
        prev = self._previous[v]
        if prev is None or self.config.heal_rate <= 0:
            return None
        params = self.config.crop
        cam = self.cameras[v]
        bg = self._bg_images[v] if self._bg_images[v] is not None else self.backgrounds[v].image()
        fg = threshold_mask(image, bg, params, gain)
        patch, px, py = open_patch(fg, params)
        if not patch.any():
            return None
        h, w = patch.shape
        c0, c1, c2 = cv2.split(cv2.absdiff(image[py : py + h, px : px + w], prev[py : py + h, px : px + w]))
        moved = cv2.max(cv2.max(c0, c1), c2) > self.config.static * 255.0
        still = np.zeros(fg.shape, bool)
        still[py : py + h, px : px + w] = (patch > 0) & ~moved
        ghost = still.copy()
        if keep is not None:
            ghost &= cv2.dilate(keep, np.ones((9, 9), np.uint8)) == 0
        elif keep_box is not None:
            x0, y0, x1, y1 = keep_box
            ghost[max(y0 - 4, 0) : y1 + 4, max(x0 - 4, 0) : x1 + 4] = False
        if self.config.ghost_colours and box is not None:
            x0, y0, x1, y1 = box.pixel_rect(cam.width, cam.height)
            person = np.zeros(fg.shape, bool)
            person[py : py + h, px : px + w] = (patch > 0) & moved
            in_box = np.zeros(fg.shape, bool)
            in_box[y0:y1, x0:x1] = True
            g = int(0.125 * box.side)  # a quarter of the half side
            room = np.ones(fg.shape, bool)
            room[max(y0 - g, 0) : y1 + g, max(x0 - g, 0) : x1 + g] = False
            room[py : py + h, px : px + w] &= patch == 0
            self.colours[v].learn(image, bg, person & in_box, room)
            ghost |= self.colours[v].ghost(image, bg, still & in_box)
        return ghost

    def _update_backgrounds(self, images, boxes, gains, projected) -> None:
        """Keep the running backgrounds up to date (module docstring); cameras take turns after the warm-up."""
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
            keep, keep_box = self._keep_mask(v, projected[v], boxes[v])
            ghost = None
            if not learning:
                gain = gains[v]
                if gain is not None and np.any(np.abs(gain - 1.0) > GAIN_DEAD_ZONE):
                    self.backgrounds[v].rescale(gain)  # the whole room got brighter or darker
                self._updates[v] += 1
                if GHOST_EVERY == 1 or self._updates[v] % GHOST_EVERY == 1:
                    ghost = self._ghost(v, img, gain, keep, keep_box, boxes[v])
                    self._previous[v] = img.copy()
                    self.monitor.update(v, self.cameras[v], ghost, boxes[v], projected[v])
            self.backgrounds[v].update(img, foreground=keep, foreground_box=keep_box, heal=ghost,
                                       heal_rate=cfg.heal_rate)
            # The warm-up median of n frames costs O(n) full images: refresh it at 1, 3, 7 frames and at the end.
            if not learning or self._warmup_fed in (1, 3, 7) or not self._learning:
                self._bg_images[v] = None


class ContaminationMonitor:
    """Per camera, signs that its background holds something that is not the empty room.

    At each background update of a camera (:meth:`update`): the ghost area (foreground that stays put where no
    subject is, share of the image), the crop box against the subject's projected keypoints (side over 1.55 times
    their extent: about 1 for a clean background) and whether the box runs off the image while the keypoints sit
    well inside it. Each is smoothed over updates (weight ``alpha`` for the newest); a camera is flagged while a
    smoothed figure is over its limit, and :attr:`reasons` says which and what it is.
    """

    def __init__(self, cameras: list[str], alpha: float = 0.3, ghost_limit: float = 0.004, box_limit: float = 1.8,
                 edge_limit: float = 0.6):
        self.cameras = list(cameras)
        self.alpha, self.ghost_limit, self.box_limit, self.edge_limit = alpha, ghost_limit, box_limit, edge_limit
        V = len(self.cameras)
        self.ghost = np.zeros(V)
        self.box_ratio = np.ones(V)
        self.edge = np.zeros(V)
        self.updates = np.zeros(V, int)

    def update(self, v: int, cam: Camera, ghost: np.ndarray | None, box: CropBox | None, uv: np.ndarray | None) -> None:
        a = self.alpha
        share = 0.0 if ghost is None else float(np.count_nonzero(ghost)) / ghost.size
        self.ghost[v] += a * (share - self.ghost[v])
        if box is not None and uv is not None:
            inside = uv[cam.in_image(uv)]
            if len(inside) >= 2:
                extent = float((inside.max(axis=0) - inside.min(axis=0)).max())
                self.box_ratio[v] += a * (box.side / max(1.55 * extent, 1.0) - self.box_ratio[v])
                half = box.side / 2.0
                off = (box.cx - half < 0 or box.cy - half < 0 or box.cx + half > cam.width or box.cy + half > cam.height)
                margin = 0.05 * min(cam.width, cam.height)
                kp_inside = (inside.min(axis=0) > margin).all() and (inside.max(axis=0) < [cam.width - margin, cam.height - margin]).all()
                self.edge[v] += a * (float(off and kp_inside and box.side > 1.5 * 1.55 * extent) - self.edge[v])
        self.updates[v] += 1

    @property
    def flags(self) -> np.ndarray:
        """(V,) bool, the camera's background looks contaminated now."""
        return (self.ghost > self.ghost_limit) | (self.box_ratio > self.box_limit) | (self.edge > self.edge_limit)

    def reasons(self, v: int) -> list[str]:
        """What is over its limit for camera v, in words (empty when nothing is)."""
        out = []
        if self.ghost[v] > self.ghost_limit:
            out.append(f"ghost foreground {100 * self.ghost[v]:.1f} % of the image where no person is")
        if self.box_ratio[v] > self.box_limit:
            out.append(f"crop box {self.box_ratio[v]:.1f}x the person's keypoints")
        if self.edge[v] > self.edge_limit:
            out.append("crop box runs off the image around keypoints inside it")
        return out
