"""``kp3d bench inference``: per-set latency of every available backend, side by side, as JSON lines.

For V = 1, 4 and 8 cameras at 640x480, a studio subject (procedural motion, the studio renderer) is
rendered once per V; then every backend runs the same frames through the full run-time pipeline
(:class:`~kp3d_core.inference.estimator.MultiViewEstimator`: background/tracking crops, one batched
network call, triangulation, so the crops follow the subject as in the node). Per set it records
pre-processing (checks, detection, crops, normalisation), network, and the set time "crop, network,
keypoints" (pre-processing + network + mapping back to image pixels), each as p50/p95 in milliseconds.

One line per (backend, V); the last line is the summary with the ONNX Runtime vs PyTorch ratio
(PyTorch eager set p50 / ONNX Runtime set p50; > 1 means ONNX Runtime is faster).
Without ``--checkpoint`` the shipped model is used, or, when it does not exist, a randomly
initialised network of the default configuration (labelled as such: timings only, no accuracy).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm


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
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: min(2, cores))")
    parser.add_argument("--seed", type=int, default=0, help="seed of the rendered studio scene and motion")


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3)}


def _model(checkpoint: str | None, tmp: Path) -> tuple[Path, str]:
    """(checkpoint path, label)."""
    from ..checkpoint import shipped_model_path

    if checkpoint:
        return Path(checkpoint), str(checkpoint)
    shipped = shipped_model_path()
    if shipped.is_file():
        return shipped, f"shipped ({shipped.name})"
    import torch

    from ..checkpoint import save_checkpoint
    from ..config import Config, config_to_dict
    from ..models import KeypointNet

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
    from ..rig import ring_rig
    from ..studio.body import sample_subject
    from ..studio.motion import procedural_motion
    from ..studio.render import StudioRenderer
    from ..studio.scene import sample_scene

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


def _time_backend(backend, rig, backgrounds, images, warmup: int) -> dict:
    from ..inference.estimator import MultiViewEstimator
    from ..inference.predictor import Predictor

    est = MultiViewEstimator(Predictor(backend, rig.cameras, backgrounds=backgrounds), rig.cameras)
    pre, net, crop_net_kp, total, found = [], [], [], [], []
    for i, imgs in enumerate(images):
        out = est.process(imgs, i)
        if i < warmup:
            continue
        t = out.timings
        pre.append(t["preprocess"])
        net.append(t["network"])
        crop_net_kp.append(t["preprocess"] + t["network"] + t["postprocess"])
        total.append(t["total"])
        found.append(float(out.found.mean()))
    return {"preprocess_ms": _stats(pre), "network_ms": _stats(net), "set_ms": _stats(crop_net_kp),
            "estimator_total_ms": _stats(total), "person_found_pct": round(100.0 * float(np.mean(found)), 1)}


def main(args: argparse.Namespace) -> int:
    import os

    from ..inference.backends import AUTO_ORDER, BackendUnavailable, create_backend
    from ..inference.export import ensure_onnx

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
        for V in args.views:
            rig, bgs, images, _ = render_studio_sets(V, args.width, args.height, args.frames + args.warmup, args.seed)
            for be in backends:
                res = _time_backend(be, rig, bgs, images, args.warmup)
                set_p50[(be.name, V)] = res["set_ms"]["p50"]
                print(json.dumps({"bench": "inference", "backend": be.name, "views": V, "width": args.width,
                                  "height": args.height, "crop_size": info.crop_size, "keypoints": info.num_keypoints,
                                  "frames": args.frames, "model": label, **res}), flush=True)
        ratio = {}
        for V in args.views:
            ort_ms = set_p50.get(("onnxruntime-cpu", V)) or set_p50.get(("onnxruntime-cuda", V))
            torch_ms = set_p50.get(("pytorch-cpu", V)) or set_p50.get(("pytorch-cuda", V))
            if ort_ms and torch_ms:
                ratio[str(V)] = round(torch_ms / ort_ms, 3)
        ort4 = set_p50.get(("onnxruntime-cpu", 4))
        print(json.dumps({
            "bench": "inference", "summary": True, "model": label, "cpu_cores": os.cpu_count(),
            "backends": [b.name for b in backends], "unavailable": unavailable,
            "set_p50_ms": {f"{k[0]}/V={k[1]}": v for k, v in set_p50.items()},
            "ort_vs_pytorch_ratio": ratio,
            "ort_cpu_4view_set_p50_ms": ort4, "ort_cpu_4view_within_25ms": None if ort4 is None else ort4 <= 25.0,
        }))
    return 0
