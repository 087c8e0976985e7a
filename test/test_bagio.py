"""bagio: write small camera bags (MCAP and sqlite3), read them back with rosbags and the mcap reader."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from kp3d_core.bagio import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    BagError,
    BagReader,
    BagWriter,
    camera_topics,
    iter_raw,
    read_bag,
    read_camera_frames,
    typestore,
)
from kp3d_core.camera import Camera
from kp3d_core.image_encoding import image_msg_to_rgb
from kp3d_core.rig import ring_rig

W, H = 32, 24
T0 = 1_700_000_000_000_000_000  # a realistic epoch stamp, ns
PERIOD = 33_333_333
N_FRAMES = 3


@pytest.fixture(scope="module")
def rig():
    return ring_rig(num_cameras=2, width=W, height=H, dist=(-0.1, 0.02, 0.001, -0.002, 0.003))


def _frame(t: int, cam: int) -> np.ndarray:
    rng = np.random.default_rng(100 * t + cam)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _write(path: Path, rig, storage: str, jitter_ns: int = 0) -> dict:
    """Write N_FRAMES frames per camera; cam1 is stamped `jitter_ns` late. Returns stamps per camera."""
    stamps = {c.name: [] for c in rig}
    with BagWriter(path, storage=storage) as bag:
        for cam in rig:
            bag.add_camera(cam.name)
        for t in range(N_FRAMES):
            for i, cam in enumerate(rig):
                stamp = T0 + t * PERIOD + i * jitter_ns
                bag.write_image(cam.name, stamp, _frame(t, i), cam)
                stamps[cam.name].append(stamp)
    return stamps


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_rosbags(tmp_path, rig, storage):
    path = tmp_path / "bag"
    _write(path, rig, storage)
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == storage
    assert meta["message_count"] == 2 * 2 * N_FRAMES
    assert (path / meta["relative_file_paths"][0]).exists()
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    assert topics["/cam0/image_raw"]["topic_metadata"]["type"] == IMAGE_TYPE
    assert topics["/cam1/camera_info"]["message_count"] == N_FRAMES

    assert camera_topics(path) == {
        "cam0": ("/cam0/image_raw", "/cam0/camera_info"),
        "cam1": ("/cam1/image_raw", "/cam1/camera_info"),
    }
    msgs = list(read_bag(path))
    assert len(msgs) == 12
    times = [m.bag_time_ns for m in msgs]
    assert times == sorted(times) and times[0] == T0
    for topic, msgtype, t_ns, msg in msgs:
        assert (msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec) == t_ns  # header = bag time
        cam_name = topic.split("/")[1]
        cam = rig[cam_name]
        assert msg.header.frame_id == cam.frame_id
        if msgtype == IMAGE_TYPE:
            assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", W, H, 3 * W)
            t = (t_ns - T0) // PERIOD
            np.testing.assert_array_equal(image_msg_to_rgb(msg), _frame(t, int(cam_name[-1])))
        else:
            assert msgtype == CAMERA_INFO_TYPE
            assert (msg.width, msg.height, msg.distortion_model) == (W, H, "plumb_bob")
            np.testing.assert_allclose(msg.k.reshape(3, 3), cam.K)
            np.testing.assert_allclose(msg.d, cam.dist)
            np.testing.assert_allclose(msg.p.reshape(3, 4)[:, :3], cam.K)
            back = Camera.from_camera_info_fields(cam_name, {
                "width": msg.width, "height": msg.height, "k": msg.k, "d": msg.d,
                "distortion_model": msg.distortion_model})
            np.testing.assert_allclose(back.K, cam.K)

    only = list(read_bag(path, topics=["/cam1/camera_info"]))
    assert [m.topic for m in only] == ["/cam1/camera_info"] * N_FRAMES


def test_mcap_reader_decodes_the_bag(tmp_path, rig):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    path = tmp_path / "bag"
    _write(path, rig, "mcap")
    (mcap_file,) = path.glob("*.mcap")
    seen = {}
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for schema, channel, message, ros_msg in reader.iter_decoded_messages():
            seen.setdefault(channel.topic, []).append((schema.name, message.log_time, ros_msg))
    assert sorted(seen) == ["/cam0/camera_info", "/cam0/image_raw", "/cam1/camera_info", "/cam1/image_raw"]
    for topic, entries in seen.items():
        assert len(entries) == N_FRAMES
        cam = rig[topic.split("/")[1]]
        for schema_name, log_time, m in entries:
            assert m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == log_time
            if topic.endswith("image_raw"):
                assert schema_name == IMAGE_TYPE and (m.width, m.height, m.encoding) == (W, H, "rgb8")
                assert len(m.data) == H * m.step
            else:
                assert schema_name == CAMERA_INFO_TYPE
                np.testing.assert_allclose(np.reshape(m.k, (3, 3)), cam.K)
                np.testing.assert_allclose(m.d, cam.dist)
                assert (m.width, m.height) == (W, H)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_iter_raw_is_the_cdr_bytes(tmp_path, rig, storage):
    path = tmp_path / "bag"
    _write(path, rig, storage)
    raw = list(iter_raw(path))
    dec = list(read_bag(path))
    assert [(r.topic, r.msgtype, r.bag_time_ns) for r in raw] == [(d.topic, d.msgtype, d.bag_time_ns) for d in dec]
    ts = typestore()
    for r, d in zip(raw, dec):
        assert isinstance(r.msg, (bytes, bytearray, memoryview))
        assert bytes(r.msg) == bytes(ts.serialize_cdr(d.msg, d.msgtype))


@pytest.mark.parametrize("jitter_ns", [0, 2_000_000])
def test_read_camera_frames(tmp_path, rig, jitter_ns):
    path = tmp_path / "bag"
    stamps = _write(path, rig, "mcap", jitter_ns)
    frames = list(read_camera_frames(path, slop_ns=jitter_ns))
    assert len(frames) == N_FRAMES
    for t, fr in enumerate(frames):
        assert fr.stamps == {"cam0": stamps["cam0"][t], "cam1": stamps["cam1"][t]}
        assert fr.stamp_ns == stamps["cam1"][t]
        for i, cam in enumerate(rig):
            np.testing.assert_array_equal(fr.images[cam.name], _frame(t, i))
            back = Camera.from_camera_info_fields(cam.name, fr.infos[cam.name])
            np.testing.assert_allclose(back.K, cam.K)
            np.testing.assert_allclose(back.dist, cam.dist)
            assert fr.infos[cam.name]["frame_id"] == cam.frame_id
    if jitter_ns:  # exact stamps cannot pair a jittered camera
        assert list(read_camera_frames(path, slop_ns=0)) == []
    one = list(read_camera_frames(path, cameras=["cam1"]))
    assert [sorted(f.images) for f in one] == [["cam1"]] * N_FRAMES


def test_errors_name_path_topic_camera(tmp_path, rig):
    path = tmp_path / "bag"
    _write(path, rig, "mcap")
    with pytest.raises(BagError, match="exists already"):
        BagWriter(path)
    with pytest.raises(BagError, match="storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
    with pytest.raises(BagError, match=r"nope.*does not exist"):
        list(read_bag(tmp_path / "nope"))
    with pytest.raises(BagError, match=r"/cam9/image_raw.*not in the bag"):
        list(read_bag(path, topics=["/cam9/image_raw"]))
    with pytest.raises(BagError, match=r"camera\(s\) \['cam7'\]"):
        list(read_camera_frames(path, cameras=["cam7"]))
    with BagWriter(tmp_path / "b2") as bag:
        bag.add_camera("cam0")
        with pytest.raises(BagError, match="camera 'cam1' was not added"):
            bag.write_image("cam1", T0, _frame(0, 0), rig["cam1"])
        with pytest.raises(BagError, match=r"cam0.*does not match the calibration 32x24"):
            bag.write_image("cam0", T0, np.zeros((10, 10, 3), np.uint8), rig["cam0"])
        with pytest.raises(BagError, match="/x.*unknown message type"):
            bag.add_topic("/x", "foo_msgs/msg/Bar")
    # the bag closed cleanly after the errors and holds nothing
    with BagReader(tmp_path / "b2") as r:
        assert r.message_count == 0 and sorted(r.topics) == ["/cam0/camera_info", "/cam0/image_raw"]


def test_other_encodings_decode(tmp_path, rig):
    path = tmp_path / "bag"
    cam = rig["cam0"]
    img = _frame(0, 0)
    with BagWriter(path) as bag:
        bag.add_camera("cam0")
        bag.write_image("cam0", T0, img, cam, encoding="bgr8")
    (fr,) = read_camera_frames(path)
    np.testing.assert_array_equal(fr.images["cam0"], img)
    (m,) = read_bag(path, topics="/cam0/image_raw")
    assert m.msg.encoding == "bgr8"


def test_type_hashes_and_rclpy_deserialize(tmp_path, rig):
    """The bag's types are the installed ROS 2 Jazzy ones: same RIHS01 hashes, and rclpy decodes
    the raw CDR of iter_raw (what `kp3d replay` publishes) to the same fields."""
    path = tmp_path / "bag"
    _write(path, rig, "mcap")
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    hashes = {t["topic_metadata"]["type"]: t["topic_metadata"]["type_description_hash"]
              for t in meta["topics_with_message_count"]}
    import json
    import sys

    share = Path(sys.prefix) / "share" / "sensor_msgs" / "msg"
    for msgtype in (IMAGE_TYPE, CAMERA_INFO_TYPE):
        desc = share / f"{msgtype.rsplit('/', 1)[1]}.json"
        if desc.exists():
            want = json.loads(desc.read_text())["type_hashes"][0]["hash_string"]
            assert hashes[msgtype] == want
    serialization = pytest.importorskip("rclpy.serialization")
    from sensor_msgs.msg import CameraInfo, Image

    for topic, msgtype, t_ns, data in iter_raw(path):
        m = serialization.deserialize_message(bytes(data), Image if msgtype == IMAGE_TYPE else CameraInfo)
        assert m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == t_ns
        if msgtype == IMAGE_TYPE:
            t = (t_ns - T0) // PERIOD
            np.testing.assert_array_equal(image_msg_to_rgb(m), _frame(t, int(topic[4])))
        else:
            np.testing.assert_allclose(np.reshape(m.k, (3, 3)), rig[topic.split("/")[1]].K)
