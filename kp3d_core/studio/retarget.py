"""Retarget BVH clips to the 17 studio joints: joint maps, units, axes, subject size, volume.

Joint map YAML (one per BVH skeleton; shipped: ``joint_maps/bandai_namco.yaml``, ``cmu.yaml``)::

    name: cmu                 # label
    unit: cmu                 # metres per file unit: a number, or m | cm | mm | inch | cmu
    up_axis: y                # y or z: the file's vertical axis
    joints:                   # every studio joint (kp3d_core.skeleton.JOINT_NAMES), exactly once
      pelvis: Hips            # a BVH joint name (end sites are named <parent>_End)
      head:                   # or a point derived from a joint:
        joint: Head
        local_offset: [0, 3.3, 0]     # in the joint's own frame, file units (follows its rotation)
      # or:  {joint: Head, along: [Neck, Head], length: 0.2}   metres beyond `joint`
      #      in the direction from along[0] to along[1]

`retarget` turns a clip into a `Motion`: forward kinematics at the target frame rate (slerp of
the file's local rotations, so bone lengths stay exact), the map's joints, metres, z up. Then:
- every studio bone gets one length for the whole clip (`with_constant_bones`), and a clip whose feet go
  below the floor (a file with its origin at the hips) is lifted onto it, with a warning (`ground_feet`), or
- with `proportions`, every bone gets the subject's length along the clip's bone direction and
  the pelvis path is scaled by the ratio of leg lengths; the lowest ankle (5th percentile over
  the clip) is put back at the subject's ankle height;
- the clip is recentred on its mean pelvis position on the floor; if the path (plus the body's
  extent) still leaves the capture volume, the horizontal pelvis path is shrunk about the centre
  until every joint stays inside (`motion.fit_in_volume`): poses stay exact, feet slide on long
  walks. We shrink rather than split so every frame of a clip is kept in order.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from ..skeleton import BONES, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS
from .bvh import BvhClip, BvhError, load_bvh
from .motion import Motion, build_from_bones, fit_in_volume
from .proportions import BodyProportions

JOINT_MAP_DIR = Path(__file__).with_name("joint_maps")
ANKLES = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]
GROUNDED_ANKLE_M = 0.08
"""Height of the lowest ankle of a grounded clip: the studio foot (body.py) reaches about 8 cm below its ankle,
and the shipped clips' lowest ankles sit 8 to 12 cm above their floor."""
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
"""Metres per file unit. ``cmu``: CMU mocap BVH conversions use 1/0.45 inch (ASF 'length 0.45')."""


class JointMapError(ValueError):
    """An invalid joint map; the message names the file and the field or joint."""


@dataclass(frozen=True)
class JointSource:
    """Where one studio joint comes from in the BVH skeleton.

    Attributes:
        joint: BVH joint name.
        local_offset: optional (3,) offset in that joint's frame, file units.
        along: optional (from, to) BVH joint names; the point is moved `length` metres
            beyond `joint` along the unit direction from -> to.
        length: metres, with `along`.
    """

    joint: str
    local_offset: tuple[float, float, float] | None = None
    along: tuple[str, str] | None = None
    length: float = 0.0

    def bvh_joints(self) -> list[str]:
        return [self.joint] + list(self.along or ())


@dataclass(frozen=True)
class JointMap:
    """A validated joint map (see the module docstring for the file layout).

    Attributes:
        path: the YAML file (or None when built in code).
        name: label of the skeleton.
        unit: metres per file unit.
        up_axis: ``y`` or ``z``.
        joints: studio joint name -> JointSource, all 17 joints.
    """

    path: Path | None
    name: str
    unit: float
    up_axis: str
    joints: dict[str, JointSource]

    def check_clip(self, clip: BvhClip) -> None:
        """Raise JointMapError naming the joint, the map and the clip when a BVH joint is missing."""
        known = set(clip.names)
        for studio, src in self.joints.items():
            for name in src.bvh_joints():
                if name not in known:
                    raise JointMapError(f"{self.path}: joint {studio!r} -> BVH joint {name!r} not found in "
                                        f"{clip.path} (joints: {', '.join(clip.names)})")

    def matches(self, clip: BvhClip) -> bool:
        """True when every BVH joint the map names exists in `clip`."""
        known = set(clip.names)
        return all(n in known for s in self.joints.values() for n in s.bvh_joints())


def load_joint_map(path: str | Path, clip: BvhClip | None = None) -> JointMap:
    """Read and validate a joint map YAML.

    Args:
        path: the YAML file, or the name of a shipped map (``bandai_namco``, ``cmu``).
        clip: optional clip whose hierarchy every named BVH joint must exist in.
    Raises:
        JointMapError: unknown key, unknown or missing studio joint, bad unit or up axis, or
            (with `clip`) a BVH joint the clip does not have, naming the joint and the file.
    """
    path = Path(path)
    if not path.exists() and (JOINT_MAP_DIR / f"{path.name}.yaml").exists():
        path = JOINT_MAP_DIR / f"{path.name}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise JointMapError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise JointMapError(f"{path}: expected a mapping with name, unit, up_axis, joints")
    extra = set(data) - {"name", "unit", "up_axis", "joints", "description"}
    if extra:
        raise JointMapError(f"{path}: unknown keys {sorted(extra)} (allowed: name, unit, up_axis, joints, description)")
    for key in ("unit", "up_axis", "joints"):
        if key not in data:
            raise JointMapError(f"{path}: missing {key!r}")
    unit = data["unit"]
    if isinstance(unit, str):
        if unit not in UNITS:
            raise JointMapError(f"{path}: unit {unit!r} is not a number or one of {sorted(UNITS)}")
        unit = UNITS[unit]
    if isinstance(unit, bool) or not isinstance(unit, (int, float)) or not unit > 0:
        raise JointMapError(f"{path}: unit must be a positive number of metres per file unit, got {data['unit']!r}")
    up = str(data["up_axis"]).lower()
    if up not in ("y", "z"):
        raise JointMapError(f"{path}: up_axis must be y or z, got {data['up_axis']!r}")
    joints_raw = data["joints"]
    if not isinstance(joints_raw, dict):
        raise JointMapError(f"{path}: joints must map studio joint names to BVH joints")
    joints: dict[str, JointSource] = {}
    for studio, spec in joints_raw.items():
        if studio not in JOINT_INDEX:
            raise JointMapError(f"{path}: unknown studio joint {studio!r} (studio joints: {', '.join(JOINT_NAMES)})")
        joints[studio] = _joint_source(path, studio, spec)
    missing = [n for n in JOINT_NAMES if n not in joints]
    if missing:
        raise JointMapError(f"{path}: studio joints not mapped: {', '.join(missing)}")
    jm = JointMap(path=path, name=str(data.get("name", path.stem)), unit=float(unit), up_axis=up,
                  joints={n: joints[n] for n in JOINT_NAMES})
    if clip is not None:
        jm.check_clip(clip)
    return jm


def _joint_source(path: Path, studio: str, spec) -> JointSource:
    if isinstance(spec, str):
        return JointSource(joint=spec)
    if not isinstance(spec, dict) or "joint" not in spec:
        raise JointMapError(f"{path}: joint {studio!r} must be a BVH joint name or a mapping with 'joint'")
    extra = set(spec) - {"joint", "local_offset", "along", "length"}
    if extra:
        raise JointMapError(f"{path}: joint {studio!r}: unknown keys {sorted(extra)}")
    off = spec.get("local_offset")
    if off is not None:
        if not (isinstance(off, list) and len(off) == 3 and all(isinstance(v, (int, float)) for v in off)):
            raise JointMapError(f"{path}: joint {studio!r}: local_offset must be 3 numbers, got {off!r}")
        off = tuple(float(v) for v in off)
    along = spec.get("along")
    if along is not None:
        if not (isinstance(along, list) and len(along) == 2 and all(isinstance(v, str) for v in along)):
            raise JointMapError(f"{path}: joint {studio!r}: along must be two BVH joint names, got {along!r}")
        if "length" not in spec:
            raise JointMapError(f"{path}: joint {studio!r}: along needs a length in metres")
        along = tuple(along)
    if off is not None and along is not None:
        raise JointMapError(f"{path}: joint {studio!r}: give local_offset or along, not both")
    length = spec.get("length", 0.0)
    if isinstance(length, bool) or not isinstance(length, (int, float)):
        raise JointMapError(f"{path}: joint {studio!r}: length must be metres, got {length!r}")
    return JointSource(joint=str(spec["joint"]), local_offset=off, along=along, length=float(length))


def shipped_joint_maps() -> list[JointMap]:
    """The joint maps shipped with kp3d (``joint_maps/*.yaml``)."""
    return [load_joint_map(p) for p in sorted(JOINT_MAP_DIR.glob("*.yaml"))]


def detect_joint_map(clip: BvhClip) -> JointMap:
    """The shipped map whose BVH joints all exist in `clip`; JointMapError naming the file otherwise."""
    for jm in shipped_joint_maps():
        if jm.matches(clip):
            return jm
    raise JointMapError(f"{clip.path}: no shipped joint map fits this skeleton (joints: {', '.join(clip.names)}); "
                        f"write a joint map for it (see kp3d_core/studio/retarget.py) and pass it with --joint-map")


def _print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _to_world(points: np.ndarray, up_axis: str) -> np.ndarray:
    """File axes -> studio world axes (z up), a proper rotation (no mirroring, left stays left)."""
    if up_axis == "z":
        return points
    # y up: rotate +90 deg about x, (x, y, z) -> (x, -z, y).
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def studio_joints(clip: BvhClip, joint_map: JointMap, times: np.ndarray | None = None) -> np.ndarray:
    """(T|N, 17, 3) studio joints in metres, world z up, straight from the clip (no rescaling).

    Args:
        times: optional (N,) seconds at which to evaluate the clip (see BvhClip.forward_kinematics).
    """
    joint_map.check_clip(clip)
    P, R = clip.forward_kinematics(times=times, return_rotations=True)
    out = np.empty((P.shape[0], NUM_JOINTS, 3))
    for k, name in enumerate(JOINT_NAMES):
        src = joint_map.joints[name]
        j = clip.index(src.joint)
        p = P[:, j] * joint_map.unit
        if src.local_offset is not None:
            p = p + np.einsum("nab,b->na", R[:, j], np.asarray(src.local_offset)) * joint_map.unit
        elif src.along is not None:
            d = P[:, clip.index(src.along[1])] - P[:, clip.index(src.along[0])]
            d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
            p = p + d * src.length
        out[:, k] = p
    return _to_world(out, joint_map.up_axis)


def _bone_units(joints3d: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (T, 16, 3) unit bone directions, `skeleton.BONES` order."""
    par = np.asarray([p for p, _ in BONES])
    chi = np.asarray([c for _, c in BONES])
    vec = joints3d[:, chi] - joints3d[:, par]
    return vec / np.maximum(np.linalg.norm(vec, axis=-1, keepdims=True), 1e-12)


def with_constant_bones(joints3d: np.ndarray) -> np.ndarray:
    """Each bone set to its median length over the clip, keeping its direction.

    A 17-joint bone may span several BVH joints (thorax -> shoulder runs through the clavicle
    joint), so its length moves a little (1-2 cm on the shipped datasets) even though every BVH
    bone is rigid; the studio body needs one length per bone.

    Args:
        joints3d: (T, 17, 3). Returns: (T, 17, 3), the pelvis unchanged.
    """
    lengths = np.median(np.linalg.norm(
        joints3d[:, [c for _, c in BONES]] - joints3d[:, [p for p, _ in BONES]], axis=-1), axis=0)
    return build_from_bones(joints3d[:, 0], _bone_units(joints3d), lengths)


def rescale_to_proportions(joints3d: np.ndarray, proportions: BodyProportions) -> np.ndarray:
    """Give a clip a subject's bone lengths, keeping each bone's direction.

    The pelvis path (x, y and z) scales with the ratio of leg lengths (hip to floor), then the
    clip is lifted or lowered so that the lowest ankle (5th percentile over frames of the lower
    ankle) is at the subject's ankle height.

    Args:
        joints3d: (T, 17, 3) metres, z up, floor at z = 0.
    Returns:
        (T, 17, 3) metres with bone lengths `proportions.bone_lengths()` on every frame.
    """
    unit = _bone_units(joints3d)
    hips = [JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]]
    src_leg = np.median(np.linalg.norm(joints3d[:, hips] - joints3d[:, [JOINT_INDEX["left_knee"], JOINT_INDEX["right_knee"]]], axis=-1)
                        + np.linalg.norm(joints3d[:, [JOINT_INDEX["left_knee"], JOINT_INDEX["right_knee"]]] - joints3d[:, ANKLES], axis=-1))
    dst_leg = proportions.thigh + proportions.shin
    root = joints3d[:, 0] * (dst_leg / max(src_leg, 1e-9))
    out = build_from_bones(root, unit, proportions.bone_lengths())
    low = np.percentile(out[:, ANKLES, 2].min(axis=1), 5)
    out[:, :, 2] += proportions.ankle_height - low
    return out


def ground_feet(joints3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Lift a clip whose feet go below the floor so that its lowest ankle over the clip is at
    `GROUNDED_ANKLE_M`; a clip with both ankles above the floor on every frame is returned as it is.

    A file whose hips sit at height 0 (its origin at the hips, not the floor) would otherwise render the
    person waist-deep in the floor. Jumps and raised feet are kept: only the whole clip moves.

    Args:
        joints3d: (T, 17, 3) metres, z up, floor at z = 0.
    Returns:
        (joints (T, 17, 3), lift in metres, 0.0 when untouched).
    """
    low = float(joints3d[:, ANKLES, 2].min())
    if low >= 0.0:
        return joints3d, 0.0
    lift = GROUNDED_ANKLE_M - low
    out = joints3d.copy()
    out[:, :, 2] += lift
    return out, lift


def retarget(clip: BvhClip, joint_map: JointMap | str | Path | None = None, fps: float = 30.0,
             proportions: BodyProportions | None = None, volume_radius: float = 1.5, warn=None) -> Motion:
    """A BVH clip as a studio Motion.

    Args:
        clip: the parsed BVH.
        joint_map: a JointMap, a map file / shipped map name, or None to detect a shipped map.
        fps: output frame rate; the clip is evaluated at t = k / fps (slerp between frames).
        proportions: optional subject; bones take its lengths (see `rescale_to_proportions`, which also
            sets the feet on the floor). Without it, a clip whose feet go below the floor is lifted onto it
            (`ground_feet`) and ``warn`` says so.
        volume_radius: metres; recentred and, if needed, the path shrunk (module docstring).
        warn: callable(str) for warnings (default: print to stderr).
    Returns:
        Motion (T, 17, 3) metres, world z up, floor z = 0, source = the clip's path.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if joint_map is None:
        jm = detect_joint_map(clip)
    elif isinstance(joint_map, JointMap):
        jm = joint_map
    else:
        jm = load_joint_map(joint_map)
    jm.check_clip(clip)
    # Frame Time is written with ~7 digits: allow 2 % of an output frame of rounding.
    n = int(np.floor(clip.duration * fps + 0.02)) + 1
    times = np.minimum(np.arange(n) / fps, clip.duration)
    joints = studio_joints(clip, jm, times)
    if proportions is not None:
        joints = rescale_to_proportions(joints, proportions)
    else:
        joints, lift = ground_feet(with_constant_bones(joints))
        if lift > 0.0:
            (warn or _print_warning)(f"{clip.path}: the feet go {lift - GROUNDED_ANKLE_M:.2f} m below the floor "
                                     f"(the file's origin is not at floor level); lifted the clip by {lift:.2f} m "
                                     "so that its lowest foot stands on the floor")
    centre = joints[:, 0, :2].mean(axis=0)
    joints[:, :, :2] -= centre
    joints, _ = fit_in_volume(joints, volume_radius)
    return Motion(name=clip.path.stem, joints3d=joints, fps=float(fps), source=str(clip.path))


def list_motion_clips(root: str | Path) -> list[Path]:
    """Every ``*.bvh`` under `root` (recursive), sorted; [] when the folder does not exist."""
    root = Path(root)
    if root.is_file():
        return [root] if root.suffix.lower() == ".bvh" else []
    return sorted(p for p in root.rglob("*") if p.suffix.lower() == ".bvh" and p.is_file())


def load_motion_dir(directory: str | Path, joint_map: JointMap | str | Path | None = None,
                    fps: float = 30.0, proportions: BodyProportions | None = None,
                    volume_radius: float = 1.5, max_clips: int | None = None, warn=None) -> list[Motion]:
    """Retarget every BVH clip under `directory` (for ``kp3d synth --motion DIR``).

    Unless `joint_map` is given, the layout (Bandai-Namco, CMU, ...) is detected per skeleton
    from the clip's joint names against the shipped joint maps, so a folder may mix datasets.

    ``warn``: callable(str) for warnings (see `retarget`).

    Raises:
        FileNotFoundError: no BVH files under `directory`.
        BvhError / JointMapError: a clip cannot be read or mapped (naming file and line/joint).
    """
    clips = list_motion_clips(directory)
    if not clips:
        raise FileNotFoundError(f"no .bvh files under {directory}")
    if max_clips is not None:
        clips = clips[:max_clips]
    jm = None if joint_map is None else (joint_map if isinstance(joint_map, JointMap) else load_joint_map(joint_map))
    detected: dict[tuple[str, ...], JointMap] = {}   # one detection per skeleton layout
    motions = []
    for path in tqdm(clips, desc="motion clips", unit="clip", disable=len(clips) < 20):
        clip = load_bvh(path)
        if jm is not None:
            use = jm
        else:
            key = tuple(clip.names)
            if key not in detected:
                detected[key] = detect_joint_map(clip)
            use = detected[key]
        motions.append(retarget(clip, use, fps=fps, proportions=proportions, volume_radius=volume_radius, warn=warn))
    return motions


__all__ = ["JointMap", "JointMapError", "JointSource", "BvhError", "load_joint_map", "retarget",
           "studio_joints", "rescale_to_proportions", "with_constant_bones", "list_motion_clips", "load_motion_dir",
           "detect_joint_map", "shipped_joint_maps", "ground_feet", "UNITS"]
