"""rigio geometry: poses and quaternions, placing the imported world (up, floor, camera height), and the
rig figures (where the optical axes meet, which cameras see each other)."""
from __future__ import annotations

import numpy as np
import pytest

from kp3d_core.rig import Rig, ring_rig
from kp3d_core.rigio import RigOptionError, WorldSpec, export_rig, import_rig
from kp3d_core.rigio.poses import (
    invert,
    move_rig,
    pose,
    quaternion_to_rotation,
    rodrigues_to_rotation,
    rotation_between,
    rotation_to_quaternion,
)
from kp3d_core.rigio.summary import closest_point_to_lines, in_view, rig_summary
from kp3d_core.rigio.world import align_world, fit_floor


def _random_rotations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rodrigues_to_rotation(v) for v in rng.normal(size=(n, 3)) * 2.0])


# ----------------------------------------------------------------------------------------------- poses
def test_quaternion_round_trip_including_half_turns():
    half_turns = [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    Rs = list(_random_rotations(50)) + half_turns
    for R in Rs:
        q = rotation_to_quaternion(R)
        assert abs(np.linalg.norm(q) - 1.0) < 1e-12 and q[3] >= 0
        np.testing.assert_allclose(quaternion_to_rotation(q), R, atol=1e-12)


def test_quaternion_convention_is_hamilton_xyzw():
    """A quarter turn about z: q = (0, 0, sin 45, cos 45) takes x to y."""
    q = np.array([0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(quaternion_to_rotation(q) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)


@pytest.mark.parametrize("axis, expected", [
    ("-y", [[1, 0, 0], [0, 0, 1], [0, -1, 0]]),
    ("z", np.eye(3)),
    ("-z", [[1, 0, 0], [0, -1, 0], [0, 0, -1]]),
])
def test_rotation_between_axes_is_exact(axis, expected):
    sign = -1.0 if axis.startswith("-") else 1.0
    up = sign * np.eye(3)["xyz".index(axis[-1])]
    R = rotation_between(up, [0.0, 0.0, 1.0])
    assert np.array_equal(R, np.asarray(expected, dtype=float))
    assert np.linalg.det(R) == 1.0


def test_rotation_between_any_directions():
    rng = np.random.default_rng(1)
    for a, b in rng.normal(size=(20, 2, 3)):
        R = rotation_between(a, b)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b), atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)


def test_move_rig_scales_then_moves():
    rig = ring_rig(3)
    T = pose(_random_rotations(1, 3)[0], [1.0, -2.0, 0.5])
    moved = move_rig(move_rig(rig, None, 1000.0), T, 0.001)  # to "millimetres" and back, moved
    for a, b in zip(rig, moved):
        np.testing.assert_allclose(b.center, T[:3, :3] @ a.center + T[:3, 3], atol=1e-12)
        X = np.random.default_rng(0).normal(size=(10, 3))
        np.testing.assert_allclose(b.project(X @ T[:3, :3].T + T[:3, 3]), a.project(X), atol=1e-8)
    np.testing.assert_allclose(invert(T) @ T, np.eye(4), atol=1e-15)


# ----------------------------------------------------------------------------------------- the world
def _tilted_source(rig: Rig, seed: int = 4) -> tuple[Rig, np.ndarray]:
    """``rig`` seen from an arbitrary frame, in millimetres: (rig in that frame, T_source_world in metres)."""
    T_source_world = pose(_random_rotations(1, seed)[0], [0.4, -1.3, 2.2])
    return move_rig(move_rig(rig, T_source_world), None, 1000.0), T_source_world


def test_floor_points_recover_heights_and_up(tmp_path):
    """The ring written in a tilted millimetre frame, imported with floor points: heights come back,
    the optical axes still meet 1 m above the floor."""
    rig = ring_rig(4, heights=[1.5, 1.8, 2.1, 1.6])
    source, T_sw = _tilted_source(rig)
    files = export_rig("anipose", source, tmp_path / "calibration.toml", metres_per_unit=1.0)  # numbers are mm
    floor_world = np.array([[0, 0, 0], [3, 0, 0], [0, 2, 0], [-1, -4, 0], [2, 5, 0]], float)
    floor_mm = (floor_world @ T_sw[:3, :3].T + T_sw[:3, 3]) * 1000
    result = import_rig("anipose", files, metres_per_unit=0.001, world=WorldSpec(floor_points=floor_mm))
    np.testing.assert_allclose([c.center[2] for c in result.rig], [1.5, 1.8, 2.1, 1.6], atol=1e-9)
    assert result.alignment.floor_rms_m < 1e-9
    meet = rig_summary(result.rig)["meeting_point_m"]
    assert abs(meet[2] - 1.0) < 2e-4  # the summary rounds to 0.1 mm
    # the same floor given upside down (normal flipped by --up) puts the cameras below it
    flipped = import_rig("anipose", files, metres_per_unit=0.001,
                         world=WorldSpec(floor_points=floor_mm, up="camera"))
    assert all(c.center[2] > 0 for c in flipped.rig)  # image-up agrees with the floor's upper side


def test_up_axis_keeps_a_z_up_source_unchanged_and_turns_a_y_down_one():
    rig = ring_rig(3)
    assert align_world(rig, WorldSpec(up="z"), "z").T_world_source.tolist() == np.eye(4).tolist()
    # the same rig in a y-down frame (x, y, z) -> (x, -z, y)
    T_ydown_world = pose([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.zeros(3))
    ydown = move_rig(rig, T_ydown_world)
    a = align_world(ydown, WorldSpec(up="-y"), "z")
    back = move_rig(ydown, a.T_world_source)
    for c0, c1 in zip(rig, back):
        np.testing.assert_allclose(c1.center, c0.center, atol=1e-12)


def test_default_up_is_the_first_cameras_image_up(tmp_path):
    """Kalibr's world is cam0: with no option the world is level with cam0's image rows."""
    rig = ring_rig(2, dist=(0.0,) * 5)
    files = export_rig("kalibr", rig, tmp_path / "camchain.yaml")
    result = import_rig("kalibr", files)
    cam0 = result.rig[0]
    np.testing.assert_allclose(cam0.center, 0.0, atol=1e-12)
    np.testing.assert_allclose(cam0.R[0] @ [0, 0, 1.0], 0.0, atol=1e-12)  # image x is horizontal
    assert cam0.R[1] @ [0, 0, 1.0] < -0.99  # image y points down
    assert result.alignment.floor is None and "cam0" in result.alignment.up


def test_camera_height_sets_the_floor(tmp_path):
    rig = ring_rig(3, heights=[1.2, 2.0, 2.5], dist=(0.0,) * 5)
    files = export_rig("kalibr", rig, tmp_path / "camchain.yaml")
    # cam0 looks down at 11 deg: its pose in the world (a rotation and its 1.2 m height) places the world
    R = rig[0].T_world_cam[:3, :3]
    result = import_rig("kalibr", files, world=WorldSpec(T_world_source=pose(R, [0, 0, 1.2])))
    np.testing.assert_allclose([c.center[2] for c in result.rig], [1.2, 2.0, 2.5], atol=1e-12)
    level = import_rig("kalibr", files, world=WorldSpec(camera_height=("cam1", 2.0)))
    assert abs(level.rig["cam1"].center[2] - 2.0) < 1e-12
    assert "cam1" in level.alignment.floor


@pytest.mark.parametrize("spec, match", [
    (WorldSpec(up="z", T_world_source=np.eye(4)), "T_world_source"),
    (WorldSpec(floor_points=np.eye(3), camera_height=("cam0", 1.0)), "floor"),
    (WorldSpec(floor_points=np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]])), "one line"),
    (WorldSpec(floor_points=np.array([[0, 0, 0], [1, 0, 0.0]])), "three or more"),
    (WorldSpec(camera_height=("nope", 1.0)), "no camera 'nope'"),
    (WorldSpec(up="w"), "up"),
    (WorldSpec(T_world_source=np.diag([1.0, 1.0, -1.0, 1.0])), "rigid"),
])
def test_contradicting_or_bad_world_options(spec, match):
    with pytest.raises(RigOptionError, match=match):
        align_world(ring_rig(2), spec, "z")


def test_fit_floor_residual():
    pts = np.array([[0, 0, 0.0], [1, 0, 0.0], [0, 1, 0.0], [1, 1, 0.02]])  # 5 mm off the best plane each
    _, normal, rms = fit_floor(pts)
    assert abs(abs(normal[2]) - 1.0) < 1e-3 and 0.004 < rms < 0.006


# -------------------------------------------------------------------------------------- the figures
def test_ring_axes_meet_at_the_target_and_cameras_see_the_opposite_one():
    s = rig_summary(ring_rig(4, target=(0.3, -0.2, 1.1)))
    np.testing.assert_allclose(s["meeting_point_m"], [0.3, -0.2, 1.1], atol=1e-4)
    assert max(s["axis_distance_m"]) < 1e-4
    for cam in s["cameras"]:
        assert cam["height_m"] == 1.8
        assert cam["meeting_point_px"] == [319.5, 239.5]
    assert s["cameras"][0]["others_seen"] == ["cam2"]  # 60 deg field of view: the neighbours are outside
    assert [c["others_in_image"] for c in s["cameras"]] == [1, 1, 1, 1]


def test_parallel_axes_have_no_meeting_point():
    origins = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert closest_point_to_lines(origins, np.tile([0.0, 0.0, 1.0], (3, 1))) is None
    p = closest_point_to_lines(origins[:2], np.array([[0.0, 0, 1], [-1.0, 0, 1]]) / [[1.0], [np.sqrt(2)]])
    np.testing.assert_allclose(p, [0.0, 0.0, 1.0], atol=1e-12)


def test_in_view_rejects_points_behind_and_folded_by_distortion():
    cam = ring_rig(1, dist=(0.8, 0.0, 0.0, 0.0, 0.0))[0]  # strong barrel: far points fold back inside
    ahead = cam.center + 3 * cam.R[2]
    behind = cam.center - 3 * cam.R[2]
    far_side = cam.center + 3 * cam.R[2] + 30 * cam.R[0]  # 84 deg off axis
    uv, ok = in_view(cam, np.stack([ahead, behind, far_side]))
    assert ok.tolist() == [True, False, False]
    np.testing.assert_allclose(uv[0], [319.5, 239.5], atol=1e-9)


def test_a_camera_turned_around_sees_the_meeting_point_behind_it():
    rig = ring_rig(4)
    T = rig[1].T_world_cam @ np.diag([-1.0, 1.0, -1.0, 1.0])  # half a turn about its y axis
    turned = Rig((rig[0], rig[1].with_pose(T), rig[2], rig[3]))
    depths = [c["meeting_point_depth_m"] for c in rig_summary(turned)["cameras"]]
    assert depths[1] < 0 < min(depths[0], depths[2], depths[3])
    assert [c["meeting_point_depth_m"] for c in rig_summary(rig)["cameras"]] == [pytest.approx(np.hypot(4.0, 0.8), abs=1e-4)] * 4
