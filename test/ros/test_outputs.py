"""Output topics: what each needs from the pipeline, how it is drawn, and its Image message."""
from __future__ import annotations

import numpy as np
import pytest
from fake_pipeline import make_fake_pipeline, rgb_frame

from anomaly_seg_ros.labels import SYNTHETIC
from anomaly_seg_ros.ros.conversions import image_msg_to_rgb
from anomaly_seg_ros.ros.outputs import (
    OUTPUT_TOPICS,
    HeatmapStyle,
    OutputSet,
    image_message,
    render,
    required_outputs,
    serialized_images_round_trip,
)

ENCODINGS = {'semantic': 'mono8', 'semantic_color': 'rgb8', 'entropy': '32FC1', 'softmax_distance': '32FC1',
             'perceptual_difference': '32FC1', 'dissimilarity': '32FC1', 'anomaly': '32FC1',
             'anomaly_color': 'rgb8', 'overlay': 'rgb8', 'synthesis': 'rgb8'}


def test_documented_topics_and_encodings():
    assert {topic: spec.encoding for topic, spec in OUTPUT_TOPICS.items()} == ENCODINGS


@pytest.mark.parametrize(('topics', 'outputs'), [
    (['semantic_color'], {'semantic'}),
    (['semantic', 'semantic_color'], {'semantic'}),
    (['overlay'], {'anomaly'}),
    (['anomaly_color', 'entropy'], {'anomaly', 'entropy'}),
    (['synthesis'], {'synthesis'}),
    ([], set()),
])
def test_topics_ask_the_pipeline_only_for_what_they_show(topics, outputs):
    assert required_outputs(topics) == outputs


@pytest.mark.parametrize('output_size', [None, 'network'])
def test_every_topic_renders_its_encoding_at_the_output_size(output_size):
    rgb = rgb_frame(48, 80)
    result = make_fake_pipeline().process(rgb, None, output_size)
    for topic, encoding in ENCODINGS.items():
        values = render(topic, result, rgb, SYNTHETIC, HeatmapStyle())
        expected = {'mono8': np.uint8, 'rgb8': np.uint8, '32FC1': np.float32}[encoding]
        assert values.dtype == expected, topic
        assert values.ndim == (3 if encoding == 'rgb8' else 2), topic
        if output_size is None:
            assert values.shape[:2] == (48, 80), topic
    if output_size == 'network':
        assert render('overlay', result, rgb, SYNTHETIC, HeatmapStyle()).shape == (32, 64, 3)


def test_heatmap_style_changes_the_colors():
    rgb = rgb_frame()
    result = make_fake_pipeline().process(rgb, {'anomaly'})
    turbo = render('anomaly_color', result, rgb, SYNTHETIC, HeatmapStyle('turbo'))
    gray = render('anomaly_color', result, rgb, SYNTHETIC, HeatmapStyle('gray'))
    assert not np.array_equal(turbo, gray)
    assert np.array_equal(gray[:, :, 0], gray[:, :, 1])
    camera_only = render('overlay', result, rgb, SYNTHETIC, HeatmapStyle(overlay_alpha=0.0))
    assert np.array_equal(camera_only, rgb)


def test_rendering_an_output_that_was_not_computed_is_an_error():
    result = make_fake_pipeline().process(rgb_frame(), {'semantic'})
    with pytest.raises(ValueError, match="needs pipeline output 'anomaly'"):
        render('overlay', result, rgb_frame(), SYNTHETIC, HeatmapStyle())


def test_image_message_keeps_the_header_and_round_trips():
    pytest.importorskip('sensor_msgs')
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    header = Header(frame_id='cam_front')
    header.stamp.sec, header.stamp.nanosec = 12, 345
    rgb = rgb_frame(5, 7)
    msg = image_message(Image, header, rgb, 'rgb8')
    assert msg.header.frame_id == 'cam_front' and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    assert (msg.width, msg.height, msg.step, msg.encoding) == (7, 5, 21, 'rgb8')
    assert np.array_equal(image_msg_to_rgb(msg), rgb)
    values = np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7)
    msg = image_message(Image, header, values, '32FC1')
    assert msg.step == 28
    assert np.array_equal(np.frombuffer(msg.data, dtype='<f4').reshape(5, 7), values)


@pytest.mark.parametrize(('encoding', 'array'), [
    ('rgb8', rgb_frame(5, 7)),
    ('mono8', rgb_frame(5, 7)[:, :, 0].copy()),
    ('32FC1', np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7)),
    ('mono16', np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000),
])
def test_image_msg_to_array_inverts_array_to_image_fields(encoding, array):
    from types import SimpleNamespace

    from anomaly_seg_ros.ros.conversions import array_to_image_fields, image_msg_to_array

    fields = array_to_image_fields(array, encoding)
    assert np.array_equal(image_msg_to_array(SimpleNamespace(**fields)), array)
    # padded rows and big-endian data read back the same
    padded = dict(fields, step=fields['step'] + 3,
                  data=b''.join(bytes(fields['data'][r * fields['step']:(r + 1) * fields['step']]) + b'\0\0\0'
                                for r in range(fields['height'])))
    assert np.array_equal(image_msg_to_array(SimpleNamespace(**padded)), array)
    if array.dtype.itemsize > 1:
        swapped = dict(fields, is_bigendian=1, data=array.astype(array.dtype.newbyteorder('>')).tobytes())
        assert np.array_equal(image_msg_to_array(SimpleNamespace(**swapped)), array)


def test_image_msg_to_array_refuses_a_short_buffer():
    from types import SimpleNamespace

    from anomaly_seg_ros.errors import ImageConversionError
    from anomaly_seg_ros.ros.conversions import array_to_image_fields, image_msg_to_array

    fields = array_to_image_fields(rgb_frame(5, 7), 'rgb8')
    with pytest.raises(ImageConversionError, match='does not match'):
        image_msg_to_array(SimpleNamespace(**dict(fields, data=fields['data'][:-1])))


def _rosbags_image(data: bytes):
    from anomaly_seg_ros.bags.io import typestore

    return typestore().deserialize_cdr(data, 'sensor_msgs/msg/Image')


@pytest.mark.parametrize(('encoding', 'array', 'frame_id'), [
    ('rgb8', rgb_frame(5, 7), 'cam_front'),
    ('mono8', rgb_frame(3, 5)[:, :, 0].copy(), ''),  # 15 bytes of data: the sequence ends unaligned
    ('32FC1', np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7), 'ab'),
    ('mono16', np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000, 'abc'),
])
def test_serialized_image_reads_back_with_header_geometry_and_pixels(encoding, array, frame_id):
    from anomaly_seg_ros.ros.conversions import image_msg_to_array, image_to_cdr

    msg = _rosbags_image(image_to_cdr(array, encoding, 1_700_000_000, 999_999_999, frame_id))
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (1_700_000_000, 999_999_999,
                                                                                     frame_id)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (array.shape[0], array.shape[1], encoding, 0)
    assert np.array_equal(image_msg_to_array(msg), array)


def test_serialized_image_is_what_rclpy_serializes_apart_from_alignment_padding():
    pytest.importorskip('sensor_msgs')
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from anomaly_seg_ros.ros.conversions import image_to_cdr

    header = Header(frame_id='odd')
    header.stamp.sec, header.stamp.nanosec = -3, 7
    values = np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7)
    ours = image_to_cdr(values, '32FC1', -3, 7, 'odd')
    theirs = serialize_message(image_message(Image, header, values, '32FC1'))
    assert len(ours) == len(theirs)
    # rclpy leaves alignment padding (here the byte after is_bigendian) uninitialized; ours is zero
    differ = [i for i in range(len(ours)) if ours[i] != theirs[i]]
    assert len(differ) <= 3 and all(ours[i] == 0 for i in differ), differ
    assert serialized_images_round_trip(lambda data: deserialize_message(data, Image))


def test_a_middleware_that_cannot_read_serialized_images_gets_message_objects():
    from anomaly_seg_ros.ros.conversions import image_to_cdr

    assert serialized_images_round_trip(_rosbags_image)
    assert not serialized_images_round_trip(lambda data: (_ for _ in ()).throw(ValueError('XCDR2 only')))
    other_pixels = _rosbags_image(image_to_cdr(np.zeros((3, 5, 3), np.uint8), 'rgb8', -7, 123456789, 'odd'))
    assert not serialized_images_round_trip(lambda data: other_pixels)


class _Recorder:
    def __init__(self) -> None:
        self.sent: list = []

    def publish(self, message) -> None:
        self.sent.append(message)

    def get_subscription_count(self) -> int:
        return 1


@pytest.mark.parametrize('serialized', [True, False])
def test_output_set_publishes_bytes_or_objects_with_the_same_content(serialized):
    from types import SimpleNamespace

    from anomaly_seg_ros.ros.conversions import image_msg_to_array

    header = SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=6), frame_id='cam')
    outputs = OutputSet(['semantic', 'anomaly', 'overlay'], lambda topic: _Recorder(), SimpleNamespace,
                        serialized=serialized)
    rgb = rgb_frame(48, 80)
    result = make_fake_pipeline().process(rgb, required_outputs(outputs.active()))
    assert outputs.publish(outputs.active(), result, rgb, header, SYNTHETIC, HeatmapStyle()) == \
        ['semantic', 'anomaly', 'overlay']
    for topic, publisher in outputs.publishers.items():
        (message,) = publisher.sent
        assert isinstance(message, bytes) == serialized, topic
        msg = _rosbags_image(message) if serialized else message
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (5, 6, 'cam'), topic
        assert np.array_equal(image_msg_to_array(msg), render(topic, result, rgb, SYNTHETIC, HeatmapStyle())), topic
