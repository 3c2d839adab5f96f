"""Camera frames for ``anomaly_seg demo``: synthetic scenes, an image folder, or a rosbag.

Each source is a :class:`FrameSource`: a description, the number of frames when known, and an
iterator of :class:`Frame` (name + HxWx3 uint8 RGB). Nothing here needs ROS: bags are read with
``rosbags`` and decoded with the node's own conversions.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..data.sample import list_images, read_rgb, require_dir
from ..errors import DatasetError, ImageConversionError

__all__ = ['Frame', 'FrameSource', 'bag_source', 'folder_source', 'synthetic_source']

_IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')


class Frame(NamedTuple):
    """One camera frame: a name for output files and HxWx3 uint8 RGB."""

    name: str
    rgb: np.ndarray


@dataclass(frozen=True)
class FrameSource:
    """Where frames come from: ``open()`` yields them in order; ``count`` when known (else None)."""

    description: str
    count: int | None
    open: Callable[[], Iterator[Frame]]


def synthetic_source(count: int = 60, seed: int = 0, width: int = 512, height: int = 256,
                     split: str = 'anomaly_test') -> FrameSource:
    """Frames of the synthetic scene generator (deterministic for ``seed``); anomalies by default."""
    if count < 1:
        raise ValueError(f'frame count must be positive, got {count}')

    def frames() -> Iterator[Frame]:
        from ..data.synthetic import render_frame
        for index in range(count):
            yield Frame(f'{index:06d}', render_frame(seed, split, index, width=width, height=height).image)

    return FrameSource(f'{count} synthetic {split} frames ({width}x{height}, seed {seed})', count, frames)


def folder_source(directory: str | Path, limit: int | None = None) -> FrameSource:
    """The images (png, jpg, ...) of one folder, sorted by name; raises DatasetError when there are none."""
    folder = require_dir(Path(directory), 'image folder')
    paths = list_images(folder)[:limit]
    if not paths:
        raise DatasetError(f'no images (png, jpg, jpeg, webp, bmp) in {folder}; pass a folder of camera frames')

    def frames() -> Iterator[Frame]:
        for path in paths:
            yield Frame(path.stem, read_rgb(path))

    return FrameSource(f'{len(paths)} images from {folder}', len(paths), frames)


def bag_source(path: str | Path, topic: str | None = None, limit: int | None = None) -> FrameSource:
    """Image or CompressedImage messages of ``topic`` in a rosbag2 (the first image topic by default)."""
    from ..bags import bag_topics, read_messages

    topics = bag_topics(path)
    images = {name: (msgtype, n) for name, (msgtype, n) in topics.items() if msgtype in _IMAGE_TYPES}
    if topic is None:
        if not images:
            raise DatasetError(f'bag {path} has no sensor_msgs/Image or CompressedImage topic; topics: '
                               f'{", ".join(sorted(topics)) or "none"}')
        topic = sorted(images)[0]
    elif topic not in images:
        raise DatasetError(f'bag {path} has no image topic {topic}; image topics: '
                           f'{", ".join(sorted(images)) or "none"}')
    count = images[topic][1] if limit is None else min(limit, images[topic][1])
    chosen = topic

    def frames() -> Iterator[Frame]:
        from ..ros.conversions import compressed_msg_to_rgb, image_msg_to_rgb
        for index, message in enumerate(read_messages(path, [chosen])):
            if index >= count:
                return
            msg = message.decode()
            try:
                rgb = compressed_msg_to_rgb(msg) if message.msgtype.endswith('CompressedImage') \
                    else image_msg_to_rgb(msg)
            except ImageConversionError:
                continue  # a frame the node would skip too
            yield Frame(f'{index:06d}', rgb)

    return FrameSource(f'{count} frames of {chosen} from {path}', count, frames)
