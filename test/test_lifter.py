"""The single-view lifter: its geometry, its training on multi-view tracks, its run-time twin, its ONNX export and
``kp3d lift`` end to end."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from studio_fixture import write_tiny_studio

from kp3d_core import metrics
from kp3d_core.checkpoint import load_checkpoint, shipped_model_path
from kp3d_core.geometry import solve_translation
from kp3d_core.inference.single_view import UP, SingleViewLifter, check_lifter, levelled_rays, levelling, stand_on_floor
from kp3d_core.lift.cli import export_lifter_onnx
from kp3d_core.lift.evaluate import lift_track, single_view_figures
from kp3d_core.lift.fit import (
    LiftConfig,
    LiftData,
    axis_rotations,
    floor_offset,
    random_viewpoints,
    train_lifter,
    window_rows,
)
from kp3d_core.lift.tracks import Track, load_tracks, save_tracks
from kp3d_core.models.lifter import LifterNet, lifter_inputs
from kp3d_core.models.mapping import identity_mapping
from kp3d_core.models.synthetic import random_pose, synthetic_rig


def test_solve_translation_recovers_where_a_shape_stands():
    rng = np.random.default_rng(0)
    Y = torch.from_numpy(rng.normal(0, 0.3, (5, 17, 3)))
    T = torch.from_numpy(np.c_[rng.uniform(-1, 1, (5, 2)), rng.uniform(2, 6, 5)])
    P = Y + T[:, None]
    rays = P[..., :2] / P[..., 2:]
    w = torch.ones(5, 17, dtype=torch.float64)
    assert torch.allclose(solve_translation(Y, rays, w), T, atol=1e-9)
    w[1, 1:] = 0  # a single point fixes no translation
    assert torch.isnan(solve_translation(Y, rays, w)[1]).all() and torch.isfinite(solve_translation(Y, rays, w)[0]).all()


def test_camera_rays_invert_the_projection():
    cam = synthetic_rig(1).cameras[0]  # with lens distortion
    X = random_pose(np.random.default_rng(1))
    uv = cam.project(X)
    uv[3] = np.nan  # a missing keypoint stays missing
    rays = cam.rays(uv)
    Xc = cam.world_to_camera(X)
    ok = np.arange(17) != 3
    np.testing.assert_allclose(rays[ok], Xc[ok, :2] / Xc[ok, 2:], atol=1e-6)
    assert np.isnan(rays[3]).all() and cam.rays(np.zeros((0, 2))).shape == (0, 2)


def test_stand_on_floor_slides_shapes_along_their_rays_within_bounds():
    cam = synthetic_rig(1).cameras[0]
    X = np.stack([random_pose(np.random.default_rng(s)) for s in range(3)])  # (3, 17, 3)
    c, low = cam.center, X[0, :, 2].min()
    far = c + 1.15 * (X[:1] - c)  # 15 % too far along the rays: the feet sink below the floor
    np.testing.assert_allclose(stand_on_floor(far, c, low), X[:1], atol=1e-9)
    np.testing.assert_allclose(cam.project(stand_on_floor(far, c, low)[0]), cam.project(X[0]), atol=1e-6)
    way_off = c + 3.0 * (X[:1] - c)  # no person is three times the learnt size: the scale stops at its bound (1/2)
    np.testing.assert_allclose(stand_on_floor(way_off, c, low), c + 1.5 * (X[:1] - c), atol=1e-9)
    above = X[:1] + [0.0, 0.0, 5.0]  # lowest point above the camera: the floor says nothing
    np.testing.assert_allclose(stand_on_floor(above, c, low), above)


def test_the_levelled_frame_keeps_people_upright_whatever_the_camera_tilt():
    from kp3d_core.rig import ring_rig

    X = random_pose(np.random.default_rng(4))
    for height, roll in ((0.5, 0.0), (1.6, 0.0), (3.0, 0.0), (2.5, 0.3)):
        cam = ring_rig(1, radius=4.0, heights=height, target=(0.0, 0.0, 1.0)).cameras[0]
        if roll:  # the camera turned about its optical axis too
            c, s_ = np.cos(roll), np.sin(roll)
            cam = cam.with_pose(cam.T_world_cam @ np.array([[c, -s_, 0, 0], [s_, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))
        L = levelling(cam)
        np.testing.assert_allclose(L @ L.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(L @ cam.R @ UP, [0.0, -1.0, 0.0], atol=1e-12)  # up is -y for every camera
        down, axis = L[1], np.array([0.0, 0.0, 1.0])  # the levelled forward: the optical axis made horizontal
        np.testing.assert_allclose(L[2], (axis - axis @ down * down) / np.linalg.norm(axis - axis @ down * down))
        P = cam.world_to_camera(X) @ L.T  # the pose in the levelled frame
        np.testing.assert_allclose(levelled_rays(cam, cam.project(X)), P[:, :2] / P[:, 2:], atol=1e-6)


def test_lifter_inputs_see_the_shape_not_its_size_and_the_centre_apart():
    rng = np.random.default_rng(2)
    rays = torch.from_numpy(rng.normal(0, 0.1, (3, 17, 2)))
    conf = torch.ones(3, 17, dtype=torch.float64)
    a = lifter_inputs(rays, conf)
    b = lifter_inputs(0.5 * rays + 0.2, conf)  # the same shape, nearer the camera and elsewhere in the view
    assert a.shape == (3, 17 * 3 + 2)
    torch.testing.assert_close(a[:, :-2], b[:, :-2])
    torch.testing.assert_close(b[:, -2:], 0.5 * a[:, -2:] + 0.2)
    rays[0, 4] = float("nan")  # a missing keypoint: zero features, confidence 0, the others unchanged
    c = lifter_inputs(rays, conf)
    assert torch.isfinite(c).all() and (c[0, 12:15] == 0).all()


def test_lifter_net_shapes_and_errors():
    net = LifterNet(17, window=3, width=32, blocks=1).eval()
    assert net(torch.zeros(4, 3, 17 * 3 + 2)).shape == (4, 17, 3)
    with pytest.raises(ValueError, match=r"expected \(B, 3, 53\)"):
        net(torch.zeros(4, 1, 53))


def test_viewpoints_turn_about_the_vertical_and_tilt_within_the_elevation():
    gen = torch.Generator().manual_seed(0)
    up = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    R = random_viewpoints(up, 20.0, gen)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(200, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(200), atol=1e-5)
    tilt = torch.rad2deg(torch.acos(((R @ up[..., None])[..., 0] * up).sum(-1).clamp(-1, 1)))
    assert tilt.max() <= 40.0 + 1e-3  # an elevation about the camera's x axis moves the vertical by at most twice it
    flat = random_viewpoints(up, 0.0, gen)
    assert torch.allclose((flat @ up[..., None])[..., 0], up, atol=1e-5)  # azimuth alone keeps the vertical
    quarter = axis_rotations(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([np.pi / 2]))
    assert torch.allclose(quarter[0] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_window_rows_stay_within_their_track():
    start = torch.tensor([0, 0, 0, 3, 3, 3])
    assert window_rows(torch.tensor([1, 4]), start, 3).tolist() == [[0, 0, 1], [3, 3, 4]]


def synthetic_track(seed: int, frames: int = 60) -> Track:
    """Exact multi-view track of random poses (17 keypoints = the joints; the mapping is the identity)."""
    rng = np.random.default_rng(seed)
    rig = synthetic_rig(4)
    X = np.stack([random_pose(rng) for _ in range(frames)])
    kp = np.stack([[c.project(x) for c in rig.cameras] for x in X])
    V = len(rig.cameras)
    return Track(list(rig.cameras), kp, np.ones((frames, V, 17)), X, np.ones((frames, 17), bool), X.copy(),
                 np.arange(frames), X.copy())


def test_lifter_learns_shapes_and_depth_from_triangulated_views():
    train, test = [synthetic_track(s) for s in range(4)], synthetic_track(9, 40)
    data = LiftData.from_tracks(train)
    assert len(data) == 4 * 60 * 4 and bool(data.labelled.all())
    entry, log = train_lifter(data, LiftConfig(steps=250, width=128, cycle=0.0, adversarial=0.0, lr=2e-3),
                              progress=False, floor=floor_offset(train))
    check_lifter(entry, 17)
    assert entry["floor_offset"] == pytest.approx(0.08, abs=0.02)  # the ankles of the synthetic figure
    lifted = lift_track(entry, test)  # (T, V, 17, 3) world
    assert np.isfinite(lifted).all()
    figs = single_view_figures(test, lifted, identity_mapping())
    mean_shape = np.broadcast_to(train[0].keypoints3d.mean(0), test.gt.shape)
    assert figs["single_view"]["p_mpjpe_mm"] < 0.6 * 1e3 * metrics.p_mpjpe(mean_shape, test.gt)
    assert figs["multi_view"]["p_mpjpe_mm"] < 1e-6  # exact triangulation
    assert figs["single_view"]["mpjpe_mm"] < 150  # placed in the world: depth from the learnt body size
    assert set(figs["cameras"]) == {"cam0", "cam1", "cam2", "cam3"}


def test_every_term_trains_and_the_runtime_lifter_matches_the_batched_one(tmp_path):
    tracks = [synthetic_track(s, 30) for s in range(2)]
    cfg = LiftConfig(steps=4, width=32, window=3, cycle=1.0, adversarial=0.01, batch_size=16)
    entry, log = train_lifter(LiftData.from_tracks(tracks), cfg, progress=False)
    assert {"pseudo", "cycle_3d", "cycle_2d", "adversarial", "discriminator"} <= set(log)
    assert all(np.isfinite(v) for v in log.values())
    track = tracks[0]
    track.keypoints2d[5:8, 2] = np.nan  # camera 2 loses the person for three frames
    track.confidence[5:8, 2] = 0.0
    batched = lift_track(entry, track)
    lifter = SingleViewLifter(entry, track.cameras)
    found = np.isfinite(track.keypoints2d).all((-1, -2))
    for t in range(10):
        lifter.observe(track.keypoints2d[t], track.confidence[t], found[t])
        for v in range(4):
            X = lifter.lift(v)
            if found[t, v]:
                np.testing.assert_allclose(X, batched[t, v], atol=1e-4)
            else:
                assert X is None and np.isnan(batched[t, v]).all()
    # tracks survive a round trip through their file
    back = load_tracks(save_tracks(tmp_path / "t.npz", tracks))
    np.testing.assert_array_equal(back[1].keypoints2d, tracks[1].keypoints2d)
    assert [c.name for c in back[0].cameras] == ["cam0", "cam1", "cam2", "cam3"]
    np.testing.assert_allclose(back[0].cameras[1].P, tracks[0].cameras[1].P)


def test_lifter_onnx_agrees_with_pytorch(tmp_path):
    entry, _ = train_lifter(LiftData.from_tracks([synthetic_track(0, 20)]),
                            LiftConfig(steps=3, width=32, window=2, cycle=0.0, adversarial=0.0, batch_size=8),
                            progress=False)
    path = export_lifter_onnx(entry, tmp_path / "lifter.onnx")
    x = torch.randn(5, 2, 17 * 3 + 2)
    ref = SingleViewLifter(entry, synthetic_rig(1).cameras).net(x).detach().numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"features": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_check_lifter_names_what_is_wrong():
    with pytest.raises(ValueError, match="not a kp3d lifter entry"):
        check_lifter({"window": 1}, 17)
    entry, _ = train_lifter(LiftData.from_tracks([synthetic_track(0, 10)]),
                            LiftConfig(steps=1, width=16, cycle=0.0, adversarial=0.0, batch_size=4), progress=False)
    with pytest.raises(ValueError, match="trained for 17 keypoints but the network gives 32"):
        check_lifter(entry, 32)


def test_kp3d_lift_end_to_end_with_the_shipped_model(tmp_path, capsys):
    from kp3d_ros.cli import main

    data = write_tiny_studio(tmp_path / "tiny", num_frames=24, num_cameras=3, width=320, height=240)
    out = tmp_path / "lift"
    rc = main(["lift", "--data", str(data), "--steps", "6", "--chunk", "12", "--every", "12", "--test", str(data),
               "--out", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["frames"] == 24 and res["rows"] == 24 * 3
    ckpt = load_checkpoint(out / "ckpt.pt")
    shipped = load_checkpoint(shipped_model_path())["mapping"]
    assert ckpt["lifter"]["num_keypoints"] == 32 and ckpt["mapping"]["default"] == shipped["default"]
    assert torch.equal(ckpt["mapping"]["models"]["linear"]["weight"], shipped["models"]["linear"]["weight"])
    assert (out / "lifter.onnx").stat().st_size > 1000 and json.loads((out / "lift.json").read_text()) == res
    assert set(res["test"]["cameras"]) == {"cam0", "cam1", "cam2"}
    assert (out / "lift.png").stat().st_size > 10_000
    rc = main(["lift", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert rc == 2 and "nowhere" in capsys.readouterr().err
    rc = main(["lift", "--data", str(data), "--adversarial", "0.01", "--out", str(out)])
    assert rc == 2 and "--adversarial needs --cycle" in capsys.readouterr().err
    with pytest.raises(ValueError, match="adversarial needs cycle"):
        LiftConfig(adversarial=0.01)


def test_kp3d_lift_on_a_bag_of_your_own_rig(tmp_path, capsys):
    """The user's path: a rosbag2 bag and its rig file; the learnt background's warm-up frames give no label."""
    from ros_fixtures import tiny_bag

    from kp3d_ros.cli import main

    studio = tiny_bag(tmp_path / "s", frames=30, cameras=3)
    out = tmp_path / "lift"
    rc = main(["lift", "--bag", str(studio / "bag"), "--rig", str(studio / "rig.yaml"), "--steps", "4", "--chunk", "15",
               "--every", "15", "--backgrounds", str(studio / "backgrounds"), "--out", str(out), "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["frames"] == 30 and res["rows"] == 30 * 3 and "test" not in res
    assert load_checkpoint(out / "ckpt.pt")["lifter"]["info"]["data"] == str(studio / "bag")
    rc = main(["lift", "--bag", str(studio / "bag"), "--out", str(out)])
    assert rc == 2 and "--rig" in capsys.readouterr().err
