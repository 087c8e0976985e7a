"""kp3d_ros.paths: relative file parameters resolve from any directory; the error says where it looked."""
import pytest

from kp3d_ros import paths


def test_lookup_order_cwd_then_ament_prefix_then_checkout(tmp_path, monkeypatch):
    prefix = tmp_path / "install"
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "kp3d_ros").write_text("")
    (prefix / "share" / "kp3d_ros" / "config").mkdir(parents=True)
    (prefix / "share" / "kp3d_ros" / "config" / "only_installed.yaml").write_text("x: 1")
    unmarked = tmp_path / "other"  # a prefix without the package's ament marker is not looked in
    (unmarked / "share" / "kp3d_ros" / "config").mkdir(parents=True)
    (unmarked / "share" / "kp3d_ros" / "config" / "unmarked.yaml").write_text("x: 1")
    cwd = tmp_path / "run"
    (cwd / "config").mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"{unmarked}:{prefix}")
    assert paths.resolve_path("config/only_installed.yaml", "rig_file") == prefix / "share" / "kp3d_ros" / "config" / "only_installed.yaml"
    (cwd / "config" / "only_installed.yaml").write_text("x: 2")  # the current directory comes first
    assert paths.resolve_path("config/only_installed.yaml", "rig_file") == cwd / "config" / "only_installed.yaml"
    # the source checkout's default rig (or an installed copy of it) is found from this unrelated directory
    found = paths.resolve_path("config/studio_rig.yaml", "rig_file")
    assert found.is_file() and found.parent.parent in paths.share_dirs()
    with pytest.raises(FileNotFoundError) as err:
        paths.resolve_path("config/unmarked.yaml", "rig_file")
    text = str(err.value)
    assert text.startswith("parameter 'rig_file' 'config/unmarked.yaml' not found; looked in: ")
    for base in [cwd, *paths.share_dirs()]:
        assert str(base / "config" / "unmarked.yaml") in text
    assert str(unmarked) not in text and "Pass an absolute path (--ros-args -p rig_file:=/abs/path)" in text
    with pytest.raises(FileNotFoundError, match="'/no/such.yaml' not found \\(an absolute path\\)"):
        paths.resolve_path("/no/such.yaml", "rig_file")
