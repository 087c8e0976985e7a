"""rigio formats: every format round-trips a rig to 1e-6 px, reads hand-written files with the documented
conventions, and fails on a missing or malformed field with one line naming the file, camera and field."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from kp3d_core.rig import Rig, load_rig, ring_rig
from kp3d_core.rigio import RigFormatError, RigOptionError, WorldSpec, export_rig, import_rig
from kp3d_core.rigio.poses import rotation_to_quaternion

ROOT = Path(__file__).resolve().parent.parent
# k3 != 0: only formats that hold plumb_bob whole get this rig
DIST = (-0.12, 0.03, 0.0015, -0.001, 0.004)
DIST_NO_K3 = (-0.12, 0.03, 0.0015, -0.001, 0.0)


def _cloud() -> np.ndarray:
    """(200, 3) world points in the capture volume, in front of every ring camera."""
    return np.random.default_rng(7).uniform([-1.5, -1.5, 0.0], [1.5, 1.5, 2.0], (200, 3))


def assert_same_pixels(a: Rig, b: Rig, tol: float = 1e-6) -> None:
    assert b.names == a.names
    X = _cloud()
    for ca, cb in zip(a, b):
        assert (cb.width, cb.height) == (ca.width, ca.height)
        err = np.abs(ca.project(X) - cb.project(X)).max()
        assert err < tol, f"{ca.name}: {err} px"


# --------------------------------------------------------------------------------- Qualisys test writer
def write_qca(rig: Rig, path: Path, left: int = 16, top: int = 8, serials=None) -> Path:
    """A QTM calibration of ``rig`` (a test writer: QTM makes these files, kp3d only reads them).

    The video window sits at (left, top) of a sensor 2 * left / 2 * top pixels larger than the image.
    """
    root = ET.Element("calibration", {"source": "test", "type": "regular", "wandLength": "601.1"})
    ET.SubElement(root, "results", {"std-dev": "0.5", "min-max-diff": "1.0"})
    cams = ET.SubElement(root, "cameras")
    for i, cam in enumerate(rig):
        serial = serials[i] if serials else cam.name
        el = ET.SubElement(cams, "camera", {"active": "1", "serial": serial, "model": "Miqus Video",
                                            "viewrotation": "0"})
        ET.SubElement(el, "fov_video", {"left": str(left), "top": str(top), "right": str(left + cam.width - 1),
                                        "bottom": str(top + cam.height - 1)})
        R_qtm_lab = np.diag([1.0, -1.0, -1.0]) @ cam.R
        attrs = {k: repr(float(v)) for k, v in zip("xyz", cam.center * 1000.0)}
        attrs.update({f"r{i + 1}{j + 1}": repr(float(R_qtm_lab[i, j])) for i in range(3) for j in range(3)})
        ET.SubElement(el, "transform", attrs)
        s = 64.0
        k1, k2, p1, p2, k3 = cam.dist
        ET.SubElement(el, "intrinsic", {k: repr(float(v)) for k, v in {
            "focallength": 6.0, "sensorMinU": 0, "sensorMaxU": s * (cam.width + 2 * left) - 1, "sensorMinV": 0,
            "sensorMaxV": s * (cam.height + 2 * top) - 1,
            "focalLengthU": s * cam.K[0, 0], "focalLengthV": s * cam.K[1, 1],
            "centerPointU": s * (cam.K[0, 2] + left), "centerPointV": s * (cam.K[1, 2] + top), "skew": 0,
            "radialDistortion1": k1, "radialDistortion2": k2, "radialDistortion3": k3,
            "tangentalDistortion1": p1, "tangentalDistortion2": p2}.items()})
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


# ------------------------------------------------------------------------------------------ round trips
def _studio_rigs():
    return {"studio_rig.yaml": load_rig(ROOT / "config" / "studio_rig.yaml"),
            "ring_distorted": ring_rig(4, heights=[1.5, 1.8, 2.1, 1.6], dist=DIST)}


@pytest.mark.parametrize("which", ["studio_rig.yaml", "ring_distorted"])
@pytest.mark.parametrize("fmt, files, kwargs", [
    ("ros", lambda out, rig: export_rig("ros", rig, out / "ros"), {}),
    ("anipose", lambda out, rig: export_rig("anipose", rig, out / "calibration.toml"),
     {"metres_per_unit": 0.001, "world": WorldSpec(up="z")}),
    ("colmap", lambda out, rig: [out / "colmap"] if export_rig("colmap", rig, out / "colmap", 0.25) else None,
     {"metres_per_unit": 0.25, "world": WorldSpec(up="z")}),
    ("qualisys", lambda out, rig: [write_qca(rig, out / "lab.qca.txt")], {}),
])
def test_round_trip_holds_plumb_bob(tmp_path, which, fmt, files, kwargs):
    rig = _studio_rigs()[which]
    back = import_rig(fmt, files(tmp_path, rig), **kwargs).rig
    assert_same_pixels(rig, back)


def test_round_trip_kalibr_without_k3(tmp_path):
    """Kalibr's radtan has no k3: a rig without it round-trips; cam0 is Kalibr's world."""
    rig = ring_rig(4, heights=[1.5, 1.8, 2.1, 1.6], dist=DIST_NO_K3)
    files = export_rig("kalibr", rig, tmp_path / "camchain.yaml")
    back = import_rig("kalibr", files, world=WorldSpec(T_world_source=rig[0].T_world_cam)).rig
    assert_same_pixels(rig, back)
    with pytest.raises(RigFormatError, match="k3"):
        export_rig("kalibr", ring_rig(2, dist=DIST), tmp_path / "k3.yaml")


@pytest.mark.parametrize("suffix", [".yaml", ".xml", ".json"])
def test_round_trip_opencv_stereo(tmp_path, suffix):
    rig = ring_rig(4, heights=[1.5, 1.8, 2.1, 1.6], dist=DIST).subset(["cam3", "cam1"])
    files = export_rig("opencv-stereo", rig, tmp_path / f"stereo{suffix}", metres_per_unit=0.001)
    back = import_rig("opencv-stereo", files, metres_per_unit=0.001,
                      world=WorldSpec(T_world_source=rig[0].T_world_cam)).rig
    assert_same_pixels(rig, back)  # names travel in camera1 / camera2
    with pytest.raises(RigFormatError, match="two cameras"):
        export_rig("opencv-stereo", ring_rig(3), tmp_path / "three.yaml")


# --------------------------------------------------------------------------- conventions, from hand
def test_qualisys_hand_written_camera(tmp_path):
    """Camera 12345 at (1, 2, 1.5) m looks along lab +x, level: its QTM rows are x = -y_lab (image right),
    y = +z_lab (image up), z = -x_lab (out of the lens, backwards)."""
    path = tmp_path / "hand.qca.txt"
    path.write_text("""<?xml version="1.0"?>
<QTM_Parameters_Ver_1.25><calibration source="x.qca" type="regular">
 <cameras>
  <camera active="1" serial="12345" model="Miqus Video" viewrotation="0">
   <fov_video left="10" top="20" right="649" bottom="499"/>
   <transform x="1000" y="2000" z="1500" r11="0" r12="-1" r13="0" r21="0" r22="0" r23="1" r31="-1" r32="0" r33="0"/>
   <intrinsic focallength="6" sensorMinU="0" sensorMaxU="42239" sensorMinV="0" sensorMaxV="33279"
    focalLengthU="51200" focalLengthV="51264" centerPointU="21120" centerPointV="16640" skew="0"
    radialDistortion1="-0.1" radialDistortion2="0.01" radialDistortion3="0.002"
    tangentalDistortion1="0.0005" tangentalDistortion2="-0.0003"/>
  </camera>
  <camera active="0" serial="777"/>
 </cameras>
</calibration></QTM_Parameters_Ver_1.25>""")
    result = import_rig("qualisys", [path])
    (cam,) = result.rig
    assert cam.name == "cam12345" and (cam.width, cam.height) == (640, 480)
    np.testing.assert_allclose(cam.K, [[800.0, 0, 320.0], [0, 801.0, 240.0], [0, 0, 1]])
    np.testing.assert_allclose(cam.dist, [-0.1, 0.01, 0.0005, -0.0003, 0.002])
    np.testing.assert_allclose(cam.center, [1.0, 2.0, 1.5], atol=1e-12)
    np.testing.assert_allclose(cam.R[2], [1.0, 0.0, 0.0], atol=1e-12)  # optical axis = lab +x
    ahead, above, left = cam.project(np.array([[5.0, 2.0, 1.5], [5.0, 2.0, 2.5], [5.0, 3.0, 1.5]]))
    np.testing.assert_allclose(ahead, [320.0, 240.0], atol=1e-9)
    assert above[1] < 240.0 and left[0] < 320.0
    assert result.alignment.floor and "QTM" in result.alignment.floor


def test_kalibr_chain_direction(tmp_path):
    """T_cn_cnm1 takes cam0 points into cam1: cam1 0.2 m to cam0's right has t = (-0.2, 0, 0)."""
    path = tmp_path / "camchain.yaml"
    path.write_text("""cam0:
  camera_model: pinhole
  intrinsics: [500.0, 501.0, 320.0, 240.0]
  distortion_model: radtan
  distortion_coeffs: [-0.2, 0.05, 0.001, -0.002]
  resolution: [640, 480]
  rostopic: /cam0/image_raw
cam1:
  T_cn_cnm1:
  - [1.0, 0.0, 0.0, -0.2]
  - [0.0, 1.0, 0.0, 0.0]
  - [0.0, 0.0, 1.0, 0.0]
  - [0.0, 0.0, 0.0, 1.0]
  camera_model: pinhole
  intrinsics: [500.0, 500.0, 319.0, 241.0]
  distortion_model: radtan
  distortion_coeffs: [0.0, 0.0, 0.0, 0.0]
  resolution: [640, 480]
""")
    result = import_rig("kalibr", [path], world=WorldSpec(camera_height=("cam0", 2.0)))
    cam0, cam1 = result.rig
    np.testing.assert_allclose(cam0.dist, [-0.2, 0.05, 0.001, -0.002, 0.0])
    # default up: cam0's image-up; x stays cam0's right, y becomes its view direction, z up
    np.testing.assert_allclose(cam0.center, [0.0, 0.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(cam1.center, [0.2, 0.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(cam0.R[2], [0.0, 1.0, 0.0], atol=1e-12)


def test_colmap_half_pixel_and_naming(tmp_path):
    """COLMAP pixel centres sit at +0.5; images name cameras by folder or stem, or by the image map."""
    (tmp_path / "cameras.txt").write_text("# Camera list\n1 PINHOLE 640 480 500 500 320.5 240.5\n"
                                          "2 SIMPLE_RADIAL 640 480 400 320 240 -0.05\n")
    (tmp_path / "images.txt").write_text(
        "# Image list\n#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
        "1 1 0 0 0 0 0 4 1 left/000001.jpg\n\n"      # an empty POINTS2D line
        "2 1 0 0 0 -1 0 4 2 right.png\n100.0 200.0 -1\n")
    rig = import_rig("colmap", [tmp_path], metres_per_unit=1.0, world=WorldSpec(up="-y")).rig
    assert rig.names == ["left", "right"]
    np.testing.assert_allclose(rig["left"].K[:2, 2], [320.0, 240.0])
    np.testing.assert_allclose(rig["right"].dist, [-0.05, 0, 0, 0, 0])
    np.testing.assert_allclose(rig["right"].center - rig["left"].center, [1.0, 0.0, 0.0], atol=1e-12)
    mapped = import_rig("colmap", [tmp_path / "cameras.txt", tmp_path / "images.txt"], metres_per_unit=1.0,
                        image_map={"right.png": "cam7"}).rig
    assert mapped.names == ["cam7"]
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 4 1 a/1.jpg\n\n2 1 0 0 0 0 0 4 1 a/2.jpg\n\n")
    with pytest.raises(RigFormatError, match="both give camera 'a'"):
        import_rig("colmap", [tmp_path], metres_per_unit=1.0)


def test_anipose_units_and_direction(tmp_path):
    """rotation/translation map world -> camera, in the board's unit."""
    path = tmp_path / "calibration.toml"
    path.write_text("""[cam_0]
name = "A"
size = [ 1280, 1024,]
matrix = [ [ 1000.0, 0.0, 640.0,], [ 0.0, 1000.0, 512.0,], [ 0.0, 0.0, 1.0,],]
distortions = [ -0.1, 0.01, 0.0, 0.0,]
rotation = [ 0.0, 0.0, 0.0,]
translation = [ 0.0, 0.0, 3000.0,]

[metadata]
adjusted = false
error = 0.3
""")
    with pytest.raises(RigOptionError, match="--units"):
        import_rig("anipose", [path])
    (cam,) = import_rig("anipose", [path], metres_per_unit=0.001, world=WorldSpec(up="z")).rig
    np.testing.assert_allclose(cam.center, [0.0, 0.0, -3.0])
    np.testing.assert_allclose(cam.dist, [-0.1, 0.01, 0, 0, 0])
    assert (cam.name, cam.width, cam.height) == ("A", 1280, 1024)


def test_opencv_stereo_direction(tmp_path):
    """R, T map camera 1 points into camera 2: T = (-100, 0, 0) mm puts camera 2 0.1 m to the right."""
    path = tmp_path / "extrinsics.yml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("R", np.eye(3))
    fs.write("T", np.array([[-100.0], [0.0], [0.0]]))
    fs.release()
    intr = tmp_path / "intrinsics.yml"
    fs = cv2.FileStorage(str(intr), cv2.FILE_STORAGE_WRITE)
    for key, value in (("M1", np.array([[700.0, 0, 320], [0, 700, 240], [0, 0, 1]])), ("D1", np.zeros((1, 5))),
                       ("M2", np.array([[710.0, 0, 321], [0, 710, 239], [0, 0, 1]])), ("D2", np.zeros((1, 4)))):
        fs.write(key, value)
    fs.startWriteStruct("image_size", cv2.FileNode_SEQ)
    fs.write("", 640)
    fs.write("", 480)
    fs.endWriteStruct()
    fs.release()
    cam0, cam1 = import_rig("opencv-stereo", [intr, path], metres_per_unit=0.001,
                            world=WorldSpec(T_world_source=np.eye(4))).rig
    np.testing.assert_allclose(cam1.center, [0.1, 0.0, 0.0])
    assert cam1.K[0, 0] == 710.0 and cam0.size == (640, 480)


def test_ros_both_directions_and_quaternion(tmp_path):
    """T_world_cam as 16 numbers and T_cam_world as translation + quaternion give the same camera."""
    rig = ring_rig(2, dist=DIST)
    export_rig("ros", rig, tmp_path)
    T = rig[1].T_world_cam
    T_cam_world = np.linalg.inv(T)
    q = rotation_to_quaternion(T_cam_world[:3, :3])
    (tmp_path / "extrinsics.yaml").write_text(yaml.safe_dump({"cameras": {
        "cam0": {"T_world_cam": rig[0].T_world_cam.reshape(-1).tolist()},
        "cam1": {"T_cam_world": {"translation": dict(zip("xyz", T_cam_world[:3, 3].tolist())),
                                 "rotation": dict(zip("xyzw", q.tolist()))}},
    }}))
    back = import_rig("ros", [tmp_path / "cam0.yaml", tmp_path / "cam1.yaml", tmp_path / "extrinsics.yaml"]).rig
    assert_same_pixels(rig, back)
    assert back[0].frame_id == "cam0_optical_frame"


# ------------------------------------------------------------------------------- malformed fields
def _ros_files(tmp_path):
    return export_rig("ros", ring_rig(2, dist=DIST), tmp_path)


def _edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))


def _kalibr(tmp_path):
    return export_rig("kalibr", ring_rig(2, dist=DIST_NO_K3), tmp_path / "camchain.yaml")


def _anipose(tmp_path):
    return export_rig("anipose", ring_rig(2, dist=DIST), tmp_path / "calibration.toml")


def _qualisys(tmp_path):
    return [write_qca(ring_rig(2, dist=DIST), tmp_path / "lab.qca.txt")]


def _colmap(tmp_path):
    export_rig("colmap", ring_rig(2, dist=DIST), tmp_path)
    return [tmp_path / "cameras.txt", tmp_path / "images.txt"]


def _stereo(tmp_path):
    return export_rig("opencv-stereo", ring_rig(2, dist=DIST), tmp_path / "stereo.yaml")


def _in_cam1_section(old, new, marker="cam1"):
    """Replace ``old`` after ``marker`` (the second camera's part of a text file)."""
    def edit(path: Path) -> None:
        text = path.read_text()
        i = text.index(marker)
        j = text.index(old, i)
        path.write_text(text[:j] + new + text[j + len(old):])
    return edit


def _qca_edit(tag: str, attr: str | None, value: str | None):
    """Set (or, with ``None``, delete) an attribute of camera 'cam1''s ``tag`` element; ``attr=None``
    deletes the element."""
    def edit(path: Path) -> None:
        tree = ET.parse(path)
        camera = next(c for c in tree.getroot().iter("camera") if c.get("serial") == "cam1")
        element = camera.find(tag)
        if attr is None:
            camera.remove(element)
        elif value is None:
            del element.attrib[attr]
        else:
            element.set(attr, value)
        tree.write(path)
    return edit


def _stereo_edit(key: str, value):
    """Rewrite the FileStorage file with node ``key`` replaced by ``value`` (``None``: left out)."""
    def edit(path: Path) -> None:
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        root = fs.root()
        nodes = {k: (root.getNode(k).mat() if root.getNode(k).isMap() else
                     root.getNode(k).string() if root.getNode(k).isString() else int(root.getNode(k).real()))
                 for k in root.keys()}
        fs.release()
        out = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
        for k, v in nodes.items():
            v = value if k == key else v
            if v is not None:
                out.write(k, v)
        out.release()
    return edit


def _yaml(edit):
    return lambda path: _edit_yaml(path, edit)


def _cam1(old: str, new: str, marker: str = "cam_1"):
    return _in_cam1_section(old, new, marker)


ROS, KALIBR, ANIPOSE, QTM = ("ros", _ros_files), ("kalibr", _kalibr), ("anipose", _anipose), ("qualisys", _qualisys)
COLMAP, STEREO = ("colmap", _colmap), ("opencv-stereo", _stereo)
# (format, writer), the file to damage, the damage, the camera and the field the message must name
CASES = [
    (*ROS, "cam1.yaml", _yaml(lambda d: d.pop("camera_matrix")), "cam1", "camera_matrix"),
    (*ROS, "cam1.yaml", _yaml(lambda d: d["camera_matrix"].update(data=[1.0, 2.0])), "cam1", "camera_matrix"),
    (*ROS, "cam1.yaml", _yaml(lambda d: d.update(distortion_model="equidistant")), "cam1", "distortion_model"),
    (*ROS, "cam1.yaml", _yaml(lambda d: d.update(image_width="wide")), "cam1", "image_width"),
    (*ROS, "extrinsics.yaml", _yaml(lambda d: d["cameras"].pop("cam1")), "cam1", "T_world_cam"),
    (*ROS, "extrinsics.yaml", _yaml(lambda d: d["cameras"]["cam1"]["T_world_cam"]["rotation"].update(w=3.0)),
     "cam1", "T_world_cam.rotation"),
    (*ROS, "extrinsics.yaml", _yaml(lambda d: d["cameras"]["cam1"]["T_world_cam"].pop("translation")),
     "cam1", "T_world_cam.translation"),
    (*ROS, "extrinsics.yaml", _yaml(lambda d: d["cameras"]["cam1"].update(T_cam_world=[1.0] * 16)),
     "cam1", "T_world_cam"),
    (*KALIBR, "camchain.yaml", _yaml(lambda d: d["cam1"].pop("intrinsics")), "cam1", "intrinsics"),
    (*KALIBR, "camchain.yaml", _yaml(lambda d: d["cam1"].update(distortion_model="equidistant")),
     "cam1", "distortion_model"),
    (*KALIBR, "camchain.yaml", _yaml(lambda d: d["cam1"]["T_cn_cnm1"].pop()), "cam1", "T_cn_cnm1"),
    (*KALIBR, "camchain.yaml", _yaml(lambda d: d["cam1"].update(resolution=[640])), "cam1", "resolution"),
    (*ANIPOSE, "calibration.toml", _cam1("matrix = ", "matrx = "), "cam1", "matrix"),
    (*ANIPOSE, "calibration.toml", _cam1("rotation = [", "rotation = [1.0, "), "cam1", "rotation"),
    (*ANIPOSE, "calibration.toml", _cam1("distortions = [", "distortions = [0.0, "), "cam1", "distortions"),
    (*ANIPOSE, "calibration.toml", _cam1("size = [640, 480]", 'size = [640, "x"]'), "cam1", "size"),
    (*QTM, "lab.qca.txt", _qca_edit("transform", "r23", None), "cam1", "transform.r23"),
    (*QTM, "lab.qca.txt", _qca_edit("intrinsic", "focalLengthU", "x"), "cam1", "intrinsic.focalLengthU"),
    (*QTM, "lab.qca.txt", _qca_edit("fov_video", None, None), "cam1", "fov_video"),
    (*QTM, "lab.qca.txt", _qca_edit("intrinsic", "skew", "0.5"), "cam1", "intrinsic.skew"),
    # U/V in pixels, not sub-pixels (another tool's dialect of the format)
    (*QTM, "lab.qca.txt", _qca_edit("intrinsic", "sensorMaxU", "671"), "cam1", "intrinsic.sensorMaxU"),
    (*QTM, "lab.qca.txt", _qca_edit("transform", "r11", "-1"), "cam1", "transform (r11..r33)"),
    (*COLMAP, "cameras.txt", _cam1("FULL_OPENCV", "OPENCV_FISHEYE", "\n2 "), "2", "MODEL"),
    (*COLMAP, "cameras.txt", _cam1(" 0.0 0.0 0.0\n", "\n", "\n2 "), "2", "PARAMS"),
    (*COLMAP, "images.txt", _cam1("\n2 ", "\n2 7", "cam0.png"), "cam1.png", "QW QX QY QZ"),
    (*COLMAP, "images.txt", _cam1(" 2 cam1.png", " 9 cam1.png", "cam0.png"), "cam1.png", "CAMERA_ID"),
    (*STEREO, "stereo.yaml", _stereo_edit("K2", None), "cam1", "K2"),
    (*STEREO, "stereo.yaml", _stereo_edit("T", np.array([[0.1, 0.2]])), "cam1", "T"),
    (*STEREO, "stereo.yaml", _stereo_edit("D1", np.zeros((1, 3))), "cam0", "D1"),
    (*STEREO, "stereo.yaml", _stereo_edit("R", np.diag([1.0, 1.0, -1.0])), "cam1", "R"),
]


@pytest.mark.parametrize("fmt, writer, target, damage, camera, field", CASES,
                         ids=[f"{c[0]}-{c[5]}-{i}" for i, c in enumerate(CASES)])
def test_malformed_field_fails_in_one_line(tmp_path, fmt, writer, target, damage, camera, field):
    files = writer(tmp_path)
    damage(tmp_path / target)
    units = {"anipose": 0.001, "colmap": 1.0, "opencv-stereo": 1.0}
    with pytest.raises(RigFormatError) as err:
        import_rig(fmt, files, metres_per_unit=units.get(fmt))
    msg = str(err.value)
    assert "\n" not in msg
    assert target in msg and f"camera '{camera}'" in msg and f"field '{field}" in msg, msg


@pytest.mark.parametrize("fmt, name, text", [
    ("ros", "cam0.yaml", "camera_name: [unclosed\n"),
    ("kalibr", "camchain.yaml", "cam0: {camera_model: pinhole\n"),
    ("anipose", "calibration.toml", "[cam_0\nname = 1\n"),
    ("qualisys", "lab.qca.txt", "<calibration><cameras></calibration>"),
    ("opencv-stereo", "stereo.yaml", "%YAML:1.0\nK1: [1, 2\n"),
])
def test_unparsable_file_names_the_file(tmp_path, fmt, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(RigFormatError) as err:
        import_rig(fmt, [tmp_path / name], metres_per_unit=1.0)
    assert name in str(err.value) and "\n" not in str(err.value)
