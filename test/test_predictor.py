"""Predictor: label-free crops (background + tracking), one batched network call, full-image pixels, faults."""
import numpy as np
import pytest
import torch
from studio_fixture import background, draw, poses

from kp3d_core.config import ModelConfig
from kp3d_core.crop import CropParams, crop_images, crop_to_image, crop_to_image_matrix, detect_box
from kp3d_core.inference.predictor import Predictor, PredictorConfig
from kp3d_core.inference.torch_backend import TorchBackend, model_info
from kp3d_core.models import KeypointNet
from kp3d_core.rig import ring_rig

W, H, V, S = 160, 120, 3, 32


class CountingBackend(TorchBackend):
    """The real PyTorch backend, recording the batch size of every network call."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = []

    def _run(self, crops):
        self.calls.append(crops.shape[0])
        return super()._run(crops)


@pytest.fixture(scope="module")
def scene():
    torch.manual_seed(0)
    net = KeypointNet(ModelConfig(crop_size=S, num_keypoints=5, width=8)).eval()
    rig = ring_rig(V, radius=4.0, heights=1.5, target=(0.0, 0.0, 1.0), width=W, height=H)
    bgs = [background(W, H, v) for v in range(V)]
    joints = poses(12)
    frames = [[draw(bgs[v], cam.project(joints[t])) for v, cam in enumerate(rig.cameras)] for t in range(12)]
    return net, rig.cameras, bgs, joints, frames


def make(scene, **cfg):
    net, cams, bgs, _, _ = scene
    be = CountingBackend(net, model_info(net))
    return Predictor(be, cams, PredictorConfig(**cfg), backgrounds=bgs), be


def test_matches_the_training_crops_and_the_network(scene):
    net, cams, bgs, _, frames = scene
    pred, be = make(scene, track=False)
    out = pred.predict(frames[3])
    assert out.found.all() and not out.tracked.any()
    assert be.calls == [V]  # all views in ONE batched call
    # reference: kp3d_core.crop boxes and crops (as the training data), the network, crop -> image px
    boxes = [detect_box(img, bg, CropParams()) for img, bg in zip(frames[3], bgs)]
    crops = torch.from_numpy(crop_images(frames[3], boxes, S)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        kp, conf = net(crops)
    M = np.stack([crop_to_image_matrix(b, S) for b in boxes])
    np.testing.assert_allclose(out.keypoints, crop_to_image(kp.double().numpy(), M), atol=1e-3)
    np.testing.assert_allclose(out.confidence, conf.numpy(), atol=1e-5)
    np.testing.assert_allclose(out.boxes, np.stack([b.as_array() for b in boxes]))
    assert out.keypoints.shape == (V, 5, 2) and out.confidence.shape == (V, 5)
    for v in range(V):  # full-image pixels, inside each view's crop box
        cx, cy, side = out.boxes[v]
        assert (np.abs(out.keypoints[v] - [cx, cy]) <= side / 2 + 1).all()
    assert set(out.timings) == {"preprocess", "detect", "network", "postprocess", "background"}


def test_tracking_searches_around_the_projected_3d_points(scene):
    _, _, _, joints, frames = scene
    pred, _ = make(scene)
    full = pred.predict(frames[5])
    tracked = pred.predict(frames[5], track_points3d=joints[4])  # previous frame's 3D points
    assert tracked.tracked.all() and not full.tracked.any()
    np.testing.assert_allclose(tracked.boxes, full.boxes)  # same detector, same box as training
    np.testing.assert_allclose(tracked.keypoints, full.keypoints, atol=1e-4)
    # 3D points far off (behind every camera / out of view) fall back to the whole-image search
    lost = pred.predict(frames[5], track_points3d=joints[4] + np.array([40.0, 0.0, 0.0]))
    assert lost.found.all() and not lost.tracked.any()
    np.testing.assert_allclose(lost.boxes, full.boxes)
    # without 3D points (e.g. one camera) the previous box guides the search
    nxt = pred.predict(frames[6])
    assert nxt.tracked.all()
    np.testing.assert_allclose(nxt.boxes, make(scene, track=False)[0].predict(frames[6]).boxes)


def test_no_person_is_flagged_not_raised(scene):
    _, _, bgs, _, frames = scene
    pred, be = make(scene)
    images = [frames[2][0], bgs[1].copy(), None]  # person, empty view, missing view
    out = pred.predict(images)
    assert out.found.tolist() == [True, False, False]
    assert np.isnan(out.keypoints[1:]).all() and (out.confidence[1:] == 0).all()
    assert np.isfinite(out.keypoints[0]).all()
    assert be.calls[-1] == 1  # only views with a person reach the network
    nobody = pred.predict([bg.copy() for bg in bgs])
    assert not nobody.found.any() and np.isnan(nobody.keypoints).all()


def test_bad_images_raise_naming_the_camera(scene):
    _, cams, _, _, frames = scene
    pred, _ = make(scene)
    good = frames[0]
    with pytest.raises(ValueError, match="camera 'cam1'.*80x60 but the calibration is 160x120"):
        pred.predict([good[0], good[1][::2, ::2], good[2]])
    with pytest.raises(ValueError, match="camera 'cam2'.*uint8.*float32"):
        pred.predict([good[0], good[1], good[2].astype(np.float32)])
    with pytest.raises(ValueError, match=r"camera 'cam0'.*\(H, W, 3\)"):
        pred.predict([good[0][..., 0], good[1], good[2]])
    with pytest.raises(ValueError, match="2 images for 3 cameras"):
        pred.predict(good[:2])
    with pytest.raises(ValueError, match="camera 'cam0'.*background"):
        Predictor(pred.backend, cams, backgrounds=[np.zeros((10, 10, 3), np.uint8)] * V)


def test_learns_the_background_from_the_first_frames(scene):
    net, cams, _, _, frames = scene
    pred = Predictor(TorchBackend(net, model_info(net)), cams, PredictorConfig(background_warmup=9, background_warmup_stride=1))
    results = [pred.predict(f) for f in frames]
    assert not results[0].found.any()  # one frame: the background is that frame, nobody stands out
    assert all(r.found.all() for r in results[9:])  # after the warm-up median the figure is found


def test_running_background_follows_drift_but_not_the_subject(scene):
    net, cams, bgs, _, frames = scene
    pred = Predictor(TorchBackend(net, model_info(net)), cams,
                     PredictorConfig(background_rate=0.5, background_every=1), backgrounds=bgs)
    d = int(CropParams().threshold * 255 / 2)  # a lighting drift of half the detection threshold
    brighter = [[np.clip(img.astype(int) + d, 0, 255).astype(np.uint8) for img in f] for f in frames[:6]]
    for f in brighter:
        out = pred.predict(f)
        assert out.found.all()  # a drift under the threshold never hides the subject
    model = pred.backgrounds[0].image().astype(int)
    cx, cy, side = out.boxes[0]
    outside = np.ones(model.shape[:2], bool)
    outside[max(int(cy - side / 2) - 5, 0):int(cy + side / 2) + 5, max(int(cx - side / 2) - 5, 0):int(cx + side / 2) + 5] = False
    drift = model - bgs[0].astype(int)
    assert outside.mean() > 0.3
    assert np.abs(drift[outside].mean() - d) < 1.5  # learned the new level away from the subject
    assert np.abs(drift[int(cy), int(cx)]).max() < 12  # the subject's pixels were never blended in


def test_non_finite_network_output_is_flagged(scene):
    net, cams, bgs, _, frames = scene
    broken = KeypointNet(ModelConfig(crop_size=S, num_keypoints=5, width=8)).eval()
    broken.load_state_dict(net.state_dict())
    with torch.no_grad():
        broken.head.bias.fill_(float("nan"))  # weights gone bad: NaN heatmaps
    pred = Predictor(TorchBackend(broken, model_info(broken)), cams, backgrounds=bgs)
    out = pred.predict(frames[0])
    assert not out.found.any() and np.isnan(out.keypoints).all() and (out.confidence == 0).all()
