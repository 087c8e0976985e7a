"""launch/multicam.launch.py, config/ and RViz, checked statically (launch/launch_ros are not installable
here, so the file is parsed with ``ast``), and with launch_testing where it is importable."""
import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch" / "multicam.launch.py"
EXTERNAL_PACKAGES = {"rviz2"}  # executables of other ROS packages the launch file may start


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", "")) == name]


def _kw(call, key):
    for k in call.keywords:
        if k.arg == key:
            return k.value
    return None


def _console_scripts():
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = {}
    for d in ast.walk(tree):
        if isinstance(d, ast.Dict):
            for k, v in zip(d.keys, d.values):
                if isinstance(k, ast.Constant) and k.value == "console_scripts":
                    for s in ast.literal_eval(v):
                        name, target = (x.strip() for x in s.split("="))
                        scripts[name] = target
    return scripts


def _installed_data_files():
    """Files setup.py installs as data_files, relative to the repo root (globs expanded)."""
    text = (ROOT / "setup.py").read_text()
    files = set()
    if 'glob("launch/*.launch.py")' in text:
        files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "launch").glob("*.launch.py")}
    if 'glob("config/*")' in text:
        files |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "config").glob("*") if not p.name.endswith("~")}
    return files


def test_launch_file_parses_and_declares_the_arguments():
    tree = ast.parse(LAUNCH.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    args = {ast.literal_eval(c.args[0]) for c in _calls(tree, "DeclareLaunchArgument")}
    assert {"params_file", "use_sim_time", "rviz", "bag"} <= args


def test_every_executable_is_a_console_script_whose_target_exists():
    tree = ast.parse(LAUNCH.read_text())
    scripts = _console_scripts()
    nodes = _calls(tree, "Node") + _calls(tree, "ExecutableInPackage")
    assert nodes
    ours = 0
    for call in nodes:
        pkg, exe = ast.literal_eval(_kw(call, "package")), ast.literal_eval(_kw(call, "executable"))
        if pkg in EXTERNAL_PACKAGES:
            continue
        assert pkg == "kp3d_ros", f"unexpected package {pkg}"
        assert exe in scripts, f"executable '{exe}' is not a console script in setup.py ({sorted(scripts)})"
        module, func = scripts[exe].split(":")
        spec = importlib.util.find_spec(module)
        assert spec is not None and f"def {func}(" in Path(spec.origin).read_text(), scripts[exe]
        ours += 1
    assert ours >= 2  # the node and the bag replay


def test_every_file_named_is_installed_and_the_rviz_fixed_frame_is_the_world_frame():
    text = LAUNCH.read_text()
    named = set(re.findall(r'os\.path\.join\(share, "(\w+)", "([^"]+)"\)', text))
    assert {("config", "multicam.yaml"), ("config", "multicam.rviz"), ("config", "fastdds_localhost_shm.xml")} <= named
    installed = _installed_data_files()
    for folder, name in named:
        assert f"{folder}/{name}" in installed, f"{folder}/{name} is named by the launch file but not installed"
    assert "launch/multicam.launch.py" in installed
    params = yaml.safe_load((ROOT / "config" / "multicam.yaml").read_text())["/**"]["ros__parameters"]
    rviz = yaml.safe_load((ROOT / "config" / "multicam.rviz").read_text())
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == params["world_frame"]
    topics = [d["Topic"]["Value"] for d in rviz["Visualization Manager"]["Displays"] if "Topic" in d]
    assert "/multicam_node/markers" in topics
    rig = params["rig_file"]
    assert f"{rig}" in installed, f"default rig file {rig} is not installed"


def test_parameter_file_matches_the_node_parameters():
    from kp3d_ros.node import PARAMETERS, _validate

    params = yaml.safe_load((ROOT / "config" / "multicam.yaml").read_text())["/**"]["ros__parameters"]

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    values = dict(flat(params))
    assert set(values) <= set(PARAMETERS), set(values) - set(PARAMETERS)
    for name, value in values.items():
        assert _validate(name, value) is None, name
        assert type(value) is type(PARAMETERS[name][0]), name
    assert _validate("sync.min_cameras", 0) and _validate("image_qos", "fast") and _validate("world_frame", "/world")


def test_with_launch_testing():
    if importlib.util.find_spec("launch_ros") is None or importlib.util.find_spec("launch_testing") is None:
        pytest.skip("launch, launch_ros and launch_testing are not installable here (PyPI ROS 2 wheels)")
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location("multicam_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert isinstance(mod.generate_launch_description(), LaunchDescription)
