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
from kp3d_core.fit_mapping import MappingConfig, fit_mapping
from kp3d_core.inference.estimator import MultiViewEstimator
from kp3d_core.inference.export import export_onnx
from kp3d_core.inference.onnx_backend import OnnxRuntimeBackend
from kp3d_core.inference.predictor import Predictor
from kp3d_core.inference.torch_backend import TorchBackend, model_info
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
    mapping = fit_mapping(kps, joints, MappingConfig(yaw_max_deg=(0.0,)), kinds=("linear",), default="linear")
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
    three = fit_mapping(np.random.default_rng(0).normal(size=(10, 3, 3)), np.zeros((10, 17, 3)),
                        MappingConfig(yaw_max_deg=(0.0,)), kinds=("linear",), default="linear")
    with pytest.raises(ValueError, match="fitted for \\[3\\] keypoints but the network gives 2"):
        MultiViewEstimator(pred, rig.cameras, mapping=three)
    with pytest.raises(ValueError, match="not a kp3d mapping"):
        MultiViewEstimator(pred, rig.cameras, mapping={"weights": 1})


# ------------------------------------------------------------------------------ the shipped model
@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped model on a few rendered 640x480 studio sets (skips until the model is committed)."""
    from kp3d_core.bench.inference import render_studio_sets
    from kp3d_core.checkpoint import load_checkpoint, shipped_model_path
    from kp3d_core.inference.export import ensure_onnx

    path = shipped_model_path()
    if not path.is_file():
        pytest.skip(f"no shipped model at {path} yet")
    rig, bgs, images, joints = render_studio_sets(4, 640, 480, 6, seed=3, progress=False)
    onnx_path = ensure_onnx(path, tmp_path_factory.mktemp("onnx"))
    return path, load_checkpoint(path), onnx_path, rig, bgs, images, joints


def test_shipped_model_onnx_agrees_with_pytorch_on_studio_crops(shipped):
    from kp3d_core.data.studio import SampleParams, make_sample
    from kp3d_core.inference.backends import create_backend

    path, ckpt, onnx_path, rig, bgs, images, _ = shipped
    ort_b = OnnxRuntimeBackend(onnx_path)
    ref = create_backend("pytorch", checkpoint=path, device="cpu")
    S = ort_b.info.crop_size
    crops = np.concatenate([make_sample(imgs, bgs, list(rig.cameras), SampleParams(size=S))["image"] for imgs in images])
    (kp_o, c_o), (kp_t, c_t) = ort_b.run(crops.astype(np.float32)), ref.run(crops.astype(np.float32))
    assert np.abs(kp_o - kp_t).max() < 0.5  # pixels (acceptance)
    assert np.abs(c_o - c_t).max() < 1e-3


def test_shipped_model_runtime_matches_the_evaluation_pipeline(shipped):
    """Predictor on full frames + estimator == kp3d eval's crops + triangulation (same MPJPE within 2 mm)."""
    from kp3d_core.data.studio import SampleParams, make_sample, to_torch
    from kp3d_core.evaluate import discover_keypoints
    from kp3d_core.models import load_keypoint_net
    from kp3d_core.models.mapping import apply_mapping

    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    cams = list(rig.cameras)
    net = load_keypoint_net(path)
    samples = [to_torch(make_sample(imgs, bgs, cams, SampleParams(size=net.cfg.crop_size), frame=t))
               for t, imgs in enumerate(images)]
    ref = discover_keypoints(net, samples, batch_size=8, progress=False)
    est = MultiViewEstimator(Predictor(OnnxRuntimeBackend(onnx_path), cams, backgrounds=bgs), cams,
                             mapping=ckpt.get("mapping"))
    outs = [est.process(imgs, t) for t, imgs in enumerate(images)]
    X_run = np.stack([o.keypoints3d for o in outs])
    np.testing.assert_array_equal(np.stack([o.valid for o in outs]), ref["valid"])
    ok = ref["valid"]
    assert ok.any()
    assert np.linalg.norm(X_run[ok] - ref["X"][ok], axis=-1).max() < 0.002  # metres
    if ckpt.get("mapping"):
        pose_eval = np.asarray(apply_mapping(ckpt["mapping"], ref["X"]), dtype=np.float64)
        have = np.array([o.pose is not None for o in outs])
        pose_run = np.stack([o.pose for o in outs if o.pose is not None])
        mpjpe = lambda p, g: 1000.0 * np.linalg.norm(p - g, axis=-1).mean()  # noqa: E731
        assert abs(mpjpe(pose_run, joints[have]) - mpjpe(pose_eval[have], joints[have])) < 2.0  # mm


def test_load_from_checkpoint_or_onnx(rig, bgs, tmp_path, monkeypatch):
    """The node's entry point: a checkpoint (exported once into the cache) or an ONNX file, any backend."""
    from kp3d_core.checkpoint import save_checkpoint
    from kp3d_core.config import Config, ModelConfig, config_to_dict
    from kp3d_core.inference.interface import ModelFileError
    from kp3d_core.models import KeypointNet

    monkeypatch.setenv("KP3D_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(crop_size=S, num_keypoints=2, width=8))
    net = KeypointNet(cfg.model)
    mapping = fit_mapping(np.stack([balls(t) for t in range(20)]), np.zeros((20, 17, 3)),
                          MappingConfig(yaw_max_deg=(0.0,)), kinds=("linear",), default="linear")
    ckpt = save_checkpoint(tmp_path / "m.pt", {"config": config_to_dict(cfg), "mapping": mapping,
                                               "model": {f"keypoint_net.{k}": v for k, v in net.state_dict().items()}})
    imgs = frame(rig, bgs, 0)
    results = {}
    for backend in ("torch", "onnxruntime", "auto"):
        est = MultiViewEstimator.load(ckpt, rig, backend=backend, backgrounds=bgs, smoothing=OneEuroFilter())
        assert est.num_keypoints == 2 and est.mapping is not None
        results[est.backend] = est.process(imgs, 0)
        est.reset()
    assert set(results) == {"pytorch-cpu", "onnxruntime-cpu"}
    a, b = results["pytorch-cpu"], results["onnxruntime-cpu"]
    assert np.nanmax(np.abs(a.keypoints2d - b.keypoints2d)) < 0.5
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1  # exported once, reused
    onnx_file = next((tmp_path / "cache").glob("*.onnx"))
    est = MultiViewEstimator.load(onnx_file, rig, backend="onnxruntime", backgrounds=bgs)
    assert est.mapping is None and est.process(imgs, 0).pose is None
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="bad.pt"):
        MultiViewEstimator.load(tmp_path / "bad.pt", rig, backend="auto")


# ------------------------------------------------------------------------------ plausibility (shipped model)
def test_plausible_sets_pass_and_report_their_reprojection_error(shipped):
    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    est = MultiViewEstimator.load(onnx_path, rig, backend="onnxruntime", backgrounds=bgs)
    for t, imgs in enumerate(images):
        out = est.process(imgs, t)
        assert out.rejected is None and out.valid.all()
        assert 0 < out.reprojection_error < 0.1 and out.view_errors.shape == (V,)  # crop-box sides
        assert np.nanmax(out.view_errors) >= out.reprojection_error >= np.nanmin(out.view_errors)


def test_a_camera_knocked_off_its_calibration_is_rejected(shipped):
    """cam1 tilted 20 degrees after calibration: the views disagree; without the check the pose is > 0.4 m off."""
    from scipy.spatial.transform import Rotation

    from kp3d_core.models.mapping import apply_mapping
    from kp3d_core.rig import Rig

    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    cams = list(rig.cameras)
    T = cams[1].T_world_cam.copy()
    T[:3, :3] = T[:3, :3] @ Rotation.from_euler("x", 20, degrees=True).as_matrix()
    bumped = Rig((cams[0], cams[1].with_pose(T), *cams[2:]))
    est = MultiViewEstimator.load(onnx_path, bumped, backend="onnxruntime", backgrounds=bgs)
    unchecked = MultiViewEstimator.load(onnx_path, bumped, backend="onnxruntime", backgrounds=bgs,
                                        max_reprojection_error=None)
    for t, imgs in enumerate(images[:3]):
        out, raw = est.process(imgs, t), unchecked.process(imgs, t)
        assert out.rejected == "reprojection" and out.reprojection_error > 0.12
        assert not out.valid.any() and np.isnan(out.keypoints3d).all() and out.pose is None
        assert raw.rejected is None and raw.valid.all()
        pose = np.asarray(apply_mapping(ckpt["mapping"], raw.keypoints3d)).reshape(17, 3)
        assert np.linalg.norm(pose - joints[t], axis=1).mean() > 0.4


def test_no_estimate_while_the_learnt_background_warms_up(shipped):
    """Without stored backgrounds the first frames' median still holds the subject: nothing is published from it."""
    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    est = MultiViewEstimator.load(onnx_path, rig, backend="onnxruntime")
    assert not est.predictor.background_ready
    for t, imgs in enumerate(images):
        out = est.process(imgs, t)
        assert out.rejected == "background_warmup" and not out.valid.any() and out.pose is None
    assert MultiViewEstimator.load(onnx_path, rig, backend="onnxruntime", backgrounds=bgs).predictor.background_ready
    with pytest.raises(ValueError, match="max_reprojection_error"):
        MultiViewEstimator.load(onnx_path, rig, backend="onnxruntime", max_reprojection_error=0.0)


def test_with_cameras_keeps_network_mapping_settings_and_stored_backgrounds(shipped):
    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    est = MultiViewEstimator.load(path, rig, backend="onnxruntime", backgrounds=bgs, max_reprojection_error=0.2)
    moved = est.with_cameras(rig.cameras)
    assert moved.predictor.backend is est.predictor.backend and moved.mapping is est.mapping
    assert moved.max_reprojection_error == 0.2 and moved.predictor.background_ready
    a, b = est.process(images[0], 0), moved.process(images[0], 0)
    np.testing.assert_allclose(a.keypoints3d, b.keypoints3d)
    with pytest.raises(ValueError, match="cameras"):
        est.with_cameras(rig.cameras[::-1])


# ------------------------------------------------------------------------------ single view (shipped model's lifter)
def test_one_camera_alone_gives_a_lifted_pose_and_the_views_take_over_again(shipped):
    """The shipped model carries a lifter: a set seen by one camera is lifted (and named); a full set triangulates."""
    from kp3d_core import metrics

    path, ckpt, onnx_path, rig, bgs, images, joints = shipped
    assert ckpt.get("lifter"), "the shipped model carries no single-view lifter"
    est = MultiViewEstimator.load(path, rig, backend="onnxruntime", backgrounds=bgs)
    assert est.lifter is not None and est.lifter.window == ckpt["lifter"]["window"]
    lifted = []
    for t, imgs in enumerate(images):
        one = est.process({"cam2": imgs[2]}, 2 * t)
        assert one.single_view == "cam2" and one.valid.all() and one.found.tolist() == [False, False, True, False]
        assert one.pose is not None and np.isfinite(one.pose).all()
        lifted.append(one.pose)
        full = est.process(imgs, 2 * t + 1)
        assert full.single_view is None and full.valid.all()
    # a P-MPJPE within reach of the multi-view one (a lone camera, six random studio sets)
    assert 1e3 * metrics.p_mpjpe(np.stack(lifted), joints) < 150.0
    # an ONNX keypoint file carries no lifter: one camera gives nothing, as before
    alone = MultiViewEstimator.load(onnx_path, rig, backend="onnxruntime", backgrounds=bgs)
    out = alone.process({"cam2": images[0][2]}, 0)
    assert alone.lifter is None and out.single_view is None and not out.valid.any()
