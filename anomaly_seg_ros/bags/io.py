"""rosbag2 files without ROS: writing and reading image topics with ``rosbags``.

Bags are written as rosbag2 format version 8 (the oldest ``rosbags`` 0.11 writes; its metadata
keeps ``offered_qos_profiles`` as a YAML string, as Humble's reader expects) in the ``mcap``
(default) or ``sqlite3`` storage. Message types come from the ROS 2 Humble type store, whose
sensor_msgs/std_msgs definitions are the same on later distributions.

Arrays: ``mono8`` HxW uint8, ``rgb8``/``bgr8`` HxWx3 uint8, ``32FC1`` HxW float32, ``mono16``
HxW uint16 (:func:`decode_image` reads a few more). Stamps are integer nanoseconds.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import AnomalySegError, ImageConversionError
from ..ros.conversions import (
    array_to_image_fields,
    compressed_msg_to_array,
    image_msg_to_array,
    image_msg_to_rgb,
    rgb_to_compressed_fields,
)

__all__ = [
    'BAG_VERSION',
    'COMPRESSED_TYPE',
    'IMAGE_TYPE',
    'STORAGES',
    'BagError',
    'BagMessage',
    'BagWriter',
    'bag_topics',
    'compressed_message',
    'decode_image',
    'header_stamp_ns',
    'image_message',
    'iter_images',
    'read_messages',
    'typestore',
]

BAG_VERSION = 8
STORAGES = ('mcap', 'sqlite3')
IMAGE_TYPE = 'sensor_msgs/msg/Image'
COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
_RGB_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', '8UC3')  # decoded to RGB


class BagError(AnomalySegError):
    """A bag cannot be written or read, or lacks the topics asked for."""


@lru_cache(maxsize=1)
def typestore() -> Any:
    """The rosbags type store used for writing (ROS 2 Humble message definitions)."""
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_HUMBLE)


def _header(stamp_ns: int, frame_id: str) -> Any:
    types = typestore().types
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return types['std_msgs/msg/Header'](stamp=types['builtin_interfaces/msg/Time'](sec=sec, nanosec=nanosec),
                                        frame_id=frame_id)


def header_stamp_ns(msg: Any) -> int:
    """A message's header stamp in nanoseconds (works for rosbags and rclpy messages)."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def image_message(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    """A rosbags sensor_msgs/Image of ``array`` (see module doc for encodings)."""
    fields = array_to_image_fields(array, encoding)
    fields['data'] = np.frombuffer(fields['data'], dtype=np.uint8)
    return typestore().types[IMAGE_TYPE](header=_header(stamp_ns, frame_id), **fields)


def compressed_message(rgb: np.ndarray, stamp_ns: int, frame_id: str, fmt: str = 'jpeg') -> Any:
    """A rosbags sensor_msgs/CompressedImage of an HxWx3 uint8 RGB frame (jpeg or png)."""
    fields = rgb_to_compressed_fields(rgb, fmt)
    return typestore().types[COMPRESSED_TYPE](header=_header(stamp_ns, frame_id), format=fields['format'],
                                              data=np.frombuffer(fields['data'], dtype=np.uint8))


def decode_image(msg: Any) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> array, by :mod:`..ros.conversions`.

    Colour encodings (rgb8, bgr8, rgba8, bgra8, 8UC3) -> HxWx3 uint8 RGB; one-channel ones as stored:
    mono8/8UC1 HxW uint8, mono16/16UC1 HxW uint16, 32FC1 HxW float32. A CompressedImage as stored:
    HxW for one channel, HxWx3 RGB for colour. Raises :class:`BagError` for anything else.
    """
    try:
        if hasattr(msg, 'format') and not hasattr(msg, 'encoding'):
            return compressed_msg_to_array(msg)
        if str(msg.encoding) in _RGB_ENCODINGS:
            return image_msg_to_rgb(msg)
        return image_msg_to_array(msg)
    except ImageConversionError as exc:
        raise BagError(f'cannot decode image: {exc}') from exc


def _storage_plugin(storage: str) -> Any:
    from rosbags.rosbag2 import StoragePlugin
    if storage not in STORAGES:
        raise BagError(f'unknown bag storage {storage!r}; choose one of {", ".join(STORAGES)}')
    return StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3


class BagWriter:
    """A rosbag2 directory being written; topics are added on first use. A context manager.

    Args:
        path: the bag directory to create (must not exist).
        storage: ``mcap`` or ``sqlite3``.
    """

    def __init__(self, path: str | Path, storage: str = 'mcap') -> None:
        from rosbags.rosbag2 import Writer
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists already; remove it or choose another output path')
        self.storage = storage
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=_storage_plugin(storage))
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._writer.open()
        except Exception as exc:  # rosbags raises WriterError / OSError
            raise BagError(f'cannot create bag {self.path}: {exc}') from exc

    def close(self) -> None:
        self._writer.close()

    def set_custom_data(self, key: str, value: str) -> None:
        self._writer.set_custom_data(key, value)

    def _connection(self, topic: str, msgtype: str) -> Any:
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype not in typestore().types:
                raise BagError(f'topic {topic}: message type {msgtype} is not in the ROS 2 Humble type store')
            connection = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._connections[topic] = connection
            self.counts[topic] = 0
        elif connection.msgtype != msgtype:
            raise BagError(f'topic {topic} carries {connection.msgtype}, cannot also write {msgtype}')
        return connection

    def write(self, topic: str, msg: Any, timestamp_ns: int) -> None:
        """Serialize a rosbags message and write it at ``timestamp_ns`` (the bag's receive time)."""
        self.write_raw(topic, msg.__msgtype__, typestore().serialize_cdr(msg, msg.__msgtype__), timestamp_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview, timestamp_ns: int) -> None:
        """Write an already CDR-serialized message."""
        self._writer.write(self._connection(topic, msgtype), int(timestamp_ns), data)
        self.counts[topic] += 1


@dataclass(frozen=True)
class BagMessage:
    """One message read from a bag: topic, type, receive time (ns), raw CDR bytes.

    ``decode``/``encode`` use the bag's own message definitions and work after reading ended.
    """

    topic: str
    msgtype: str
    timestamp_ns: int
    raw: bytes
    _typestore: Any

    def decode(self) -> Any:
        return self._typestore.deserialize_cdr(self.raw, self.msgtype)

    def encode(self, msg: Any) -> bytes:
        """Serialize a (modified) decoded message of this topic's type back to CDR."""
        return bytes(self._typestore.serialize_cdr(msg, self.msgtype))


def _open_reader(path: str | Path) -> Any:
    from rosbags.highlevel import AnyReader
    path = Path(path)
    if not path.exists():
        raise BagError(f'bag not found: {path}')
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as exc:  # rosbags ReaderError, AnyReaderError, yaml errors
        raise BagError(f'cannot read bag {path}: {exc}') from exc
    return reader


def bag_topics(path: str | Path) -> dict[str, tuple[str, int]]:
    """Topic -> (message type, message count) of a bag."""
    reader = _open_reader(path)
    try:
        return {topic: (info.msgtype or '', int(info.msgcount)) for topic, info in reader.topics.items()}
    finally:
        reader.close()


def read_messages(path: str | Path, topics: Sequence[str] | None = None) -> Iterator[BagMessage]:
    """Messages of ``topics`` (all when ``None``) in receive-time order.

    Raises :class:`BagError` when a requested topic is not in the bag.
    """
    reader = _open_reader(path)
    try:
        connections = reader.connections
        if topics is not None:
            present = {c.topic for c in connections}
            missing = [t for t in topics if t not in present]
            if missing:
                raise BagError(f'bag {path} has no topic {", ".join(missing)}; topics: '
                               f'{", ".join(sorted(present)) or "none"}')
            connections = [c for c in connections if c.topic in set(topics)]
        for connection, timestamp, raw in reader.messages(connections=connections):
            yield BagMessage(connection.topic, connection.msgtype, int(timestamp), bytes(raw), reader.typestore)
    finally:
        reader.close()


def iter_images(path: str | Path, topic: str) -> Iterator[tuple[int, int, np.ndarray]]:
    """(header stamp ns, receive time ns, decoded array) of each image message of ``topic``.

    For comparing runs, e.g. two recordings of the node on the same bag, keyed by stamp.
    """
    for message in read_messages(path, [topic]):
        msg = message.decode()
        yield header_stamp_ns(msg), message.timestamp_ns, decode_image(msg)
