"""Where the package's data files are, installed or in a source checkout, and files named by parameters.

A relative path (e.g. the default ``rig_file`` ``config/studio_rig.yaml``) is looked up, in order:

1. in the current directory;
2. in ``share/kp3d_ros`` of every prefix of ``AMENT_PREFIX_PATH`` that holds the package's ament index
   marker (a colcon install; what ``get_package_share_directory`` finds, without needing ament_index_python);
3. in ``sys.prefix/share/kp3d_ros`` (where ``pip install .`` puts the data files);
4. in the source checkout this module belongs to (``config/`` beside ``kp3d_ros/``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "kp3d_ros"
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dirs() -> list[Path]:
    """The package's share directories that exist, in lookup order (ament prefixes, sys.prefix, checkout)."""
    dirs = []
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        if (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file():
            dirs.append(Path(prefix) / "share" / PACKAGE)
    dirs.append(Path(sys.prefix) / "share" / PACKAGE)
    if (SOURCE_ROOT / "config").is_dir() and (SOURCE_ROOT / "package.xml").is_file():
        dirs.append(SOURCE_ROOT)
    out = []
    for d in dirs:
        if d.is_dir() and d not in out:
            out.append(d)
    return out


def resolve_path(path: str | Path, parameter: str) -> Path:
    """The file (or folder) that node parameter ``parameter`` names: absolute, ``~``, or relative (see the
    module docstring). Raises FileNotFoundError listing every place looked in and how to fix it."""
    what = f"parameter '{parameter}'"
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        if p.exists():
            return p
        raise FileNotFoundError(f"{what} '{path}' not found (an absolute path); pass the path of an existing file")
    places = [Path.cwd(), *share_dirs()]
    for base in places:
        if (base / p).exists():
            return base / p
    looked = ", ".join(str(base / p) for base in places)
    raise FileNotFoundError(
        f"{what} '{path}' not found; looked in: {looked}. Pass an absolute path (--ros-args -p {parameter}:=/abs/path), "
        f"run from the folder that holds '{path}', or install the package (pip install . or colcon build, then "
        f"source its setup file so that AMENT_PREFIX_PATH names it)"
    )
