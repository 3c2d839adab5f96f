"""Image message conversions, on plain objects with the fields of sensor_msgs/Image."""
from __future__ import annotations

import types

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.errors import ImageConversionError
from anomaly_seg_ros.ros.conversions import (
    array_to_image_fields,
    compressed_msg_to_array,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
    rgb_to_compressed_fields,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)


def _msg(array: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> types.SimpleNamespace:
    """A message with rows padded by ``pad`` bytes."""
    rows = array.reshape(array.shape[0], -1).view(np.uint8) if array.dtype != np.uint8 else \
        array.reshape(array.shape[0], -1)
    padded = np.zeros((rows.shape[0], rows.shape[1] + pad), dtype=np.uint8)
    padded[:, : rows.shape[1]] = rows
    return types.SimpleNamespace(height=array.shape[0], width=array.shape[1], encoding=encoding,
                                 is_bigendian=int(big_endian), step=padded.shape[1], data=padded.tobytes())


@pytest.mark.parametrize('pad', [0, 5])
@pytest.mark.parametrize('encoding, make', [
    ('rgb8', lambda rgb: rgb),
    ('bgr8', lambda rgb: rgb[:, :, ::-1]),
    ('rgba8', lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])),
    ('bgra8', lambda rgb: np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 7, np.uint8)])),
])
def test_color_encodings_convert_to_rgb_with_and_without_row_padding(encoding, make, pad):
    msg = _msg(np.ascontiguousarray(make(RGB)), encoding, pad=pad)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), RGB)


def test_mono8_expands_to_three_equal_channels():
    mono = RGB[:, :, 0].copy()
    out = image_msg_to_rgb(_msg(mono, 'mono8', pad=3))
    assert out.shape == (6, 9, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], mono)


@pytest.mark.parametrize('big_endian', [False, True])
def test_mono16_keeps_the_top_byte_in_either_byte_order(big_endian):
    mono16 = RNG.integers(0, 65536, (4, 5), dtype=np.uint16)
    stored = mono16.astype('>u2' if big_endian else '<u2')
    out = image_msg_to_rgb(_msg(stored, 'mono16', pad=2, big_endian=big_endian))
    np.testing.assert_array_equal(out[:, :, 1], (mono16 >> 8).astype(np.uint8))


@pytest.mark.parametrize('change, match', [
    (dict(encoding='nv24'), 'unsupported encoding .nv24.'),
    (dict(height=0), 'no pixels'),
    (dict(width=0), 'no pixels'),
    (dict(step=5), 'step 5 is shorter'),
    (dict(data=b'\0' * 10), 'data holds 10 bytes'),
    (dict(data=RGB.tobytes() + b'\0'), 'data holds'),
    (dict(width=20000, height=20000), 'exceeds'),
])
def test_malformed_messages_raise_conversion_errors_naming_the_problem(change, match):
    msg = _msg(RGB, 'rgb8')
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=match):
        image_msg_to_rgb(msg)


@pytest.mark.parametrize('encoding, array', [
    ('rgb8', RGB),
    ('mono8', RGB[:, :, 0].copy()),
    ('32FC1', RNG.random((6, 9), dtype=np.float32)),
])
def test_output_fields_describe_the_array_exactly(encoding, array):
    fields = array_to_image_fields(array, encoding)
    assert (fields['height'], fields['width'], fields['encoding']) == (6, 9, encoding)
    assert fields['step'] * fields['height'] == len(fields['data'])
    restored = np.frombuffer(fields['data'], dtype=array.dtype).reshape(array.shape)
    np.testing.assert_array_equal(restored, array)


def test_output_fields_refuse_an_array_of_the_wrong_type():
    with pytest.raises(ValueError, match='32FC1 needs an array of HxW float32'):
        array_to_image_fields(RGB[:, :, 0], '32FC1')


def test_compressed_png_round_trips_and_garbage_is_refused():
    fields = rgb_to_compressed_fields(RGB, 'png')
    np.testing.assert_array_equal(compressed_msg_to_rgb(types.SimpleNamespace(**fields)), RGB)
    with pytest.raises(ImageConversionError, match='cannot be decoded'):
        compressed_msg_to_rgb(types.SimpleNamespace(format='jpeg', data=b'not an image'))
    with pytest.raises(ImageConversionError, match='no data'):
        compressed_msg_to_rgb(types.SimpleNamespace(format='jpeg', data=b''))


def test_compressed_array_keeps_what_the_file_holds_and_rgb_always_has_three_channels():
    gray = RGB[:, :, 0]
    msg = types.SimpleNamespace(format='png', data=cv2.imencode('.png', gray)[1].tobytes())
    np.testing.assert_array_equal(compressed_msg_to_array(msg), gray)
    np.testing.assert_array_equal(compressed_msg_to_rgb(msg), np.repeat(gray[:, :, None], 3, axis=2))
    depth = RNG.integers(0, 65536, (6, 9), dtype=np.uint16)
    msg = types.SimpleNamespace(format='png', data=cv2.imencode('.png', depth)[1].tobytes())
    np.testing.assert_array_equal(compressed_msg_to_array(msg), depth)
    colour = types.SimpleNamespace(**rgb_to_compressed_fields(RGB, 'png'))
    np.testing.assert_array_equal(compressed_msg_to_array(colour), RGB)
    with pytest.raises(ImageConversionError, match='no data'):
        compressed_msg_to_array(types.SimpleNamespace(format='png', data=b''))


def test_compressed_jpeg_decodes_close_to_the_original():
    smooth = cv2.GaussianBlur(np.repeat(RGB, 8, axis=0).repeat(8, axis=1), (9, 9), 3)
    out = compressed_msg_to_rgb(types.SimpleNamespace(**rgb_to_compressed_fields(smooth, 'jpeg', 95)))
    assert np.abs(out.astype(int) - smooth).mean() < 4
