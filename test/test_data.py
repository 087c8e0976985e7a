"""Training samples from a studio folder: the contract, label-free crops, the crop cache."""
import shutil

import numpy as np
import pytest
import torch
from studio_fixture import write_tiny_studio

from kp3d_core.crop import crop_to_image
from kp3d_core.data.cache import CachedDataset, build_cache, dataset_key
from kp3d_core.data.studio import SampleParams, StudioDataset, StudioFolder, crop_views

PARAMS = SampleParams(size=32, background_samples=12)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return write_tiny_studio(tmp_path_factory.mktemp("studio") / "tiny", num_frames=12, empty_frames=(5,))


def test_sample_contract(studio):
    ds = StudioDataset(studio, PARAMS)
    s = ds[0]
    V, S = 3, 32
    expect = {
        "image": ((V, 3, S, S), torch.float32), "background": ((V, 3, S, S), torch.float32),
        "fg": ((V, 1, S, S), torch.float32), "crop_to_image": ((V, 3, 3), torch.float64),
        "K": ((V, 3, 3), torch.float64), "dist": ((V, 5), torch.float64), "P": ((V, 3, 4), torch.float64),
        "valid_view": ((V,), torch.bool), "joints2d_crop": ((V, 17, 2), torch.float64),
        "visible": ((V, 17), torch.bool), "joints3d": ((17, 3), torch.float64), "box": ((V, 3), torch.float64),
    }
    for key, (shape, dtype) in expect.items():
        assert tuple(s[key].shape) == shape and s[key].dtype == dtype, key
    assert s["frame"] == 0 and s["clip"] == 0 and s["has_labels"]
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
    assert bool(s["valid_view"].all())
    # Label-free crops contain the figure: the true 2D joints fall inside every crop ...
    j = s["joints2d_crop"].numpy()
    assert (j > -0.5).all() and (j < S - 0.5).all()
    # ... and map back to the true image joints through crop_to_image.
    gt2d = StudioFolder(studio).labels(0)["joints2d"]
    np.testing.assert_allclose(crop_to_image(j, s["crop_to_image"].numpy()), gt2d, atol=1e-9)
    # The soft foreground is on the figure (red bones), not on the background.
    fg = s["fg"].numpy()[:, 0]
    red = (s["image"].numpy()[:, 0] > 0.7) & (s["image"].numpy()[:, 1] < 0.3)
    assert fg[red].mean() > 0.9 and fg[~red].mean() < 0.2


def test_no_person_is_flagged_not_raised(studio):
    ds = StudioDataset(studio, PARAMS)
    s = ds[5]
    assert not bool(s["valid_view"].any())
    assert tuple(s["image"].shape) == (3, 3, 32, 32)
    with pytest.raises(IndexError):
        ds[12]


def test_crops_never_touch_labels(studio, tmp_path):
    """Same images, ground truth moved by 2 m and mirrored: every input field is unchanged."""
    moved = tmp_path / "moved"
    shutil.copytree(studio, moved)
    gt = dict(np.load(moved / "gt.npz"))
    gt["joints3d"] = gt["joints3d"][:, ::-1] + 2.0
    gt["joints2d"] = gt["joints2d"] * -3.0 + 500.0
    np.savez(moved / "gt.npz", **gt)
    a, b = StudioDataset(studio, PARAMS), StudioDataset(moved, PARAMS)
    for t in (0, 3, 5):
        sa, sb = a[t], b[t]
        for key in ("image", "background", "fg", "crop_to_image", "box", "valid_view", "K", "P"):
            assert torch.equal(sa[key], sb[key]), key
        assert not torch.allclose(sa["joints3d"], sb["joints3d"])
    # The crop function has no way to receive labels.
    import inspect
    assert list(inspect.signature(crop_views).parameters) == ["images", "backgrounds", "params", "cameras"]


def test_estimated_background_is_the_true_one(studio):
    folder = StudioFolder(studio)
    import cv2
    for name, est in zip(folder.rig.names, folder.estimate_backgrounds(12, progress=False)):
        true = cv2.cvtColor(cv2.imread(str(studio / "backgrounds" / f"{name}.png")), cv2.COLOR_BGR2RGB)
        # JPEG noise only (quality 95), no trace of the figure.
        assert np.abs(est.astype(int) - true.astype(int)).max() <= 12
        assert np.abs(est.astype(int) - true.astype(int)).mean() < 2


def test_cache_matches_direct_samples_and_selects_views(studio, tmp_path):
    direct = StudioDataset(studio, PARAMS)
    root = tmp_path / "cache"
    d = build_cache(studio, PARAMS, root, progress=False)
    assert d.name.endswith(dataset_key(studio, PARAMS))
    assert build_cache(studio, PARAMS, root, progress=False) == d  # reused, not rebuilt
    cached = CachedDataset(studio, PARAMS, root=root, progress=False)
    assert len(cached) == 12
    for t in (0, 5, 11):
        a, b = direct[t], cached[t]
        for key in ("image", "background", "fg", "crop_to_image", "box", "valid_view", "K", "dist", "P",
                    "joints2d_crop", "visible", "joints3d"):
            assert a[key].shape == b[key].shape and torch.allclose(a[key].double(), b[key].double(), atol=1e-6), key
    sub = CachedDataset(studio, PARAMS, cameras=["cam2", "cam0"], frames=[1, 4], root=root, build=False)
    s = sub[1]
    assert len(sub) == 2 and s["frame"] == 4 and tuple(s["image"].shape) == (2, 3, 32, 32)
    assert torch.equal(s["image"], cached[4]["image"][[2, 0]])
    assert sub.labels("joints3d").shape == (2, 17, 3) and sub.labels("joints2d").shape == (2, 2, 17, 2)
    batch = next(iter(torch.utils.data.DataLoader(cached, batch_size=4)))
    assert tuple(batch["image"].shape) == (4, 3, 3, 32, 32) and tuple(batch["frame"].shape) == (4,)
    with pytest.raises(ValueError, match="cam9"):
        CachedDataset(studio, PARAMS, cameras=["cam9"], root=root, build=False)
    # Other crop parameters -> another cache; so does a re-rendered image under the same ground truth.
    assert dataset_key(studio, SampleParams(size=64)) != dataset_key(studio, PARAMS)
    import os

    key = dataset_key(studio, PARAMS)
    img = studio / "images" / "cam1" / "000003.jpg"
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert dataset_key(studio, PARAMS) != key
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dataset_key(studio, PARAMS) == key


def test_crop_cache_defaults_to_the_user_cache_never_the_working_directory(studio, tmp_path, monkeypatch):
    from kp3d_core.data.cache import cache_root
    from kp3d_core.inference.interface import default_cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KP3D_CACHE", str(tmp_path / "user_cache"))
    ds = CachedDataset(studio, PARAMS, progress=False)
    assert ds.dir.parent == tmp_path / "user_cache" / "crops" == default_cache_dir() / "crops"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user_cache"]      # nothing else written here
    monkeypatch.delenv("KP3D_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "kp3d" / "crops"
    assert str(cache_root("runs/crops")) == "runs/crops"                     # data.cache_dir, taken as given


def test_bad_folder_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.yaml"):
        StudioFolder(tmp_path)


def test_bag_samples_equal_the_studio_samples_of_the_same_images(studio, tmp_path):
    from kp3d_core.bagio import BagWriter
    from kp3d_core.data.bag import build_bag_cache

    folder = StudioFolder(studio)
    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        for cam in folder.cameras:
            w.add_camera(cam.name)
        for t in range(folder.num_frames):
            for cam in folder.cameras:
                w.write_image(cam.name, 1_000_000_000 + t * 33_333_333, folder.read_image(cam.name, t), cam)
    root = tmp_path / "cache"
    d = build_bag_cache(bag, studio / "rig.yaml", PARAMS, root=root, progress=False)
    from_bag = CachedDataset(d, PARAMS)
    from_folder = CachedDataset(studio, PARAMS, root=root, progress=False)
    assert len(from_bag) == 12 and from_bag.cameras == ["cam0", "cam1", "cam2"]
    for t in (0, 5, 9):
        a, b = from_bag[t], from_folder[t]
        for key in ("image", "background", "fg", "crop_to_image", "valid_view", "K", "dist", "P"):
            assert torch.allclose(a[key].double(), b[key].double(), atol=1e-9), key
        assert not a["has_labels"] and torch.isnan(a["joints3d"]).all() and not a["visible"].any()
    assert build_bag_cache(bag, studio / "rig.yaml", PARAMS, root=root, progress=False) == d
    with pytest.raises(ValueError, match="sample parameters"):
        CachedDataset(d, SampleParams(size=64))
    with pytest.raises(Exception, match="cam7"):
        build_bag_cache(bag, studio / "rig.yaml", PARAMS, cameras=["cam7"], root=root, progress=False)


def test_cached_dataset_pickles_without_its_arrays_and_works_in_workers(studio, tmp_path):
    import pickle

    ds = CachedDataset(studio, PARAMS, root=tmp_path / "cache", progress=False)
    _ = ds[0]
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000  # memory maps are reopened, not copied
    again = pickle.loads(blob)
    assert torch.equal(again[3]["image"], ds[3]["image"])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    frames = torch.cat([b["frame"] for b in loader])
    assert frames.tolist() == list(range(12))
