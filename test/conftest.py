"""Shared pytest fixtures. ROS: every test session gets its own DDS domain, localhost only. Caches: every test
session gets its own user cache ($KP3D_CACHE: crop caches, ONNX exports), never the real ~/.cache/kp3d."""
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory):
    """$KP3D_CACHE for this test session and its subprocesses: a fresh folder, so tests neither write into the
    user's cache nor depend on what is there."""
    path = tmp_path_factory.mktemp("kp3d_cache")
    os.environ["KP3D_CACHE"] = str(path)
    return path


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
