"""Shared pytest fixtures. ROS: every test session gets its own DDS domain, localhost only."""
import os

import pytest


@pytest.fixture(scope="session")
def ros_env():
    """Environment for ROS 2 processes of this test session (own ROS_DOMAIN_ID from the pid).

    Also applied to os.environ, so an in-process rclpy context joins the same domain.
    """
    pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed")
    from pathlib import Path

    env = {
        # shared-memory transport for full-size images (see the file): no lost UDP fragments
        "FASTRTPS_DEFAULT_PROFILES_FILE": str(Path(__file__).resolve().parent.parent / "config" / "fastdds_localhost_shm.xml"),
        "ROS_DOMAIN_ID": str(1 + os.getpid() % 100),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return dict(os.environ)
