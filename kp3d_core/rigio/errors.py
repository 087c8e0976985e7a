"""The two ways an import or export fails for the user: a calibration file, or the options given.

Both are one line; the ``kp3d`` CLI prints them as ``kp3d rig: error: ...`` and exits 2 (kp3d_ros/cli.py);
any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

from ..camera import CalibrationError
from ..cli_args import UsageError


class RigFormatError(CalibrationError):
    """A calibration file that cannot be imported (or a rig a format cannot hold); the message names the
    file, the camera and the field: ``FILE: camera 'NAME': field 'FIELD': what is wrong``."""


class RigOptionError(UsageError):
    """Options that are missing, unknown or contradict each other; the message names them."""
