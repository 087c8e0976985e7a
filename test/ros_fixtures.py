"""Bags and models for the ROS node tests: a tiny studio recording as a rosbag2 bag (with faults on
request) and a small keypoint-network checkpoint with fresh (untrained) weights, built by the real
model code (for pipeline and fault tests; value tests use the shipped model)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from studio_fixture import write_tiny_studio

FRAME_NS = 33_333_333
T0_NS = 1_000_000_000


def frame_stamp(t: int) -> int:
    return T0_NS + t * FRAME_NS


def tiny_bag(path: Path, frames: int = 40, cameras: int = 3, mutate=None, storage: str = "mcap") -> Path:
    """Write a tiny studio folder (test/studio_fixture) and its bag in ``path/bag``.

    ``mutate(t, cam_name, rgb) -> list of (header_stamp_ns, rosbags Image) | None`` replaces what is
    written for frame t of a camera (an empty list writes nothing); None keeps the normal frame.
    Bag time always increases (frame order); header stamps are what ``mutate`` says.
    gt.npz stamps are rewritten to the bag's header stamps.
    """
    from kp3d_core.bagio import BagWriter, camera_info_message, image_message
    from kp3d_core.rig import load_rig

    write_tiny_studio(path, num_frames=frames, num_cameras=cameras)
    rig = load_rig(path / "rig.yaml")
    gt = dict(np.load(path / "gt.npz"))
    gt["stamps_ns"] = np.array([frame_stamp(t) for t in range(frames)], dtype=np.int64)
    np.savez(path / "gt.npz", **gt)
    with BagWriter(path / "bag", storage=storage) as bag:
        for cam in rig:
            bag.add_camera(cam.name)
        for t in range(frames):
            for v, cam in enumerate(rig):
                rgb = cv2.cvtColor(cv2.imread(str(path / "images" / cam.name / f"{t:06d}.jpg")), cv2.COLOR_BGR2RGB)
                out = mutate(t, cam.name, rgb) if mutate else None
                if out is None:
                    out = [(frame_stamp(t), image_message(frame_stamp(t), cam.frame_id, rgb))]
                for i, (stamp, msg) in enumerate(out):
                    bag_time = frame_stamp(t) + v * 1000 + i  # strictly increasing
                    bag.write(f"/{cam.name}/image_raw", bag_time, msg)
                    bag.write(f"/{cam.name}/camera_info", bag_time, camera_info_message(stamp, cam))
    return path


def raw_image(stamp_ns: int, frame_id: str, height: int, width: int, encoding: str, data: np.ndarray):
    """A rosbags Image with arbitrary fields (e.g. an unsupported encoding)."""
    from kp3d_core.bagio import IMAGE_TYPE, typestore

    ts = typestore()
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    header = ts.types["std_msgs/msg/Header"](stamp=ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec),
                                             frame_id=frame_id)
    data = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    return ts.types[IMAGE_TYPE](header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
                                step=data.size // height, data=data)


def fresh_checkpoint(path: Path, nan: bool = False, num_keypoints: int = 8) -> Path:
    """A small KeypointNet checkpoint with fresh weights; ``nan=True`` makes its head output NaN."""
    import torch

    from kp3d_core.checkpoint import save_checkpoint
    from kp3d_core.config import Config, ModelConfig, config_to_dict
    from kp3d_core.models import KeypointNet

    torch.manual_seed(0)
    cfg = Config(model=ModelConfig(crop_size=32, num_keypoints=num_keypoints, width=4))
    net = KeypointNet(cfg.model)
    if nan:
        with torch.no_grad():
            net.head.bias.fill_(float("nan"))
    state = {f"keypoint_net.{k}": v for k, v in net.state_dict().items()}
    return save_checkpoint(path, {"config": config_to_dict(cfg), "model": state, "step": 0})


def mapped_checkpoint(path: Path, studio: Path) -> Path:
    """:func:`fresh_checkpoint` plus a linear keypoints -> joints mapping fitted (kp3d_core.fit_mapping) on the
    studio's frames: the estimator's 3D keypoints (with the studio's stored backgrounds, so that no frame
    waits for a learnt background) of every frame where all are valid, against gt.npz."""
    from kp3d_core.background import load_stored_backgrounds
    from kp3d_core.bagio import read_camera_frames
    from kp3d_core.fit_mapping import fit_mapping, store_mapping
    from kp3d_core.inference.estimator import MultiViewEstimator
    from kp3d_core.rig import load_rig

    ckpt = fresh_checkpoint(path)
    rig = load_rig(studio / "rig.yaml")
    est = MultiViewEstimator.load(ckpt, rig, backend="onnxruntime",
                                  backgrounds=load_stored_backgrounds(studio / "backgrounds", rig.cameras))
    gt = np.load(studio / "gt.npz")
    index = {int(s): i for i, s in enumerate(gt["stamps_ns"])}
    kps, joints = [], []
    for frame in read_camera_frames(studio / "bag"):
        out = est.process(frame.images, frame.stamp_ns)
        if out.valid.all():
            kps.append(out.keypoints3d)
            joints.append(gt["joints3d"][index[frame.stamp_ns]])
    if len(kps) < 5:
        raise RuntimeError(f"only {len(kps)} frames with every keypoint valid to fit a mapping on")
    mapping = fit_mapping(np.stack(kps), np.stack(joints), kinds=("linear",), default="linear")
    return store_mapping(ckpt, mapping)
