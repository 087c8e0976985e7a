"""The foreground that holds up: gain-normalised difference, blob choice by hint and by the views' agreement, ghost
healing in the running background, person/room colours, and the contamination signs."""
import cv2
import numpy as np
import pytest
import torch
from studio_fixture import background, draw, poses

from kp3d_core.background import RunningBackground
from kp3d_core.config import ModelConfig
from kp3d_core.crop import (
    CropParams,
    apply_gain,
    blobs,
    box_from_mask,
    detect_box,
    estimate_gain,
    foreground_mask,
    threshold_mask,
)
from kp3d_core.data.studio import SampleParams, crop_views
from kp3d_core.foreground import agree_across_views
from kp3d_core.ghosts import PersonRoomColours
from kp3d_core.inference.predictor import ContaminationMonitor, Predictor, PredictorConfig
from kp3d_core.inference.torch_backend import TorchBackend, model_info
from kp3d_core.models import KeypointNet
from kp3d_core.rig import ring_rig

W, H = 160, 120


def textured(seed=0, h=H, w=W):
    return background(w, h, seed)


# ------------------------------------------------------------------------------------------ gain
def test_estimate_gain_recovers_a_lamp_and_ignores_the_subject():
    bg = textured()
    img = np.clip(bg.astype(np.float64) * [1.3, 1.25, 1.2], 0, 255).round().astype(np.uint8)
    img[20:100, 40:90] = (230, 30, 30)  # a subject over a third of the image
    np.testing.assert_allclose(estimate_gain(img, bg, step=2), [1.3, 1.25, 1.2], atol=0.01)
    np.testing.assert_allclose(estimate_gain(img, bg, exclude=(40, 20, 90, 100), step=2), [1.3, 1.25, 1.2], atol=0.01)
    assert estimate_gain(bg, bg).tolist() == [1.0, 1.0, 1.0]
    assert estimate_gain(np.zeros_like(bg), np.zeros_like(bg)).tolist() == [1.0, 1.0, 1.0]  # nothing usable
    with pytest.raises(ValueError, match="image"):
        estimate_gain(bg[..., 0], bg)


def test_apply_gain_dead_zone_and_scaling():
    bg = textured()
    assert apply_gain(bg, [1.02, 0.98, 1.0]) is bg and apply_gain(bg, None) is bg
    scaled = apply_gain(bg, [1.5, 1.0, 0.5])
    np.testing.assert_allclose(scaled.astype(int), np.clip(np.round(bg * [1.5, 1.0, 0.5]), 0, 255), atol=1)


def test_a_lamp_switched_on_does_not_turn_the_room_into_foreground():
    bg = textured()
    img = bg.copy()
    img[30:90, 70:100] = (230, 30, 30)
    lit = np.clip(img.astype(np.float64) * 1.4, 0, 255).astype(np.uint8)
    lit[30:90, 70:100] = (230, 30, 30)
    box = detect_box(img, bg)
    assert detect_box(lit, bg) == box  # the gain-normalised difference: same box
    assert detect_box(lit, bg, CropParams(gain=False)).side > 1.5 * box.side  # the plain one: the whole room
    assert threshold_mask(lit, bg, CropParams(gain=False)).mean() > 0.9


# ------------------------------------------------------------------------------------------ hints
def two_blobs():
    mask = np.zeros((H, W), np.uint8)
    mask[10:70, 10:50] = 1  # large (a bystander): 2400 px
    mask[40:100, 100:125] = 1  # the subject: 1500 px
    mask[102:112, 104:120] = 1  # a piece of it (feet), just below, beyond the merge reach
    return mask


def test_hint_chooses_the_blob():
    mask = two_blobs()
    params = CropParams(margin=1.0, merge_reach=0.0)
    assert box_from_mask(mask, params).cx == pytest.approx(29.5)  # without a hint: the largest
    box = box_from_mask(mask, params, hint=(95, 35, 130, 115))
    assert (box.cx, box.cy, box.side) == (112.0, 69.5, 60.0)  # the subject alone
    assert box_from_mask(mask, params, hint=(140, 0, 160, 20)) is None  # nothing where the subject should be


def test_blobs_lists_the_largest_first():
    rows = blobs(two_blobs(), min_area=100)
    assert rows.shape == (3, 7)
    np.testing.assert_array_equal(rows[:, 4], [2400, 1500, 160])
    np.testing.assert_array_equal(rows[0, :4], [10, 10, 50, 70])
    np.testing.assert_allclose(rows[1, 5:], [112.0, 69.5])
    assert len(blobs(two_blobs(), min_area=2000)) == 1 and blobs(np.zeros((H, W), np.uint8), 1).shape == (0, 7)


# ------------------------------------------------------------------------------------------ views agree
@pytest.fixture(scope="module")
def ring():
    return ring_rig(4, radius=4.0, heights=1.5, target=(0.0, 0.0, 1.0), width=W, height=H)


def blob_row(uv, half):
    return [uv[0] - half, uv[1] - half, uv[0] + half, uv[1] + half, (2 * half) ** 2, uv[0], uv[1]]


def test_the_views_pick_the_subject_over_a_larger_bystander_seen_by_two(ring):
    subject, bystander = np.array([0.2, -0.1, 1.0]), np.array([-1.5, 2.0, 1.0])
    cands = []
    for v, cam in enumerate(ring.cameras):
        rows = [blob_row(cam.project(subject[None])[0], 10)]
        if v in (0, 1):
            rows.insert(0, blob_row(cam.project(bystander[None])[0], 25))  # larger, listed first
        cands.append(np.array(rows))
    X, hints = agree_across_views(cands, ring.cameras)
    np.testing.assert_allclose(X, subject, atol=1e-6)
    for v, cam in enumerate(ring.cameras):
        u = cam.project(subject[None])[0]
        assert hints[v][0] < u[0] < hints[v][2] and hints[v][1] < u[1] < hints[v][3]
    # a view without a blob there gets no hint; too few views: no answer
    cands[2] = np.array([blob_row([5.0, 5.0], 3)])
    X, hints = agree_across_views(cands, ring.cameras)
    assert hints[2] is None and hints[0] is not None
    assert agree_across_views([cands[0], None, None, None], ring.cameras) == (None, [None] * 4)
    with pytest.raises(ValueError, match="3 candidate lists for 4 cameras"):
        agree_across_views(cands[:3], ring.cameras)


def test_training_crops_box_the_subject_not_the_bystander(ring):
    joints = poses(4)[1]
    bgs = [textured(v) for v in range(4)]
    images = [draw(bg, cam.project(joints)) for bg, cam in zip(bgs, ring.cameras)]
    for v in (0, 1):  # a bystander, drawn bigger (nearer) than the subject in two views
        cv2.rectangle(images[v], (118, 5), (156, 115), (20, 200, 240), -1)
    single = crop_views(images, bgs, SampleParams(size=32))["box"]
    multi = crop_views(images, bgs, SampleParams(size=32), ring.cameras)["box"]
    for v, cam in enumerate(ring.cameras):
        u = cam.project(joints).mean(axis=0)
        assert abs(multi[v, 0] - u[0]) < 15  # the subject
        if v in (0, 1):
            assert abs(single[v, 0] - 137) < 3  # the largest blob: the bystander


# ------------------------------------------------------------------------------------------ healing
def test_running_background_heals_fast_where_told_and_follows_a_gain():
    true = textured()
    ghost = true.copy()
    ghost[30:90, 60:90] = (230, 30, 30)  # a subject learnt into the background
    rb = RunningBackground(ghost, rate=0.01)
    heal = np.zeros((H, W), bool)
    heal[30:90, 60:90] = True
    for _ in range(6):
        rb.update(true, heal=heal, heal_rate=0.5)
    assert np.abs(rb.image().astype(int) - true).max() <= 4  # 0.5 ** 6 of the ghost left
    rb2 = RunningBackground(ghost, rate=0.01)
    rb2.update(true, foreground_box=(60, 30, 90, 90), heal=heal)  # the subject's box wins over healing
    assert (rb2.image()[30:90, 60:90] == ghost[30:90, 60:90]).all()
    rb.rescale([1.2, 1.2, 1.2])
    np.testing.assert_allclose(rb.image().astype(int), np.clip(true * 1.2, 0, 255), atol=5)


def test_person_room_colours_tell_a_ghost_from_a_person_standing_still():
    room = textured()
    person_colour = np.array([230, 30, 30], np.uint8)
    bg = room.copy()
    bg[20:60, 20:40] = person_colour  # the ghost: where the person stood while the background was learnt
    img = room.copy()
    img[60:110, 100:130] = person_colour  # the person, now elsewhere
    colours = PersonRoomColours(decay=0.0, step=1)
    assert not colours.ready and not colours.ghost(img, bg, np.ones((H, W), bool)).any()
    person = np.zeros((H, W), bool)
    person[60:110, 100:130] = True
    roomish = np.ones((H, W), bool)
    roomish[10:115, 10:135] = False
    colours.learn(img, bg, person, roomish)
    assert colours.ready
    still = np.zeros((H, W), bool)
    still[20:60, 20:40] = True  # the ghost: still foreground
    still[60:110, 100:130] = True  # the person standing still: still foreground too
    ghost = colours.ghost(img, bg, still)
    assert ghost[20:60, 20:40].mean() > 0.95 and not ghost[60:110, 100:130].any()


# ------------------------------------------------------------------------------------------ predictor
@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return KeypointNet(ModelConfig(crop_size=32, num_keypoints=5, width=8)).eval()


def test_predictor_heals_the_ghost_of_where_the_subject_stood(net, ring):
    """The subject stands still through the warm-up, then walks away: the learnt background holds its ghost,
    which heals once the subject has left it; meanwhile the camera is flagged contaminated, then clear."""
    cams = list(ring.cameras)
    bgs = [textured(v) for v in range(4)]
    joints = poses(40)
    stand = joints[0]
    far = joints[0] + np.array([1.4, 0.0, 0.0])
    cfg = PredictorConfig(background_warmup=5, background_warmup_stride=1, background_every=1)
    pred = Predictor(TorchBackend(net, model_info(net)), cams, cfg)
    for _ in range(5):  # the warm-up: standing
        pred.predict([draw(bg, cam.project(stand)) for bg, cam in zip(bgs, cams)])
    assert pred.background_ready
    def ghost_px(v, outside=None):  # pixels where the learnt background differs from the empty room
        ghost = foreground_mask(bgs[v], pred.backgrounds[v].image()) > 0
        return int((ghost & ~outside).sum()) if outside is not None else int(ghost.sum())

    before = [ghost_px(v) for v in range(4)]
    assert min(before) > 200  # the learnt backgrounds hold the subject
    flagged = []
    for t in range(12):  # walked away and stays there, the ghost in full view
        pred.predict([draw(bg, cam.project(far)) for bg, cam in zip(bgs, cams)], track_points3d=far)
        flagged.append(pred.contamination.copy())
    for v, cam in enumerate(cams):
        # healed wherever the subject no longer is; under it the background never learns (by design)
        keep, _ = pred._keep_mask(v, cam.project(far), None)
        assert ghost_px(v, cv2.dilate(keep, np.ones((9, 9), np.uint8)) > 0) < 20
    assert sum(ghost_px(v) for v in range(4)) < 0.1 * sum(before)
    assert np.array(flagged).any()  # seen while the ghost stood
    for v in range(4):
        assert "ghost" in " ".join(pred.monitor.reasons(v)) or not flagged[-1][v]


def test_contamination_monitor_signs():
    cam = ring_rig(1, width=W, height=H).cameras[0]
    mon = ContaminationMonitor(["cam0"], alpha=1.0)
    from kp3d_core.crop import CropBox

    uv = np.array([[70.0, 40.0], [90.0, 80.0]])  # keypoints 40 px tall
    mon.update(0, cam, None, CropBox(80, 60, 62), uv)
    assert not mon.flags[0] and mon.reasons(0) == []
    mon.update(0, cam, None, CropBox(80, 60, 200), uv)  # a box 3x the keypoints, running off the image
    assert mon.flags[0]
    text = " ".join(mon.reasons(0))
    assert "crop box 3.2x the person's keypoints" in text and "runs off the image" in text
    ghost = np.zeros((H, W), bool)
    ghost[:20, :20] = True
    mon.update(0, cam, ghost, CropBox(80, 60, 62), uv)
    assert mon.reasons(0) == ["ghost foreground 2.1 % of the image where no person is"]
