"""Studio renderer: geometry equals the calibration (distortion included), masks, visibility, occlusion."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kp3d_core.camera import Camera, look_at
from kp3d_core.rig import Rig, load_rig, ring_rig, save_rig
from kp3d_core.skeleton import JOINT_INDEX as J
from kp3d_core.skeleton import NUM_JOINTS
from kp3d_core.studio.body import PART_NAMES, body_primitives, sample_subject
from kp3d_core.studio.render import StudioRenderer, capsule_entry, ellipsoid_entry, pixel_rays
from kp3d_core.studio.scene import sample_scene

DIST = (-0.28, 0.09, 0.0015, -0.001, -0.012)   # strong barrel distortion, non-zero tangential terms


def standing_pose(xy=(0.0, 0.0), yaw=0.0, arms_out=0.0) -> np.ndarray:
    """(17, 3) a person facing +x (left = +y) rotated by ``yaw`` about z, feet on the floor."""
    p = np.zeros((NUM_JOINTS, 3))
    p[J["pelvis"]] = (0, 0, 0.95)
    for s, y in (("left", 0.09), ("right", -0.09)):
        p[J[f"{s}_hip"]] = (0, y, 0.91)
        p[J[f"{s}_knee"]] = (0.02, y, 0.50)
        p[J[f"{s}_ankle"]] = (0, y, 0.08)
        sy = 0.18 if s == "left" else -0.18
        p[J[f"{s}_shoulder"]] = (0, sy, 1.43)
        out = np.sign(sy) * arms_out
        p[J[f"{s}_elbow"]] = (0, sy + out * 0.28, 1.43 - (1 - arms_out) * 0.29)
        p[J[f"{s}_wrist"]] = (0.03, sy + out * 0.54, 1.43 - (1 - arms_out) * 0.55)
    p[J["spine"]] = (0, 0, 1.18)
    p[J["thorax"]] = (0, 0, 1.45)
    p[J["neck"]] = (0, 0, 1.57)
    p[J["head"]] = (0, 0, 1.76)
    c, s = np.cos(yaw), np.sin(yaw)
    Rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return p @ Rz.T + np.array([xy[0], xy[1], 0.0])


def _renderer(rig: Rig, seed: int = 0) -> StudioRenderer:
    scene = sample_scene(np.random.default_rng(seed), np.stack([c.center for c in rig]))
    return StudioRenderer(rig, scene, seed=seed)


def _small_rig(n=3, dist=DIST, w=320, h=240) -> Rig:
    return ring_rig(n, radius=3.5, width=w, height=h, dist=dist)


def test_pixel_rays_reproject_to_their_pixels_through_opencv():
    cam = _small_rig(1)[0]
    rays, _ = pixel_rays(cam)
    rng = np.random.default_rng(0)
    v, u = rng.integers(0, cam.height, 200), rng.integers(0, cam.width, 200)
    pts = cam.center + rays[v, u] * rng.uniform(1.0, 8.0, (200, 1))
    rvec, _ = cv2.Rodrigues(cam.R)
    uv, _ = cv2.projectPoints(pts, rvec, cam.t, cam.K, cam.dist)
    err = np.abs(uv.reshape(-1, 2) - np.stack([u, v], axis=1))
    assert err.max() < 0.01, err.max()


def test_gt_2d_equals_opencv_projection_of_gt_3d_through_the_rig_file(tmp_path):
    rig = _small_rig(3)
    save_rig(rig, tmp_path / "rig.yaml")
    loaded = load_rig(tmp_path / "rig.yaml")
    r = _renderer(rig)
    joints = standing_pose((0.3, -0.2), yaw=0.7, arms_out=0.6)
    frame = r.render(joints, sample_subject(np.random.default_rng(1)), 0)
    for v, cam in enumerate(loaded.cameras):
        rvec, _ = cv2.Rodrigues(cam.R)
        uv, _ = cv2.projectPoints(joints, rvec, cam.t, cam.K, cam.dist)
        assert np.abs(frame.joints2d[v] - uv.reshape(-1, 2)).max() < 0.01
    assert frame.in_frame.all()
    assert frame.images[0].shape == (240, 320, 3) and frame.images[0].dtype == np.uint8
    assert frame.masks[0].shape == (240, 320) and frame.masks[0].dtype == bool


def test_visible_joints_fall_inside_the_mask_with_distortion_near_the_image_corner():
    # The camera looks 1.2 m to the side of the subject, so the body lies where distortion is strongest.
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    T = look_at((3.2, 0.8, 1.6), (0.0, -1.0, 0.6))
    cams = (Camera.from_pose("corner", K, DIST, 320, 240, T),) + tuple(_small_rig(2).cameras)
    rig = Rig(cams)
    r = _renderer(rig, seed=3)
    subject = sample_subject(np.random.default_rng(2))
    checked = 0
    for t, (yaw, arms) in enumerate([(0.0, 0.0), (1.2, 0.8), (2.5, 0.4), (-1.0, 1.0)]):
        joints = standing_pose((0.1, 0.2), yaw=yaw, arms_out=arms)
        frame = r.render(joints, subject, t)
        for v in range(len(rig)):
            uv = np.round(frame.joints2d[v]).astype(int)
            for j in np.flatnonzero(frame.visible[v]):
                assert frame.masks[v][uv[j, 1], uv[j, 0]], (rig.names[v], j)
                checked += 1
    assert checked > 100
    # the corner camera really sees the body far off-centre, where distortion moves points by pixels
    cam = rig[0]
    uv = frame.joints2d[0]
    ideal = cam.undistort_pixels(uv)
    assert np.abs(uv - ideal).max() > 3.0


def test_occluded_joints_are_flagged_from_the_depth_test():
    # Camera on the subject's left side (+y) at hip height: the right limbs hide behind the left ones/torso.
    K = np.array([[400.0, 0, 159.5], [0, 400.0, 119.5], [0, 0, 1]])
    cam = Camera.from_pose("side", K, np.zeros(5), 320, 240, look_at((0.0, 4.0, 1.0), (0.0, 0.0, 0.95)))
    front = Camera.from_pose("front", K, np.zeros(5), 320, 240, look_at((4.0, 0.0, 1.0), (0.0, 0.0, 0.95)))
    r = _renderer(Rig((cam, front)))
    frame = r.render(standing_pose(), sample_subject(np.random.default_rng(0)), 0)
    assert frame.in_frame.all()
    vis = frame.visible[0]
    # (the left hip is hidden by the hanging left arm from this side, so it is not asserted)
    for name in ("left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist", "head"):
        assert vis[J[name]], name
    for name in ("right_knee", "right_ankle", "right_shoulder", "right_elbow"):
        assert not vis[J[name]], name
    # seen from the front nothing is hidden
    assert frame.visible[1].all()


def test_joints_out_of_frame_are_flagged_and_not_visible():
    K = np.array([[400.0, 0, 159.5], [0, 400.0, 119.5], [0, 0, 1]])
    close = Camera.from_pose("close", K, np.zeros(5), 320, 240, look_at((1.6, 0.0, 1.5), (0.0, 0.0, 1.5)))
    r = _renderer(Rig((close,)))
    frame = r.render(standing_pose(), sample_subject(np.random.default_rng(0)), 0)
    assert not frame.in_frame[0, J["left_ankle"]] and not frame.visible[0, J["left_ankle"]]
    assert frame.in_frame[0, J["head"]]


def test_analytic_intersections_match_closed_forms():
    o = np.zeros(3)
    D = np.array([[1.0, 0, 0], [0, 1.0, 0], [1 / np.sqrt(2), 1 / np.sqrt(2), 0]])
    # capsule along z through x = 2, radius 0.5: the +x ray enters at 1.5; sphere caps beyond the ends
    t = capsule_entry(o, D, np.array([2.0, 0, -1]), np.array([2.0, 0, 1]), 0.5)
    assert t[0] == pytest.approx(1.5) and np.isinf(t[1])
    t = capsule_entry(o, D[:1], np.array([2.0, 0, 0]), np.array([4.0, 0, 0]), 0.5)   # end cap first
    assert t[0] == pytest.approx(1.5)
    t = ellipsoid_entry(o, D, np.array([3.0, 0, 0]), np.eye(3), np.array([1.0, 2.0, 0.5]))
    assert t[0] == pytest.approx(2.0) and np.isinf(t[1])


def test_every_joint_lies_inside_its_own_primitives():
    subject = sample_subject(np.random.default_rng(4))
    joints = standing_pose(yaw=0.4, arms_out=0.7)
    prims = body_primitives(joints, subject)
    for j, parts in enumerate(prims.joint_parts):
        assert parts, j
        # a ray from far away toward the joint enters an own primitive before reaching it
        o = joints[j] + np.array([5.0, 1.0, 0.5])
        d = (joints[j] - o) / np.linalg.norm(joints[j] - o)
        from kp3d_core.studio.render import primitive_entry

        entry = min(primitive_entry(prims, i, o, d[None])[0] for i in parts)
        assert entry < np.linalg.norm(joints[j] - o), j


def test_no_left_right_colour_cue_by_default_and_option_adds_one():
    s = sample_subject(np.random.default_rng(5))
    for name in PART_NAMES:
        if name.endswith("_l"):
            assert s.materials[PART_NAMES.index(name)] == s.materials[PART_NAMES.index(name[:-2] + "_r")]
    c = sample_subject(np.random.default_rng(5), lr_cue=True)
    assert c.materials[PART_NAMES.index("thigh_l")] != c.materials[PART_NAMES.index("thigh_r")]


def test_rendering_is_deterministic_per_frame_index_and_noise_varies_between_frames():
    rig = _small_rig(1, w=160, h=120)
    subject = sample_subject(np.random.default_rng(0))
    a = _renderer(rig).render(standing_pose(), subject, 5).images[0]
    b = _renderer(rig).render(standing_pose(), subject, 5).images[0]
    c = _renderer(rig).render(standing_pose(), subject, 6).images[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_joints_raise_naming_the_argument():
    with pytest.raises(ValueError, match="joints"):
        body_primitives(np.zeros((16, 3)), sample_subject(np.random.default_rng(0)))


def test_visible_joints_inside_mask_over_procedural_motion_with_distortion():
    from kp3d_core.studio.procedural import procedural_motion

    rig = ring_rig(3, radius=4.0, width=320, height=240, dist=DIST)
    r = _renderer(rig, seed=1)
    motion = procedural_motion(60, 30.0, seed=4)
    subject = sample_subject(np.random.default_rng(6))
    visible = occluded = 0
    for t in range(0, 60, 3):
        frame = r.render(motion.joints3d[t], subject, t)
        for v in range(len(rig)):
            uv = np.round(frame.joints2d[v]).astype(int)
            vis = frame.visible[v]
            assert frame.masks[v][uv[vis, 1], uv[vis, 0]].all(), (t, rig.names[v])
            visible += vis.sum()
            occluded += (frame.in_frame[v] & ~vis).sum()
    assert visible > 400 and occluded > 0
