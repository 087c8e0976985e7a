"""launch/multicam.launch.py, config/ and RViz, checked statically (launch/launch_ros are not installable
here, so the file is parsed with ``ast``), structurally (``generate_launch_description`` run against minimal
stand-ins of the launch classes: a structural check, NOT a launch), and with launch_testing where it is
importable."""
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
    assert {"params_file", "use_sim_time", "rviz", "bag", "rate", "loop", "namespace", "log_level"} <= args
    # every declared argument is used, and documented in the file's docstring and in docs/ros.md
    used = {ast.literal_eval(c.args[0]) for c in _calls(tree, "LaunchConfiguration")}
    assert args <= used, args - used
    doc = ast.get_docstring(tree)
    ros_md = (ROOT / "docs" / "ros.md").read_text()
    for a in args:
        assert f"``{a}``" in doc and f"{a}:=" in doc, a
        assert f"`{a}`" in ros_md, a


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
    assert "multicam_node/markers" in topics  # relative: follows the launch file's namespace
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


# ------------------------------------------------------------------------------ structural check (not a launch)
class _Stand:
    """Records how a launch class was constructed: positional args and keyword args."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _stand_in_modules(share: str) -> dict:
    """Minimal stand-ins of the modules the launch file imports (launch/launch_ros are not installable here)."""
    import types

    mods = {}
    for name, classes in {
        "launch": ["LaunchDescription"], "launch.actions": ["DeclareLaunchArgument", "ExecuteProcess", "SetEnvironmentVariable"],
        "launch.conditions": ["IfCondition", "LaunchConfigurationNotEquals"],
        "launch.substitutions": ["LaunchConfiguration", "PythonExpression"],
        "launch_ros.actions": ["Node"], "launch_ros.substitutions": ["ExecutableInPackage"],
    }.items():
        mod = types.ModuleType(name)
        for cls in classes:
            setattr(mod, cls, type(cls, (_Stand,), {}))
        mods[name] = mod
    ament = types.ModuleType("ament_index_python.packages")
    ament.get_package_share_directory = lambda pkg: share
    mods["ament_index_python"] = types.ModuleType("ament_index_python")
    mods["ament_index_python.packages"] = ament
    return mods


def _evaluate(sub, config: dict):
    """A substitution (or list of them) under launch arguments ``config``, as launch would (for these classes)."""
    kind = type(sub).__name__
    if isinstance(sub, str):
        return sub
    if isinstance(sub, list):
        return "".join(_evaluate(s, config) for s in sub)
    if kind == "LaunchConfiguration":
        return config[sub.args[0]]
    if kind == "PythonExpression":
        return str(eval(_evaluate(sub.args[0], config)))
    if kind == "ExecutableInPackage":
        return sub.kwargs["executable"]
    raise AssertionError(f"unexpected substitution {kind}")


def test_structure_of_the_launch_description_not_a_launch(monkeypatch, tmp_path):
    """STRUCTURAL CHECK, NOT A LAUNCH: generate_launch_description() runs against stand-ins; its replay command
    line is parsed by kp3d replay's own argument parser, and the node gets the namespace and log level."""
    import argparse
    import sys

    from kp3d_ros import replay

    for name, mod in _stand_in_modules(str(tmp_path)).items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("multicam_launch_structure", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    desc = mod.generate_launch_description()
    entities = desc.args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    config = dict(declared, bag="/data/bag", rate="0.5", loop="true", namespace="lab", log_level="debug")
    nodes = {e.kwargs["executable"]: e for e in entities if type(e).__name__ == "Node"}
    for exe in ("multicam_node", "rviz2"):
        assert _evaluate(nodes[exe].kwargs["namespace"], config) == "lab"
        assert [_evaluate(a, config) for a in nodes[exe].kwargs["ros_arguments"]] == ["--log-level", "debug"]
    assert _evaluate(nodes["multicam_node"].kwargs["parameters"][1]["use_sim_time"], config) == "True"  # bag given
    (proc,) = [e for e in entities if type(e).__name__ == "ExecuteProcess"]
    cmd = [_evaluate(c, config) for c in proc.kwargs["cmd"]]
    assert cmd[:3] == ["kp3d", "replay", "/data/bag"]
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    args = parser.parse_args(cmd[2:])
    assert (args.rate, args.loop, args.log_level) == (0.5, True, "debug")
    assert args.wait_subscribers >= 60 and args.delay > 0  # plays only once the node has subscribed
    no_loop = parser.parse_args([_evaluate(c, dict(config, loop="false")) for c in proc.kwargs["cmd"]][2:])
    assert no_loop.loop is False
    assert type(proc.kwargs["condition"]).__name__ == "LaunchConfigurationNotEquals"


def test_with_launch_testing():
    if importlib.util.find_spec("launch_ros") is None or importlib.util.find_spec("launch_testing") is None:
        pytest.skip("launch, launch_ros and launch_testing are not installable here (PyPI ROS 2 wheels)")
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location("multicam_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert isinstance(mod.generate_launch_description(), LaunchDescription)


def test_docs_parameter_table_gives_the_code_defaults():
    """Every row of the parameter table in docs/ros.md names declared parameters with their defaults."""
    from kp3d_ros.node import PARAMETERS

    text = (ROOT / "docs" / "ros.md").read_text()
    table = text.split("## Parameters", 1)[1].split("\n\n", 2)[1]
    seen = set()
    for row in table.splitlines()[2:]:
        names_col, defaults_col = row.split("|")[1:3]
        names = re.findall(r"`([^`]*)`", names_col)
        names = [n if not n.startswith(".") else names[0].rsplit(".", 1)[0] + n for n in names]
        defaults = [yaml.safe_load(v) if v else "" for v in re.findall(r"`([^`]*)`", defaults_col)]
        assert len(names) == len(defaults), row
        for name, value in zip(names, defaults):
            assert name in PARAMETERS, name
            assert value == PARAMETERS[name][0], (name, value, PARAMETERS[name][0])
            seen.add(name)
    assert seen == set(PARAMETERS), set(PARAMETERS) - seen
