"""Rig calibrations in and out of kp3d: import from ROS, Kalibr, Anipose, Qualisys, COLMAP and OpenCV
stereo files, export to the writable ones, and the figures and pictures that check a rig.

One module per format (``read`` and, where kp3d writes it, ``write``); :mod:`.formats` holds the table
and the import pipeline, :mod:`.world` places the imported world (z up, floor at 0), :mod:`.summary`
and :mod:`.show` are ``kp3d rig show``. Conventions per format: docs/rig_formats.md.

Example::

    from kp3d_core.rigio import WorldSpec, export_rig, import_rig
    result = import_rig("kalibr", ["camchain.yaml"], world=WorldSpec(camera_height=("cam0", 2.1)))
    export_rig("anipose", result.rig, "calibration.toml")
"""
from .errors import RigFormatError, RigOptionError
from .formats import FORMATS, UNITS, ImportResult, export_rig, import_rig
from .world import WorldSpec

__all__ = ["FORMATS", "UNITS", "ImportResult", "RigFormatError", "RigOptionError", "WorldSpec", "export_rig",
           "import_rig"]
