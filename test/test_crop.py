"""Label-free crops and backgrounds: point mapping, resampling convention, detection, median background."""
import cv2
import numpy as np
import pytest
import torch

from kp3d_core.background import (
    RunningBackground,
    estimate_background,
    median_background,
    mode_background,
    sample_indices,
)
from kp3d_core.crop import (
    CropBox,
    CropParams,
    crop_image,
    crop_images,
    crop_to_image,
    crop_to_image_matrix,
    detect_box,
    image_to_crop,
    image_to_crop_matrix,
    soft_foreground,
)


def textured(h=120, w=160, seed=0):
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.uniform(60, 120, (h // 8, w // 8, 3)).astype(np.float32), (w, h)).astype(np.uint8)


@pytest.mark.parametrize("size", [16, 64])
def test_point_round_trip_numpy_and_torch(size):
    box = CropBox(83.2, 41.7, 57.0)
    M = crop_to_image_matrix(box, size)
    np.testing.assert_allclose(M @ image_to_crop_matrix(box, size), np.eye(3), atol=1e-12)
    uv = np.random.default_rng(1).uniform(0, 160, (5, 2))
    np.testing.assert_allclose(crop_to_image(image_to_crop(uv, M), M), uv, atol=1e-9)
    # Batched (V, N, 2) with (V, 3, 3), and torch stays torch and differentiable.
    Ms = np.stack([M, crop_to_image_matrix(CropBox(10, 20, 30), size)])
    uvs = np.stack([uv, uv])
    back = crop_to_image(torch.tensor(image_to_crop(uvs, Ms), requires_grad=True), torch.from_numpy(Ms))
    assert isinstance(back, torch.Tensor) and back.requires_grad
    np.testing.assert_allclose(back.detach().numpy(), uvs, atol=1e-9)
    # The crop centre is the box centre; the crop's outer border is the box border.
    np.testing.assert_allclose(crop_to_image(np.array([[(size - 1) / 2, (size - 1) / 2]]), M), [[83.2, 41.7]])
    np.testing.assert_allclose(crop_to_image(np.array([[-0.5, -0.5]]), M), [[83.2 - 28.5, 41.7 - 28.5]])


@pytest.mark.parametrize("side", [40.0, 100.0, 200.0])  # scale 0.6, 1.6, 3.1 px per crop px (pyramid used)
def test_crop_samples_where_the_matrix_says(side):
    # On a linear ramp, every crop pixel must hold the image coordinate it maps to.
    h, w = 300, 400
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    ramp = np.dstack([xs, ys, xs + ys])
    box, S = CropBox(201.3, 148.6, side), 64
    crop = crop_image(ramp, box, S)
    cu, cv_ = np.meshgrid(np.arange(S, dtype=np.float64), np.arange(S, dtype=np.float64))
    uv = crop_to_image(np.stack([cu.ravel(), cv_.ravel()], 1), crop_to_image_matrix(box, S)).reshape(S, S, 2)
    np.testing.assert_allclose(crop[..., 0], uv[..., 0], atol=0.02)
    np.testing.assert_allclose(crop[..., 1], uv[..., 1], atol=0.02)


def test_detect_box_finds_the_blob_and_flags_no_person():
    bg = textured()
    img = bg.copy()
    img[30:90, 70:100] = (230, 30, 30)  # 30 wide, 60 tall, centre (84.5, 59.5) in pixel-centre coordinates
    params = CropParams(margin=1.25)
    box = detect_box(img, bg, params)
    assert box is not None
    assert box.cx == pytest.approx(84.5) and box.cy == pytest.approx(59.5)
    assert box.side == pytest.approx(1.25 * 60)
    # A piece split off (an arm) near the body is merged; far-away specks are not.
    img2 = img.copy()
    img2[40:48, 101:118] = (230, 30, 30)
    img2[2:5, 2:5] = (230, 30, 30)
    box2 = detect_box(img2, bg, params)
    assert box2.cx > box.cx and box2.cy == pytest.approx(59.5)
    # No person, or only noise smaller than the opening: None, never an exception.
    assert detect_box(bg, bg, params) is None
    noisy = bg.copy()
    noisy[50, 50] = 255
    assert detect_box(noisy, bg, params) is None
    # crop_images substitutes the centre fallback box for None.
    crops = crop_images([img, bg], [box, None], 32)
    assert crops.shape == (2, 32, 32, 3) and crops.dtype == np.uint8


def test_soft_foreground_ramp():
    bg = np.full((4, 4, 3), 100, np.uint8)
    img = bg.copy()
    img[0, 0] = 100 + 60  # at soft_high -> 1
    img[0, 1, 1] = 100 - 15  # at soft_low -> 0
    img[0, 2, 2] = 100 + 37  # half way (15 + 22.5 = 37.5)
    fg = soft_foreground(img, bg)
    assert fg[0, 0] == pytest.approx(1.0) and fg[0, 1] == 0.0 and fg[1, 1] == 0.0
    assert fg[0, 2] == pytest.approx((37 - 15) / 45, abs=1e-6)
    with pytest.raises(ValueError, match="background"):
        soft_foreground(img, bg[:2])


def test_median_background_recovers_static_background_under_moving_blob():
    bg = textured(seed=3)
    T = 15
    frames = []
    for t in range(T):
        f = bg.copy()
        x = 5 + 10 * t  # the blob moves 10 px a frame, 20 px wide: any pixel covered in at most 2 of 15
        f[40:100, x : x + 20] = (230, 30, 30)
        frames.append(f)
    frames = np.stack(frames)
    np.testing.assert_array_equal(median_background(frames), bg)
    np.testing.assert_array_equal(mode_background(frames), bg)
    np.testing.assert_array_equal(estimate_background(lambda t: frames[t], T, num_samples=15), bg)
    np.testing.assert_array_equal(estimate_background(lambda t: frames[t], T, 15, method="median"), bg)
    with pytest.raises(ValueError, match="method"):
        estimate_background(lambda t: frames[t], T, 15, method="mean")
    assert list(sample_indices(100, 5)) == [0, 25, 50, 74, 99]
    with pytest.raises(ValueError, match="frames"):
        median_background(np.zeros((0, 4, 4, 3), np.uint8))


def test_running_background_warms_up_and_ignores_foreground():
    bg = textured(seed=4)
    model = RunningBackground(rate=0.5, warmup=3)
    assert not model.ready
    for t in range(3):
        f = bg.copy()
        f[10:20, 10 + 40 * t : 30 + 40 * t] = 255
        model.update(f)
    np.testing.assert_array_equal(model.image(), bg)
    # A brighter frame is learned where there is no foreground, and not under the subject.
    lit = np.clip(bg.astype(int) + 20, 0, 255).astype(np.uint8)
    fg = np.zeros(bg.shape[:2], bool)
    fg[50:70, 50:70] = True
    model.update(lit, fg)
    out = model.image().astype(int)
    np.testing.assert_array_equal(out[55:65, 55:65], bg[55:65, 55:65])
    assert np.abs(out[:30, 100:] - (bg[:30, 100:].astype(int) + 10)).max() <= 1


def test_mode_background_survives_a_subject_standing_still_most_of_the_time():
    """The subject covers one region in 60 % of the frames (moving its colours a little): the median keeps a
    ghost there, the mode (tightest third of the samples) recovers the background."""
    bg = textured(seed=5)
    rng = np.random.default_rng(0)
    frames = []
    for t in range(30):
        f = bg.copy()
        if t % 5 < 3:  # standing at one place, shading varying as it breathes and turns
            f[40:100, 60:90] = np.clip(rng.normal([200, 60, 40], 25, 3), 0, 255).astype(np.uint8)
        else:  # elsewhere
            x = 5 + 4 * t
            f[20:60, x : x + 15] = (230, 30, 30)
        frames.append(f)
    frames = np.stack(frames)
    region = (slice(40, 100), slice(60, 90))
    ghost = np.abs(median_background(frames)[region].astype(int) - bg[region]).max()
    assert ghost > 40
    np.testing.assert_array_equal(mode_background(frames)[region], bg[region])
    np.testing.assert_array_equal(mode_background(frames, rows=7), mode_background(frames))  # chunking-independent


def test_stored_backgrounds_load_and_name_bad_files(tmp_path):
    """Stored backgrounds load per camera as RGB; a missing file or a wrong size names the file."""
    import cv2
    import numpy as np
    import pytest

    from kp3d_core.background import load_stored_backgrounds
    from kp3d_core.rig import ring_rig

    cams = ring_rig(2, width=64, height=48).cameras
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "cam0.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with pytest.raises(FileNotFoundError, match="cam1.png"):
        load_stored_backgrounds(tmp_path, cams)
    cv2.imwrite(str(tmp_path / "cam1.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="cam1.png.*10x10"):
        load_stored_backgrounds(tmp_path, cams)
    cv2.imwrite(str(tmp_path / "cam1.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = load_stored_backgrounds(tmp_path, cams)
    assert len(out) == 2 and out[0].shape == (48, 64, 3) and out[0][0, 0].tolist() == [200, 0, 0]


# ------------------------------------------------------------------ fast paths == plain references (bit for bit)
def _reference_box(mask, params):
    """box_from_mask as first written: connected components of the whole mask, blobs in OpenCV's label order."""
    h, w = mask.shape
    n, _, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    main = int(np.argmax(areas))
    if areas[main] < params.min_area_fraction * h * w:
        return None
    x0, y0 = stats[1 + main, 0], stats[1 + main, 1]
    x1, y1 = x0 + stats[1 + main, 2], y0 + stats[1 + main, 3]
    reach = params.merge_reach * max(x1 - x0, y1 - y0)
    for i in range(len(areas)):
        if i == main or areas[i] < params.merge_fraction * areas[main]:
            continue
        cx, cy = centroids[1 + i]
        if x0 - reach <= cx <= x1 + reach and y0 - reach <= cy <= y1 + reach:
            s = stats[1 + i]
            x0, y0, x1, y1 = min(x0, s[0]), min(y0, s[1]), max(x1, s[0] + s[2]), max(y1, s[1] + s[3])
    return ((x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5, max(params.margin * max(x1 - x0, y1 - y0), params.min_side))


def _reference_mask(image, background, params):
    """foreground_mask as first written: threshold and opening of the whole image."""
    diff = np.abs(image.astype(int) - background.astype(int)).max(axis=2)
    mask = (diff > params.threshold * 255.0).astype(np.uint8)
    if params.open_kernel > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (params.open_kernel, params.open_kernel))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask


def _cluttered_scene(seed, h=120, w=160):
    """A background and an image with a subject, split-off pieces, specks and blobs cut by the image border."""
    rng = np.random.default_rng(seed)
    bg = textured(h, w, seed)
    img = bg.copy()
    for _ in range(rng.integers(1, 12)):
        x, y = rng.integers(-10, w), rng.integers(-10, h)
        img[max(y, 0) : max(y + rng.integers(1, 40), 0), max(x, 0) : max(x + rng.integers(1, 30), 0)] = rng.integers(0, 255, 3)
    noise = rng.random((h, w)) < rng.uniform(0.0, 0.2)
    img[noise] = 255 - img[noise]
    return img, bg


@pytest.mark.parametrize("kernel", [5, 4, 1])
def test_detection_on_the_foreground_patch_equals_whole_image_detection(kernel):
    """The opening and the labelling run on a patch around the thresholded pixels: same mask, same box, in the
    whole-image blob order (which decides merges), on cluttered masks with many blobs and border contact."""
    from kp3d_core.crop import box_from_mask, foreground_mask, open_patch, threshold_mask

    params = CropParams(open_kernel=kernel, min_area_fraction=0.0005)
    found = 0
    for seed in range(60):
        img, bg = _cluttered_scene(seed)
        ref_mask = _reference_mask(img, bg, params)
        np.testing.assert_array_equal(foreground_mask(img, bg, params), ref_mask)
        patch, x0, y0 = open_patch(threshold_mask(img, bg, params), params)
        assert x0 % 2 == 0 and y0 % 2 == 0 and ref_mask.sum() == patch.sum()
        ref = _reference_box(ref_mask, params)
        for box in (detect_box(img, bg, params), box_from_mask(ref_mask, params)):
            assert (box is None) == (ref is None)
            if box is not None:
                assert (box.cx, box.cy, box.side) == ref
        found += ref is not None
    assert found > 30


def test_crops_of_8bit_images_equal_crops_from_the_whole_pyramid():
    """Only the pyramid window a crop reads is computed: bit-identical to halving the whole image, for boxes
    inside, across the borders and outside, at 0 to 4 pyramid levels."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (5, 5), 2)  # some structure; the odd size exercises the pyramid's rounding
    for _ in range(300):
        box = CropBox(float(rng.uniform(-80, 210)), float(rng.uniform(-80, 180)), float(np.exp(rng.uniform(1.5, 6.5))))
        for S, image in ((16, img), (23, img[..., 1])):
            M, src, s = crop_to_image_matrix(box, S), image, box.side / S
            while s >= 2.0 and min(src.shape[:2]) >= 8:  # the plain reference
                src, M, s = cv2.pyrDown(src), np.diag([0.5, 0.5, 1.0]) @ M, s / 2.0
            ref = cv2.warpAffine(src, M[:2], (S, S), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            np.testing.assert_array_equal(crop_image(image, box, S), ref)


def _reference_running_background(frames, masks, rate, warmup):
    """RunningBackground as first written: frames kept in a list, NumPy median and full-size blend expressions."""
    model, kept, images = None, [], []
    for f, fg in zip(frames, masks):
        if model is None:
            kept.append(f.copy())
            if len(kept) >= warmup:
                model = median_background(np.stack(kept)).astype(np.float32)
        else:
            weight = np.full(f.shape[:2], rate, dtype=np.float32)
            if fg is not None:
                weight[cv2.dilate(fg.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0] = 0.0
            model += weight[..., None] * (f.astype(np.float32) - model)
        images.append(median_background(np.stack(kept)) if model is None else
                      np.clip(np.round(model), 0, 255).astype(np.uint8))
    return images


@pytest.mark.parametrize("warmup", [1, 4, 5])
def test_running_background_equals_the_plain_numpy_model(warmup):
    rng = np.random.default_rng(warmup)
    h, w = 70, 90
    frames = [np.clip(textured(h, w, 1).astype(int) + rng.integers(-9, 10, (h, w, 3)), 0, 255).astype(np.uint8)
              for _ in range(12)]
    boxes = [None if t % 3 == 0 else (int(rng.integers(-20, 80)), int(rng.integers(-20, 60)), int(rng.integers(0, 100)),
                                      int(rng.integers(0, 80))) for t in range(12)]
    masks = []
    for b in boxes:
        m = None
        if b is not None:
            m = np.zeros((h, w), bool)
            m[max(b[1], 0) : max(b[3], 0), max(b[0], 0) : max(b[2], 0)] = True
        masks.append(m)
    expected = _reference_running_background(frames, masks, 0.3, warmup)
    by_mask, by_box = RunningBackground(rate=0.3, warmup=warmup), RunningBackground(rate=0.3, warmup=warmup)
    for t, f in enumerate(frames):
        by_mask.update(f, masks[t])
        by_box.update(f, foreground_box=boxes[t])
        np.testing.assert_array_equal(by_mask.image(), expected[t])
        np.testing.assert_array_equal(by_box.image(), expected[t])
    # rounding of the model: half to even, saturated
    model = np.array([[[0.5, 1.5, 2.5], [254.5, 255.0, 3.4999998]]], np.float32)
    np.testing.assert_array_equal(RunningBackground(model).image(), [[[0, 2, 2], [254, 255, 3]]])
