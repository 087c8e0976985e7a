"""The package installs like a ROS 2 ament_python package: share files, ament index marker, console scripts."""
import ast
import re
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


# import name -> (pip distribution in setup.py install_requires, rosdep key in package.xml or None)
PIP = {
    "numpy": ("numpy", "python3-numpy"), "scipy": ("scipy", "python3-scipy"),
    "cv2": ("opencv-python-headless", "python3-opencv"), "yaml": ("PyYAML", "python3-yaml"),
    "tqdm": ("tqdm", "python3-tqdm"), "torch": ("torch", "python3-torch"),
    "matplotlib": ("matplotlib", "python3-matplotlib"), "psutil": ("psutil", "python3-psutil"),
    # no rosdep keys: installed by pip (setup.py, requirements.txt), said in a package.xml comment
    "onnx": ("onnx", None), "onnxruntime": ("onnxruntime", None), "rosbags": ("rosbags", None),
    "skfmm": ("scikit-fmm", None),
}
# ROS packages: exec_depend in package.xml (from PyPI wheels here: requirements-ros.txt, not setup.py)
ROS = {"rclpy", "rcl_interfaces", "builtin_interfaces", "sensor_msgs", "visualization_msgs", "geometry_msgs",
       "std_msgs", "diagnostic_msgs", "rosgraph_msgs", "tf2_msgs"}
# optional, imported inside a guard and needed only by a feature that says so when it is missing
OPTIONAL = {"tensorrt": "the TensorRT backend (BackendUnavailable names it)",
            "torch.utils.tensorboard": "train.tensorboard (needs the tensorboard package of requirements.txt)"}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party module -> files importing it, over every package setup.py installs."""
    out: dict[str, set[str]] = {}
    for pkg in ("kp3d_core", "kp3d_ros", "training"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    if name in OPTIONAL:
                        continue
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("kp3d_core", "kp3d_ros", "training"):
                        out.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_imported_third_party_package_is_declared():
    imports = _third_party_imports()
    unknown = {m: sorted(f) for m, f in imports.items() if m not in PIP and m not in ROS and m not in OPTIONAL}
    assert not unknown, f"imported but not declared anywhere (add to setup.py/package.xml and here): {unknown}"
    tree = ast.parse((ROOT / "setup.py").read_text())
    (requires,) = [k.value for c in ast.walk(tree) if isinstance(c, ast.Call) for k in c.keywords
                   if k.arg == "install_requires"]
    declared_pip = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in ast.literal_eval(requires)}
    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot().findall("exec_depend")}
    for module in imports:
        if module in PIP:
            dist, key = PIP[module]
            assert dist.lower() in declared_pip, f"{module}: '{dist}' missing from setup.py install_requires"
            assert key is None or key in deps, f"{module}: rosdep key '{key}' missing from package.xml"
        elif module in ROS:
            assert module in deps, f"{module}: exec_depend missing from package.xml"
    pinned = (ROOT / "requirements.txt").read_text().lower()
    assert all(f"{dist.lower()}==" in pinned for dist, _ in PIP.values())
    # the launch file starts RViz and the replay through launch_ros
    assert {"rviz2", "launch", "launch_ros"} <= deps


def test_installed_package_finds_its_config_from_any_directory(installed_prefix, tmp_path):
    """A pip install puts config/ under sys.prefix/share/kp3d_ros: a relative rig_file resolves there from an empty
    directory, and a missing file's error lists where it looked and how to fix it."""
    code = ("import sys; from kp3d_ros.paths import resolve_path; print(resolve_path('config/studio_rig.yaml', "
            "'rig_file'));\ntry:\n    resolve_path('config/nope.yaml', 'rig_file')\nexcept FileNotFoundError as e:\n"
            "    print(e)")
    out = subprocess.run([installed_prefix / "bin" / "python", "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    found, error = out.stdout.strip().splitlines()
    assert found == str(installed_prefix / "share" / "kp3d_ros" / "config" / "studio_rig.yaml")
    assert "parameter 'rig_file' 'config/nope.yaml' not found; looked in: " in error
    assert str(tmp_path / "config" / "nope.yaml") in error
    assert str(installed_prefix / "share" / "kp3d_ros" / "config" / "nope.yaml") in error
    assert "Pass an absolute path (--ros-args -p rig_file:=/abs/path)" in error
