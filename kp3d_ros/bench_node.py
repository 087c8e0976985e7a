"""``kp3d bench node``: a camera publisher and ``multicam_node`` in separate processes over real rclpy.

The publisher process sends N cameras of studio frames (rendered once by ``kp3d synth`` at the requested
size and cached under ``out/bench_node/``, or taken from ``--dataset``) at ``--rate`` Hz, all cameras
stamped with the same wall-clock time per tick, on sensor-data QoS (``--qos``), over the shared-memory
Fast DDS profile ``config/fastdds_localhost_shm.xml``. The node runs the shipped model
(``--backend``, default onnxruntime). Printed JSON line (the summary)::

    {"bench": "node", "cameras", "size", "rate_hz", "seconds", "backend",
     "input_rate_hz"     sets sent per second by the publisher,
     "output_rate_hz"    poses received per second by a separate subscriber,
     "output_fraction"   output / input,
     "latency_p50_ms", "latency_p95_ms"   arrival of a set's last image -> publication (in the node),
     "estimator_p50_ms"  the estimator's own time per set (the rest of the latency is waiting for CPU/queues),
     "drops"             by reason (synchroniser and node),
     "node_cpu_percent"  of one core, averaged over the run,
     "node_rss_mb_start", "node_rss_mb_end", "node_rss_mb_peak"   resident memory at the publisher's start
                         (model loaded, no image yet), at the end, and the largest sample,
     "node_anon_mb_start", "node_anon_mb_end"   its private part (heap); the rest is library code paged in
                         on first use and the middleware's shared memory,
     "node_rss_mb_timeline"   (seconds, MB) every ~10 % of the run: a rise in the first seconds (working set:
                         backgrounds, ONNX Runtime's arena, code paged in) then flat; growth would show as a trend}
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kp3d_core.rig import load_rig, ring_rig, save_rig
from kp3d_ros import convert
from kp3d_ros.harness import ROS_ENV_KEYS, NodeProcess, OutputCollector, child_env, ros_env, write_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cameras", type=int, default=4, help="number of cameras (default 4)")
    parser.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second per camera (default 30)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration (default 20)")
    parser.add_argument("--backend", default="onnxruntime", help="model.backend of the node (default onnxruntime)")
    parser.add_argument("--model", default="", help="model path (default: the shipped model)")
    parser.add_argument("--dataset", type=Path, default=None, help="studio dataset folder to take frames from")
    parser.add_argument("--frames", type=int, default=30, help="frames rendered for the publisher loop (default 30)")
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="image QoS of publisher and node (default sensor_data, the node's default; both "
                             "processes use config/fastdds_localhost_shm.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is set)")
    parser.add_argument("--out", type=Path, default=Path("out/bench_node"), help="work folder (default out/bench_node)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: from the pid)")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size: expected WxH such as 640x480, got '{text}'") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"--size: must be positive, got '{text}'")
    return w, h


def ensure_dataset(args, width: int, height: int) -> Path:

    """The studio folder the publisher reads (rendered once with ``kp3d synth`` and cached)."""
    if args.dataset is not None:
        return args.dataset.resolve()

    tag = f"{args.cameras}cam_{width}x{height}_{args.frames}f"
    out = args.out / f"studio_{tag}"
    if (out / "rig.yaml").exists() and (out / "manifest.yaml").exists():
        return out
    rig_file = args.out / f"rig_{tag}.yaml"
    save_rig(ring_rig(args.cameras, width=width, height=height), rig_file)
    cmd = [
        sys.executable, "-m", "kp3d_ros.cli", "synth", "--out", str(out), "--rig", str(rig_file), "--motion",
        "procedural", "--frames", str(args.frames), "--seed", "7", "--overwrite", "--no-progress",
    ]
    print(f"rendering the publisher's frames: {' '.join(cmd[2:])}", file=sys.stderr)
    subprocess.run(cmd, check=True, env=child_env(os.environ))
    return out.resolve()


# ------------------------------------------------------------------------------------------ publisher
def publisher_main(argv: list[str]) -> int:
    """Child process: publish the dataset's frames in a loop; print one JSON line with what was sent."""
    import cv2
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image


    p = argparse.ArgumentParser()
    p.add_argument("dataset", type=Path)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--wait", type=float, default=60.0)
    p.add_argument("--qos", default="sensor_data")
    a = p.parse_args(argv)
    rig = load_rig(a.dataset / "rig.yaml")
    frames = {}
    for cam in rig:
        files = sorted((a.dataset / "images" / cam.name).glob("*.jpg"))
        if not files:
            raise FileNotFoundError(f"{a.dataset / 'images' / cam.name}: no frames")
        frames[cam.name] = [
            convert.rgb_to_image_msg(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), 0, cam.frame_id) for f in files
        ]
    n_frames = min(len(v) for v in frames.values())
    rclpy.init()
    node = rclpy.create_node("kp3d_bench_publisher")
    qos = qos_profile_sensor_data if a.qos == "sensor_data" else QoSProfile(depth=10)
    pubs = {c: node.create_publisher(Image, f"/{c}/image_raw", qos) for c in frames}
    info_pubs = {c: node.create_publisher(CameraInfo, f"/{c}/camera_info", qos) for c in frames}
    infos = {c: convert.camera_info_msg(rig[c], 0) for c in frames}
    deadline = time.monotonic() + a.wait
    while time.monotonic() < deadline and not all(p.get_subscription_count() for p in pubs.values()):
        time.sleep(0.05)
    time.sleep(1.0)  # let discovery settle both ways
    period = 1.0 / a.rate
    sent = 0
    t0 = time.monotonic()
    try:
        while True:
            due = t0 + sent * period
            if due - t0 >= a.seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamp = convert.ns_to_stamp(time.time_ns())
            for c, msgs in frames.items():
                msg = msgs[sent % n_frames]
                msg.header.stamp = stamp
                pubs[c].publish(msg)
                infos[c].header.stamp = stamp
                info_pubs[c].publish(infos[c])
            sent += 1
    finally:
        elapsed = time.monotonic() - t0
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({"sets_sent": sent, "elapsed_s": elapsed, "cameras": len(frames)}), flush=True)
    return 0


# ------------------------------------------------------------------------------------------ benchmark
def main(args: argparse.Namespace) -> int:
    import psutil
    import rclpy



    try:
        width, height = parse_size(args.size)
        if args.cameras < 1 or not args.rate > 0 or not args.seconds > 0:
            raise ValueError("--cameras, --rate and --seconds must be positive")
        dataset = ensure_dataset(args, width, height)
        rig = load_rig(dataset / "rig.yaml")
        if (rig[0].width, rig[0].height) != (width, height):
            raise ValueError(f"--dataset {dataset}: images are {rig[0].width}x{rig[0].height}, not {args.size}")
        if len(rig) < args.cameras:
            raise ValueError(f"--dataset {dataset}: has {len(rig)} cameras, --cameras asks for {args.cameras}")
    except ValueError as exc:
        print(f"kp3d bench node: {exc}", file=sys.stderr)
        return 2
    cameras = rig.names[: args.cameras]
    env = ros_env(args.domain_id)
    os.environ.update({k: env[k] for k in ROS_ENV_KEYS if k in env})  # this process's collector too
    params = write_params(
        args.out / "params.yaml", cameras=cameras, rig_file=str((dataset / "rig.yaml").resolve()),
        **{"model.path": args.model, "model.backend": args.backend, "sync.slop_s": 0.005,
           "sync.min_cameras": min(2, len(cameras)), "publish.markers": True, "diagnostics.period_s": 0.5,
           "image_qos": args.qos},
    )
    rclpy.init()
    collector = OutputCollector()
    node = NodeProcess(params, args.out / "node.log", env=env)
    pub = None
    try:
        if not collector.wait_for_node(120.0):
            raise RuntimeError(f"node did not come up; log:\n{node.log()[-3000:]}")
        proc = psutil.Process(node.pid)
        pub = subprocess.Popen(
            [sys.executable, "-m", "kp3d_ros.bench_node", "publish", str(dataset), "--rate", str(args.rate),
             "--seconds", str(args.seconds), "--qos", args.qos],
            env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        mem0 = proc.memory_info()
        rss_start = mem0.rss
        rss_peak = rss_start
        cpu0 = proc.cpu_times()
        t_cpu0 = time.monotonic()
        timeline = []  # (seconds, rss MB) every ~10 % of the run: growth shows as a trend
        next_sample = 0.0
        while pub.poll() is None:
            collector.spin_until(lambda: False, 0.5)
            rss = proc.memory_info().rss
            rss_peak = max(rss_peak, rss)
            elapsed = time.monotonic() - t_cpu0
            if elapsed >= next_sample:
                timeline.append((round(elapsed, 1), round(rss / 2**20, 1)))
                next_sample += max(args.seconds / 10, 1.0)
        collector.spin_until(lambda: False, 1.5)  # last sets and a last diagnostics message
        cpu1 = proc.cpu_times()
        t_cpu1 = time.monotonic()
        mem1 = proc.memory_info()
        rss_end = mem1.rss
        out, err = pub.communicate()
        if pub.returncode != 0:
            raise RuntimeError(f"publisher failed: {err[-2000:]}")
        sent = json.loads(out.strip().splitlines()[-1])
        v = collector.last_pipeline
        received = len(collector.pose)
        arrivals = [p.arrival for p in collector.pose]
        out_rate = (received - 1) / (arrivals[-1] - arrivals[0]) if received > 2 else 0.0
        in_rate = sent["sets_sent"] / sent["elapsed_s"]
        result = {
            "bench": "node", "cameras": len(cameras), "size": f"{width}x{height}", "rate_hz": args.rate,
            "seconds": args.seconds, "backend": args.backend, "qos": args.qos,
            "sets_sent": sent["sets_sent"], "sets_synchronised": int(v.get("sets_in", 0)),
            "sets_published": received,
            "input_rate_hz": round(in_rate, 2), "output_rate_hz": round(out_rate, 2),
            "output_fraction": round(received / max(sent["sets_sent"], 1), 4),
            "latency_p50_ms": float(v.get("latency_p50_ms", "nan")),
            "latency_p95_ms": float(v.get("latency_p95_ms", "nan")),
            "estimator_p50_ms": float(v.get("estimator_p50_ms", "nan")),
            "drops": {k[len("drops."):]: int(x) for k, x in v.items() if k.startswith("drops.") and int(x)},
            "node_cpu_percent": round(
                100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t_cpu1 - t_cpu0), 1
            ),
            "node_rss_mb_start": round(rss_start / 2**20, 1), "node_rss_mb_end": round(rss_end / 2**20, 1),
            "node_rss_mb_peak": round(rss_peak / 2**20, 1),
            # private (heap) part of the RSS; the rest is file-backed (library code paged in) or shared memory
            "node_anon_mb_start": round((mem0.rss - mem0.shared) / 2**20, 1),
            "node_anon_mb_end": round((mem1.rss - mem1.shared) / 2**20, 1),
            "node_rss_mb_timeline": timeline,
        }
        print(json.dumps(result), flush=True)
    finally:
        if pub is not None and pub.poll() is None:
            pub.kill()
            pub.wait()
        code = node.stop()
        collector.close()
        rclpy.try_shutdown()
    if code not in (0, None):
        print(f"node exited with {code}; log: {node.log_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        sys.exit(publisher_main(sys.argv[2:]))
    print("usage: kp3d bench node [options]  (this module's own entry is the publisher process)", file=sys.stderr)
    sys.exit(2)
