"""rosbag2 bags (MCAP or sqlite3) with camera streams, read and written with ``rosbags`` (ROS-free).

Messages use the standard ROS 2 Jazzy definitions (rosbags ``Stores.ROS2_JAZZY``), so the bags play
with ``ros2 bag play`` and open with the ``mcap`` reader. Camera ``name`` publishes
``/<name>/image_raw`` (sensor_msgs/msg/Image, rgb8) and ``/<name>/camera_info``
(sensor_msgs/msg/CameraInfo), both with ``header.stamp`` equal to the bag (receive) time.
Stamps are integer nanoseconds.

Example::

    with BagWriter("out/bag", storage="mcap") as bag:
        bag.add_camera("cam0")
        bag.write_image("cam0", stamp_ns, rgb, rig["cam0"])
    for frame in read_camera_frames("out/bag"):
        frame.images["cam0"]            # (H, W, 3) uint8 RGB
        frame.infos["cam0"]["k"]        # CameraInfo fields, as Camera.camera_info_fields()
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from kp3d_core.camera import Camera
from kp3d_core.image_encoding import image_msg_to_rgb, rgb_to_image_fields
from kp3d_core.sync import ApproximateTimeSync

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
STORAGES = ("mcap", "sqlite3")


class BagError(ValueError):
    """A bag that cannot be read or written; the message names the bag path (and topic)."""


@functools.lru_cache(maxsize=1)
def typestore():
    """The rosbags typestore with the ROS 2 Jazzy message definitions (built once)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def _stamp(stamp_ns: int):
    ts = typestore()
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return ts.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)


def _header(stamp_ns: int, frame_id: str):
    return typestore().types["std_msgs/msg/Header"](stamp=_stamp(stamp_ns), frame_id=frame_id)


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time-like object (``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_message(stamp_ns: int, frame_id: str, rgb: np.ndarray, encoding: str = "rgb8"):
    """rosbags sensor_msgs/msg/Image holding ``rgb`` ((H, W, 3) uint8) in ``encoding``."""
    f = rgb_to_image_fields(rgb, encoding)
    return typestore().types[IMAGE_TYPE](header=_header(stamp_ns, frame_id), **f)


def camera_info_message(stamp_ns: int, camera: Camera):
    """rosbags sensor_msgs/msg/CameraInfo of ``camera`` (raw image: R = I, P = [K | 0])."""
    ts = typestore()
    f = camera.camera_info_fields()
    roi = ts.types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return ts.types[CAMERA_INFO_TYPE](
        header=_header(stamp_ns, f["frame_id"]),
        height=f["height"],
        width=f["width"],
        distortion_model=f["distortion_model"],
        d=np.asarray(f["d"], dtype=np.float64),
        k=np.asarray(f["k"], dtype=np.float64),
        r=np.asarray(f["r"], dtype=np.float64),
        p=np.asarray(f["p"], dtype=np.float64),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def camera_info_msg_to_fields(msg) -> dict:
    """Any CameraInfo-like message -> the dict of :meth:`Camera.camera_info_fields` (for
    :meth:`Camera.from_camera_info_fields`)."""
    return {
        "width": int(msg.width),
        "height": int(msg.height),
        "distortion_model": str(msg.distortion_model),
        "d": [float(v) for v in msg.d],
        "k": [float(v) for v in msg.k],
        "r": [float(v) for v in msg.r],
        "p": [float(v) for v in msg.p],
        "frame_id": str(msg.header.frame_id),
    }


# ------------------------------------------------------------------------------------------ writing
class BagWriter:
    """Write a rosbag2 bag (a new directory) with camera streams; use as a context manager.

    Args:
        path: bag directory to create (must not exist).
        storage: ``"mcap"`` (Jazzy default) or ``"sqlite3"``.
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        if storage not in STORAGES:
            raise BagError(f"bag {path}: storage must be one of {STORAGES}, got '{storage}'")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag {self.path}: exists already, not overwriting")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        # version 9 is Jazzy's own metadata version
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self.storage = storage
        self._connections: dict[str, object] = {}  # topic -> rosbags Connection
        self._cameras: dict[str, tuple[str, str]] = {}  # name -> (image topic, info topic)
        self.counts: dict[str, int] = {}
        self._open = False

    def open(self) -> "BagWriter":
        self._writer.open()
        self._open = True
        return self

    def close(self) -> None:
        """Finish the storage file and write metadata.yaml."""
        if self._open:
            self._open = False
            self._writer.close()

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, *exc) -> None:
        # close even on error: what was written stays a readable bag
        self.close()

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic`` with a ROS 2 Jazzy ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
        if not self._open:
            raise BagError(f"bag {self.path}: not open (use 'with BagWriter(...) as bag')")
        if topic in self._connections:
            raise BagError(f"bag {self.path}: topic {topic} added twice")
        if msgtype not in typestore().types:
            raise BagError(f"bag {self.path}: topic {topic}: unknown message type '{msgtype}'")
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        self.counts[topic] = 0

    def add_camera(self, name: str, image_topic: str | None = None, info_topic: str | None = None) -> None:
        """Declare camera ``name``'s Image and CameraInfo topics (default ``/<name>/image_raw``,
        ``/<name>/camera_info``)."""
        if name in self._cameras:
            raise BagError(f"bag {self.path}: camera '{name}' added twice")
        image_topic = image_topic or f"/{name}/image_raw"
        info_topic = info_topic or f"/{name}/camera_info"
        self.add_topic(image_topic, IMAGE_TYPE)
        self.add_topic(info_topic, CAMERA_INFO_TYPE)
        self._cameras[name] = (image_topic, info_topic)

    def write(self, topic: str, stamp_ns: int, msg) -> None:
        """Serialize a rosbags message ``msg`` to ``topic`` at bag time ``stamp_ns``."""
        conn = self._connections.get(topic)
        if conn is None:
            raise BagError(f"bag {self.path}: topic {topic} was not added")
        if int(stamp_ns) < 0:
            raise BagError(f"bag {self.path}: topic {topic}: negative stamp {stamp_ns}")
        data = typestore().serialize_cdr(msg, conn.msgtype)
        self._writer.write(conn, int(stamp_ns), data)
        self.counts[topic] += 1

    def write_image(
        self, name: str, stamp_ns: int, rgb: np.ndarray, camera: Camera, encoding: str = "rgb8"
    ) -> None:
        """Write one frame of camera ``name``: the Image ((H, W, 3) uint8 RGB, stored as ``encoding``)
        and its CameraInfo, both stamped ``stamp_ns`` (header and bag time), frame_id = camera.frame_id."""
        if name not in self._cameras:
            raise BagError(f"bag {self.path}: camera '{name}' was not added (call add_camera first)")
        rgb = np.asarray(rgb)
        if rgb.shape != (camera.height, camera.width, 3):
            raise BagError(
                f"bag {self.path}: camera '{name}': image shape {rgb.shape} does not match the "
                f"calibration {camera.width}x{camera.height} (expected {(camera.height, camera.width, 3)})"
            )
        image_topic, info_topic = self._cameras[name]
        # CameraInfo first, so a reader meets a frame's calibration before its image
        self.write(info_topic, stamp_ns, camera_info_message(stamp_ns, camera))
        self.write(image_topic, stamp_ns, image_message(stamp_ns, camera.frame_id, rgb, encoding))


# ------------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class BagMessage:
    """One message: topic, ROS type name, bag time (ns), and either the decoded message or raw CDR."""

    topic: str
    msgtype: str
    bag_time_ns: int
    msg: object

    def __iter__(self):  # unpack as (topic, msgtype, bag_time_ns, msg)
        return iter((self.topic, self.msgtype, self.bag_time_ns, self.msg))


class BagReader:
    """Read a rosbag2 bag directory (MCAP or sqlite3, detected from metadata.yaml).

    Use as a context manager; :meth:`messages` decodes, :meth:`raw` gives the serialized CDR bytes
    (for replay through rclpy without re-encoding). Both go in bag-time order.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path}: does not exist")
        if self.path.is_file():
            raise BagError(f"bag {self.path}: is a file; pass the bag directory (with metadata.yaml)")
        if not (self.path / "metadata.yaml").exists():
            raise BagError(f"bag {self.path}: no metadata.yaml, not a rosbag2 bag directory")
        from rosbags.rosbag2 import Reader

        try:
            self._reader = Reader(self.path)
        except Exception as exc:  # rosbags raises its own ReaderError types
            raise BagError(f"bag {self.path}: cannot open: {exc}") from exc
        self._open = False
        self._registered: set[str] = set()

    def open(self) -> "BagReader":
        try:
            self._reader.open()
        except Exception as exc:
            raise BagError(f"bag {self.path}: cannot open: {exc}") from exc
        self._open = True
        return self

    def close(self) -> None:
        if self._open:
            self._open = False
            self._reader.close()

    def __enter__(self) -> "BagReader":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------------------------- metadata
    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type name."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Bag time of the last message + 1 ns (rosbags convention)."""
        return int(self._reader.end_time)

    def _connections(self, topics) -> list:
        if topics is None:
            return list(self._reader.connections)
        topics = [topics] if isinstance(topics, str) else list(topics)
        known = self.topics
        missing = [t for t in topics if t not in known]
        if missing:
            raise BagError(f"bag {self.path}: topic(s) {missing} not in the bag (has {sorted(known)})")
        return [c for c in self._reader.connections if c.topic in topics]

    # -------------------------------------------------------------------------------- messages
    def raw(self, topics=None) -> Iterator[BagMessage]:
        """Messages in bag-time order as :class:`BagMessage` with ``msg`` = serialized CDR bytes."""
        if not self._open:
            raise BagError(f"bag {self.path}: not open (use 'with BagReader(...) as bag')")
        for conn, t_ns, data in self._reader.messages(self._connections(topics)):
            yield BagMessage(conn.topic, conn.msgtype, int(t_ns), data)

    def _ensure_type(self, conn) -> None:
        """Register a message type the Jazzy store lacks from the bag's own definition."""
        ts = typestore()
        if conn.msgtype in ts.types or conn.msgtype in self._registered:
            return
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        msgdef = getattr(conn, "msgdef", None)
        text, fmt = (msgdef.data, msgdef.format) if msgdef is not None else ("", "")
        if not text:
            raise BagError(f"bag {self.path}: topic {conn.topic}: unknown type '{conn.msgtype}' without definition")
        parse = get_types_from_idl if str(fmt).lower().endswith("idl") else get_types_from_msg
        try:
            types = parse(text, conn.msgtype) if parse is get_types_from_msg else parse(text)
            ts.register(types)
        except Exception as exc:
            raise BagError(f"bag {self.path}: topic {conn.topic}: cannot parse type '{conn.msgtype}': {exc}") from exc
        self._registered.add(conn.msgtype)

    def messages(self, topics=None) -> Iterator[BagMessage]:
        """Messages in bag-time order as :class:`BagMessage` with ``msg`` decoded (rosbags objects)."""
        if not self._open:
            raise BagError(f"bag {self.path}: not open (use 'with BagReader(...) as bag')")
        ts = typestore()
        for conn, t_ns, data in self._reader.messages(self._connections(topics)):
            self._ensure_type(conn)
            try:
                msg = ts.deserialize_cdr(data, conn.msgtype)
            except Exception as exc:
                raise BagError(
                    f"bag {self.path}: topic {conn.topic}: cannot decode {conn.msgtype} at {t_ns} ns: {exc}"
                ) from exc
            yield BagMessage(conn.topic, conn.msgtype, int(t_ns), msg)


def read_bag(path: str | Path, topics=None) -> Iterator[BagMessage]:
    """Decoded messages of the bag at ``path`` in bag-time order: (topic, msgtype, bag_time_ns, msg)."""
    with BagReader(path) as bag:
        yield from bag.messages(topics)


def iter_raw(path: str | Path, topics=None) -> Iterator[BagMessage]:
    """Serialized CDR messages in bag-time order: (topic, msgtype, bag_time_ns, bytes); for replay
    through rclpy (``rclpy.serialization.deserialize_message``) without re-encoding."""
    with BagReader(path) as bag:
        yield from bag.raw(topics)


def camera_topics(path: str | Path) -> dict[str, tuple[str, str]]:
    """Camera name -> (image topic, camera_info topic) for every Image topic whose namespace also
    has a CameraInfo topic (``/ns/image_raw`` + ``/ns/camera_info`` -> camera ``ns``). Sorted by name."""
    with BagReader(path) as bag:
        topics = bag.topics
    infos = {t.rsplit("/", 1)[0]: t for t, m in topics.items() if m == CAMERA_INFO_TYPE}
    cams = {}
    for topic, msgtype in topics.items():
        if msgtype != IMAGE_TYPE:
            continue
        ns = topic.rsplit("/", 1)[0]
        if ns in infos:
            name = ns.strip("/") or topic.strip("/")
            cams[name] = (topic, infos[ns])
    return dict(sorted(cams.items()))


@dataclass
class CameraFrame:
    """One synchronised multi-camera frame from a bag.

    Attributes:
        stamp_ns: set stamp (the latest member's header stamp, see ``kp3d_core.sync.SyncSet``).
        images: camera name -> (H, W, 3) uint8 RGB.
        infos: camera name -> CameraInfo fields (as ``Camera.camera_info_fields()``).
        stamps: camera name -> that image's header stamp, ns.
    """

    stamp_ns: int
    images: dict[str, np.ndarray] = field(default_factory=dict)
    infos: dict[str, dict] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=dict)


def read_camera_frames(
    path: str | Path,
    cameras: list[str] | None = None,
    slop_ns: int = 0,
    min_cameras: int | None = None,
) -> Iterator[CameraFrame]:
    """Stream synchronised frames: images of all ``cameras`` whose header stamps lie within ``slop_ns``.

    Each image is paired with the latest CameraInfo of its camera read before it, or, if the
    camera has none yet, with the first one read after it (same bag time, either order). Memory is
    bounded by the synchroniser's queues (one pending image per camera otherwise).

    Args:
        path: bag directory.
        cameras: camera names (default: all from :func:`camera_topics`).
        slop_ns: largest stamp spread within a frame (0: exact stamps).
        min_cameras: fewest cameras in a frame (default: all).
    """

    available = camera_topics(path)
    if not available:
        raise BagError(f"bag {path}: no camera topics (Image + CameraInfo pairs in one namespace)")
    names = list(available) if cameras is None else list(cameras)
    missing = [n for n in names if n not in available]
    if missing:
        raise BagError(f"bag {path}: camera(s) {missing} not in the bag (has {sorted(available)})")
    topic_to_cam = {}
    for n in names:
        image_topic, info_topic = available[n]
        topic_to_cam[image_topic] = (n, "image")
        topic_to_cam[info_topic] = (n, "info")
    sync = ApproximateTimeSync(names, slop_ns, min_cameras=min_cameras or len(names))
    latest_info: dict[str, dict] = {}
    waiting: dict[str, tuple[str, object]] = {}  # camera -> image read before any CameraInfo

    def frames(sets):
        for s in sets:
            yield CameraFrame(
                stamp_ns=s.stamp_ns,
                images={n: item[0] for n, item in s.items.items()},
                infos={n: item[1] for n, item in s.items.items()},
                stamps=dict(s.stamps),
            )

    def add_image(name, topic, msg):
        try:
            rgb = image_msg_to_rgb(msg)
        except ValueError as exc:
            raise BagError(f"bag {path}: topic {topic}: {exc}") from exc
        return sync.add(name, stamp_to_ns(msg.header.stamp), (rgb, latest_info[name]))

    for topic, _, _, msg in read_bag(path, list(topic_to_cam)):
        name, kind = topic_to_cam[topic]
        if kind == "info":
            latest_info[name] = camera_info_msg_to_fields(msg)
            if name in waiting:
                yield from frames(add_image(name, *waiting.pop(name)))
        elif name in latest_info:
            yield from frames(add_image(name, topic, msg))
        else:
            waiting[name] = (topic, msg)  # keep only the newest; older ones never get a CameraInfo
    yield from frames(sync.flush())
