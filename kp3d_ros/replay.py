"""``kp3d replay BAG [--rate R] [--loop]``: play a rosbag2 bag (MCAP or sqlite3) through rclpy publishers.

Messages go out in bag-time order with the bag's timing (scaled by ``--rate``), as the serialized
CDR stored in the bag (no re-encoding), on reliable publishers (they reach best-effort, sensor-data
subscribers too). ``/clock`` carries the bag time for nodes with ``use_sim_time``, like
``ros2 bag play --clock``. The same bags play with ``ros2 bag play`` on a full ROS 2 install.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from kp3d_core.bagio import BagError, BagReader, iter_raw
from kp3d_core.cli_args import positive_float

DEFAULT_DEPTH = 100


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy message class; ValueError naming the type if unknown."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise BagError(f"message type '{msgtype}': expected 'package/msg/Name'")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError):
        raise BagError(f"message type '{msgtype}': not installed in this Python environment") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 bag directory (MCAP or sqlite3)")
    parser.add_argument("--rate", type=positive_float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--loop", action=argparse.BooleanOptionalAction, default=False,
                        help="play again from the start when the bag ends (--no-loop: once, the default)")
    parser.add_argument("--topics", nargs="+", default=None, help="only these topics (default: all)")
    parser.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    parser.add_argument(
        "--wait-subscribers", type=float, default=0.0, metavar="SECONDS",
        help="before playing, wait up to SECONDS until every image topic has a subscriber (default 0: no wait)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to sleep before playing (discovery)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warn", "error", "fatal"),
                        help="ROS log level of the replay node (default info)")


class Player:
    """Publishes the messages of one bag; :meth:`play` returns the number of messages sent."""

    def __init__(self, node, bag: Path, topics=None, clock: bool = True) -> None:
        from rclpy.qos import QoSProfile
        from rosgraph_msgs.msg import Clock


        self.node, self.bag, self.topics = node, Path(bag), topics
        with BagReader(self.bag) as reader:
            available = reader.topics
            self.count = reader.message_count
            self.start_ns, self.end_ns = reader.start_ns, reader.end_ns
        wanted = available if topics is None else {t: available[t] for t in topics if t in available}
        missing = [t for t in (topics or []) if t not in available]
        if missing:
            raise BagError(f"bag {bag}: topic(s) {missing} not in the bag (has {sorted(available)})")
        qos = QoSProfile(depth=DEFAULT_DEPTH)
        self.publishers = {t: node.create_publisher(message_class(m), t, qos) for t, m in wanted.items()}
        self.types = wanted
        self.clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
        self._clock_msg = Clock

    def wait_for_subscribers(self, timeout_s: float) -> bool:
        """Wait until every Image topic has at least one subscriber (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        image_topics = [t for t, m in self.types.items() if m == "sensor_msgs/msg/Image"]
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in image_topics):
                return True
            time.sleep(0.05)
        return False

    def play(self, rate: float = 1.0, progress: bool = False) -> int:
        from builtin_interfaces.msg import Time


        if not rate > 0:
            raise ValueError(f"--rate must be > 0, got {rate}")
        sent = 0
        wall0 = bag0 = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=self.count, unit="msg", desc=f"replay {self.bag.name}")
        for topic, _, t_ns, data in iter_raw(self.bag, list(self.publishers)):
            if wall0 is None:
                wall0, bag0 = time.monotonic(), t_ns
            due = wall0 + (t_ns - bag0) * 1e-9 / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self.clock_pub is not None:
                sec, nsec = divmod(t_ns, 1_000_000_000)
                self.clock_pub.publish(self._clock_msg(clock=Time(sec=sec, nanosec=nsec)))
            self.publishers[topic].publish(bytes(data))
            sent += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return sent

    def wait_for_acks(self, timeout_s: float = 5.0) -> bool:
        """Wait until every reliable subscriber acknowledged what was sent (so exiting loses nothing)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        ok = True
        for pub in self.publishers.values():
            left = max(0.0, deadline - time.monotonic())
            ok &= bool(pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9))))
        return ok


def main(args: argparse.Namespace) -> int:
    import rclpy

    rclpy.init(args=["kp3d_replay", "--ros-args", "--log-level", args.log_level])
    node = rclpy.create_node("kp3d_replay")
    try:
        player = Player(node, args.bag, args.topics, clock=not args.no_clock)
        if args.wait_subscribers > 0 and not player.wait_for_subscribers(args.wait_subscribers):
            node.get_logger().warning(f"not every image topic has a subscriber after {args.wait_subscribers} s")
        if args.delay > 0:
            time.sleep(args.delay)
        total = 0
        while True:
            total += player.play(args.rate, progress=not args.quiet)
            if not args.loop:
                break
        player.wait_for_acks()
        print(f"replay: {total} messages from {args.bag}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
