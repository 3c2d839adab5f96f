"""rosbag2 tools for machines without rosbag2: make, play, record and evaluate bags.

Files are written and read with ``rosbags`` (no ROS needed); only :func:`play_bag` and
:func:`record_bag` need rclpy, imported when they run.
"""
from __future__ import annotations

from .evaluate import BagEvaluation, LatencyStats, evaluate_bag
from .io import (
    STORAGES,
    BagError,
    BagMessage,
    BagWriter,
    bag_topics,
    compressed_message,
    decode_image,
    header_stamp_ns,
    image_message,
    iter_images,
    read_messages,
)
from .make import (
    DEFAULT_ANOMALY_GT_TOPIC,
    DEFAULT_IMAGE_TOPIC,
    DEFAULT_SEMANTIC_GT_TOPIC,
    MakeResult,
    image_folder_samples,
    make_bag,
)
from .play import PlayResult, play_bag
from .record import RecordResult, record_bag

__all__ = [
    'DEFAULT_ANOMALY_GT_TOPIC',
    'DEFAULT_IMAGE_TOPIC',
    'DEFAULT_SEMANTIC_GT_TOPIC',
    'STORAGES',
    'BagError',
    'BagEvaluation',
    'BagMessage',
    'BagWriter',
    'LatencyStats',
    'MakeResult',
    'PlayResult',
    'RecordResult',
    'bag_topics',
    'compressed_message',
    'decode_image',
    'evaluate_bag',
    'header_stamp_ns',
    'image_folder_samples',
    'image_message',
    'iter_images',
    'make_bag',
    'play_bag',
    'read_messages',
    'record_bag',
]
