"""kp3d replay: a bag written by kp3d_core.bagio comes out of rclpy publishers intact, in order, timed."""
import subprocess
import sys
import time

import numpy as np
import pytest

from kp3d_core.rig import ring_rig

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")


def _write_bag(path, storage, frames=6, period_ns=200_000_000):
    from kp3d_core.bagio import BagWriter

    rig = ring_rig(2, width=32, height=24)
    images = {}
    with BagWriter(path, storage=storage) as bag:
        for cam in rig:
            bag.add_camera(cam.name)
        for t in range(frames):
            for v, cam in enumerate(rig):
                rgb = np.full((24, 32, 3), 10 * t + v, np.uint8)
                rgb[t, v] = (255, 0, 7)  # a marked pixel per frame and camera
                stamp = 1_000_000_000 + t * period_ns
                bag.write_image(cam.name, stamp, rgb, cam)
                images[(cam.name, stamp)] = rgb
    return images


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_publishes_every_message_in_order_with_timing_and_clock(tmp_path, ros_env, storage):
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image

    from kp3d_ros.convert import image_msg_to_rgb, stamp_to_ns

    bag = tmp_path / "bag"
    expected = _write_bag(bag, storage)
    rclpy.init()
    node = rclpy.create_node("replay_test")
    got, infos, clock = [], [], []

    def on_image(m, cam):
        arrival = time.monotonic()  # before the conversion: a slow first conversion would shorten the span below
        got.append((cam, stamp_to_ns(m.header.stamp), image_msg_to_rgb(m).copy(), arrival))

    try:
        for cam in ("cam0", "cam1"):
            node.create_subscription(
                Image, f"/{cam}/image_raw", lambda m, c=cam: on_image(m, c),
                rclpy.qos.qos_profile_sensor_data,  # best effort subscriber, reliable publisher
            )
            node.create_subscription(CameraInfo, f"/{cam}/camera_info", lambda m: infos.append(m), 10)
        node.create_subscription(Clock, "/clock", lambda m: clock.append(stamp_to_ns(m.clock)), 100)
        proc = subprocess.Popen(
            [sys.executable, "-m", "kp3d_ros.cli", "replay", str(bag), "--rate", "2", "--wait-subscribers", "20",
             "--delay", "0.5", "-q"],
            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (proc.poll() is None or len(got) < len(expected)):
            rclpy.spin_once(node, timeout_sec=0.05)
        out = proc.communicate(timeout=10)[0]
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert proc.returncode == 0, out
    assert "24 messages" in out  # 6 frames x 2 cameras x (image + CameraInfo)
    assert len(got) == len(expected), out
    for cam, stamp, rgb, _ in got:
        np.testing.assert_array_equal(rgb, expected[(cam, stamp)])
    stamps = [s for _, s, _, _ in got]
    assert stamps == sorted(stamps)
    assert len(infos) == len(expected) and infos[0].k[0] > 0
    # /clock carries bag time: one tick per message, in order, covering the bag
    assert clock == sorted(clock) and clock[0] == 1_000_000_000 and clock[-1] == 2_000_000_000
    # timing: 1.0 s of bag time at --rate 2 spreads over about 0.5 s
    arrivals = [t for *_, t in got]
    assert 0.35 < arrivals[-1] - arrivals[0] < 0.9


def test_replay_rejects_a_missing_bag(tmp_path, ros_env):
    r = subprocess.run(
        [sys.executable, "-m", "kp3d_ros.cli", "replay", str(tmp_path / "nope"), "-q"],
        env=ros_env, capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 2
    assert "nope" in r.stderr and "does not exist" in r.stderr


def test_replay_loop_plays_again_until_interrupted(tmp_path, ros_env):
    import signal

    from sensor_msgs.msg import Image

    from kp3d_ros.convert import stamp_to_ns

    bag = tmp_path / "bag"
    _write_bag(bag, "mcap", frames=3, period_ns=50_000_000)
    rclpy.init()
    node = rclpy.create_node("replay_loop_test")
    got = []
    try:
        node.create_subscription(Image, "/cam0/image_raw", lambda m: got.append(stamp_to_ns(m.header.stamp)), 100)
        proc = subprocess.Popen(
            [sys.executable, "-m", "kp3d_ros.cli", "replay", str(bag), "--loop", "--rate", "4", "--topics", "/cam0/image_raw",
             "--wait-subscribers", "20", "--delay", "0.5", "-q"],
            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and len(got) < 9:
            rclpy.spin_once(node, timeout_sec=0.05)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=10)[0]
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert proc.returncode == 0, out
    assert len(got) >= 9
    first = [1_000_000_000, 1_050_000_000, 1_100_000_000]
    assert got[:9] == first * 3  # three passes, each in stamp order
