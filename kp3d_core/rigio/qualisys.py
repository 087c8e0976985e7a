"""Qualisys QTM calibration XML (``.qca.txt`` / ``.qca``, also inside the RT protocol's parameters), read only.

Layout (attributes the import needs; others are ignored)::

    <calibration ...>
      <cameras>
        <camera active="1" serial="12345" ...>
          <fov_video left="0" top="0" right="1919" bottom="1087"/>
          <transform x="..." y="..." z="..." r11="..." ... r33="..."/>
          <intrinsic focalLengthU="..." focalLengthV="..." centerPointU="..." centerPointV="..." skew="0"
                     sensorMinU="..." sensorMaxU="..." sensorMinV="..." sensorMaxV="..."
                     radialDistortion1..3="..." tangentalDistortion1..2="..."/>

Conventions (sources and assumptions in docs/rig_formats.md):

* ``x y z``: the camera's position in the QTM (lab) frame, millimetres; the lab frame is z-up.
* ``r11 .. r33`` (row i, column j) rotate lab coordinates into QTM's camera frame, whose x is image
  right, y image up and z points backwards out of the lens; the OpenCV optical frame is that frame
  turned half a turn about x: ``R_cam_world = diag(1, -1, -1) @ [r_ij]``.
* U/V intrinsics are in sensor sub-pixels, 64 per pixel; the video image is the ``fov_video`` window of
  the sensor (inclusive pixel bounds), so ``cx = centerPointU / 64 - left``.
* Distortion coefficients are unitless (normalised coordinates): k1 k2 k3 = radialDistortion1..3,
  p1 p2 = tangentalDistortion1..2. ``skew`` must be 0.
* Cameras with ``active="0"`` are skipped; camera names are the serial (``cam`` + serial when the
  serial does not start with a letter).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..rig import Rig
from .errors import RigFormatError
from .fields import Where, build_camera

SUBPIXELS_PER_PIXEL = 64
#: the OpenCV optical frame (y down, z forward) from QTM's camera frame (y up, z backwards)
QTM_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])
_ROTATION = [f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)]
_INTRINSIC = ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV", "skew", "sensorMinU", "sensorMaxU",
              "sensorMinV", "sensorMaxV", "radialDistortion1", "radialDistortion2", "radialDistortion3",
              "tangentalDistortion1", "tangentalDistortion2")


def camera_name(serial: str) -> str:
    """The kp3d camera name of a QTM serial: the serial itself when it is a valid ROS name token."""
    return serial if serial[:1].isalpha() else f"cam{serial}"


def _attributes(where: Where, element: ET.Element | None, tag: str, names) -> dict[str, float]:
    if element is None:
        raise where.error(tag, "missing")
    return {n: where.number(where.require(element.attrib, n, f"{tag}.{n}"), f"{tag}.{n}") for n in names}


def _calibration_element(where: Where, root: ET.Element) -> ET.Element:
    calib = root if root.tag == "calibration" else root.find(".//calibration")
    if calib is None:
        raise where.error("calibration", "missing (not a QTM calibration)")
    return calib


def read(paths: list[Path]) -> Rig:
    """One QTM calibration -> rig in the lab frame, millimetres."""
    if len(paths) != 1:
        raise RigFormatError(f"qualisys: expected one calibration file, got {len(paths)} files")
    path = paths[0]
    where = Where(path)
    try:
        root = ET.fromstring(path.read_bytes())
    except FileNotFoundError:
        raise where.error(None, "file not found") from None
    except ET.ParseError as exc:
        raise where.error(None, f"not valid XML: {exc}") from None
    cameras = _calibration_element(where, root).find("cameras")
    if cameras is None or cameras.find("camera") is None:
        raise where.error("cameras", "missing (no <camera> element)")
    cams = []
    for i, element in enumerate(cameras.findall("camera")):
        serial = element.get("serial")
        if not serial:
            raise where.at(f"#{i}").error("serial", "missing")
        w = where.at(camera_name(serial))
        if element.get("active", "1").strip() == "0":
            continue
        fov = _attributes(w, element.find("fov_video"), "fov_video", ("left", "top", "right", "bottom"))
        tf = _attributes(w, element.find("transform"), "transform", ("x", "y", "z", *_ROTATION))
        intr = _attributes(w, element.find("intrinsic"), "intrinsic", _INTRINSIC)
        width = w.positive_int(fov["right"] - fov["left"] + 1, "fov_video")
        height = w.positive_int(fov["bottom"] - fov["top"] + 1, "fov_video")
        for axis, lo, hi in (("U", fov["left"], fov["right"]), ("V", fov["top"], fov["bottom"])):
            sensor_min = intr[f"sensorMin{axis}"] / SUBPIXELS_PER_PIXEL
            sensor_max = (intr[f"sensorMax{axis}"] + 1) / SUBPIXELS_PER_PIXEL
            # A file in pixels (another dialect) would put the video window far outside the sensor.
            if lo < sensor_min - 1 or hi + 1 > sensor_max + 1:
                raise w.error(f"intrinsic.sensorMax{axis}",
                              f"the fov_video window [{lo:g}, {hi:g}] lies outside the sensor "
                              f"[{sensor_min:g}, {sensor_max:g}] px: the U/V values are not in sub-pixels "
                              f"({SUBPIXELS_PER_PIXEL} per pixel)")
        if intr["skew"] != 0.0:
            raise w.error("intrinsic.skew", f"is {intr['skew']:g}: kp3d cameras have no skew")
        s = SUBPIXELS_PER_PIXEL
        K = np.array([[intr["focalLengthU"] / s, 0.0, intr["centerPointU"] / s - fov["left"]],
                      [0.0, intr["focalLengthV"] / s, intr["centerPointV"] / s - fov["top"]],
                      [0.0, 0.0, 1.0]])
        dist = np.array([intr["radialDistortion1"], intr["radialDistortion2"], intr["tangentalDistortion1"],
                         intr["tangentalDistortion2"], intr["radialDistortion3"]])
        R_qtm_lab = w.rotation(np.array([tf[k] for k in _ROTATION]).reshape(3, 3), "transform (r11..r33)")
        R_cam_lab = QTM_TO_OPTICAL @ R_qtm_lab
        centre_mm = np.array([tf["x"], tf["y"], tf["z"]])
        cams.append(build_camera(w, w.camera, K, dist, width, height, R_cam_lab, -R_cam_lab @ centre_mm))
    if not cams:
        raise where.error("cameras", "no active camera")
    return Rig(tuple(cams))
