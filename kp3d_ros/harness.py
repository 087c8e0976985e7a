"""Run the node in its own process and collect what it publishes (used by the demo, the benchmark and tests).

* :func:`write_params` writes a ROS parameter file for ``multicam_node``;
* :class:`NodeProcess` starts ``python -m kp3d_ros.node`` with that file and stops it with SIGINT;
* :class:`OutputCollector` is a separate rclpy node that records ``~/pose``, ``~/keypoints``,
  ``/diagnostics`` and ``~/joint_names`` with arrival times, and knows when the node has finished
  all the sets it synchronised (sets_out + node drops == sets_in in its diagnostics).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import convert
from .paths import share_dirs

NODE_NAME = "multicam_node"


def write_params(path: str | Path, **params) -> Path:
    """Write ``params`` (dotted names allowed, e.g. ``**{"sync.slop_s": 0.01}``) as a ``/**`` parameter file."""
    nested: dict = {}
    for name, value in params.items():
        d = nested
        *parents, leaf = name.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": nested}}, sort_keys=False))
    return path


def fastdds_profile() -> Path | None:
    """config/fastdds_localhost_shm.xml of the first share directory that has it (kp3d_ros.paths), or None."""
    for d in share_dirs():
        if (d / "config" / "fastdds_localhost_shm.xml").is_file():
            return d / "config" / "fastdds_localhost_shm.xml"
    return None


ROS_ENV_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def ros_env(domain_id: int | None = None) -> dict:
    """os.environ for ROS processes on one localhost-only DDS domain (default: from the pid), with the
    shared-memory Fast DDS profile for full-size images unless a profile is already set."""
    env = dict(os.environ)
    if domain_id is not None or "ROS_DOMAIN_ID" not in env:
        env["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100 if domain_id is None else domain_id)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    profile = fastdds_profile()
    if profile is not None:
        env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(profile))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def child_env(env: dict) -> dict:
    """``env`` with PYTHONPATH set so a child ``python -m kp3d_ros...`` imports this same kp3d_ros
    (installed or a source checkout) from any working directory."""
    env = dict(env)
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


class NodeProcess:
    """``multicam_node`` in a child process (stdout+stderr to ``log``)."""

    def __init__(self, params_file: str | Path, log: str | Path, env: dict | None = None, nice: int = 0,
                 cwd: str | Path | None = None) -> None:
        self.log_path = Path(log)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, "-m", "kp3d_ros.node", "--ros-args", "--params-file", str(Path(params_file).resolve())]
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        env = child_env(env or ros_env())
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGINT) -> int:
        """``sig`` (default SIGINT, a clean Ctrl-C), then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Published:
    """One published set: stamp, arrival (monotonic s), pose (17,3)+valid, keypoints (K,3)+valid."""

    stamp_ns: int
    arrival: float
    points: np.ndarray
    valid: np.ndarray
    finite: bool = True  # every float field of the message was finite (no NaN/inf published)


@dataclass
class DiagSample:
    """One /diagnostics message of the node; statuses keyed by the name after '<node>: ' ('pipeline', 'camera cam0')."""

    arrival: float
    levels: dict = field(default_factory=dict)  # status name suffix -> level
    messages: dict = field(default_factory=dict)  # status name suffix -> message
    values: dict = field(default_factory=dict)  # status name suffix -> {key: value}
    hardware_ids: dict = field(default_factory=dict)  # status name suffix -> hardware_id


class OutputCollector:
    """A separate rclpy node recording the node's outputs. Call :meth:`spin_until` to process messages."""

    def __init__(self, node_ns: str = f"/{NODE_NAME}", name: str = "kp3d_collector") -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseArray
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        self.node = rclpy.create_node(name)
        self.pose: list[Published] = []
        self.keypoints: list[Published] = []
        self.diagnostics: list[DiagSample] = []
        self.joint_names: dict | None = None
        self.markers: list[tuple[int, bool]] = []  # (number of markers, all coordinates finite)
        qos = QoSProfile(depth=1000)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(PoseArray, f"{node_ns}/pose", lambda m: self._on_poses(self.pose, m), qos)
        self.node.create_subscription(PoseArray, f"{node_ns}/keypoints", lambda m: self._on_poses(self.keypoints, m), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, qos)
        self.node.create_subscription(String, f"{node_ns}/joint_names", self._on_names, latched)
        from visualization_msgs.msg import MarkerArray

        self.node.create_subscription(MarkerArray, f"{node_ns}/markers", self._on_markers, qos)

    def _on_markers(self, msg) -> None:
        vals = [v for m in msg.markers for p in m.points for v in (p.x, p.y, p.z)]
        vals += [v for m in msg.markers for v in (m.pose.position.x, m.pose.position.y, m.pose.position.z)]
        self.markers.append((len(msg.markers), bool(np.isfinite(vals).all()) if vals else True))

    def _on_poses(self, out: list, msg) -> None:
        pts, valid = convert.pose_array_to_numpy(msg)
        raw = [v for p in msg.poses for v in (p.position.x, p.position.y, p.position.z, p.orientation.x,
                                               p.orientation.y, p.orientation.z, p.orientation.w)]
        finite = bool(np.isfinite(raw).all()) if raw else True
        out.append(Published(convert.stamp_to_ns(msg.header.stamp), time.monotonic(), pts, valid, finite))

    def _on_names(self, msg) -> None:
        self.joint_names = json.loads(msg.data)

    def _on_diag(self, msg) -> None:
        s = DiagSample(time.monotonic())
        for st in msg.status:
            if NODE_NAME not in st.name:
                continue
            key = st.name.rsplit(": ", 1)[-1]
            s.levels[key] = convert.diagnostic_level(st)
            s.messages[key] = st.message
            s.values[key] = convert.diagnostic_values(st)
            s.hardware_ids[key] = st.hardware_id
        if s.levels:
            self.diagnostics.append(s)

    def spin_until(self, predicate, timeout: float, step: float = 0.05) -> bool:
        """Spin until ``predicate()`` is true or ``timeout`` seconds pass; returns the predicate's value."""
        import rclpy

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            rclpy.spin_once(self.node, timeout_sec=step)
        return bool(predicate())

    def wait_for_node(self, timeout: float = 30.0) -> bool:
        """True once the node's latched joint names arrived (it is up and discovered)."""
        return self.spin_until(lambda: self.joint_names is not None, timeout)

    @property
    def last_pipeline(self) -> dict:
        """Values of the latest 'pipeline' diagnostic (strings), {} if none yet."""
        for s in reversed(self.diagnostics):
            if "pipeline" in s.values:
                return s.values["pipeline"]
        return {}

    def finished(self, min_sets: int = 1) -> bool:
        """The node processed every set it synchronised, and this collector has all its poses."""
        v = self.last_pipeline
        if not v:
            return False
        sets_in, sets_out = int(v["sets_in"]), int(v["sets_out"])
        node_drops = sum(int(x) for k, x in v.items() if k.startswith("drops.") and not k.startswith("drops.sync_"))
        return sets_in >= min_sets and sets_out + node_drops == sets_in and len(self.pose) >= sets_out

    def close(self) -> None:
        self.node.destroy_node()
