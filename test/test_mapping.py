"""Keypoints -> joints mapping: frame selection, recovery of known maps, yaw augmentation, storage."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from kp3d_core.checkpoint import load_checkpoint, save_checkpoint
from kp3d_core.fit_mapping import MappingConfig, fit_linear, fit_mapping, select_fraction, yaw_rotations
from kp3d_core.models.mapping import apply_mapping, plain_mapping

K = 6


def random_keypoints(n, seed):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(-2, 2, (n, 1, 3)) + [0, 0, 1.0]
    return centre + rng.normal(0, 0.3, (n, K, 3))


def equivariant_map(seed=7):
    """(17, K) weights with rows summing to 1: joints = A @ keypoints commutes with rotations and translations."""
    A = np.random.default_rng(seed).uniform(-0.5, 1.0, (17, K))
    return A / A.sum(1, keepdims=True)


def test_select_fraction_is_deterministic_and_evenly_spaced():
    idx = select_fraction(1000, 0.1)
    assert len(idx) == 100 and idx[0] == 5 and idx[-1] == 995
    assert np.all(np.diff(idx) == 10)
    assert np.array_equal(idx, select_fraction(1000, 0.1))
    assert len(select_fraction(1000, 0.01)) == 10 and len(select_fraction(1000, 1.0)) == 1000
    assert len(select_fraction(30, 0.01)) == 1
    with pytest.raises(ValueError, match="fraction"):
        select_fraction(100, 0.0)


def test_linear_fit_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.3, (3 * K, 51))
    b = rng.normal(0, 0.2, 51)

    def truth(X):
        o = X.mean(1, keepdims=True)
        return o + ((X - o).reshape(len(X), -1) @ W + b).reshape(len(X), 17, 3)

    X = random_keypoints(200, 1)
    m = fit_mapping(X, truth(X), MappingConfig(yaw_max_deg=(0.0,), ridge_alpha=1e-9), kinds=("linear",), default="linear")
    Xt = random_keypoints(50, 2)
    np.testing.assert_allclose(apply_mapping(m, Xt), truth(Xt), atol=1e-4)


def test_yaw_augmented_fits_recover_an_equivariant_map():
    A = equivariant_map()
    X = random_keypoints(300, 3)
    Y = np.einsum("jk,nkd->njd", A, X)
    Xt = random_keypoints(100, 4)
    Yt = np.einsum("jk,nkd->njd", A, Xt)
    cfg = MappingConfig(steps=600, hidden=128, dropout=0.0, ridge_alpha=1e-8, yaw_max_deg=(180.0,))
    m = fit_mapping(X, Y, cfg, kinds=("linear", "mlp"))
    lin_err = np.linalg.norm(apply_mapping(m, Xt, "linear") - Yt, axis=-1).mean()
    mlp_err = np.linalg.norm(apply_mapping(m, Xt, "mlp") - Yt, axis=-1).mean()
    assert lin_err < 1e-3  # exact up to the tiny ridge penalty
    assert mlp_err < 0.025  # 25 mm on held-out frames after 600 steps on 300 frames
    # A yaw-augmented MLP generalises to turned bodies it never saw (rotated copies of the training set).
    R = yaw_rotations(torch.tensor([1.3]), (0, 0, 1))[0].numpy()
    Xr = X @ R.T
    err_rot = np.linalg.norm(apply_mapping(m, Xr, "mlp") - Y @ R.T, axis=-1).mean()
    assert err_rot < 0.025


def test_bounded_yaw_augmentation():
    from kp3d_core.fit_mapping import _yaw_grid

    grid = _yaw_grid(MappingConfig(yaw_max_deg=(30.0,), ridge_copies=7)).numpy()
    np.testing.assert_allclose(grid[[0, 3, 6]], np.radians([-30.0, 0.0, 30.0]), atol=1e-12)
    full = np.sort(np.mod(_yaw_grid(MappingConfig(yaw_max_deg=(0.0, 180.0), ridge_copies=4)).numpy(), 2 * math.pi))
    np.testing.assert_allclose(full, [0, math.pi / 2, math.pi, 3 * math.pi / 2], atol=1e-12)  # the ridge takes the largest
    # A zero range is no augmentation: the ridge fit equals the unaugmented fit.
    X = random_keypoints(80, 5)
    Y = np.einsum("jk,nkd->njd", equivariant_map(), X) + np.random.default_rng(6).normal(0, 0.01, (80, 17, 3))
    zero = fit_linear(X, Y, MappingConfig(yaw_max_deg=(0.0,)))
    plain = fit_linear(X, Y, MappingConfig(yaw_max_deg=(0.0,)))
    torch.testing.assert_close(zero["weight"], plain["weight"])


def test_mlp_map_is_the_mean_of_heading_aware_and_turned_members():
    A = equivariant_map()
    X = random_keypoints(120, 8)
    Y = np.einsum("jk,nkd->njd", A, X)
    Xt = random_keypoints(30, 9)
    m = fit_mapping(X, Y, MappingConfig(steps=100, hidden=32, seed=3), kinds=("mlp",))
    entry = m["models"]["mlp"]
    assert [(mb["yaw_max_deg"], mb["seed"]) for mb in entry["members"]] == [(0.0, 3), (0.0, 4), (180.0, 3), (180.0, 4)]
    assert not torch.equal(entry["members"][0]["state"]["net.0.weight"], entry["members"][1]["state"]["net.0.weight"])
    single = [{"default": "mlp", "models": {"mlp": {**{k: v for k, v in entry.items() if k != "members"}, **mb}}}
              for mb in entry["members"]]  # the one-MLP entry format of checkpoints before 2026-12-02
    np.testing.assert_allclose(apply_mapping(m, Xt), np.mean([apply_mapping(s, Xt) for s in single], 0), atol=1e-6)
    assert np.linalg.norm(apply_mapping(m, Xt) - np.einsum("jk,nkd->njd", A, Xt), axis=-1).mean() < 0.03


def test_yaw_rotation_is_about_the_up_axis():
    R = yaw_rotations(torch.tensor([math.pi / 2], dtype=torch.float64), (0, 0, 1))[0].numpy()
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(R @ [0, 0, 1], [0, 0, 1], atol=1e-12)


def test_invalid_keypoints_and_shapes():
    A = equivariant_map()
    X = random_keypoints(30, 5)
    m = fit_mapping(X, np.einsum("jk,nkd->njd", A, X), MappingConfig(steps=50), kinds=("linear", "mlp"))
    Xq = random_keypoints(3, 6)
    Xq[0] = np.nan  # nothing triangulated
    Xq[1, 2] = np.nan  # one keypoint missing
    for kind in ("linear", "mlp"):
        out = apply_mapping(m, Xq, kind)
        assert out.shape == (3, 17, 3)
        assert np.isnan(out[0]).all() and np.isfinite(out[1:]).all()
    with pytest.raises(ValueError, match="keypoints3d"):
        apply_mapping(m, np.zeros((2, K + 1, 3)))
    with pytest.raises(ValueError, match="joints3d"):
        fit_linear(X, np.zeros((30, 16, 3)))
    with pytest.raises(ValueError, match="'cubic'"):
        apply_mapping(m, Xq, "cubic")


def test_weights_only_round_trip_in_a_checkpoint(tmp_path):
    A = equivariant_map()
    X = random_keypoints(40, 8)
    m = fit_mapping(X, np.einsum("jk,nkd->njd", A, X), MappingConfig(steps=100), info={"fraction": 0.1, "num_frames": 40})
    Xq = random_keypoints(5, 9)
    before = {k: apply_mapping(m, Xq, k) for k in ("linear", "mlp")}  # also caches a module inside m
    path = save_checkpoint(tmp_path / "ck.pt", {"config": {}, "model": {}, "mapping": plain_mapping(m)})
    raw = torch.load(path, weights_only=True)  # plain tensors and values only
    loaded = load_checkpoint(path)["mapping"]
    assert raw["mapping"]["default"] == "mlp" and loaded["fraction"] == 0.1
    for k in ("linear", "mlp"):
        np.testing.assert_allclose(apply_mapping(loaded, Xq, k), before[k], atol=1e-6)
    # torch in, torch out (the predictor may pass either)
    t = apply_mapping(loaded, torch.from_numpy(Xq).float())
    assert isinstance(t, torch.Tensor) and t.shape == (5, 17, 3)
    np.testing.assert_allclose(t.numpy(), before["mlp"], atol=1e-5)


def test_identity_mapping_passes_joints_through():
    from kp3d_core.models.mapping import identity_mapping

    X = random_keypoints(4, 10)[:, :1].repeat(17, 1) + np.random.default_rng(0).normal(0, 0.2, (4, 17, 3))
    np.testing.assert_allclose(apply_mapping(identity_mapping(), X), X, atol=1e-6)
    with pytest.raises(ValueError, match="17"):
        identity_mapping(32)


def test_validated_mlp_does_not_overfit_few_labels():
    """20 noisy frames of a linear relation: the hold-out mostly picks an early stop, so the MLP stays near
    ridge. A 4-frame hold-out is noisy, hence the mean over seeds."""
    A = equivariant_map()
    rng = np.random.default_rng(11)
    X = random_keypoints(20, 12)
    Y = np.einsum("jk,nkd->njd", A, X)
    Xn = X + rng.normal(0, 0.03, X.shape)
    Xt = random_keypoints(200, 13)
    Yt = np.einsum("jk,nkd->njd", A, Xt)
    err = {"linear": [], "mlp": [], "mlp_unvalidated": []}
    for seed in range(4):
        cfg = MappingConfig(steps=300, hidden=64, yaw_max_deg=(180.0,), seed=seed, mirror=(0.0,))
        m = fit_mapping(Xn, Y, cfg)
        for k in ("linear", "mlp"):
            err[k].append(np.linalg.norm(apply_mapping(m, Xt, k) - Yt, axis=-1).mean())
        entry = m["models"]["mlp"]["members"][0]
        assert entry["holdout_frames"] == 4 and 0 <= entry["validated_steps"] <= 300
        # The hold-out choice uses labelled frames only: without validation the full step count is used.
        m2 = fit_mapping(Xn, Y, dataclasses.replace(cfg, validate=False), kinds=("mlp",))
        member = m2["models"]["mlp"]["members"][0]
        assert member["steps"] == 300 and "validated_steps" not in member
        err["mlp_unvalidated"].append(np.linalg.norm(apply_mapping(m2, Xt) - Yt, axis=-1).mean())
    mean = {k: float(np.mean(v)) for k, v in err.items()}
    assert mean["mlp"] < 1.15 * mean["linear"]
    assert mean["mlp"] < mean["mlp_unvalidated"]


def test_mirror_augmentation_reflects_in_a_vertical_plane_and_swaps_sides():
    from kp3d_core.fit_mapping import mirror_matrix
    from kp3d_core.skeleton import FLIP_PERMUTATION

    for up in ((0, 0, 1), (0, -1, 0), (0.3, 0.2, 0.9)):
        M = mirror_matrix(up).numpy()
        u = np.asarray(up) / np.linalg.norm(up)
        np.testing.assert_allclose(M @ M, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(M @ u, u, atol=1e-12)  # the vertical stays
        assert np.linalg.det(M) == pytest.approx(-1.0)
    # Every training sample mirrored (keypoints = joints): the map learns to answer a mirrored body with its
    # mirrored joints, left and right swapped; without the mirror it answers with the joints as they are.
    rng = np.random.default_rng(0)
    J = rng.normal(0, 0.3, (400, 17, 3)) + [0, 0, 1.0]
    M = mirror_matrix((0, 0, 1)).numpy()
    cfg = MappingConfig(steps=400, hidden=32, dropout=0.0, yaw_max_deg=(0.0,), seeds_per_limit=1, ridge_init=False,
                        validate=False)
    Jt = rng.normal(0, 0.3, (50, 17, 3)) + [0, 0, 1.0]
    swapped = Jt[:, list(FLIP_PERMUTATION)]
    mirrored = apply_mapping(fit_mapping(J @ M.T, J @ M.T, dataclasses.replace(cfg, mirror=(1.0,)), kinds=("mlp",)), Jt)
    plain = apply_mapping(fit_mapping(J, J, cfg, kinds=("mlp",)), Jt)
    err = lambda a, b: np.linalg.norm(a - b, axis=-1).mean()
    assert err(mirrored, swapped) < 0.1 < 0.3 < err(mirrored, Jt)  # swapped joints are ~0.4 m off on average
    assert err(plain, Jt) < 0.1 < 0.3 < err(plain, swapped)


def test_the_hold_out_chooses_the_mirror():
    # Keypoints that keep the body side (here: the joints themselves) are best mapped without the mirror, which
    # would tell the map to answer a reflected body with its sides swapped. The choice is the candidate with the
    # lowest mean hold-out error, made on the labelled frames alone, and is stored with the map.
    rng = np.random.default_rng(5)
    J = rng.normal(0, 0.3, (200, 17, 3)) + [0, 0, 1.0]
    cfg = MappingConfig(steps=200, hidden=32, yaw_max_deg=(0.0,), seeds_per_limit=1, mirror=(0.5, 0.0))
    entry = fit_mapping(J, J, cfg, kinds=("mlp",))["models"]["mlp"]
    holdout = entry["mirror_holdout_mpjpe_mm"]
    assert set(holdout) == {"0.5", "0.0"} and holdout["0.0"] < holdout["0.5"]
    assert entry["mirror"] == 0.0
    assert entry["members"][0]["holdout_mpjpe_mm"] == pytest.approx(holdout["0.0"])
    # Without a hold-out the first candidate is taken and nothing is scored.
    entry = fit_mapping(J, J, dataclasses.replace(cfg, validate=False), kinds=("mlp",))["models"]["mlp"]
    assert entry["mirror"] == 0.5 and "mirror_holdout_mpjpe_mm" not in entry


@pytest.mark.parametrize("argv, option", [
    (["--up", "0", "0", "0"], "--up"), (["--yaw-max-deg", "0", "200"], "--yaw-max-deg"),
    (["--mirror", "1.5"], "--mirror"), (["--fraction", "0"], "--fraction"), (["--seeds-per-limit", "0"], "--seeds-per-limit"),
])
def test_map_cli_rejects_bad_options_naming_them(argv, option, tmp_path, capsys):
    """Checked before the checkpoint is read (and before the default split would be rendered)."""
    from kp3d_ros.cli import main

    try:
        rc = main(["map", "--checkpoint", str(tmp_path / "none.pt"), *argv])
    except SystemExit as exc:  # argparse's own checks exit
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("kp3d map: error: ") and option in err[0]


def test_applying_an_mlp_map_equals_its_modules_and_keeps_their_dtype():
    """The eval forward calls the layers' operations directly and converted modules are cached per dtype: the
    same numbers as the members' modules, in float32 and float64 alike, whatever order the dtypes come in."""
    from kp3d_core.models.mapping import MappingMLP, centred_features, root_origin

    X, Y = random_keypoints(60, 10), np.einsum("jk,nkd->njd", equivariant_map(), random_keypoints(60, 10))
    m = fit_mapping(X, Y, MappingConfig(steps=20, hidden=16, seed=1), kinds=("mlp",))
    entry = m["models"]["mlp"]
    nets = []
    for mb in entry["members"]:
        net = MappingMLP(K, int(entry["hidden"])).eval()
        net.load_state_dict(mb["state"])
        nets.append(net)
    Xt = random_keypoints(7, 11)
    Xt[2, 1] = np.nan
    for dtype in (torch.float32, torch.float64, torch.float32):
        x = torch.as_tensor(Xt, dtype=dtype)
        origin = root_origin(x, int(entry["root"]))
        feats = centred_features(x, origin)
        with torch.no_grad():
            out = torch.stack([net.to(dtype)(feats) for net in nets]).mean(0)
        ref = out.reshape(7, 17, 3) + origin[:, None, :]
        assert torch.equal(apply_mapping(m, x), ref)
    assert torch.equal(torch.as_tensor(apply_mapping(m, Xt.astype(np.float32))), apply_mapping(m, torch.as_tensor(Xt, dtype=torch.float32)))
    assert {t for t in entry["_modules"]} == {torch.float32, torch.float64}
    assert "_modules" not in plain_mapping(m)["models"]["mlp"]
