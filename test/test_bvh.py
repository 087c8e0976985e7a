"""BVH parser and forward kinematics: synthetic files written here, plus real clips when present."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kp3d_core.studio.bvh import BvhError, load_bvh

MOTION_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "motion"
BANDAI_DIR = MOTION_ROOT / "bandai_namco_1" / "data"
CMU_DIR = MOTION_ROOT / "cmu_131"

# A classic (CMU-like) hierarchy: root-only position channels, per-joint rotation orders,
# a zero-offset joint and End Sites.
CLASSIC = """HIERARCHY
ROOT Hips
{
  OFFSET 0.0 0.0 0.0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Spine
  {
    OFFSET 0.0 10.0 0.0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Head
    {
      OFFSET 0.5 8.0 0.0
      CHANNELS 3 Xrotation Yrotation Zrotation
      End Site
      {
        OFFSET 0.0 4.0 0.0
      }
    }
  }
  JOINT LHipJoint
  {
    OFFSET 0 0 0
    CHANNELS 3 Zrotation Yrotation Xrotation
    JOINT LeftKnee
    {
      OFFSET 2.0 -9.0 0.5
      CHANNELS 3 Zrotation Yrotation Xrotation
      End Site
      {
        OFFSET 0.0 -8.0 0.0
      }
    }
  }
}
MOTION
Frames: {frames}
Frame Time: 0.0083333
{rows}
"""


def _classic_text(frames: int, seed: int = 0) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    motion = np.concatenate([rng.normal(0, 5, (frames, 3)), rng.uniform(-180, 180, (frames, 15))], axis=1)
    rows = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in motion)
    return CLASSIC.replace("{frames}", str(frames)).replace("{rows}", rows), motion


def _bandai_text(frames: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """Bandai-Namco layout: every joint has 6 channels, position channels replace OFFSET
    (the OFFSET values in the header are deliberately different from the channel values)."""
    rng = np.random.default_rng(seed)
    header = """HIERARCHY
ROOT joint_Root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Hips
  {
    OFFSET 0 93.9 -3
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    JOINT Spine
    {
      OFFSET 99 99 99
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 0 0
      }
    }
  }
}
MOTION
Frames: %d
Frame Time: 0.0333333
""" % frames
    spine_pos = np.array([15.7, 0.0, 0.0])
    motion = np.zeros((frames, 18))
    motion[:, 6:9] = rng.normal([0, 90, 0], [50, 3, 50], (frames, 3))     # Hips travels
    motion[:, 9:12] = rng.uniform(-180, 180, (frames, 3))
    motion[:, 12:15] = spine_pos
    motion[:, 15:18] = rng.uniform(-90, 90, (frames, 3))
    rows = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in motion)
    return header + rows + "\n", motion


def _bone_length_spread(clip, positions: np.ndarray, skip_translating: bool = True) -> float:
    """Largest change over the clip of any parent->child distance, ignoring children whose
    position channels carry the translation (their 'bone' to the root is not rigid)."""
    worst = 0.0
    for j, p in enumerate(clip.parents):
        if p < 0:
            continue
        if skip_translating and any("position" in c for c in clip.channels[j]):
            vals = clip.motion[:, clip.channel_index[j]:clip.channel_index[j] + 3]
            if np.ptp(vals, axis=0).max() > 1e-6:
                continue
        L = np.linalg.norm(positions[:, j] - positions[:, p], axis=-1)
        worst = max(worst, float(np.ptp(L)))
    return worst


def test_classic_fk_bone_lengths_and_values(tmp_path):
    text, motion = _classic_text(40)
    path = tmp_path / "classic.bvh"
    path.write_text(text)
    clip = load_bvh(path)
    assert clip.names == ["Hips", "Spine", "Head", "Head_End", "LHipJoint", "LeftKnee", "LeftKnee_End"]
    assert list(clip.parents) == [-1, 0, 1, 2, 0, 4, 5]
    assert clip.num_frames == 40 and clip.motion.shape == (40, 18)
    assert clip.fps == pytest.approx(120.0, rel=1e-4)
    P = clip.forward_kinematics()
    assert P.shape == (40, 7, 3)
    assert _bone_length_spread(clip, P) < 1e-9
    # Lengths equal the OFFSET norms.
    assert np.linalg.norm(P[:, 2] - P[:, 1], axis=-1) == pytest.approx(np.hypot(0.5, 8.0))
    # Independent reference for one joint: Head = root + R_hips @ (R_spine @ offset_head + offset_spine).
    t = 7
    R_h = Rotation.from_euler("ZYX", motion[t, 3:6], degrees=True).as_matrix()
    R_s = Rotation.from_euler("ZXY", motion[t, 6:9], degrees=True).as_matrix()
    R_head = Rotation.from_euler("XYZ", motion[t, 9:12], degrees=True).as_matrix()
    head = motion[t, :3] + R_h @ (np.array([0, 10.0, 0]) + R_s @ np.array([0.5, 8.0, 0]))
    top = head + R_h @ R_s @ R_head @ np.array([0, 4.0, 0])
    np.testing.assert_allclose(P[t, 2], head, atol=1e-9)
    np.testing.assert_allclose(P[t, 3], top, atol=1e-9)


def test_rotation_order_follows_channel_list(tmp_path):
    """Zrotation 90 then Xrotation 90 (intrinsic) differs from the other order; check the numbers."""
    text = CLASSIC.replace("{frames}", "1").replace(
        "{rows}", " ".join(["0"] * 6 + ["90", "90", "0"] + ["0"] * 9))
    path = tmp_path / "order.bvh"
    path.write_text(text)
    clip = load_bvh(path)
    P = clip.forward_kinematics()
    # Spine channels Z X Y = (90, 90, 0): R = Rz(90) @ Rx(90); Head offset (0.5, 8, 0).
    # Rx(90) (0.5, 8, 0) = (0.5, 0, 8); Rz(90) (0.5, 0, 8) = (0, 0.5, 8).
    np.testing.assert_allclose(P[0, 2] - P[0, 1], [0.0, 0.5, 8.0], atol=1e-9)


def test_bandai_position_channels_replace_offset(tmp_path):
    text, motion = _bandai_text(30)
    path = tmp_path / "bandai.bvh"
    path.write_text(text)
    clip = load_bvh(path)
    P = clip.forward_kinematics()
    np.testing.assert_allclose(P[:, 0], 0.0)                         # joint_Root stays at origin
    np.testing.assert_allclose(P[:, 1], motion[:, 6:9], atol=1e-5)  # 6 decimals written   # Hips carries translation
    # Spine sits 15.7 (its channels), not |(99, 99, 99)| (its OFFSET), from Hips.
    np.testing.assert_allclose(np.linalg.norm(P[:, 2] - P[:, 1], axis=-1), 15.7, atol=1e-9)
    assert _bone_length_spread(clip, P) < 1e-9
    R = Rotation.from_euler("ZXY", motion[3, 9:12], degrees=True).as_matrix()
    np.testing.assert_allclose(P[3, 2], motion[3, 6:9] + R @ np.array([15.7, 0, 0]), atol=1e-4)


def test_interpolated_fk_keeps_bone_lengths_and_keys(tmp_path):
    text, _ = _classic_text(25, seed=3)
    path = tmp_path / "c.bvh"
    path.write_text(text)
    clip = load_bvh(path)
    P = clip.forward_kinematics()
    keys = clip.forward_kinematics(times=np.arange(clip.num_frames) * clip.frame_time)
    np.testing.assert_allclose(keys, P, atol=1e-9)
    mid = clip.forward_kinematics(times=np.linspace(0, clip.duration, 61))
    assert _bone_length_spread(clip, mid) < 1e-9


@pytest.mark.parametrize("case, line, needle", [
    ("missing_brace", 12, "expected '{'"),
    ("bad_offset", 8, "OFFSET y"),
    ("bad_channel", 5, "unknown channel 'Wrotation'"),
    ("bad_number", None, "not a number"),
    ("short_row", None, "values"),
    ("frame_count", None, "frames"),
])
def test_syntax_error_names_file_and_line(tmp_path, case, line, needle):
    text, _ = _classic_text(4)
    lines = text.splitlines()
    first_row = lines.index("MOTION") + 3  # 0-based index of the first frame line
    if case == "missing_brace":
        lines[10] = ""                                     # line 11 held the "{" of Head
    elif case == "bad_offset":
        lines[7] = "    OFFSET 0.0 ten 0.0"
    elif case == "bad_channel":
        lines[4] = "  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Wrotation"
    elif case == "bad_number":
        lines[first_row + 2] = lines[first_row + 2].replace(lines[first_row + 2].split()[4], "1.2.3", 1)
        line = first_row + 3
    elif case == "short_row":
        lines[first_row + 1] = " ".join(lines[first_row + 1].split()[:-2])
        line = first_row + 2
    elif case == "frame_count":
        lines[lines.index("MOTION") + 1] = "Frames: 9"
    path = tmp_path / f"{case}.bvh"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BvhError) as err:
        load_bvh(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg


def _real(folder: Path, pattern: str, count: int) -> list[Path]:
    if not folder.is_dir():
        pytest.skip(f"motion data folder {folder} not present")
    files = sorted(folder.glob(pattern))
    if not files:
        pytest.skip(f"no {pattern} in {folder}")
    return files[:: max(1, len(files) // count)][:count]


def test_real_bandai_clips_bone_lengths():
    for path in _real(BANDAI_DIR, "*.bvh", 3):
        clip = load_bvh(path)
        assert clip.names[:2] == ["joint_Root", "Hips"]
        assert all(len(c) == 6 for c in clip.channels if c)
        assert clip.fps == pytest.approx(30.0, rel=1e-3)
        P = clip.forward_kinematics()
        np.testing.assert_allclose(P[:, 0], 0.0, atol=1e-9)
        assert _bone_length_spread(clip, P) < 1e-3, path       # cm; channels round to 6 digits
        assert 60 < np.median(P[:, clip.index("Hips"), 1]) < 120, path   # cm, Y up


def test_real_cmu_clips_bone_lengths():
    for path in _real(CMU_DIR, "*.bvh", 3):
        clip = load_bvh(path)
        assert clip.channels[0][:3] == ("Xposition", "Yposition", "Zposition")
        assert not any("position" in ch for c in clip.channels[1:] for ch in c)
        assert clip.fps == pytest.approx(120.0, rel=1e-3)
        P = clip.forward_kinematics()
        assert _bone_length_spread(clip, P, skip_translating=False) < 1e-9, path
        # 1/0.45 inch units: head end site about 1.4-1.7 m above the feet at the start.
        height = (P[0, clip.index("Head_End"), 1] - P[0, :, 1].min()) * 0.0254 / 0.45
        assert 1.3 < height < 1.8, (path, height)


def test_slerp_between_frames(tmp_path):
    """Halfway between Spine Zrotation 0 and 90 degrees the Head offset is turned by 45 degrees."""
    rows = [" ".join(["0"] * 18), " ".join(["0"] * 6 + ["90"] + ["0"] * 11)]
    path = tmp_path / "slerp.bvh"
    path.write_text(CLASSIC.replace("{frames}", "2").replace("{rows}", "\n".join(rows)))
    clip = load_bvh(path)
    P = clip.forward_kinematics(times=np.array([0.5 * clip.frame_time]))
    c = np.cos(np.pi / 4)
    np.testing.assert_allclose(P[0, 2] - P[0, 1], [0.5 * c - 8.0 * c, 0.5 * c + 8.0 * c, 0.0], atol=1e-9)
