"""`kp3d bench triangulation` prints one JSON line whose figures hold (a small run; the full one is a benchmark)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_triangulation_json():
    out = subprocess.run(
        [sys.executable, "-m", "kp3d_ros.cli", "bench", "triangulation", "--frames", "256", "--loop-points", "512",
         "--repeats", "2"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "triangulation" and result["all_valid"]
    assert result["max_disagreement_m"] < 1e-4
    assert result["batched_points_per_s"] > 0 and result["loop_points_per_s"] > 0
