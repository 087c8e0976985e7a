"""MultiViewEstimator end to end: images -> 2D -> 3D world metres -> pose, with real cameras and a real network.

The scene is two coloured balls seen by a ring of distorted cameras; the network is a fixed-weight
keypoint net (redness / blueness -> the model's own soft-argmax), so the true 3D answer is known.
"""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from studio_fixture import background

from kp3d_core.filters import OneEuroFilter
from kp3d_core.inference.backends import OnnxRuntimeBackend, TorchBackend
from kp3d_core.inference.estimator import MultiViewEstimator
from kp3d_core.inference.export import export_onnx, model_info
from kp3d_core.inference.predictor import Predictor
from kp3d_core.mapping import MappingConfig, fit_mapping
from kp3d_core.models import soft_argmax
from kp3d_core.rig import ring_rig

W, H, V, S = 320, 240, 4, 32
RADIUS = 0.1  # ball radius, metres
COLOURS = ((230, 20, 20), (20, 20, 230))  # keypoint 0 red, keypoint 1 blue (RGB)


class BallNet(torch.nn.Module):
    """Heatmap logits = gain * (colour - mean of the other channels); soft-argmax; confidence from spread."""

    def __init__(self):
        super().__init__()
        self.cfg = SimpleNamespace(num_keypoints=2, crop_size=S)
        self.head = torch.nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.head.weight.copy_(40.0 * torch.tensor([[1.0, -0.5, -0.5], [-0.5, -0.5, 1.0]])[:, :, None, None])
            self.head.bias.zero_()

    def forward(self, crops):
        _, kp, spread = soft_argmax(self.head(crops), S)
        return kp, 0.05 / (0.05 + spread)


def balls(t):
    """(2, 3) world centres at frame t: a dumbbell moving on the floor plan."""
    base = np.array([0.3 * np.sin(0.3 * t), 0.2 * np.cos(0.3 * t), 1.0])
    return np.stack([base, base + [0.0, 0.0, 2 * RADIUS]])  # touching: one blob


def render(cam, bg, centres):
    img = bg.copy()
    for c, colour in zip(centres, COLOURS):
        uv = cam.project(c[None])[0]
        depth = cam.world_to_camera(c[None])[0, 2]
        r = int(round(cam.K[0, 0] * RADIUS / depth))
        cv2.circle(img, tuple(int(round(x)) for x in uv), r, colour, -1)
    return img


@pytest.fixture(scope="module")
def rig():
    return ring_rig(V, radius=3.0, heights=1.6, target=(0.0, 0.0, 1.1), width=W, height=H,
                    dist=(-0.12, 0.03, 0.001, -0.001, 0.0))


@pytest.fixture(scope="module")
def bgs():
    return [background(W, H, 10 + v) for v in range(V)]


def frame(rig, bgs, t):
    return [render(cam, bg, balls(t)) for cam, bg in zip(rig.cameras, bgs)]


def estimator(rig, bgs, backend=None, **kw):
    net = BallNet().eval()
    be = backend or TorchBackend(net, model_info(net))
    return MultiViewEstimator(Predictor(be, rig.cameras, backgrounds=bgs), rig.cameras, **kw)


def test_recovers_3d_points_in_world_metres(rig, bgs):
    est = estimator(rig, bgs)
    for t in range(4):
        out = est.process(frame(rig, bgs, t), stamp_ns=1000 + t)
        assert out.stamp_ns == 1000 + t and out.found.all() and out.views_used.all() and out.valid.all()
        err = np.linalg.norm(out.keypoints3d - balls(t), axis=1)
        assert err.max() < 0.02, err  # metres, through crops, distortion and DLT
        assert out.pose is None  # no mapping given
        assert out.keypoints2d.shape == (V, 2, 2) and out.confidence.shape == (V, 2)
        assert {"preprocess", "network", "triangulate", "total"} <= set(out.timings)
    # refinement on the reprojection error is optional and keeps the answer
    ref = estimator(rig, bgs, refine_iterations=3).process(frame(rig, bgs, 0), 0)
    assert np.linalg.norm(ref.keypoints3d - balls(0), axis=1).max() < 0.02


def test_partial_sets_and_no_person(rig, bgs):
    est = estimator(rig, bgs)
    imgs = frame(rig, bgs, 1)
    two = est.process({"cam0": imgs[0], "cam2": imgs[2]}, 1)  # a partial set, by camera name
    assert two.found.tolist() == [True, False, True, False] and two.valid.all()
    assert np.isnan(two.keypoints2d[[1, 3]]).all()
    assert np.linalg.norm(two.keypoints3d - balls(1), axis=1).max() < 0.03
    one = est.process({"cam1": imgs[1]}, 2)  # one view cannot triangulate: flagged, not raised
    assert not one.valid.any() and not one.has_person and one.pose is None
    assert np.isnan(one.keypoints3d).all() and not one.views_used.any()
    empty = est.process(list(bgs), 3)
    assert not empty.found.any() and not empty.has_person
    with pytest.raises(ValueError, match="unknown camera.*'cam9'"):
        est.process({"cam9": imgs[0]}, 4)
    with pytest.raises(ValueError, match="camera 'cam3'"):
        est.process({"cam3": imgs[3][:100]}, 5)


def test_pose_from_a_fitted_mapping_is_never_nan(rig, bgs):
    # a real linear mapping fitted on (keypoints -> 17 joints) pairs of a rigid toy body
    rng = np.random.default_rng(0)
    kps = np.stack([balls(t) for t in range(40)]) + rng.normal(0, 0.01, (40, 2, 3))
    joints = np.repeat(kps.mean(1, keepdims=True), 17, axis=1) + np.linspace(-0.5, 0.5, 17)[None, :, None]
    mapping = fit_mapping(kps, joints, MappingConfig(yaw_augment=False), kinds=("linear",), default="linear")
    est = estimator(rig, bgs, mapping=mapping)
    out = est.process(frame(rig, bgs, 2), 0)
    assert out.pose is not None and out.pose.shape == (17, 3) and np.isfinite(out.pose).all()
    expected = out.keypoints3d.mean(0) + np.linspace(-0.5, 0.5, 17)[:, None]
    assert np.abs(out.pose - expected).max() < 0.05
    lost = est.process({"cam0": frame(rig, bgs, 2)[0]}, 1)
    assert lost.pose is None  # too few valid keypoints: flagged, no NaN pose


def test_onnxruntime_and_smoothing_in_the_pipeline(rig, bgs, tmp_path):
    net = BallNet().eval()
    path = export_onnx(net, model_info(net), tmp_path / "ball.onnx")
    est_ort = estimator(rig, bgs, backend=OnnxRuntimeBackend(path))
    est_ref = estimator(rig, bgs)
    a, b = est_ort.process(frame(rig, bgs, 0), 0), est_ref.process(frame(rig, bgs, 0), 0)
    assert est_ort.backend == "onnxruntime-cpu"
    assert np.abs(a.keypoints2d - b.keypoints2d).max() < 0.01
    assert np.abs(a.keypoints3d - b.keypoints3d).max() < 1e-3
    smooth = estimator(rig, bgs, smoothing=OneEuroFilter(min_cutoff=1.0, beta=0.5))
    outs = [smooth.process(frame(rig, bgs, t), int(t * 33e6)) for t in range(3)]
    assert all(o.valid.all() and np.isfinite(o.keypoints3d).all() for o in outs)


def test_rejects_inconsistent_construction(rig, bgs):
    net = BallNet().eval()
    pred = Predictor(TorchBackend(net, model_info(net)), rig.cameras, backgrounds=bgs)
    with pytest.raises(ValueError, match="predictor cameras"):
        MultiViewEstimator(pred, rig.cameras[::-1])
    with pytest.raises(ValueError, match="min_views"):
        MultiViewEstimator(pred, rig.cameras, min_views=1)
