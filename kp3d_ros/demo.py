"""``kp3d demo``: the main job, end to end over real ROS 2 (rclpy), CPU only, no network.

1. renders a short procedural studio recording as a rosbag2 bag (``kp3d synth ... --bag``) with its
   ground truth (gt.npz, rig.yaml);
2. starts ``multicam_node`` with the shipped model in its own process, in the mode for a recording:
   reliable image subscriptions and ``worker.every_set`` (every synchronised set processed in order,
   none replaced by a newer one while the worker is busy);
3. replays the bag (``kp3d replay``, another process) at ``--rate`` (default 0.25: 7.5 sets/s, what a
   shared 2-core machine sustains next to the replay; faster rates only queue sets up) while a separate
   subscriber collects the published poses and diagnostics;
4. prints a summary (images and sets in and out, drops, rejections, latency, MPJPE of the published
   pose against the studio ground truth, wall time) and writes ``out/demo/summary.png`` (the views with
   the published pose reprojected beside the ground truth, and the 3D skeleton).

The output depends only on the bag: with every set processed in order, the learnt background (its
warm-up median takes every third set) and the tracking see the same frames in every run. With the
live-camera mode (only the latest set), which sets a busy worker skips depends on the machine's load,
and with them the background's warm-up frames: three runs gave 134.9, 93.9 and 134.5 mm.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from kp3d_core.bagio import camera_topics
from kp3d_core.checkpoint import shipped_model_path
from kp3d_core.metrics import mpjpe
from kp3d_core.rig import load_rig, ring_rig, save_rig
from kp3d_core.skeleton import BONES
from kp3d_ros.bench_node import parse_size
from kp3d_ros.harness import ROS_ENV_KEYS, NodeProcess, OutputCollector, child_env, ros_env, write_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    parser.add_argument("--frames", type=int, default=150, help="frames of the studio recording (default 150, 5 s)")
    parser.add_argument("--cameras", type=int, default=4, help="cameras on a ring (default 4)")
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument("--seed", type=int, default=3, help="studio seed (default 3)")
    parser.add_argument("--rate", type=float, default=0.25,
                        help="replay speed factor (default 0.25: 7.5 sets/s of a 30 fps bag, what a shared 2-core "
                             "machine sustains; every set is processed at any rate, faster ones only queue sets up)")
    parser.add_argument("--backend", default="auto", help="node model.backend (default auto)")
    parser.add_argument("--model", default="", help="model path (default: the shipped model)")
    parser.add_argument("--dataset", type=Path, default=None, help="use this studio folder (with bag/) instead of rendering")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: from the pid)")


def render_studio(args) -> Path:
    """The studio folder with a bag, rendered once per settings (reused if complete)."""
    if args.dataset is not None:
        return args.dataset

    width, height = parse_size(args.size)
    tag = f"{args.cameras}cam_{width}x{height}_{args.frames}f_seed{args.seed}"
    out = args.out / f"studio_{tag}"
    if (out / "bag" / "metadata.yaml").exists() and (out / "gt.npz").exists():
        print(f"[1/4] reusing the studio bag {out}", flush=True)
        return out
    rig_file = args.out / f"rig_{tag}.yaml"
    save_rig(ring_rig(args.cameras, width=width, height=height), rig_file)
    cmd = [
        sys.executable, "-m", "kp3d_ros.cli", "synth", "--out", str(out), "--rig", str(rig_file),
        "--motion", "procedural", "--frames", str(args.frames), "--seed", str(args.seed), "--bag", "--overwrite",
    ]
    print(f"[1/4] rendering the studio bag: kp3d {' '.join(cmd[3:])}", flush=True)

    subprocess.run(cmd, check=True, env=child_env(os.environ))
    return out


def run_pipeline(dataset: Path, out: Path, model: str = "", backend: str = "auto", rate: float = 1.0,
                 domain_id: int | None = None, extra_params: dict | None = None, timeout: float = 300.0) -> dict:
    """Node + replay + collector on ``dataset``; returns what was published and the node's counters.

    The node runs in the recording mode (reliable images, every set processed in order) unless
    ``extra_params`` says otherwise. Returns dict: ``poses`` {stamp_ns: ((17,3), (17,) valid)},
    ``keypoints`` likewise, ``pipeline`` (last diagnostics values), ``diagnostics`` (all samples),
    ``joint_names``, ``node_exit``, ``node_log``, ``seconds`` (replay start to the last set published).
    """
    import rclpy


    cams = list(camera_topics(dataset / "bag"))
    env = ros_env(domain_id)
    os.environ.update({k: env[k] for k in ROS_ENV_KEYS if k in env})  # this process's collector too
    params = {"cameras": cams, "rig_file": str((dataset / "rig.yaml").resolve()), "model.path": model,
              "model.backend": backend, "sync.slop_s": 0.005, "sync.min_cameras": min(2, len(cams)),
              "diagnostics.period_s": 0.5,
              # the bag replay publishes reliably; a reliable subscription then loses no image of a
              # recording (sensor_data, the live-camera default, may drop large images under load)
              "image_qos": "reliable",
              # every set in order: what is published depends on the bag, not on the machine's load
              "worker.every_set": True, "worker.max_pending_sets": 200}
    params.update(extra_params or {})
    params_file = write_params(out / "params.yaml", **params)
    rclpy.init()
    collector = OutputCollector()
    node = NodeProcess(params_file, out / "node.log", env=env)
    seconds = float("nan")
    try:
        if not collector.wait_for_node(120.0):
            raise RuntimeError(f"multicam_node did not come up (exit {node.proc.poll()}); log:\n{node.log()[-3000:]}")
        # --delay: the replay seeing a subscriber does not mean that subscriber has matched the replay
        # yet (discovery is asymmetric); without it the first images of some cameras can be lost
        t_start = time.monotonic()
        replay = subprocess.run(
            [sys.executable, "-m", "kp3d_ros.cli", "replay", str(dataset / "bag"), "--rate", str(rate),
             "--wait-subscribers", "30", "--delay", "1.5", "-q"],
            env=child_env(env), capture_output=True, text=True, timeout=timeout,
        )
        if replay.returncode != 0:
            raise RuntimeError(f"kp3d replay failed: {replay.stderr[-2000:]}")
        t_end = time.monotonic()
        # all sets synchronised so far processed, and a diagnostics message taken after the replay; the
        # worker may still have a queue to work through: wait as long as it makes progress
        done = lambda: collector.diagnostics and collector.diagnostics[-1].arrival > t_end + 0.6 and collector.finished()  # noqa: E731
        while not collector.spin_until(done, 30.0):
            before = len(collector.pose)
            if collector.spin_until(lambda: len(collector.pose) > before, 10.0) is False:
                break
        seconds = max((p.arrival for p in collector.pose), default=t_end) - t_start
    finally:
        code = node.stop()
        result = {
            "poses": {p.stamp_ns: (p.points, p.valid) for p in collector.pose},
            "keypoints": {p.stamp_ns: (p.points, p.valid) for p in collector.keypoints},
            "pipeline": collector.last_pipeline,
            "diagnostics": list(collector.diagnostics),
            "joint_names": collector.joint_names,
            "node_exit": code,
            "node_log": node.log(),
            "published_count": len(collector.pose),
            "raw_poses": list(collector.pose),
            "raw_keypoints": list(collector.keypoints),
            "markers": list(collector.markers),
            "seconds": seconds,
        }
        collector.close()
        rclpy.try_shutdown()
    return result


def _images_received(result: dict) -> dict:
    """camera -> images the node received, from its latest per-camera diagnostics."""
    for s in reversed(result["diagnostics"]):
        cams = {k[len("camera "):]: int(v["images"]) for k, v in s.values.items() if k.startswith("camera ")}
        if cams:
            return cams
    return {}


def pose_errors(result: dict, dataset: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames with a complete published pose: (frame indices (N,), pred (N,17,3), gt (N,17,3)), metres."""
    gt = np.load(dataset / "gt.npz")
    index = {int(s): i for i, s in enumerate(gt["stamps_ns"])}
    frames, pred = [], []
    for stamp, (pts, valid) in sorted(result["poses"].items()):
        if stamp in index and len(valid) == 17 and valid.all():
            frames.append(index[stamp])
            pred.append(pts)
    frames = np.asarray(frames, dtype=int)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 17, 3)
    return frames, pred, gt["joints3d"][frames]


def summary_figure(path: Path, dataset: Path, frame: int, pose: np.ndarray, gt_pose: np.ndarray, title: str = "") -> None:
    """Views with the published pose reprojected (red) and the ground truth (green), and the 3D skeleton."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    rig = load_rig(dataset / "rig.yaml")
    views = rig.names[:4]
    fig = plt.figure(figsize=(4 * (len(views) + 1), 4.2))
    for v, name in enumerate(views):
        ax = fig.add_subplot(1, len(views) + 1, v + 1)
        img = cv2.imread(str(dataset / "images" / name / f"{frame:06d}.jpg"))
        if img is not None:
            ax.imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        gt2d, pred2d = rig[name].project(gt_pose), rig[name].project(pose)
        for pts, color, label in ((gt2d, "lime", "ground truth"), (pred2d, "red", "published pose")):
            for i, (a, b) in enumerate(BONES):
                ax.plot(pts[[a, b], 0], pts[[a, b], 1], color=color, lw=1.5, label=label if i == 0 else None)
        # zoom on the subject (the studio is large in the frame; the person is not)
        lo, hi = gt2d.min(axis=0), gt2d.max(axis=0)
        half = 0.75 * max(hi - lo) + 20
        c = (lo + hi) / 2
        ax.set_xlim(c[0] - half, c[0] + half)
        ax.set_ylim(c[1] + half, c[1] - half)
        ax.set_title(f"{name}, frame {frame}", fontsize=9)
        ax.legend(loc="lower right", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(1, len(views) + 1, len(views) + 1, projection="3d")
    for pts, color, label in ((gt_pose, "green", "ground truth"), (pose, "red", "published")):
        for i, (a, b) in enumerate(BONES):
            ax.plot(*pts[[a, b]].T, color=color, lw=2, label=label if i == 0 else None)
    centre = gt_pose.mean(axis=0)
    for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
        setter(c - 1.0, c + 1.0)
    ax.set_xlabel("x (m)"), ax.set_ylabel("y (m)"), ax.set_zlabel("z (m)")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("3D pose (world)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(args: argparse.Namespace) -> int:
    model = Path(args.model) if args.model else shipped_model_path()
    if not model.is_file():
        raise FileNotFoundError(f"--model: model file '{model}' not found (the shipped model, or pass --model PATH)")
    t_demo = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    dataset = render_studio(args)
    print("[2/4] starting multicam_node (own process) and the output collector", flush=True)
    print("[3/4] replaying the bag", flush=True)
    try:
        result = run_pipeline(dataset, args.out, args.model, args.backend, args.rate, args.domain_id)
    except RuntimeError as exc:  # the node or the replay failed: not a user error, but its log says why
        print(f"kp3d demo: error: {exc}", file=sys.stderr)
        return 1
    pipe = result["pipeline"]
    frames, pred, gt = pose_errors(result, dataset)
    drops = {k[len("drops."):]: int(v) for k, v in pipe.items() if k.startswith("drops.") and int(v)}
    rejected = {k[len("rejected."):]: int(v) for k, v in pipe.items() if k.startswith("rejected.") and int(v)}
    summary = {
        "dataset": str(dataset),
        "frames_in_bag": int(len(np.load(dataset / "gt.npz")["stamps_ns"])),
        "images_received": _images_received(result),
        "sets_synchronised": int(pipe.get("sets_in", 0)),
        "sets_published": result["published_count"],
        "drops": drops,
        "rejected": rejected,
        "poses_complete": int(len(frames)),
        "mpjpe_mm": round(1000 * mpjpe(pred, gt), 1) if len(frames) else None,
        "latency_p50_ms": float(pipe.get("latency_p50_ms", "nan")),
        "latency_p95_ms": float(pipe.get("latency_p95_ms", "nan")),
        "replay_rate": args.rate,
        "seconds": round(result["seconds"], 1),
        "demo_seconds": round(time.monotonic() - t_demo, 1),
        "node_exit_code": result["node_exit"],
    }
    meaning = {
        "frames_in_bag": "frames of the studio recording, one image per camera each",
        "images_received": "images the node received, per camera",
        "sets_synchronised": "synchronised sets (one image per camera, stamps within the slop) formed by the node",
        "sets_published": "sets published on ~/pose and ~/keypoints, each with its set's stamp",
        "drops": "sets or (sync_*) images dropped, by reason (none expected when every set is processed)",
        "rejected": "published sets whose estimate was rejected as implausible and sent empty, by reason "
                    "(background_warmup: sets seen before the learnt background's warm-up median was complete)",
        "poses_complete": "published sets with a complete 17-joint pose",
        "mpjpe_mm": f"mean per-joint position error of those {len(frames)} poses against the studio ground "
                    "truth, millimetres",
        "latency_p50_ms": "arrival of a set's last image -> publication, median (includes queueing)",
        "latency_p95_ms": "the same, 95th percentile",
        "replay_rate": "bag replay speed (1.0: real time, 30 sets/s)",
        "seconds": "wall time from the replay's start to the last set published",
        "demo_seconds": "wall time of the whole demo (rendering or reusing the bag, node start-up, replay)",
    }
    print("[4/4] summary", flush=True)
    for k, v in summary.items():
        print(f"  {k:<18} {v}" + (f"\n  {'':<18} ({meaning[k]})" if k in meaning else ""))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    if len(frames):
        errs = np.linalg.norm(pred - gt, axis=-1).mean(axis=1)
        pick = int(np.argsort(errs)[len(errs) // 2])  # the median frame, not the best
        title = (f"kp3d demo: {summary['sets_published']} of {summary['sets_synchronised']} sets published, "
                 f"MPJPE {summary['mpjpe_mm']} mm against the studio ground truth over {len(frames)} complete "
                 f"poses (frame of median error shown)")
        summary_figure(args.out / "summary.png", dataset, int(frames[pick]), pred[pick], gt[pick], title)
        print(f"  wrote {args.out / 'summary.png'} (frame {frames[pick]}, {1000 * errs[pick]:.1f} mm)")
    else:
        print("  no complete pose was published; see", args.out / "node.log", file=sys.stderr)
        return 1
    return 0
