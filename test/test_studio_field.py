"""studio-field: appearance, rigs, cluttered rooms, light, camera effects, bystanders, stay-in-place clips, the
sessions preset (byte-identical slice), and the old presets unchanged."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from test_studio_render import standing_pose

from kp3d_core.camera import Camera, look_at
from kp3d_core.rig import Rig, ring_rig
from kp3d_core.skeleton import JOINT_INDEX as J
from kp3d_core.studio import appearance, rigs, room
from kp3d_core.studio.body import BLOTCHES, PART_NAMES, body_primitives
from kp3d_core.studio.camera_effects import (
    CameraEffects,
    SessionEffects,
    auto_exposure_gains,
    sample_session_effects,
    vignette_map,
)
from kp3d_core.studio.field_render import FieldRenderer, Person
from kp3d_core.studio.lighting import LightSchedule, sample_light_schedule
from kp3d_core.studio.render import pixel_rays
from kp3d_core.studio.scene import (
    PANEL_WINDOW,
    Box,
    Panel,
    render_background,
    render_background_layers,
    sample_scene,
    scene_depth,
)

NO_NOISE = CameraEffects(noise_sigma=0.0, auto_exposure=False, ae_target=110.0)


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in sorted(root.rglob("*")) if p.is_file()}


def _field_renderer(rig, effects=None, light=LightSchedule(), frames=40, seed=0, **kw) -> FieldRenderer:
    scene = sample_scene(np.random.default_rng(seed), np.stack([c.center for c in rig]))
    return FieldRenderer(rig, scene, seed, effects or [NO_NOISE] * len(rig), light, frames, **kw)


# ------------------------------------------------------------------------------------------ appearance
def test_field_people_vary_in_skin_hair_caps_bare_limbs_and_build():
    people = [appearance.sample_field_subject(np.random.default_rng(i), appearance.FIELD) for i in range(300)]
    info = [appearance.describe(p) for p in people]
    skin = np.array([np.mean(i["skin"]) for i in info])
    assert skin.min() < 0.3 and skin.max() > 0.8                     # very dark to very light
    assert {i["hair"] for i in info} == {"bald", "short", "long", "bun", "volume"}
    assert 0.1 < np.mean([i["cap"] for i in info]) < 0.35
    assert np.mean([i["bare_forearms"] for i in info]) > 0.4 and np.mean([i["bare_shins"] for i in info]) > 0.2
    thigh = np.array([i["thigh_radius_m"] for i in info])
    assert thigh.min() < 0.055 and thigh.max() > 0.11                 # thin to heavy
    patterns = {m.pattern for p in people for m in p.materials}
    assert len(patterns) >= 4 and BLOTCHES not in patterns            # blotches are held out for -new
    for p in people[:20]:                                             # no left/right cue
        for name in PART_NAMES:
            if name.endswith("_l"):
                r = PART_NAMES.index(name[:-2] + "_r")
                assert p.materials[PART_NAMES.index(name)] == p.materials[r] and p.radii[r] == p.radii[
                    PART_NAMES.index(name)]
    new = [appearance.sample_field_subject(np.random.default_rng(i), appearance.NEW) for i in range(50)]
    assert {m.pattern for p in new for m in p.materials} <= {0, BLOTCHES, 1}   # 1: hair strands


def test_hair_and_cap_are_drawn_in_the_mask_and_the_head_stays_visible_through_them():
    subject = appearance.sample_field_subject(np.random.default_rng(0))
    long_hair = [appearance.HAIR_STYLES["long"], appearance.CAP]
    worn = tuple(body_accessory for group in long_hair for body_accessory in group)
    mat = subject.materials[0]
    with_acc = dataclasses.replace(subject, accessories=tuple(
        appearance.Accessory(n, c, a, mat) for n, c, a in worn))
    bare = dataclasses.replace(subject, accessories=())
    joints = standing_pose()
    prims = body_primitives(joints, with_acc)
    assert prims.num == body_primitives(joints, bare).num + 4
    # From behind and above: the head joint is seen through the hair and cap, which belong to the head.
    K = np.array([[300.0, 0, 79.5], [0, 300.0, 59.5], [0, 0, 1]])
    back = Camera.from_pose("back", K, np.zeros(5), 160, 120, look_at((-3.0, 0.0, 2.6), (0.0, 0.0, 1.4)))
    r = _field_renderer(Rig((back,)))
    a, b = r.render(joints, with_acc, 0), r.render(joints, bare, 0)
    assert a.visible[0, J["head"]] and b.visible[0, J["head"]]
    assert a.masks[0].sum() > b.masks[0].sum() + 20 and not (b.masks[0] & ~a.masks[0]).any()


# ------------------------------------------------------------------------------------------ rigs
def test_field_rigs_vary_and_frame_the_capture_volume():
    sizes, counts, portrait_high = set(), set(), []
    for i in range(40):
        rig = rigs.field_rig(np.random.default_rng(i), rigs.FIELD, volume_radius_m=1.0)
        counts.add(len(rig))
        assert len({c.size for c in rig.cameras}) == 1
        sizes.add(rig.cameras[0].size)
        info = rigs.describe(rig)
        for cam, d in zip(rig.cameras, info):
            assert 0.5 <= d["height_m"] <= 3.0 and 1.8 - 1e-9 <= d["distance_m"] <= 6.0
            assert cam.dist[1] >= 0.45 * cam.dist[0] ** 2                # monotonic radial distortion
            uv = cam.project(np.array([[0.0, 0.0, 1.0]]))[0]             # sees the volume centre
            assert 0 <= uv[0] < cam.width and 0 <= uv[1] < cam.height
        if rig.cameras[0].size == rigs.PORTRAIT:
            portrait_high.append(all(d["height_m"] > 2.2 for d in info))
    assert sizes == {rigs.LANDSCAPE, rigs.PORTRAIT} and min(counts) == 3 and max(counts) == 8
    assert not any(portrait_high)                                          # held out for studio-field-new
    for i in range(5):
        new = rigs.field_rig(np.random.default_rng(i), rigs.NEW, volume_radius_m=1.0)
        assert all(c.size == rigs.PORTRAIT and c.center[2] >= 2.3 for c in new.cameras)


def test_wide_lens_pixel_rays_reproject_to_their_pixels():
    cam = max((c for i in range(12) for c in rigs.field_rig(np.random.default_rng(i), rigs.FIELD).cameras),
              key=lambda c: -c.dist[0])
    assert cam.dist[0] < -0.15
    rays, _ = pixel_rays(cam)
    H, W = cam.height, cam.width
    v, u = np.array([0, 0, H - 1, H - 1, H // 2]), np.array([0, W - 1, 0, W - 1, W // 2])
    uv = cam.project(cam.center + rays[v, u] * 3.0)
    assert np.abs(uv - np.stack([u, v], axis=1)).max() < 0.05


# ------------------------------------------------------------------------------------------ rooms
def test_cluttered_room_keeps_the_subject_in_view_and_hides_legs_in_some_views():
    rig = rigs.field_rig(np.random.default_rng(3), rigs.FIELD, volume_radius_m=1.0)
    cams = np.stack([c.center for c in rig.cameras])
    style = dataclasses.replace(room.FIELD, occluders=(2, 2))
    leg_hidden = in_view = 0
    for i in range(8):
        scene, info = room.sample_field_room(np.random.default_rng(i), style, cams, [(0.2, -0.1, 0.9)])
        assert len(scene.boxes) >= 8 and info["kind"] in room.FIELD.kinds
        for b in scene.boxes:
            lo, hi = np.array(b.lo), np.array(b.hi)
            near = np.hypot(np.clip(0.2, lo[0], hi[0]) - 0.2, np.clip(-0.1, lo[1], hi[1]) + 0.1)
            assert near >= 0.9                                              # keep-out disc
        for c in cams:
            for z in (1.0, 1.6):                                            # hips and head in every view
                d = np.array([0.2, -0.1, z]) - c
                t, _, _ = scene_depth(scene, c, (d / np.linalg.norm(d))[None])
                assert t[0] >= np.linalg.norm(d) - 1e-6
            d = np.array([0.2, -0.1, 0.15]) - c
            t, surf, _ = scene_depth(scene, c, (d / np.linalg.norm(d))[None])
            leg_hidden += bool(t[0] < np.linalg.norm(d) and surf[0] >= 6)
        for b in scene.boxes:   # objects in the cameras' views, not only along the walls
            centre = 0.5 * (np.array(b.lo) + np.array(b.hi))
            in_view += any(c.world_to_camera(centre[None])[0, 2] > 0 and c.in_image(c.project(centre[None]))[0]
                           for c in rig.cameras)
    assert leg_hidden >= 4 and in_view > 40


def test_every_furniture_kind_builds_boxes_standing_on_the_floor():
    for kind in sorted({k for kinds in room._FURNITURE.values() for k in kinds}):
        for i in range(5):
            name, parts = room._piece(np.random.default_rng(i), kind)
            boxes = room._place(parts, 1.0, -2.0, i % 4)
            lo, hi = room._footprint(boxes)
            assert name == kind and lo[2] == 0.0 and 0.1 < hi[2] < 3.6, kind
            assert all(np.all(np.array(b.hi) > np.array(b.lo)) and min(b.colour) >= 0.0 for b in boxes), kind


def test_windows_are_a_separate_light_layer_and_rooms_without_them_render_as_before():
    plain = sample_scene(np.random.default_rng(2), np.array([[3.0, 0.0, 1.5]]))
    cam = Camera.from_pose("c", np.array([[60.0, 0, 39.5], [0, 60.0, 29.5], [0, 0, 1]]), np.zeros(5), 80, 60,
                           look_at((-1.0, 0.0, 1.5), (5.0, 0.0, 1.4)))
    rays, _ = pixel_rays(cam)
    base, window, depth = render_background_layers(plain, cam.center, rays)
    rgb, depth0 = render_background(plain, cam.center, rays)
    assert not window.any() and np.array_equal(base, rgb) and np.array_equal(depth, depth0)
    lit = dataclasses.replace(plain, panels=(Panel(0, -0.8, 0.8, 0.9, 2.2, (1.6, 1.6, 1.7), PANEL_WINDOW),))
    base, window, _ = render_background_layers(lit, cam.center, rays)
    uv = cam.project(np.array([[lit.half_x, 0.0, 1.5]]))[0].round().astype(int)
    assert base[uv[1], uv[0]].min() > 0.95                                 # the glass, overexposed
    assert window.max() > 0.05 and (window >= 0).all()
    assert window[-1].mean() > 0.0 or window[-5:].max() > 0.0              # daylight on the floor below it


# ------------------------------------------------------------------------------------------ light
def test_light_schedule_switches_a_lamp_and_a_window_brightens_then_settles():
    s = LightSchedule(switch_frame=20, switch_to=0.5, switch_ramp=4, window_start=10, window_rise=10,
                      window_hold=10, window_fall=10, window_peak=1.0)
    room_level = s.room(np.arange(40))
    assert room_level[19] == 1.0 and room_level[24] == 0.5 and 0.5 < room_level[22] < 1.0
    w = s.window(np.arange(50))
    assert w[9] == 0.0 and w[20] == pytest.approx(1.0) and w[45] == pytest.approx(0.3)
    for i in range(20):                          # drawn schedules stay in their documented ranges
        d = sample_light_schedule(np.random.default_rng(i), 250, has_windows=True)
        assert 0.3 < d.room(np.arange(250)).min() and d.room(np.arange(250)).max() < 2.5
        assert d.window(np.arange(250)).min() >= 0.0


def test_auto_exposure_follows_a_light_switch_with_lag():
    g = auto_exposure_gains(np.r_[np.full(10, 100.0), np.full(40, 50.0)], target=100.0, tau_frames=5.0)
    assert g[9] == pytest.approx(1.0) and 1.0 < g[10] < g[12] < g[30] and g[49] == pytest.approx(2.0, rel=1e-3)
    assert g[14] == pytest.approx(1.0 + 1.0 * (1 - np.exp(-5 / 5.0)), rel=1e-6)   # 63 % after tau frames
    # Rendered: the room gets darker at the switch, then the exposure brings it back over the next frames.
    rig = ring_rig(1, width=96, height=72)
    fx = dataclasses.replace(NO_NOISE, auto_exposure=True, ae_tau_frames=6.0)
    r = _field_renderer(rig, [fx], LightSchedule(switch_frame=10, switch_to=0.5, switch_ramp=1), frames=50)
    subject = appearance.sample_field_subject(np.random.default_rng(1))
    mean = {}
    for t in (9, 11, 14, 20, 45):
        f = r.render(standing_pose(), subject, t)
        mean[t] = f.images[0][~f.masks[0]].mean()
        assert f.extras["room_light"] == pytest.approx(r.light_schedule.room(t))
    assert mean[11] < 0.8 * mean[9]                                        # darker right after the switch
    assert mean[11] < mean[14] < mean[20] < mean[45] and abs(mean[45] - mean[9]) < 0.05 * mean[9]


# ------------------------------------------------------------------------------------------ camera
def test_camera_effects_white_balance_defocus_noise_vignette_and_jpeg_quality(tmp_path):
    rig = ring_rig(1, width=96, height=72)
    subject = appearance.sample_field_subject(np.random.default_rng(2))
    joints = standing_pose()

    def image(**kw):
        return _field_renderer(rig, [dataclasses.replace(NO_NOISE, **kw)]).render(joints, subject, 3).images[0]

    plain = image().astype(np.float64)
    warm = image(white_balance=(1.15, 1.0, 0.85)).astype(np.float64)
    assert warm[..., 0].mean() / warm[..., 2].mean() > 1.2 * plain[..., 0].mean() / plain[..., 2].mean()
    sharp = cv2.Laplacian(plain.mean(axis=2), cv2.CV_64F).var()
    assert cv2.Laplacian(image(defocus_px=1.5).astype(np.float64).mean(axis=2), cv2.CV_64F).var() < 0.5 * sharp
    assert (image(noise_sigma=6.0) - plain).std() > 4.0
    v = vignette_map(96, 72, 0.3)
    assert v[36, 48] > 0.99 and v[0, 0] == pytest.approx(0.7, abs=0.02)
    assert image(vignette=0.3)[:8, :8].mean() < 0.85 * plain[:8, :8].mean()
    qualities = {sample_session_effects(np.random.default_rng(i)).jpeg_quality for i in range(60)}
    assert min(qualities) < 60 and max(qualities) >= 90


def test_motion_blur_smears_the_image_and_keeps_the_ground_truth():
    rig = ring_rig(1, width=160, height=120)
    track = np.stack([standing_pose((0.08 * t - 0.5, 0.0), arms_out=0.05 * t) for t in range(12)])
    subject = appearance.sample_field_subject(np.random.default_rng(3))
    sharp = _field_renderer(rig, track=track).render(track[6], subject, 6)
    blur = _field_renderer(rig, track=track, session=SessionEffects(shutter=1.0)).render(track[6], subject, 6)
    assert np.array_equal(sharp.masks[0], blur.masks[0]) and np.array_equal(sharp.joints2d, blur.joints2d)
    edge = cv2.dilate(sharp.masks[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    diff = np.abs(sharp.images[0].astype(int) - blur.images[0].astype(int)).sum(axis=2)
    assert diff[edge].mean() > 5 and diff[~edge].max() <= 1


# ------------------------------------------------------------------------------------------ bystanders
def test_bystanders_are_drawn_outside_the_subject_mask_and_hide_it_only_from_the_front():
    rig = ring_rig(2, width=160, height=120)          # cam0 at 45 deg, 4 m from the origin
    subject = appearance.sample_field_subject(np.random.default_rng(4))
    other = appearance.sample_field_subject(np.random.default_rng(5))
    joints = standing_pose()
    behind = np.stack([standing_pose((-2.2, -1.2), yaw=1.0)] * 3)       # beyond the subject, seen by cam0
    alone = _field_renderer(rig).render(joints, subject, 1)
    f = _field_renderer(rig, bystanders=[Person(other, behind)]).render(joints, subject, 1)
    assert f.extras["bystander_pixels"][0] > 100
    assert np.array_equal(f.masks[0], alone.masks[0]) and np.array_equal(f.visible, alone.visible)
    changed = np.abs(f.images[0].astype(int) - alone.images[0].astype(int)).sum(axis=2) > 30
    assert changed.sum() > 100 and not (changed & f.masks[0]).any()
    front = np.stack([standing_pose((1.5, 1.5))] * 3)                    # between cam0 and the subject
    g = _field_renderer(rig, bystanders=[Person(other, front)]).render(joints, subject, 1)
    assert g.masks[0].sum() < 0.5 * alone.masks[0].sum() and g.visible[0].sum() < alone.visible[0].sum()
    uv = np.round(g.joints2d[0]).astype(int)
    assert g.masks[0][uv[g.visible[0], 1], uv[g.visible[0], 0]].all()   # visible joints still on the mask


def test_sampled_bystanders_stand_beyond_the_volume_and_off_the_lines_of_sight():
    from kp3d_core.studio.bystanders import sample_bystanders

    rig = rigs.field_rig(np.random.default_rng(8), rigs.FIELD, volume_radius_m=1.0)
    people = sample_bystanders(np.random.default_rng(1), rig, (0.0, 0.0, 1.3), 2, 30, 30.0)
    assert len(people) >= 1
    for b in people:
        xy = b.person.joints3d[:, :, :2].reshape(-1, 2)
        assert np.hypot(xy[:, 0], xy[:, 1]).min() > 1.3                   # beyond the subject's disc
        assert min(np.hypot(*(xy - c.center[:2]).T).min() for c in rig.cameras) > 0.5


# ------------------------------------------------------------------------------------------ motion
def test_stay_in_place_clips_keep_the_root_within_half_a_metre_and_may_stand_on_a_platform():
    from kp3d_core.studio.field_motion import session_motion, stays_in_place
    from kp3d_core.studio.proportions import sample_proportions

    props = sample_proportions(np.random.default_rng(0))
    platforms = 0
    for i in range(6):
        clip = session_motion(np.random.default_rng(i), "procedural", True, 150, 30.0, props, 1.0, [])
        root = clip.joints3d[:, 0, :2]
        assert clip.stay and stays_in_place(clip.joints3d) and np.linalg.norm(root - root[0], axis=1).max() <= 0.5
        assert np.hypot(*root.mean(axis=0)) < 0.6
        if clip.platform is not None:
            platforms += 1
            top = clip.platform.hi[2]
            ankles = clip.joints3d[:, [J["left_ankle"], J["right_ankle"]]]
            assert ankles[..., 2].min() > top + 0.03
            lo, hi = np.array(clip.platform.lo[:2]), np.array(clip.platform.hi[:2])
            assert ((ankles[..., :2] > lo) & (ankles[..., :2] < hi)).all()
    assert 0 < platforms < 6
    moving = session_motion(np.random.default_rng(0), "procedural", False, 150, 30.0, props, 1.2, [])
    assert not moving.stay and moving.platform is None


# ------------------------------------------------------------------------------------------ presets
def test_field_sessions_plan_quotas_and_held_out_seeds():
    from kp3d_core.studio.field_preset import FIELD_PRESETS, plan_sessions

    train = plan_sessions("studio-field", "train")
    assert len(train) == 40 and sum(p.frames for p in train) == 10000
    assert [p.source for p in train].count("cmu") == 6 and [p.source for p in train].count("generator") == 14
    assert sum(p.stay for p in train) == round(0.35 * 34) and not any(p.stay for p in train if p.source == "cmu")
    assert plan_sessions("studio-field", "train") == train
    seeds = [p.seed for s in ("train", "val", "test") for p in plan_sessions("studio-field", s)]
    seeds += [p.seed for s in ("train", "val", "test") for p in plan_sessions("studio-field-new", s)]
    assert len(set(seeds)) == len(seeds)
    assert sum(p.frames for p in plan_sessions("studio-field", "val")) == 1200
    new = FIELD_PRESETS["studio-field-new"]
    assert new.rigs is rigs.NEW and new.rooms.kinds == ("warehouse",) and new.appearance is appearance.NEW
    assert "warehouse" not in FIELD_PRESETS["studio-field"].rooms.kinds


def test_field_session_slice_is_byte_identical_on_rerun_a_prefix_of_longer_ones_and_a_dataset_folder(tmp_path):
    from kp3d_core.studio.field_preset import generate_field
    from kp3d_ros.cli import main

    a = generate_field("studio-field", "val", tmp_path / "a", sessions_limit=1, frames_limit=2, progress=False,
                       log=lambda *_: None)[0]
    assert main(["synth", "--preset", "studio-field", "--split", "val", "--sessions-limit", "1", "--frames-limit",
                 "2", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert fa == fb
    # A longer slice starts with the same bytes: frames do not depend on how many are rendered.
    c = generate_field("studio-field", "val", tmp_path / "c", sessions_limit=1, frames_limit=3, progress=False,
                       log=lambda *_: None)[0]
    fc = _files(tmp_path / "c")
    assert {k: v for k, v in fa.items() if k.endswith((".jpg", ".png", "rig.yaml"))}.items() <= fc.items()
    gc = np.load(c.out / "gt.npz")
    for key, value in np.load(a.out / "gt.npz").items():
        np.testing.assert_array_equal(value, gc[key][:2])
    split = yaml.safe_load((tmp_path / "a" / "val" / "manifest.yaml").read_text())
    assert split["kind"] == "sessions" and split["sessions"] == ["session000"] and split["name"] == "studio-field"
    assert set(split["licences"]) <= {"procedural", "cmu", "generator"} and split["seeds"]["split"] == 222
    m = yaml.safe_load((a.out / "manifest.yaml").read_text())
    W, H = m["image_size"]
    assert (W, H) in (rigs.LANDSCAPE, rigs.PORTRAIT) and m["num_frames"] == 2 and 3 <= len(m["cameras"]) <= 8
    gt = np.load(a.out / "gt.npz")
    V = len(m["cameras"])
    assert gt["bystander_pixels"].shape == (2, V) and gt["camera_gain"].shape == (2, V)
    assert gt["room_light"].shape == (2,) and gt["joints2d"].shape == (2, V, 17, 2)
    for v, cam in enumerate(m["cameras"]):
        img = cv2.imread(str(a.out / "images" / cam / "000001.jpg"))
        mask = cv2.imread(str(a.out / "masks" / cam / "000001.png"), cv2.IMREAD_UNCHANGED)
        assert img.shape == (H, W, 3) and mask.shape == (H, W)
        uv = np.round(gt["joints2d"][1, v]).astype(int)
        vis = gt["visible"][1, v]
        assert (mask[uv[vis, 1], uv[vis, 0]] > 0).all()
        assert cv2.imread(str(a.out / "backgrounds" / f"{cam}.png")).shape == (H, W, 3)


# Files of the studio-bench-open test slice (2 frames, procedural motion) as rendered before studio-field
# existed (commit 73df61d), on these library versions; the manifest is checked apart (it names the tmp path).
GOLDEN_VERSIONS = {"numpy": "2.4.6", "opencv": "5.0.0"}
GOLDEN = {
    "backgrounds/cam0.png": "eb1d602887589fb9", "backgrounds/cam1.png": "061cb95ecd7b2fa3",
    "backgrounds/cam2.png": "f96980413ebba867", "backgrounds/cam3.png": "81ec967c07637813",
    "gt.npz": "1bfe232e90678ec5",
    "images/cam0/000000.jpg": "fa43416c258b3f59", "images/cam0/000001.jpg": "f1eaac41e1b2d882",
    "images/cam1/000000.jpg": "88fd47f11578540b", "images/cam1/000001.jpg": "7d90d0e13ebc817a",
    "images/cam2/000000.jpg": "0f22617c9a865806", "images/cam2/000001.jpg": "9171a160985b8d45",
    "images/cam3/000000.jpg": "8e561c695720d65f", "images/cam3/000001.jpg": "e00b574179769243",
    "masks/cam0/000000.png": "79fd34e6ed50aecc", "masks/cam0/000001.png": "4959747e4189acd0",
    "masks/cam1/000000.png": "83d4f22e6df06238", "masks/cam1/000001.png": "bffc724753caa884",
    "masks/cam2/000000.png": "81b9235154a11572", "masks/cam2/000001.png": "a6b22f40e502ef11",
    "masks/cam3/000000.png": "a19c25663746e0f3", "masks/cam3/000001.png": "808c7650128234b7",
    "rig.yaml": "a9c73c8a31668e7e",
}


def test_old_preset_renders_exactly_as_before_studio_field(tmp_path):
    if {"numpy": np.__version__, "opencv": cv2.__version__} != GOLDEN_VERSIONS:
        pytest.skip(f"golden files recorded with {GOLDEN_VERSIONS}")
    from kp3d_core.studio.presets import generate

    s = generate("studio-bench-open", "test", tmp_path / "o", motion_root=tmp_path / "none", frames_limit=2,
                 progress=False, log=lambda *_: None)[0]
    files = _files(s.out)
    assert files.pop("manifest.yaml") and files == GOLDEN


def test_visible_joints_hidden_by_room_objects_are_flagged():
    # A crate between the camera and the shins: the ankles and knees are hidden, the head is not.
    cam = Camera.from_pose("c", np.array([[200.0, 0, 79.5], [0, 200.0, 59.5], [0, 0, 1]]), np.zeros(5), 160, 120,
                           look_at((4.0, 0.0, 1.2), (0.0, 0.0, 0.9)))
    base = sample_scene(np.random.default_rng(0), cam.center[None])
    crate = Box((1.6, -0.6, 0.0), (2.0, 0.6, 0.7), (0.5, 0.4, 0.3))
    r = FieldRenderer(Rig((cam,)), dataclasses.replace(base, boxes=(crate,)), 0, [NO_NOISE], LightSchedule(), 5)
    f = r.render(standing_pose(), appearance.sample_field_subject(np.random.default_rng(0)), 0)
    assert not f.visible[0, J["left_ankle"]] and not f.visible[0, J["right_ankle"]] and f.visible[0, J["head"]]
    uv = np.round(f.joints2d[0, J["left_ankle"]]).astype(int)
    assert not f.masks[0][uv[1], uv[0]]                                   # the crate's pixels, not the subject's
