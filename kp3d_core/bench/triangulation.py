"""``kp3d bench triangulation``: batched PyTorch DLT against a per-point NumPy SVD loop.

The loop is how common multi-camera tools triangulate: one homogeneous DLT (SVD of the 2V x 4 system)
per point. Both run on the same noise-free projections of random points in the studio rig, so the
disagreement measures the implementations, not the noise. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from ..geometry import project, triangulate
from ..rig import ring_rig


def triangulate_point_svd(points2d: np.ndarray, weights: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Reference DLT for ONE point: points2d (V, 2) px, weights (V,), P (V, 3, 4) -> (3,) metres."""
    rows = []
    for (u, v), w, Pv in zip(points2d, weights, P):
        rows.append(w * (u * Pv[2] - Pv[0]))
        rows.append(w * (v * Pv[2] - Pv[1]))
    _, _, vt = np.linalg.svd(np.asarray(rows))
    X = vt[-1]
    return X[:3] / X[3]


def _timed(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=2048, help="B, frames per batch (default 2048)")
    parser.add_argument("--views", type=int, default=4, help="V, cameras (default 4)")
    parser.add_argument("--points", type=int, default=32, help="K, keypoints per frame (default 32)")
    parser.add_argument("--loop-points", type=int, default=4096,
                        help="points timed in the NumPy loop (its rate is per point; default 4096)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats, best kept (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    parser.add_argument("--seed", type=int, default=0)


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    B, V, K = args.frames, args.views, args.points
    rig = ring_rig(V)
    P64 = torch.from_numpy(rig.projection_matrices())[None]
    X = torch.from_numpy(rng.normal(0.0, 0.4, size=(B, K, 3)) + np.array([0.0, 0.0, 1.0]))
    uv64 = project(X, P64)
    w64 = torch.from_numpy(rng.uniform(0.5, 1.0, size=(B, V, K)))
    uv, w, P = uv64.float(), w64.float(), P64.float()

    with torch.inference_mode():
        triangulate(uv, w, P)  # warm-up
        t_batched = _timed(lambda: triangulate(uv, w, P), args.repeats)
        X_batched, valid = triangulate(uv, w, P)

    n_loop = min(args.loop_points, B * K)
    uv_np, w_np, P_np = uv64.numpy(), w64.numpy(), P64[0].numpy()
    idx = [(i // K, i % K) for i in range(n_loop)]

    def loop() -> np.ndarray:
        return np.stack([triangulate_point_svd(uv_np[b, :, k], w_np[b, :, k], P_np) for b, k in idx])

    t_loop = _timed(loop, max(1, args.repeats // 2))
    X_loop = loop()
    X_b = np.stack([X_batched[b, k].double().numpy() for b, k in idx])

    batched_pps = B * K / t_batched
    loop_pps = n_loop / t_loop
    result = {
        "benchmark": "triangulation",
        "frames": B, "views": V, "points": K, "dtype": "float32", "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "batched_points_per_s": round(batched_pps, 1),
        "loop_points_per_s": round(loop_pps, 1),
        "speedup": round(batched_pps / loop_pps, 1),
        "max_disagreement_m": float(np.abs(X_b - X_loop).max()),
        "max_error_vs_truth_m": float((X_batched.double() - X).norm(dim=-1).max()),
        "all_valid": bool(valid.all()),
    }
    print(json.dumps(result))
    return 0
