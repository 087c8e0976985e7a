#!/usr/bin/env bash
# The wider-studio model (issue 34): the shipped model continued, without labels, on studio-bench-open train mixed
# with 20 studio-field train sessions, its mapping refitted at 10 % labels on the same mix, then both test sets.
# Run from the repository root on a CPU machine (2 cores: ~35 min of crop caches on first use, 60 min of training on one thread).
# Figures and what came of it: docs/accuracy_journal.md ("The wider-studio model").
set -euo pipefail
PY=${PY:-.venv/bin/python}

# 1. The data: studio-bench-open train (as the shipped model's recipe) and studio-field train (40 sessions, 250
#    frames each, 3-8 cameras), of which the first 20 sessions join the mix.
[ -d out/studio-bench-open/train ] || $PY -m kp3d_ros.cli synth --preset studio-bench-open --split train --out out/studio-bench-open
[ -d out/studio-field/train ] || $PY -m kp3d_ros.cli synth --preset studio-field --split train --out out/studio-field
[ -d out/studio-field/test ] || $PY -m kp3d_ros.cli synth --preset studio-field --split test --out out/studio-field
# Two sessions folders of links: out/mix20-once (each session once: the labelled fraction of the mapping) and
# out/mix20 (each field session twice, a second link to the same folder and crop cache, so that field batches make
# ~45 % of the training steps instead of 30).
$PY - <<'PYEOF'
from pathlib import Path
import yaml
def mix(folder, copies):
    links = {"bench-open": "../../studio-bench-open/train"}
    for copy in copies:
        links.update({f"field-session{i:03d}{copy}": f"../../studio-field/train/session{i:03d}" for i in range(20)})
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, target in links.items():
        if not (out / name).is_symlink():
            (out / name).symlink_to(target)
    manifest = {"kind": "sessions", "name": out.parent.name, "split": "train", "sessions": list(links)}
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, default_flow_style=None))
mix("out/mix20/train", ("", "-b"))
mix("out/mix20-once/train", ("",))
PYEOF

# 2. Unsupervised training from the shipped weights (60 minutes on one thread, lr 5e-4).
$PY -m kp3d_ros.cli train --config training/configs/field.yaml

# 3. Mapping at 10 % of the mix's labelled frames; then the figures on both test sets.
$PY -m kp3d_ros.cli map --checkpoint out/train/field/ckpt.pt --data out/mix20-once/train --fraction 0.1
$PY -m kp3d_ros.cli bench field --checkpoint out/train/field/ckpt.pt
$PY -m kp3d_ros.cli eval --checkpoint out/train/field/ckpt.pt --out out/eval/field_model_bench

# 4. The supervised upper bound: the same net (17 keypoints, the shipped encoder) on the same mix with true 2D
#    joints, 40 minutes on one thread; its figures on both test sets through the identity (keypoint k = joint k).
$PY -m kp3d_ros.cli train --config training/configs/field.yaml --supervised --minutes 40 --out-dir out/train/field_supervised
$PY -m kp3d_ros.cli bench field --checkpoint out/train/field_supervised/ckpt.pt
$PY -m kp3d_ros.cli eval --checkpoint out/train/field_supervised/ckpt.pt --out out/eval/field_supervised_bench
