"""Run-time single-view lifting: when fewer than two cameras see the person, one view's keypoints give the 3D.

A checkpoint may carry a lifter under ``lifter`` (written by ``kp3d lift``, plain tensors and values, loadable with
``torch.load(weights_only=True)``)::

    {"num_keypoints": 32, "window": 1, "width": 512, "blocks": 2, "state": {...LifterNet state...},
     "floor_offset": 0.02, "info": {"data": "...", "steps": 4000, ...}}

:class:`SingleViewLifter` keeps each view's last ``window`` keypoint sets (the temporal lifter reads them), lifts
one view to a metric shape in that camera's levelled frame (:func:`levelling`: the camera turned level, so an upright
person is upright for any camera tilt; :class:`~kp3d_core.models.lifter.LifterNet`), stands it where its
rays point (:func:`~kp3d_core.geometry.solve_translation`), then slides it along the rays until its lowest keypoint
stands at the floor (:func:`stand_on_floor`), and returns it in the world frame.

Scale and placement. One view fixes each keypoint's ray, not its depth: a shape twice as large twice as far looks the
same. The lifter's shape has the size learnt from the triangulated training keypoints, so the rays alone place a
person of the training subjects' size right and a 10 % taller one about 10 % too near. The floor settles it: kp3d
rigs put the floor at z = 0 (``kp3d rig import`` does), and a person's lowest keypoint is nearly always on it (its
height above the floor, ``floor_offset``, is learnt from the same triangulations), so the shape is scaled about the
camera centre until its lowest keypoint is there, within a factor of two of where the rays alone put it (a camera at
foot height, whose rays meet the floor at a grazing angle, keeps the rays' placement within that; a jump of 0.5 m
seen from 2.5 m up stands about 25 % too far). What holds: the orientation, the 2D reprojection and the body's shape (P-MPJPE); the world position within the body-size
uncertainty the floor does not remove (measured in docs/lift.md).

Example::

    lifter = SingleViewLifter(ckpt["lifter"], cameras)
    lifter.observe(est.keypoints2d, est.confidence, est.found)   # every frame, every view
    X = lifter.lift(v)                                            # (K, 3) world metres, or None
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch

from ..camera import Camera
from ..geometry import solve_translation
from ..models.lifter import LifterNet, lifter_inputs

UP = np.array([0.0, 0.0, 1.0])
"""The world's vertical (kp3d rigs are z-up, the floor at z = 0)."""
MIN_KEYPOINTS = 4
"""Confident keypoints a view needs in its newest frame to be lifted."""
SCALE_BOUNDS = (0.5, 2.0)
"""How far :func:`stand_on_floor` may scale a lifted shape about the camera centre."""


def levelling(camera: Camera) -> np.ndarray:
    """(3, 3) rotation from the camera's frame to its levelled frame: the same centre, y pointing down the world's
    vertical, z the optical axis turned horizontal. A person standing upright stands upright in it whatever the
    camera's tilt and roll, so a lifter trained on one rig serves cameras mounted otherwise (REP-103 optical frames)."""
    down = -(camera.R @ UP)  # the world's down in the camera frame
    forward = np.array([0.0, 0.0, 1.0]) - down[2] * down  # the optical axis without its vertical part
    n = np.linalg.norm(forward)
    if n < 1e-6:  # looking straight down or up: any horizontal forward will do
        forward = np.cross(np.array([1.0, 0.0, 0.0]), down)
        n = np.linalg.norm(forward)
    forward = forward / n
    return np.stack([np.cross(down, forward), down, forward])


def levelled_rays(camera: Camera, pixels: np.ndarray, min_depth: float = 0.05) -> np.ndarray:
    """(..., 2) distorted pixels -> (..., 2) normalised coordinates of their rays in the levelled frame
    (:func:`levelling`); NaN where missing or where a ray points behind the levelled camera (a camera looking almost
    straight down sees some of its image that way)."""
    r = camera.rays(pixels)
    d = np.concatenate([r, np.ones_like(r[..., :1])], axis=-1) @ levelling(camera).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d[..., 2:] > min_depth, d[..., :2] / d[..., 2:], np.nan)


def stand_on_floor(points: np.ndarray, centre: np.ndarray, floor_offset: float,
                   bounds: tuple[float, float] = SCALE_BOUNDS) -> np.ndarray:
    """Scale lifted shapes about their camera's centre until their lowest point is ``floor_offset`` above z = 0.

    Args:
        points: (..., K, 3) world metres, one camera's lifted shapes (NaN rows are ignored).
        centre: (3,) that camera's centre, world metres.
        floor_offset: height of a person's lowest keypoint above the floor, metres.
        bounds: the scale is clipped to this range (1 where the floor says nothing: lowest point above the camera).
    Returns:
        (..., K, 3) world metres: every keypoint stays on its ray.
    """
    d = points - centre
    with np.errstate(all="ignore"):
        low = np.nanmin(d[..., 2], axis=-1)  # (...,) the lowest point's height relative to the camera
        scale = np.where(low < 0, (floor_offset - centre[2]) / low, 1.0)
    scale = np.clip(np.nan_to_num(scale, nan=1.0), *bounds)
    return centre + scale[..., None, None] * d


def check_lifter(entry: dict, num_keypoints: int) -> None:
    """Raise ValueError unless ``entry`` is a lifter entry for ``num_keypoints`` keypoints (at start-up)."""
    try:
        k, window = int(entry["num_keypoints"]), int(entry["window"])
        int(entry["width"]), int(entry["blocks"])
        entry["state"].keys()
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError("lifter: not a kp3d lifter entry (needs num_keypoints, window, width, blocks, state)") from None
    if k != num_keypoints:
        raise ValueError(f"lifter: trained for {k} keypoints but the network gives {num_keypoints}")
    if window < 1:
        raise ValueError(f"lifter: window must be >= 1, got {window}")


def build_lifter_net(entry: dict) -> LifterNet:
    """The entry's network in eval mode."""
    net = LifterNet(int(entry["num_keypoints"]), int(entry["window"]), int(entry["width"]), int(entry["blocks"]))
    net.load_state_dict(entry["state"])
    return net.eval()


@torch.no_grad()
def lift_to_world(net: LifterNet, rays: torch.Tensor, conf: torch.Tensor, camera: Camera,
                  floor_offset: float | None) -> np.ndarray:
    """Windows of one camera's keypoints -> their newest frames' keypoints in the world.

    Args:
        net: the lifter (eval mode).
        rays: (N, W, K, 2) levelled rays (:func:`levelled_rays`), oldest frame first; NaN where missing.
        conf: (N, W, K) confidences, 0 where missing.
        camera: the camera they were seen by.
        floor_offset: the lifter's learnt lowest-keypoint height (None: placed by the rays alone).
    Returns:
        (N, K, 3) world metres (NaN rows where the newest frame has fewer than two usable keypoints).
    """
    Y = net(lifter_inputs(rays, conf).float()).double()  # (N, K, 3) levelled frame, about the keypoints' mean
    last = rays[:, -1]
    T = solve_translation(Y, last, torch.where(torch.isfinite(last).all(-1), conf[:, -1], 0.0))
    Xc = (Y + T[:, None, :]).numpy() @ levelling(camera)  # levelled -> camera frame
    X = (Xc - camera.t) @ camera.R  # camera -> world: R^T (Xc - t)
    return X if floor_offset is None else stand_on_floor(X, camera.center, float(floor_offset))


class SingleViewLifter:
    """One view's 2D keypoints (over a causal window) -> 3D keypoints in the world (see the module docstring).

    Args:
        entry: a checkpoint's ``lifter`` entry.
        cameras: the V cameras, in the estimator's order.
    """

    def __init__(self, entry: dict, cameras: list[Camera] | tuple[Camera, ...]) -> None:
        self.entry = entry
        self.net = build_lifter_net(entry)
        self.window = self.net.window
        self.num_keypoints = self.net.num_keypoints
        self.cameras = list(cameras)
        self._history = [deque(maxlen=self.window) for _ in self.cameras]

    def with_cameras(self, cameras: list[Camera] | tuple[Camera, ...]) -> "SingleViewLifter":
        """The same network on other calibrations of the same cameras (the history restarts)."""
        return SingleViewLifter(self.entry, cameras)

    def reset(self) -> None:
        """Forget every view's history (a jump in time)."""
        for h in self._history:
            h.clear()

    def observe(self, keypoints2d: np.ndarray, confidence: np.ndarray, found: np.ndarray) -> None:
        """One frame's keypoints of every view: (V, K, 2) raw pixels, (V, K) confidences, (V,) bool found."""
        for v, h in enumerate(self._history):
            if found[v]:
                h.append((np.asarray(keypoints2d[v], np.float64), np.asarray(confidence[v], np.float64)))
            else:
                h.append((np.full((self.num_keypoints, 2), np.nan), np.zeros(self.num_keypoints)))

    def can_lift(self, v: int) -> bool:
        """View ``v``'s newest frame has enough confident keypoints."""
        if not self._history[v]:
            return False
        kp, conf = self._history[v][-1]
        return int(((conf > 0) & np.isfinite(kp).all(-1)).sum()) >= MIN_KEYPOINTS

    def lift(self, v: int) -> np.ndarray | None:
        """View ``v``'s newest keypoints lifted: (K, 3) world metres, or None when it cannot be lifted."""
        if not self.can_lift(v):
            return None
        frames = list(self._history[v])
        frames = [frames[0]] * (self.window - len(frames)) + frames  # a short history repeats its oldest frame
        cam = self.cameras[v]
        rays = torch.from_numpy(levelled_rays(cam, np.stack([f[0] for f in frames])))  # (W, K, 2), NaN where missing
        conf = torch.from_numpy(np.stack([f[1] for f in frames]))
        return lift_to_world(self.net, rays[None], conf[None], cam, self.entry.get("floor_offset"))[0]
