"""``bag make``: a rosbag2 of camera frames (and their ground truth) from images or a dataset.

Per frame i, every topic gets one message with header stamp ``start + i / rate`` (also the
bag's receive time) and the same ``frame_id``:

* ``topic`` (default ``/camera/image_raw``): sensor_msgs/Image rgb8;
* ``topic + '/compressed'`` with ``compressed``: sensor_msgs/CompressedImage (jpeg or png);
* ``anomaly_topic`` (default ``/ground_truth/anomaly``): mono8, 0 inlier / 1 anomaly / 255 ignore,
  where the sample has anomaly labels;
* ``semantic_topic`` (default ``/ground_truth/semantic``): mono8 train ids (255 ignore), where the
  sample has a semantic map.

The default start stamp is fixed, so the same input makes the same bag byte for byte.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..data.sample import Sample, list_images, read_rgb, require_dir
from ..errors import DatasetError
from .io import BagWriter, compressed_message, image_message

__all__ = [
    'DEFAULT_ANOMALY_GT_TOPIC',
    'DEFAULT_IMAGE_TOPIC',
    'DEFAULT_SEMANTIC_GT_TOPIC',
    'DEFAULT_START_NS',
    'MakeResult',
    'image_folder_samples',
    'make_bag',
]

DEFAULT_IMAGE_TOPIC = '/camera/image_raw'
DEFAULT_ANOMALY_GT_TOPIC = '/ground_truth/anomaly'
DEFAULT_SEMANTIC_GT_TOPIC = '/ground_truth/semantic'
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


@dataclass
class MakeResult:
    """What was written: the bag path, frames, and messages per topic."""

    path: Path
    storage: str
    frames: int
    counts: dict[str, int] = field(default_factory=dict)


def image_folder_samples(directory: str | Path) -> Iterator[Sample]:
    """Samples without labels from the images (png, jpg, ...) of one folder, sorted by name.

    Raises :class:`~..errors.DatasetError` at once for a missing or empty folder.
    """
    folder = require_dir(Path(directory), 'image folder')
    paths = list_images(folder)
    if not paths:
        raise DatasetError(f'no images (png, jpg, jpeg, webp, bmp) in {folder}')
    return (Sample(path.stem, read_rgb(path), None, None, None, None) for path in paths)


def make_bag(samples: Iterable[Sample], out: str | Path, storage: str = 'mcap', rate: float = 10.0,
             frame_id: str = 'camera', topic: str = DEFAULT_IMAGE_TOPIC, compressed: bool = False,
             raw: bool = True, compressed_format: str = 'jpeg', anomaly_topic: str = DEFAULT_ANOMALY_GT_TOPIC,
             semantic_topic: str = DEFAULT_SEMANTIC_GT_TOPIC, start_ns: int = DEFAULT_START_NS,
             limit: int | None = None, source: str = '') -> MakeResult:
    """Write ``samples`` to a new bag ``out`` (see the module doc for topics and stamps).

    Args:
        raw: write the sensor_msgs/Image topic (``False`` with ``compressed`` for a compressed-only bag).
        limit: stop after this many frames.
        source: free text stored in the bag's custom data (``anomaly_seg_ros.source``).
    Raises:
        BagError: ``out`` exists or cannot be written; ValueError for a bad rate or no image topic.
    """
    if not rate > 0:
        raise ValueError(f'rate must be positive, got {rate}')
    if not raw and not compressed:
        raise ValueError('nothing to write: enable the raw or the compressed image topic')
    period_ns = 1e9 / rate
    frames = 0
    writer = BagWriter(out, storage)  # raises when ``out`` exists: nothing to clean up then
    try:
        with writer:
            if source:
                writer.set_custom_data('anomaly_seg_ros.source', source)
            for i, sample in enumerate(samples):
                if limit is not None and i >= limit:
                    break
                stamp = int(start_ns + round(i * period_ns))
                if raw:
                    writer.write(topic, image_message(sample.image, 'rgb8', stamp, frame_id), stamp)
                if compressed:
                    writer.write(f'{topic.rstrip("/")}/compressed',
                                 compressed_message(sample.image, stamp, frame_id, compressed_format), stamp)
                if sample.anomaly is not None:
                    writer.write(anomaly_topic, image_message(sample.anomaly, 'mono8', stamp, frame_id), stamp)
                if sample.semantic is not None:
                    writer.write(semantic_topic, image_message(sample.semantic, 'mono8', stamp, frame_id), stamp)
                frames += 1
    except BaseException:
        # A half-written bag is of no use and would block the next attempt (the path must not exist).
        shutil.rmtree(writer.path, ignore_errors=True)
        raise
    return MakeResult(Path(out), storage, frames, dict(writer.counts))
