"""`bag make`: bags read back by rosbags with the right types, stamps and payloads (mcap, sqlite3)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from anomaly_seg_ros import cli
from anomaly_seg_ros.bags import BagError, decode_image, make_bag
from anomaly_seg_ros.bags.make import DEFAULT_START_NS
from anomaly_seg_ros.errors import DatasetError


def _read_back(path):
    """topic -> list of (msgtype, receive time, message) with plain rosbags (no project code)."""
    out = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for connection, timestamp, raw in reader.messages():
            out.setdefault(connection.topic, []).append(
                (connection.msgtype, timestamp, reader.deserialize(raw, connection.msgtype)))
    return out


def _stamp(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_make_bag_writes_frames_and_ground_truth_that_rosbags_reads_back(tmp_path, frames, storage):
    out = tmp_path / f'bag_{storage}'
    result = make_bag(frames, out, storage=storage, rate=4.0, frame_id='cam0', compressed=True,
                      compressed_format='png')
    assert result.frames == 3
    assert (out / 'metadata.yaml').is_file()
    assert any(p.suffix == ('.mcap' if storage == 'mcap' else '.db3') for p in out.iterdir())
    topics = _read_back(out)
    assert set(topics) == {'/camera/image_raw', '/camera/image_raw/compressed', '/ground_truth/anomaly',
                           '/ground_truth/semantic'}
    expected_stamps = [DEFAULT_START_NS + i * 250_000_000 for i in range(3)]
    for topic, messages in topics.items():
        assert [_stamp(m) for _, _, m in messages] == expected_stamps, topic
        assert [t for _, t, _ in messages] == expected_stamps, topic
        assert all(m.header.frame_id == 'cam0' for _, _, m in messages)
    for sample, (msgtype, _, msg) in zip(frames, topics['/camera/image_raw']):
        assert msgtype == 'sensor_msgs/msg/Image'
        assert (msg.encoding, msg.height, msg.width, msg.step) == ('rgb8', 12, 16, 48)
        np.testing.assert_array_equal(msg.data.reshape(12, 16, 3), sample.image)
    for sample, (msgtype, _, msg) in zip(frames, topics['/camera/image_raw/compressed']):
        assert msgtype == 'sensor_msgs/msg/CompressedImage' and 'png' in msg.format
        decoded = cv2.cvtColor(cv2.imdecode(msg.data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(decoded, sample.image)
    for sample, (_, _, msg) in zip(frames, topics['/ground_truth/anomaly']):
        assert msg.encoding == 'mono8'
        np.testing.assert_array_equal(msg.data.reshape(12, 16), sample.anomaly)
    for sample, (_, _, msg) in zip(frames, topics['/ground_truth/semantic']):
        np.testing.assert_array_equal(decode_image(msg), sample.semantic)


def test_mcap_bag_is_a_valid_mcap_file_with_ros2_schemas(tmp_path, frames):
    make_reader = pytest.importorskip('mcap.reader').make_reader
    out = tmp_path / 'bag'
    make_bag(frames, out, limit=2)
    with open(next(out.glob('*.mcap')), 'rb') as stream:
        summary = make_reader(stream).get_summary()
    assert {c.topic for c in summary.channels.values()} == {'/camera/image_raw', '/ground_truth/anomaly',
                                                           '/ground_truth/semantic'}
    assert {s.name for s in summary.schemas.values()} == {'sensor_msgs/msg/Image'}
    assert summary.statistics.message_count == 6


def test_bag_make_command_writes_a_labelled_dataset(tmp_path, fishyscapes_root, frames, capsys):
    out = tmp_path / 'cli_bag'
    code = cli.main(['bag', 'make', '--dataset', 'fishyscapes', '--root', str(fishyscapes_root), '--out', str(out),
                     '--storage', 'sqlite3', '--rate', '20', '--topic', '/cam/image', '--compressed-only',
                     '--limit', '2'])
    assert code == 0
    assert 'wrote 2 frames' in capsys.readouterr().out
    topics = _read_back(out)
    assert set(topics) == {'/cam/image/compressed', '/ground_truth/anomaly'}
    stamps = [_stamp(m) for _, _, m in topics['/ground_truth/anomaly']]
    assert stamps == [DEFAULT_START_NS, DEFAULT_START_NS + 50_000_000]
    np.testing.assert_array_equal(decode_image(topics['/ground_truth/anomaly'][1][2]), frames[1].anomaly)


def test_bag_make_command_from_an_image_folder_has_no_ground_truth(tmp_path, fishyscapes_root):
    out = tmp_path / 'images_bag'
    assert cli.main(['bag', 'make', '--images', str(fishyscapes_root / 'original'), '--out', str(out),
                     '--start-time', '12.5']) == 0
    topics = _read_back(out)
    assert set(topics) == {'/camera/image_raw'}
    assert _stamp(topics['/camera/image_raw'][0][2]) == 12_500_000_000


def test_make_bag_refuses_an_existing_path_and_removes_a_half_written_bag(tmp_path, frames):
    out = tmp_path / 'bag'
    make_bag(frames, out)
    with pytest.raises(BagError, match='exists'):
        make_bag(frames, out)

    def broken():
        yield frames[0]
        raise DatasetError('label file missing')

    with pytest.raises(DatasetError):
        make_bag(broken(), tmp_path / 'partial')
    assert not (tmp_path / 'partial').exists()


def test_same_input_makes_byte_identical_bags(tmp_path, frames):
    a, b = tmp_path / 'a' / 'bag', tmp_path / 'b' / 'bag'
    make_bag(frames, a)
    make_bag(frames, b)
    assert (a / 'bag.mcap').read_bytes() == (b / 'bag.mcap').read_bytes()
    assert (a / 'metadata.yaml').read_text() == (b / 'metadata.yaml').read_text()


def test_decode_image_gives_colour_as_rgb_one_channel_maps_as_stored_and_refuses_the_rest():
    import types

    from anomaly_seg_ros.errors import ImageConversionError
    from anomaly_seg_ros.ros.conversions import rgb_to_compressed_fields

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    depth = rng.integers(0, 65536, (4, 5), dtype=np.uint16)

    def image(array, encoding):
        return types.SimpleNamespace(height=4, width=5, encoding=encoding, is_bigendian=0,
                                     step=array[0].nbytes, data=array.tobytes())

    np.testing.assert_array_equal(decode_image(image(rgb[:, :, ::-1], 'bgr8')), rgb)
    np.testing.assert_array_equal(decode_image(image(np.dstack([rgb[:, :, ::-1], gray]), 'bgra8')), rgb)
    np.testing.assert_array_equal(decode_image(image(gray, '8UC1')), gray)
    assert decode_image(image(depth, '16UC1')).dtype == np.uint16
    np.testing.assert_array_equal(decode_image(image(depth, '16UC1')), depth)
    png = types.SimpleNamespace(format='png', data=cv2.imencode('.png', gray)[1].tobytes())
    np.testing.assert_array_equal(decode_image(png), gray)  # one channel stays one channel
    np.testing.assert_array_equal(decode_image(types.SimpleNamespace(**rgb_to_compressed_fields(rgb, 'png'))), rgb)
    for bad in (image(gray, 'nv24'), types.SimpleNamespace(format='jpeg', data=b'not an image')):
        with pytest.raises(BagError, match='cannot decode image') as error:
            decode_image(bad)
        assert isinstance(error.value.__cause__, ImageConversionError)
