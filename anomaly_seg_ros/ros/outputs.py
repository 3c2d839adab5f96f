"""Output topics: which are wanted, what they need from the pipeline, and their Image messages.

Each topic under the node's private namespace is one :class:`TopicSpec`: the pipeline output it
is made from, its encoding, and how the map is rendered (raw, colorized by the label set, heatmap,
overlay on the camera frame). A frame's work is decided by who listens: :meth:`OutputSet.active`
lists the advertised topics with at least one subscriber, :func:`required_outputs` turns them into
pipeline output names (so the pipeline runs only the stages those need), and only active topics are
rendered and converted to messages. Every message carries the input frame's header unchanged.

Messages go out serialized (:func:`.conversions.image_to_cdr`, one copy of the pixels) where the
middleware reads those bytes back as the same Image, which :func:`serialized_images_round_trip`
checks once at start-up; message objects otherwise.
"""
from __future__ import annotations

import array
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..imaging import resize_map
from ..labels import LabelSet
from ..pipeline import PipelineResult
from ..visualization import colorize_heatmap, colorize_labels, overlay
from .conversions import array_to_image_fields, image_msg_to_array, image_to_cdr

__all__ = [
    'OUTPUT_TOPICS',
    'HeatmapStyle',
    'OutputSet',
    'TopicSpec',
    'image_message',
    'render',
    'required_outputs',
    'serialized_images_round_trip',
]


@dataclass(frozen=True)
class HeatmapStyle:
    """How anomaly maps are colorized: colormap name, value range (low, high), overlay alpha."""

    colormap: str = 'turbo'
    value_range: tuple[float, float] = (0.0, 1.0)
    overlay_alpha: float = 0.5


@dataclass(frozen=True)
class TopicSpec:
    """An output topic: the pipeline output it shows, its encoding, and how it is drawn.

    ``kind``: 'raw' (the map as is), 'labels' (label-set colors), 'heatmap' (colormap of the
    anomaly), 'overlay' (camera frame blended with the heatmap).
    """

    source: str
    encoding: str
    kind: str
    description: str


OUTPUT_TOPICS: dict[str, TopicSpec] = {
    'semantic': TopicSpec('semantic', 'mono8', 'raw', 'train ids of the model label set'),
    'semantic_color': TopicSpec('semantic', 'rgb8', 'labels', 'semantic map in label-set colors'),
    'entropy': TopicSpec('entropy', '32FC1', 'raw', 'softmax entropy / log(classes), [0, 1]'),
    'softmax_distance': TopicSpec('softmax_distance', '32FC1', 'raw', 'softmax distance, [0, 1]'),
    'perceptual_difference': TopicSpec('perceptual_difference', '32FC1', 'raw',
                                       'VGG perceptual difference camera vs synthesis, [0, 1]'),
    'dissimilarity': TopicSpec('dissimilarity', '32FC1', 'raw', 'dissimilarity network P(anomaly), [0, 1]'),
    'anomaly': TopicSpec('anomaly', '32FC1', 'raw', 'ensemble anomaly score, [0, 1]'),
    'anomaly_color': TopicSpec('anomaly', 'rgb8', 'heatmap', 'anomaly score as a colormap'),
    'overlay': TopicSpec('anomaly', 'rgb8', 'overlay', 'camera frame blended with the anomaly heatmap'),
    'synthesis': TopicSpec('synthesis', 'rgb8', 'raw', 'image re-synthesized from the semantic map'),
}


def required_outputs(topics: Collection[str]) -> frozenset[str]:
    """Pipeline outputs (see :data:`..pipeline.OUTPUT_NAMES`) needed to publish ``topics``."""
    return frozenset(OUTPUT_TOPICS[topic].source for topic in topics)


def render(topic: str, result: PipelineResult, rgb: np.ndarray, label_set: LabelSet,
           style: HeatmapStyle, heatmaps: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The array published on ``topic``: HxW uint8/float32 or HxWx3 uint8, per its encoding.

    ``rgb`` is the camera frame (HxWx3 uint8), used by the overlay; it is resized to the anomaly
    map's size when outputs are published at another size. ``heatmaps``: a per-frame cache, so the
    heatmap and the overlay of one frame colorize the anomaly map once.
    """
    spec = OUTPUT_TOPICS[topic]
    values = result.get(spec.source)
    if values is None:
        raise ValueError(f'topic {topic!r} needs pipeline output {spec.source!r}, which was not computed')
    if spec.kind == 'raw':
        return values
    if spec.kind == 'labels':
        return colorize_labels(values, label_set)
    heatmaps = {} if heatmaps is None else heatmaps
    if spec.source not in heatmaps:
        heatmaps[spec.source] = colorize_heatmap(values, style.colormap, style.value_range)
    heatmap = heatmaps[spec.source]
    if spec.kind == 'heatmap':
        return heatmap
    if rgb.shape[:2] != heatmap.shape[:2]:
        rgb = resize_map(rgb, heatmap.shape[:2])
    return overlay(rgb, heatmap, style.overlay_alpha)


def image_message(image_type: type, header: Any, values: np.ndarray, encoding: str) -> Any:
    """A sensor_msgs/Image (``image_type``) holding ``values`` with ``header`` unchanged."""
    fields = array_to_image_fields(values, encoding)
    data = array.array('B')
    data.frombytes(fields.pop('data'))  # the one copy; array.array also skips rclpy's per-byte field check
    msg = image_type(header=header, **fields)
    msg.data = data
    return msg


def serialized_images_round_trip(deserialize: Callable[[bytes], Any]) -> bool:
    """True when ``deserialize`` (e.g. rclpy's ``deserialize_message`` for Image) reads
    :func:`.conversions.image_to_cdr`'s bytes back as the image that was written."""
    values = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    try:
        msg = deserialize(image_to_cdr(values, 'rgb8', -7, 123456789, 'odd'))
        return bool(int(msg.header.stamp.sec) == -7 and int(msg.header.stamp.nanosec) == 123456789
                    and msg.header.frame_id == 'odd' and msg.encoding == 'rgb8'
                    and np.array_equal(image_msg_to_array(msg), values))
    except Exception:  # noqa: BLE001 - any failure to read them back means: publish message objects
        return False


class OutputSet:
    """The advertised output topics of one node and their publishers.

    Args:
        topics: topic names (keys of :data:`OUTPUT_TOPICS`) to advertise.
        create_publisher: ``create_publisher(topic_name) -> publisher`` (with ``publish`` and
            ``get_subscription_count``), e.g. a bound ``Node.create_publisher`` with type and QoS.
        image_type: the sensor_msgs/Image class.
        serialized: publish serialized bytes (see :func:`serialized_images_round_trip`) instead of
            message objects.
    """

    def __init__(self, topics: Sequence[str], create_publisher: Callable[[str], Any], image_type: type,
                 serialized: bool = False) -> None:
        unknown = [t for t in topics if t not in OUTPUT_TOPICS]
        if unknown:
            raise ValueError(f'unknown output topics {unknown}; known: {", ".join(OUTPUT_TOPICS)}')
        self._image_type = image_type
        self.serialized = serialized
        self.publishers: dict[str, Any] = {topic: create_publisher(f'~/{topic}') for topic in topics}

    def active(self) -> list[str]:
        """Advertised topics that have at least one subscriber now."""
        return [topic for topic, pub in self.publishers.items() if pub.get_subscription_count() > 0]

    def publish(self, topics: Sequence[str], result: PipelineResult, rgb: np.ndarray, header: Any,
                label_set: LabelSet, style: HeatmapStyle) -> list[str]:
        """Render and publish ``topics`` from one frame's result; returns the topics published."""
        heatmaps: dict[str, np.ndarray] = {}
        rendered: Mapping[str, np.ndarray] = {
            topic: render(topic, result, rgb, label_set, style, heatmaps) for topic in topics
        }
        stamp = header.stamp
        for topic, values in rendered.items():
            encoding = OUTPUT_TOPICS[topic].encoding
            message = (image_to_cdr(values, encoding, int(stamp.sec), int(stamp.nanosec), str(header.frame_id))
                       if self.serialized else image_message(self._image_type, header, values, encoding))
            self.publishers[topic].publish(message)
        return list(rendered)
