"""Camera encodings beyond RGB: Bayer, YUV 4:2:2, NV12/NV21 and 10/12-bit data reach the pipeline as the RGB frame."""
from __future__ import annotations

import types

import numpy as np
import pytest

from anomaly_seg_ros.errors import ImageConversionError
from anomaly_seg_ros.ros.conversions import compressed_msg_to_rgb, image_msg_to_rgb


def _smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """A frame whose colours change slowly (demosaicing and chroma subsampling keep such frames),
    with a different gradient in each channel, so swapped channels or patterns show."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.dstack([40 + 3 * x, 200 - 2 * y, 60 + x + y])
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _msg(rows: np.ndarray, encoding: str, width: int, pad: int = 0, big_endian: bool = False) -> types.SimpleNamespace:
    raw = rows.astype(rows.dtype.newbyteorder('>' if big_endian else '<')).reshape(rows.shape[0], -1)
    raw = raw.view(np.uint8)
    padded = np.zeros((raw.shape[0], raw.shape[1] + pad), np.uint8)
    padded[:, : raw.shape[1]] = raw
    return types.SimpleNamespace(height=rows.shape[0], width=width, encoding=encoding, is_bigendian=int(big_endian),
                                 step=padded.shape[1], data=padded.tobytes())


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The Bayer mosaic a sensor with the ROS ``pattern`` (top-left 2x2 cell, row by row) records."""
    channel = {'r': 0, 'g': 1, 'b': 2}
    mosaic = np.empty(rgb.shape[:2], rgb.dtype)
    for i, colour in enumerate(pattern):
        dy, dx = divmod(i, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, channel[colour]]
    return mosaic


def _interior_error(out: np.ndarray, rgb: np.ndarray) -> float:
    return float(np.abs(out[2:-2, 2:-2].astype(int) - rgb[2:-2, 2:-2].astype(int)).mean())


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer8_of_every_pattern_demosaics_to_the_rgb_frame(pattern):
    rgb = _smooth_rgb()
    out = image_msg_to_rgb(_msg(_mosaic(rgb, pattern), f'bayer_{pattern}8', rgb.shape[1], pad=6))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert _interior_error(out, rgb) < 2.0
    # The wrong pattern (OpenCV's own name for it) swaps red and blue: far off.
    wrong = {'rggb': 'bggr', 'bggr': 'rggb', 'gbrg': 'grbg', 'grbg': 'gbrg'}[pattern]
    assert _interior_error(image_msg_to_rgb(_msg(_mosaic(rgb, wrong), f'bayer_{pattern}8', rgb.shape[1])), rgb) > 20


@pytest.mark.parametrize('big_endian', [False, True])
@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
def test_bayer16_demosaics_and_scales_the_significant_bits(pattern, big_endian):
    rgb = _smooth_rgb()
    twelve_bit = rgb.astype(np.uint16) << 4  # a 12-bit sensor: values 0..4095
    msg = _msg(_mosaic(twelve_bit, pattern), f'bayer_{pattern}16', rgb.shape[1], big_endian=big_endian)
    assert _interior_error(image_msg_to_rgb(msg, significant_bits=12), rgb) < 2.0
    assert image_msg_to_rgb(msg).max() < 16  # read as 16-bit data, the same frame is nearly black


def _bt601_video_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V (float) of an RGB frame in BT.601 video range, what cameras send."""
    r, g, b = (rgb[:, :, i].astype(float) for i in range(3))
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return y, u, v


@pytest.mark.parametrize('encoding, order', [('yuv422', 'uyvy'), ('uyvy', 'uyvy'),
                                             ('yuv422_yuy2', 'yuyv'), ('yuyv', 'yuyv')])
def test_yuv422_converts_to_the_rgb_frame(encoding, order):
    rgb = _smooth_rgb()
    y, u, v = _bt601_video_yuv(rgb)
    y = np.rint(y).astype(int)
    # 4:2:2: one U and one V per pixel pair (their mean), packed in the camera's byte order.
    u2 = np.rint((u[:, 0::2] + u[:, 1::2]) / 2).astype(np.uint8)
    v2 = np.rint((v[:, 0::2] + v[:, 1::2]) / 2).astype(np.uint8)
    y0, y1 = y[:, 0::2].astype(np.uint8), y[:, 1::2].astype(np.uint8)
    parts = {'uyvy': (u2, y0, v2, y1), 'yuyv': (y0, u2, y1, v2)}[order]
    packed = np.stack(parts, axis=2).reshape(rgb.shape[0], -1)
    out = image_msg_to_rgb(_msg(packed, encoding, rgb.shape[1], pad=4))
    assert out.shape == rgb.shape
    assert _interior_error(out, rgb) < 3.0


def _nv_planes(rgb: np.ndarray, chroma_order: str, pad: int) -> np.ndarray:
    """The Y plane over the half-height plane of interleaved chroma pairs (one per 2x2 block), rows padded."""
    y, u, v = _bt601_video_yuv(rgb)
    def block_mean(plane):
        return (plane[0::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 0::2] + plane[1::2, 1::2]) / 4
    chroma = {'uv': (block_mean(u), block_mean(v)), 'vu': (block_mean(v), block_mean(u))}[chroma_order]
    interleaved = np.stack(chroma, axis=2).reshape(rgb.shape[0] // 2, rgb.shape[1])
    planes = np.rint(np.vstack([y, interleaved])).astype(np.uint8)
    return np.pad(planes, ((0, 0), (0, pad)))


@pytest.mark.parametrize('encoding, chroma_order', [('nv12', 'uv'), ('nv21', 'vu')])
def test_yuv420_semi_planar_converts_to_the_rgb_frame(encoding, chroma_order):
    rgb = _smooth_rgb()
    planes = _nv_planes(rgb, chroma_order, pad=8)
    msg = types.SimpleNamespace(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
                                step=planes.shape[1], data=planes.tobytes())
    out = image_msg_to_rgb(msg)
    assert out.shape == rgb.shape
    assert _interior_error(out, rgb) < 3.0
    # The other chroma order swaps U and V: far off, so the two encodings are not confused.
    other = _nv_planes(rgb, chroma_order[::-1], pad=8)
    assert _interior_error(image_msg_to_rgb(types.SimpleNamespace(**{**vars(msg), 'data': other.tobytes()})), rgb) > 20


def test_yuv420_semi_planar_data_must_hold_both_planes():
    rgb = _smooth_rgb()
    planes = _nv_planes(rgb, 'uv', pad=0)
    only_luma = types.SimpleNamespace(height=rgb.shape[0], width=rgb.shape[1], encoding='nv12', is_bigendian=0,
                                      step=rgb.shape[1], data=planes[: rgb.shape[0]].tobytes())
    with pytest.raises(ImageConversionError, match='3/2'):
        image_msg_to_rgb(only_luma)


@pytest.mark.parametrize('bits', [10, 12, 16])
def test_mono16_uses_the_full_range_of_its_significant_bits(bits):
    values = np.array([[0, (1 << bits) - 1, 1 << (bits - 1), (1 << bits) // 4]], np.uint16)
    out = image_msg_to_rgb(_msg(values, 'mono16', 4), significant_bits=bits)[:, :, 0]
    np.testing.assert_array_equal(out[0], [0, 255, 128, 64])


def test_values_above_the_significant_bits_saturate_instead_of_wrapping():
    out = image_msg_to_rgb(_msg(np.array([[4095, 65535]], np.uint16), '16UC1', 2), significant_bits=12)
    np.testing.assert_array_equal(out[0, :, 0], [255, 255])


def test_a_16_bit_frame_in_a_small_part_of_its_range_is_warned_about_with_the_fix():
    twelve_bit = _msg(np.array([[0, 4000]], np.uint16), 'mono16', 2)
    def warnings(msg, bits=16):
        said = []
        image_msg_to_rgb(msg, bits, said.append)
        return said

    (warning,) = warnings(twelve_bit, 16)
    assert warning is not None and 'input_significant_bits to 12' in warning
    assert warnings(twelve_bit, 12) == []
    assert warnings(_msg(np.zeros((2, 2), np.uint8), 'mono8', 2)) == []


@pytest.mark.parametrize('encoding, width, height', [('yuv422', 7, 4), ('bayer_rggb8', 8, 5), ('yuyv', 1, 1),
                                                     ('nv12', 8, 5), ('nv21', 7, 4)])
def test_odd_sizes_that_cannot_hold_the_pattern_are_refused(encoding, width, height):
    rows = np.zeros((height * (3 if encoding.startswith('nv') else 2) // 2,
                     width * (2 if 'y' in encoding[:3] else 1)), np.uint8)
    with pytest.raises(ImageConversionError, match='even'):
        image_msg_to_rgb(_msg(rows, encoding, width))


@pytest.mark.parametrize('encoding', ['32FC1', '16UC3', '64FC1'])
def test_depth_and_float_images_are_refused_as_not_camera_pictures(encoding):
    msg = types.SimpleNamespace(height=2, width=2, encoding=encoding, is_bigendian=0, step=8, data=bytes(16))
    with pytest.raises(ImageConversionError, match='not a camera picture'):
        image_msg_to_rgb(msg)


def test_compressed_depth_is_named_unsupported_rather_than_undecodable():
    msg = types.SimpleNamespace(format='16UC1; compressedDepth png', data=b'\x00' * 20)
    with pytest.raises(ImageConversionError, match='compressedDepth'):
        compressed_msg_to_rgb(msg)
