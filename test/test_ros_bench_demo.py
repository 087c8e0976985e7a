"""kp3d bench node and kp3d demo, run small: every figure present and consistent with the counters."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")

from ros_fixtures import fresh_checkpoint, tiny_bag  # noqa: E402


def test_bench_node_prints_a_consistent_json_line(tmp_path, ros_env):
    studio = tiny_bag(tmp_path / "s", frames=20, cameras=2)
    model = fresh_checkpoint(tmp_path / "m.pt")
    r = subprocess.run(
        [sys.executable, "-m", "kp3d_ros.cli", "bench", "node", "--cameras", "2", "--size", "160x120", "--rate", "10",
         "--seconds", "3", "--dataset", str(studio), "--model", str(model), "--out", str(tmp_path / "b")],
        env=ros_env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["bench"] == "node" and res["cameras"] == 2 and res["size"] == "160x120"
    assert res["sets_sent"] == 30 and 8 < res["input_rate_hz"] < 11
    # what the node synchronised is what it published plus what it counted as dropped
    node_drops = sum(v for k, v in res["drops"].items() if not k.startswith("sync_"))
    assert 0 < res["sets_published"] == res["sets_synchronised"] - node_drops
    assert res["sets_synchronised"] <= res["sets_sent"]
    assert 0 < res["output_rate_hz"] <= 11 and 0 < res["latency_p50_ms"] <= res["latency_p95_ms"]
    assert res["node_rss_mb_peak"] >= res["node_rss_mb_start"] > 50 and res["node_cpu_percent"] > 0
    assert len(res["node_rss_mb_timeline"]) >= 2


def test_bench_node_rejects_a_bad_size(ros_env):
    r = subprocess.run([sys.executable, "-m", "kp3d_ros.cli", "bench", "node", "--size", "640by480"],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--size: expected WxH" in r.stderr and "Traceback" not in r.stderr


def test_demo_prints_the_summary_and_writes_the_picture(tmp_path, ros_env):
    from ros_fixtures import mapped_checkpoint

    frames = 60  # past the learnt background's warm-up (43 sets): complete poses follow
    studio = tiny_bag(tmp_path / "s", frames=frames)
    model = mapped_checkpoint(tmp_path / "m.pt", studio)
    out = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "kp3d_ros.cli", "demo", "--dataset", str(studio), "--model", str(model),
         "--backend", "onnxruntime", "--out", str(out), "--rate", "1"],
        env=ros_env, capture_output=True, text=True, timeout=180,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("frames_in_bag", "sets_synchronised", "sets_published", "drops", "rejected", "poses_complete",
                "latency_p50_ms", "latency_p95_ms", "mpjpe_mm", "seconds", "demo_seconds"):
        assert key in summary and f"  {key}" in r.stdout
    assert "against the studio ground truth" in r.stdout and f"of those {summary['poses_complete']} poses" in r.stdout
    # every set processed in order: all frames published, the warm-up ones empty and counted
    assert summary["frames_in_bag"] == summary["sets_synchronised"] == summary["sets_published"] == frames
    assert summary["drops"] == {} and summary["rejected"] == {"background_warmup": 43}
    assert summary["images_received"] == {f"cam{i}": frames for i in range(3)}
    assert summary["poses_complete"] >= 1 and 0 < summary["mpjpe_mm"] < 2000 and summary["node_exit_code"] == 0
    png = (out / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_demo_without_a_model_says_so(tmp_path, ros_env):
    r = subprocess.run([sys.executable, "-m", "kp3d_ros.cli", "demo", "--model", str(tmp_path / "none.pt"),
                        "--out", str(tmp_path / "d")], env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "none.pt' not found" in r.stderr and len(r.stderr.strip().splitlines()) == 1
