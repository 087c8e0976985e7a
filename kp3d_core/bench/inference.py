"""``kp3d bench inference``: per-set latency of every available backend, side by side, as JSON lines.

For V = 1, 4 and 8 cameras at 640x480, a studio subject (procedural motion, the studio renderer) is
rendered once per V; then every backend runs the same frames through the full run-time pipeline
(:class:`~kp3d_core.inference.estimator.MultiViewEstimator`: background/tracking crops, one batched
network call, triangulation, so the crops follow the subject as in the node). Per set it records
pre-processing (checks, detection, crops, normalisation), network, and the set time "crop, network,
keypoints" (pre-processing + network + mapping back to image pixels), each as p50/p95 in milliseconds
(wall clock), and the CPU time the whole set took (all threads; on a shared machine the wall clock
includes waiting for the cores, the CPU time does not); ``stages_p50_ms`` is the p50 of every stage of
the estimator's timings (detection, network, background update, triangulation, mapping, total).

One line per (backend, V); the last line is the summary with the ONNX Runtime vs PyTorch ratio
(PyTorch eager set p50 / ONNX Runtime set p50; > 1 means ONNX Runtime is faster).

With ``--studio DIR`` (a studio dataset folder, e.g. out/studio-bench/test) the frames are that folder's
first frames and cameras (V above its camera count is skipped), the backgrounds are its label-free
temporal medians, and one more line checks agreement: ONNX Runtime vs PyTorch keypoints on the
evaluation's crops (max px), and the run-time pipeline (full frames -> predictor -> estimator) vs the
evaluation pipeline (``kp3d eval``'s crops -> network -> DLT -> mapping): MPJPE of each against the
ground truth and the largest 3D keypoint difference.
Without ``--checkpoint`` the shipped model is used, or, when it does not exist, a randomly
initialised network of the default configuration (labelled as such: timings only, no accuracy).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..checkpoint import load_checkpoint, save_checkpoint, shipped_model_path
from ..config import Config, config_to_dict
from ..data.studio import SampleParams, StudioFolder, make_sample, to_torch
from ..evaluate import discover_keypoints
from ..inference.backends import AUTO_ORDER, create_backend
from ..inference.estimator import MultiViewEstimator
from ..inference.export import ensure_onnx
from ..inference.interface import BackendUnavailable
from ..inference.onnx_backend import OnnxRuntimeBackend
from ..inference.predictor import Predictor
from ..inference.torch_backend import TorchBackend, load_model
from ..models import KeypointNet
from ..models.mapping import apply_mapping
from ..rig import ring_rig
from ..studio.body import sample_subject
from ..studio.procedural import procedural_motion
from ..studio.render import StudioRenderer
from ..studio.scene import sample_scene


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the shipped model, "
                        "else a randomly initialised default network)")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 4, 8], help="camera counts (default 1 4 8)")
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels (default 480)")
    parser.add_argument("--frames", type=int, default=60, help="timed sets per (backend, V) (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed sets first (default 5)")
    parser.add_argument("--backends", nargs="+", default=None,
                        choices=["tensorrt", "onnxruntime-cuda", "onnxruntime-cpu", "pytorch"],
                        help="backend kinds to run (default: every available one)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: cores - 1, at most 4; KP3D_THREADS)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendered studio scene and motion")
    parser.add_argument("--studio", default=None, help="studio dataset folder to take frames from (and check "
                        "run-time vs evaluation agreement) instead of rendering")


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def _model(checkpoint: str | None, tmp: Path) -> tuple[Path, str]:
    """(checkpoint path, label)."""

    if checkpoint:
        return Path(checkpoint), str(checkpoint)
    shipped = shipped_model_path()
    if shipped.is_file():
        return shipped, f"shipped ({shipped.name})"
    import torch


    torch.manual_seed(0)
    cfg = Config()
    net = KeypointNet(cfg.model)
    path = save_checkpoint(tmp / "random-init.pt", {
        "config": config_to_dict(cfg), "model": {f"keypoint_net.{k}": v for k, v in net.state_dict().items()}})
    return path, "random-init (default ModelConfig; no shipped model found)"


def render_studio_sets(views: int, width: int, height: int, frames: int, seed: int = 0, progress: bool = True):
    """A procedural studio subject seen by a ring of ``views`` cameras (the studio renderer).

    Returns (rig, backgrounds: V true static backgrounds (H, W, 3) uint8, images: ``frames`` lists of
    V (H, W, 3) uint8 RGB images, joints3d: (frames, 17, 3) world metres).
    """

    rng = np.random.default_rng(seed)
    rig = ring_rig(max(views, 2), radius=3.5, heights=1.7, target=(0.0, 0.0, 1.0), width=width, height=height)
    rig = type(rig)(rig.cameras[:views], rig.world_frame)
    scene = sample_scene(rng, np.stack([c.center for c in rig.cameras]))
    renderer = StudioRenderer(rig, scene, seed=seed)
    subject = sample_subject(rng)
    motion = procedural_motion(frames, seed=seed)
    images = [renderer.render(motion.joints3d[t], subject, t).images
              for t in tqdm(range(frames), desc=f"render V={views}", leave=False, unit="set", disable=not progress)]
    return rig, renderer.backgrounds, images, motion.joints3d


def studio_sets(path: str | Path, views: int, frames: int):
    """The first ``frames`` frames of the first ``views`` cameras of a studio folder.

    Returns (cameras, backgrounds: label-free temporal medians, images: ``frames`` lists of V images,
    joints3d: (frames, 17, 3) ground truth, metres), or None when the folder has fewer cameras.
    """

    names = StudioFolder(path).rig.names
    if views > len(names):
        return None
    folder = StudioFolder(path, names[:views])
    n = min(frames, len(folder))
    images = [folder.read_images(t) for t in tqdm(range(n), desc=f"read V={views}", leave=False, unit="set")]
    joints = np.stack([folder.labels(t)["joints3d"] for t in range(n)])
    return folder.cameras, folder.estimate_backgrounds(progress=False), images, joints


def agreement(checkpoint, onnx_path, cameras, backgrounds, images, joints3d) -> dict:
    """Run-time pipeline vs evaluation pipeline on the same frames (see the module docstring)."""

    ckpt = load_checkpoint(checkpoint)
    net, info = load_model(checkpoint)
    samples = [make_sample(imgs, backgrounds, cameras, SampleParams(size=info.crop_size), frame=t)
               for t, imgs in enumerate(images)]
    crops = np.concatenate([smp["image"] for smp in samples]).astype(np.float32)
    ort_b = OnnxRuntimeBackend(onnx_path)
    kp_o, _ = ort_b.run(crops)
    kp_t, _ = TorchBackend(net, info).run(crops)
    ref = discover_keypoints(net, [to_torch(smp) for smp in samples], batch_size=16, progress=False)
    est = MultiViewEstimator(Predictor(ort_b, cameras, backgrounds=backgrounds), cameras, mapping=ckpt.get("mapping"))
    outs = [est.process(imgs, t) for t, imgs in enumerate(images)]
    X_run = np.stack([o.keypoints3d for o in outs])
    both = ref["valid"] & np.stack([o.valid for o in outs])
    res = {"bench": "inference", "agreement": True, "frames": len(images), "views": len(cameras),
           "ort_vs_pytorch_max_px": round(float(np.abs(kp_o - kp_t).max()), 5),
           "valid_keypoints_equal": bool((ref["valid"] == np.stack([o.valid for o in outs])).all()),
           "keypoints3d_max_diff_mm": round(1000.0 * float(np.linalg.norm(X_run[both] - ref["X"][both], axis=-1).max()), 4)
           if both.any() else None}
    if ckpt.get("mapping"):
        pose_eval = np.asarray(apply_mapping(ckpt["mapping"], ref["X"]), dtype=np.float64)
        have = np.array([o.pose is not None for o in outs]) & np.isfinite(pose_eval).all((1, 2))
        if have.any():
            pose_run = np.stack([outs[i].pose for i in np.flatnonzero(have)])
            err = lambda p: 1000.0 * float(np.linalg.norm(p - joints3d[have], axis=-1).mean())  # noqa: E731
            res.update(frames_with_pose=int(have.sum()), mpjpe_eval_mm=round(err(pose_eval[have]), 3),
                       mpjpe_runtime_mm=round(err(pose_run), 3))
            res["mpjpe_diff_mm"] = round(abs(res["mpjpe_runtime_mm"] - res["mpjpe_eval_mm"]), 4)
    return res


def _time_backend(backend, cameras, backgrounds, images, warmup: int) -> dict:

    est = MultiViewEstimator(Predictor(backend, cameras, backgrounds=backgrounds), cameras)
    pre, net, crop_net_kp, total, found, tracked, cpu = [], [], [], [], [], [], []
    stages: dict[str, list[float]] = {}
    for i, imgs in enumerate(images):
        c0 = time.process_time()  # CPU seconds of all this process's threads (ORT/torch pools included)
        out = est.process(imgs, i)
        c1 = time.process_time()
        if i < warmup:
            continue
        t = out.timings
        pre.append(t["preprocess"])
        net.append(t["network"])
        crop_net_kp.append(t["preprocess"] + t["network"] + t["postprocess"])
        total.append(t["total"])
        cpu.append((c1 - c0) * 1e3)
        for k, v in t.items():
            stages.setdefault(k, []).append(v)
        found.append(float(out.found.mean()))
        tracked.append(float(est.predictor.last_tracked.mean()))
    return {"preprocess_ms": _stats(pre), "network_ms": _stats(net), "set_ms": _stats(crop_net_kp),
            "estimator_total_ms": _stats(total), "estimator_cpu_ms": _stats(cpu),
            "stages_p50_ms": {k: round(float(np.percentile(v, 50)), 3) for k, v in stages.items()}, "person_found_pct": round(100.0 * float(np.mean(found)), 1),
            "tracked_pct": round(100.0 * float(np.mean(tracked)), 1)}


def main(args: argparse.Namespace) -> int:
    import os


    with tempfile.TemporaryDirectory(prefix="kp3d-bench-") as tmpdir:
        tmp = Path(tmpdir)
        ckpt, label = _model(args.checkpoint, tmp)
        onnx_path = ensure_onnx(ckpt, tmp)
        kinds = args.backends or list(AUTO_ORDER)
        backends, unavailable = [], {}
        for kind in kinds:
            try:
                backends.append(create_backend(kind, checkpoint=ckpt, onnx_path=onnx_path,
                                               engine_cache_dir=None, threads=args.threads))
            except BackendUnavailable as exc:
                unavailable[kind] = str(exc)
        if not backends:
            print(json.dumps({"bench": "inference", "error": "no backend available", "unavailable": unavailable}))
            return 1
        info = backends[0].info
        set_p50: dict[tuple[str, int], float] = {}
        skipped = {}
        check = None
        for V in args.views:
            if args.studio:
                sets = studio_sets(args.studio, V, args.frames + args.warmup)
                if sets is None:
                    skipped[str(V)] = f"{args.studio} has fewer than {V} cameras"
                    continue
                cams, bgs, images, joints = sets
                if check is None or V > check[0]:
                    check = (V, cams, bgs, images, joints)
            else:
                rig, bgs, images, _ = render_studio_sets(V, args.width, args.height, args.frames + args.warmup,
                                                         args.seed)
                cams = list(rig.cameras)
            h, w = images[0][0].shape[:2]
            for be in backends:
                res = _time_backend(be, cams, bgs, images, args.warmup)
                set_p50[(be.name, V)] = res["set_ms"]["p50"]
                print(json.dumps({"bench": "inference", "backend": be.name, "views": V, "width": w, "height": h,
                                  "crop_size": info.crop_size, "keypoints": info.num_keypoints,
                                  "frames": len(images) - args.warmup, "data": args.studio or "rendered",
                                  "model": label, **res}), flush=True)
        if check is not None:
            print(json.dumps(agreement(ckpt, onnx_path, *check[1:])), flush=True)
        ratio = {}
        for V in args.views:
            ort_ms = set_p50.get(("onnxruntime-cpu", V)) or set_p50.get(("onnxruntime-cuda", V))
            torch_ms = set_p50.get(("pytorch-cpu", V)) or set_p50.get(("pytorch-cuda", V))
            if ort_ms and torch_ms:
                ratio[str(V)] = round(torch_ms / ort_ms, 3)
        ort4 = set_p50.get(("onnxruntime-cpu", 4))
        print(json.dumps({
            "bench": "inference", "summary": True, "model": label, "cpu_cores": os.cpu_count(),
            "backends": [b.name for b in backends], "unavailable": unavailable, "views_skipped": skipped,
            "set_p50_ms": {f"{k[0]}/V={k[1]}": v for k, v in set_p50.items()},
            "ort_vs_pytorch_ratio": ratio,
            "ort_cpu_4view_set_p50_ms": ort4, "ort_cpu_4view_within_25ms": None if ort4 is None else ort4 <= 25.0,
        }))
    return 0
