"""The package installs like a ROS 2 ament_python package: share files, ament index marker, console scripts."""
import ast
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory):
    """`pip install` of this package into a new, empty virtual environment (no dependencies).

    The wheel is built with the test's own environment (which has setuptools and wheel; a bare venv may not)
    and installed by the new venv's own pip, exactly as a user's install lays the files out.
    """
    tmp = tmp_path_factory.mktemp("pkg")
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(ROOT)], capture_output=True, text=True, cwd=tmp)
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    prefix = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(prefix)
    (whl,) = (tmp / "dist").glob("kp3d_ros-*.whl")
    out = subprocess.run([prefix / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps",
                          "--disable-pip-version-check", str(whl)], capture_output=True, text=True, cwd=tmp)
    assert out.returncode == 0, out.stdout + out.stderr
    return prefix


def test_share_files_and_ament_marker(installed_prefix):
    share = installed_prefix / "share" / "kp3d_ros"
    assert (share / "package.xml").is_file()
    assert (installed_prefix / "share" / "ament_index" / "resource_index" / "packages" / "kp3d_ros").is_file()
    launch = sorted(p.name for p in (ROOT / "launch").glob("*.launch.py"))
    config = sorted(p.name for p in (ROOT / "config").iterdir() if p.is_file())
    assert sorted(p.name for p in (share / "launch").glob("*.launch.py")) == launch
    assert sorted(p.name for p in (share / "config").iterdir()) == config


def test_console_scripts_installed(installed_prefix):
    for name in ("kp3d", "multicam_node"):
        assert (installed_prefix / "bin" / name).is_file(), name


def test_package_xml_format3_ament_python_with_exec_depends():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "kp3d_ros"
    assert root.find("export").findtext("build_type") == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "visualization_msgs", "geometry_msgs", "std_msgs", "diagnostic_msgs",
            "rosgraph_msgs"} <= deps


def test_setup_cfg_puts_scripts_where_ros2_run_looks():
    text = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/kp3d_ros" in text and "install_scripts=$base/lib/kp3d_ros" in text


def test_kp3d_core_never_imports_ros():
    """ROS never leaks into kp3d_core (checked on the source, imports of every module)."""
    banned = {"rclpy", "sensor_msgs", "visualization_msgs", "geometry_msgs", "std_msgs", "diagnostic_msgs",
              "rosgraph_msgs", "kp3d_ros", "builtin_interfaces"}
    for path in (ROOT / "kp3d_core").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in banned, f"{path.relative_to(ROOT)} imports {n}"


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "kp3d_ros.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0
    for cmd in ("synth", "train", "eval", "map", "export", "bench", "replay", "demo"):
        assert cmd in out.stdout
