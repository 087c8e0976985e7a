"""Metrics against independent references: SciPy's Procrustes and hand-computed cases."""
import numpy as np
import pytest
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from kp3d_core import metrics as M
from kp3d_core.skeleton import FLIP_PERMUTATION, NUM_JOINTS


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    gt = rng.normal(0.0, 0.3, size=(20, NUM_JOINTS, 3))
    return gt, rng


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 2, 3))
    pred = np.array([[[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]])
    assert M.mpjpe(pred, gt) == pytest.approx(3.0)
    assert M.pck(pred, gt, threshold=2.0) == pytest.approx(50.0)
    err = M.joint_errors(pred, gt)
    assert err.tolist() == [[5.0, 1.0]]


def test_n_mpjpe_removes_scale_and_root(poses):
    gt, rng = poses
    pred = 1.3 * (gt - gt[:, :1]) + rng.normal(size=(20, 1, 3))
    assert M.n_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-12)
    # hand-computed: scale s = <p, g> / <p, p> per pose
    p = np.array([[[0.0, 0, 0], [2.0, 0, 0]]])
    g = np.array([[[0.0, 0, 0], [1.0, 1.0, 0]]])
    # s = 2/4 = 0.5 -> p' = (1, 0, 0); error of joint 1 = 1, joint 0 = 0 -> mean 0.5
    assert M.n_mpjpe(p, g) == pytest.approx(0.5)


def test_p_mpjpe_matches_scipy_procrustes(poses):
    gt, rng = poses
    R = Rotation.random(20, random_state=1).as_matrix()
    pred = 0.8 * np.einsum("nij,nkj->nki", R, gt) + rng.normal(size=(20, 1, 3)) + 0.02 * rng.normal(size=gt.shape)
    aligned = M.procrustes_align(pred, gt)
    for i in range(20):
        mtx1, mtx2, _ = procrustes(gt[i], pred[i])
        norm = np.linalg.norm(gt[i] - gt[i].mean(0))
        np.testing.assert_allclose((aligned[i] - gt[i].mean(0)) / norm, mtx2, atol=1e-10)
    expected = np.mean([np.linalg.norm(aligned[i] - gt[i], axis=-1).mean() for i in range(20)])
    assert M.p_mpjpe(pred, gt) == pytest.approx(expected)
    assert M.p_mpjpe(pred, gt) < M.mpjpe(pred, gt)


def test_auc_and_pck_hand_computed():
    gt = np.zeros((1, 4, 3))
    pred = np.zeros((1, 4, 3))
    pred[0, :, 0] = [0.0, 0.05, 0.10, 0.20]  # metres
    assert M.pck(pred, gt) == pytest.approx(75.0)
    thresholds = np.linspace(0, 0.15, 31)
    expected = np.mean([100 * np.mean(np.array([0.0, 0.05, 0.10, 0.20]) < t) for t in thresholds])
    assert M.auc(pred, gt) == pytest.approx(expected)


def test_error_2d_pct():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[64.0, 0.0], [0.0, 48.0]]])
    assert M.error_2d_pct(pred, gt, (640, 480)) == pytest.approx(10.0)


def test_ambiguity_ratio(poses):
    gt, rng = poses
    pred = gt + 0.01 * rng.normal(size=gt.shape)
    assert M.ambiguity_ratio(pred, gt) == 0.0
    swapped = pred[:, list(FLIP_PERMUTATION)]
    assert M.ambiguity_ratio(swapped, gt) == 0.0  # consistently swapped labelling is not ambiguous
    half = pred.copy()
    half[::2] = swapped[::2]  # an even split
    assert M.ambiguity_ratio(half, gt) == pytest.approx(0.5)


def test_summary_units(poses):
    gt, _ = poses
    s = M.summarise(gt + 0.01, gt)
    assert s["mpjpe_mm"] == pytest.approx(1000 * np.sqrt(3) * 0.01)
    assert s["pck150_pct"] == 100.0


def test_distance_to_skeleton_hand_computed():
    # One bone from the origin to (0, 0, 1): a point beside its middle, one beyond its end, one on it.
    joints = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    points = np.array([[[0.3, 0.4, 0.5], [0.0, 0.0, 3.0], [0.0, 0.0, 0.2]]])
    d = M.distance_to_skeleton(points, joints, bones=((0, 1),))
    np.testing.assert_allclose(d, [[0.5, 2.0, 0.0]], atol=1e-12)


def test_keypoint_placement_ignores_invalid_keypoints(poses):
    gt, _ = poses
    X = np.stack([gt[:, 1], gt[:, 1] + [0.0, 0.0, 0.02], gt[:, 1] + [5.0, 0.0, 0.0]], axis=1)  # (N, 3, 3)
    valid = np.ones(X.shape[:2], bool)
    valid[:, 2] = False  # far off, but invalid: must not count
    res = M.keypoint_placement(X, valid, gt)
    assert res["keypoint_to_skeleton_median_mm"] < 20.0 + 1e-9  # on a joint, or 2 cm from it
    assert res["keypoint_spacing_median_mm"] == pytest.approx(20.0)
    assert M.keypoint_placement(X, np.zeros_like(valid), gt) == {}


def turning_poses(n=72):
    """Poses of a T-shaped body (hips and shoulders 0.4 m apart, wrists 0.8 m out) turning a full circle about z."""
    from kp3d_core.skeleton import JOINT_INDEX as I

    base = np.zeros((NUM_JOINTS, 3))
    for name, (x, z) in {"left_hip": (0.1, 0.9), "right_hip": (-0.1, 0.9), "left_shoulder": (0.2, 1.4),
                         "right_shoulder": (-0.2, 1.4), "left_wrist": (0.8, 1.4), "right_wrist": (-0.8, 1.4)}.items():
        base[I[name]] = (x, 0.0, z)
    yaw = np.linspace(0, 2 * np.pi, n, endpoint=False)
    R = Rotation.from_euler("z", yaw[:, None]).as_matrix()
    return np.einsum("nij,kj->nki", R, base) + np.array([1.0, 2.0, 0.0]), I


def test_body_side_keeping_tells_body_labels_from_room_labels():
    J, I = turning_poses()
    on_body = J[:, [I["left_wrist"], I["right_wrist"], 0]]  # two wrists and the pelvis, labelled on the body
    res = M.body_side_keeping(on_body, np.ones(on_body.shape[:2], dtype=bool), J)
    assert res["lateral_keypoints"] == 2  # the pelvis is not lateral
    assert res["body_side_kept_facing_pct"] == pytest.approx(100.0)
    assert res["body_side_kept_turned_pct"] == pytest.approx(100.0)
    assert 40.0 < res["turned_frames_pct"] < 60.0
    # Labelled by the room: keypoint 0 is whichever wrist lies further along world x.
    wx = J[:, [I["left_wrist"], I["right_wrist"]], 0]
    first = wx[:, 0] >= wx[:, 1]
    room = np.stack([np.where(first[:, None], J[:, I["left_wrist"]], J[:, I["right_wrist"]]),
                     np.where(first[:, None], J[:, I["right_wrist"]], J[:, I["left_wrist"]])], axis=1)
    res = M.body_side_keeping(room, np.ones(room.shape[:2], dtype=bool), J)
    assert res["body_side_kept_facing_pct"] > 75.0 and res["body_side_kept_turned_pct"] < 25.0
    # Nothing lateral: no figures.
    assert M.body_side_keeping(J[:, :1], np.ones((len(J), 1), dtype=bool), J) == {}
