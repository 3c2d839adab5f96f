"""sensor_msgs/Image and CompressedImage <-> numpy, without importing rclpy.

Functions take any object with the message's fields (rclpy messages, rosbags messages, plain
namespaces), so the node, the bag tools and the tests share one implementation. Incoming images
are validated (size, step, data length) before anything reads the buffer; cv_bridge converts
when it is installed, the project's own vectorized conversion otherwise (and for the encodings
listed in :data:`INPUT_ENCODINGS`, results are identical). :func:`header_stamp_from_cdr` reads the
stamp of a still serialized message (a raw subscription); :func:`image_to_cdr` writes a serialized
Image (what the node publishes: rclpy sends the bytes without converting or serializing them again).
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from ..errors import ImageConversionError

__all__ = [
    'INPUT_ENCODINGS',
    'MAX_IMAGE_PIXELS',
    'array_to_image_fields',
    'buffer_rows',
    'compressed_msg_to_array',
    'compressed_msg_to_rgb',
    'header_stamp_from_cdr',
    'image_msg_to_array',
    'image_msg_to_rgb',
    'image_to_cdr',
    'rgb_to_compressed_fields',
]

# ROS Bayer pattern (the colours of the top-left 2x2 cell, row by row) -> OpenCV's demosaicing code.
# OpenCV names a pattern by the second row's second and third pixels, so its names are offset from ROS's
# (cv_bridge's table): ROS rggb is OpenCV BG.
_BAYER_TO_RGB = {'rggb': cv2.COLOR_BayerBG2RGB, 'bggr': cv2.COLOR_BayerRG2RGB,
                 'gbrg': cv2.COLOR_BayerGR2RGB, 'grbg': cv2.COLOR_BayerGB2RGB}
# YUV 4:2:2 (BT.601, video range as cameras send it), two bytes a pixel: ROS 'yuv422' is UYVY
# (U Y0 V Y1), 'yuv422_yuy2' is YUYV (Y0 U Y1 V).
_YUV422_TO_RGB = {'yuv422': cv2.COLOR_YUV2RGB_UYVY, 'uyvy': cv2.COLOR_YUV2RGB_UYVY,
                  'yuv422_yuy2': cv2.COLOR_YUV2RGB_YUYV, 'yuyv': cv2.COLOR_YUV2RGB_YUYV}
# YUV 4:2:0 semi-planar (BT.601 video range): a full-size Y plane, then a half-height plane of interleaved
# chroma pairs (NV12: U V, NV21: V U), both with rows of ``step`` bytes, so the data holds height * 3/2 rows.
_YUV420SP_TO_RGB = {'nv12': cv2.COLOR_YUV2RGB_NV12, 'nv21': cv2.COLOR_YUV2RGB_NV21}
# encoding -> (channels, bytes per channel)
INPUT_ENCODINGS: dict[str, tuple[int, int]] = {
    'rgb8': (3, 1), 'bgr8': (3, 1), 'rgba8': (4, 1), 'bgra8': (4, 1),
    'mono8': (1, 1), 'mono16': (1, 2), '8UC1': (1, 1), '8UC3': (3, 1), '16UC1': (1, 2),
    **{f'bayer_{pattern}{bits}': (1, bits // 8) for pattern in _BAYER_TO_RGB for bits in (8, 16)},
    **{name: (2, 1) for name in _YUV422_TO_RGB},
    **{name: (1, 1) for name in _YUV420SP_TO_RGB},
}
# Encodings ROS names that carry no camera picture (depth, disparity, float images): refused with a reason.
_NOT_CAMERA_PICTURES = ('16UC', '32FC', '32SC', '64FC', '16SC', '8SC')
# One chroma pair (or Bayer cell) per two pixels of a row: these encodings need an even width; those in
# _EVEN_HEIGHT (a 2x2 cell or chroma sample) an even height too.
_EVEN_HEIGHT = frozenset(_YUV420SP_TO_RGB) | frozenset(e for e in INPUT_ENCODINGS if e.startswith('bayer_'))
_EVEN_WIDTH = frozenset(_YUV422_TO_RGB) | _EVEN_HEIGHT
_OUTPUT_ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    'rgb8': (3, np.dtype(np.uint8)), 'bgr8': (3, np.dtype(np.uint8)), 'mono8': (1, np.dtype(np.uint8)),
    '32FC1': (1, np.dtype(np.float32)), 'mono16': (1, np.dtype(np.uint16)),
}
# What image_msg_to_array reads: the output encodings and their OpenCV-style synonyms.
_ARRAY_ENCODINGS = {**_OUTPUT_ENCODINGS, '8UC1': _OUTPUT_ENCODINGS['mono8'], '16UC1': _OUTPUT_ENCODINGS['mono16']}
# Refuse absurd declared sizes before touching the buffer (a 16384x16384 RGB frame is 768 MB).
MAX_IMAGE_PIXELS = 16384 * 16384


@lru_cache(maxsize=1)
def _cv_bridge() -> Any | None:
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def _checked_buffer(msg: Any) -> tuple[np.ndarray, int, int, int, int]:
    """Validate an Image message's geometry; returns (bytes, height, width, channels, depth)."""
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'image has no pixels ({width}x{height}, encoding {encoding!r})')
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageConversionError(f'image {width}x{height} exceeds the {MAX_IMAGE_PIXELS} pixel limit')
    if encoding not in INPUT_ENCODINGS:
        if encoding.startswith(_NOT_CAMERA_PICTURES):
            raise ImageConversionError(f'encoding {encoding!r} is not a camera picture (depth or float data); '
                                       'subscribe the node to a colour or mono camera topic')
        raise ImageConversionError(f'unsupported encoding {encoding!r}; supported: {", ".join(INPUT_ENCODINGS)}')
    if encoding in _EVEN_WIDTH and (width % 2 or (encoding in _EVEN_HEIGHT and height % 2)):
        needs = 'width and height' if encoding in _EVEN_HEIGHT else 'width'
        raise ImageConversionError(f'{encoding} needs an even {needs}, got {width}x{height}')
    channels, depth = INPUT_ENCODINGS[encoding]
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageConversionError(f'step {step} is shorter than a {encoding} row of {width} pixels '
                                   f'({row_bytes} bytes)')
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    rows = buffer_rows(encoding, height)
    if buffer.size != step * rows:
        described = 'height*step' if rows == height else 'height*3/2*step (Y and chroma planes)'
        raise ImageConversionError(f'data holds {buffer.size} bytes but {described} = {rows}*{step} = '
                                   f'{rows * step}')
    return buffer, height, width, channels, depth


def buffer_rows(encoding: str, height: int) -> int:
    """Rows of ``step`` bytes an Image of ``height`` holds: ``height``, or 3/2 of it for NV12/NV21."""
    return height * 3 // 2 if encoding in _YUV420SP_TO_RGB else height


def image_msg_to_rgb(msg: Any, significant_bits: int = 16, warn: Callable[[str], None] | None = None) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB (a new array; the message buffer is not kept).

    Colour (rgb/bgr, alpha dropped), mono, Bayer (8 and 16 bit, the four patterns, demosaiced by
    OpenCV), YUV 4:2:2 (UYVY, YUYV) and YUV 4:2:0 semi-planar (NV12, NV21: ``height * 3/2`` rows of
    ``step`` bytes). 16-bit data (mono16, 16UC1, bayer_*16) holds its values in the low
    ``significant_bits`` bits (16 for a full-range camera, 12 for a 12-bit one) and is scaled so that
    range fills 8 bits; ``warn`` gets a message when a 16-bit frame uses under a quarter of that range
    (the networks then see a dark picture). Rows may be padded (``step`` > width * bytes
    per pixel). Raises :class:`ImageConversionError` for anything else.
    """
    buffer, height, width, channels, depth = _checked_buffer(msg)
    encoding = str(msg.encoding)
    bridge = _cv_bridge()
    if bridge is not None and depth == 1 and encoding not in _EVEN_WIDTH:
        try:
            return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding='rgb8'))
        except Exception as exc:  # cv_bridge raises its own error types; report them as ours
            raise ImageConversionError(f'cv_bridge could not convert {msg.encoding!r}: {exc}') from exc
    step = int(msg.step)
    if encoding in _YUV420SP_TO_RGB:
        planes = buffer.reshape(buffer_rows(encoding, height), step)[:, :width]
        return cv2.cvtColor(np.ascontiguousarray(planes), _YUV420SP_TO_RGB[encoding])
    rows = buffer.reshape(height, step)[:, : width * channels * depth]
    if depth == 2:
        big_endian = bool(getattr(msg, 'is_bigendian', False))
        # Native byte order: OpenCV reads the buffer as is.
        pixels = rows.view('>u2' if big_endian else '<u2').reshape(height, width).astype(np.uint16)
        if encoding.startswith('bayer_'):
            pixels = cv2.cvtColor(pixels, _BAYER_TO_RGB[encoding[6:10]])
        if warn is not None:
            message = _low_range_message(encoding, int(pixels.max()), significant_bits)
            if message is not None:
                warn(message)
        eight = _to_8_bits(pixels, significant_bits)
        return eight if eight.ndim == 3 else np.repeat(eight[:, :, None], 3, axis=2)
    if encoding.startswith('bayer_'):
        return cv2.cvtColor(np.ascontiguousarray(rows), _BAYER_TO_RGB[encoding[6:10]])
    pixels = rows.reshape(height, width, channels)
    if encoding in _YUV422_TO_RGB:
        return cv2.cvtColor(np.ascontiguousarray(pixels), _YUV422_TO_RGB[encoding])
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if encoding in ('bgr8', 'bgra8', '8UC3'):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def _to_8_bits(pixels: np.ndarray, significant_bits: int) -> np.ndarray:
    """uint16 values in the low ``significant_bits`` bits -> uint8 (values above the range saturate)."""
    if not 8 <= significant_bits <= 16:
        raise ValueError(f'significant_bits must be in 8..16, got {significant_bits}')
    return np.minimum(pixels >> (significant_bits - 8), 255).astype(np.uint8)


def _low_range_message(encoding: str, peak: int, significant_bits: int) -> str | None:
    if peak >= 1 << (significant_bits - 2):
        return None
    bits = max(peak.bit_length(), 8)
    return (f'{encoding} frame peaks at {peak} of {(1 << significant_bits) - 1}: the networks see a dark picture; '
            f'if the camera has {bits}-bit pixels, set the parameter input_significant_bits to {bits}')


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png, ...) -> HxWx3 uint8 RGB."""
    return _decode_compressed(msg, cv2.IMREAD_COLOR)


def compressed_msg_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage -> the picture as stored: HxW for one channel, HxWx3 RGB for colour
    (alpha dropped); uint8, or uint16 for a 16-bit PNG."""
    return _decode_compressed(msg, cv2.IMREAD_UNCHANGED)


def _decode_compressed(msg: Any, flags: int) -> np.ndarray:
    if 'compresseddepth' in str(msg.format).lower():
        raise ImageConversionError(f'compressed image format {msg.format!r} is depth data (compressedDepth), '
                                   'which the node does not take; subscribe it to a camera picture topic')
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError(f'compressed image ({msg.format!r}) has no data')
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ImageConversionError(f'compressed image ({msg.format!r}, {data.size} bytes) cannot be decoded')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict[str, Any]:
    """numpy image -> the fields of sensor_msgs/Image (height, width, encoding, is_bigendian, step, data).

    ``encoding`` in rgb8, bgr8 (HxWx3 uint8), mono8 (HxW uint8), mono16 (HxW uint16), 32FC1 (HxW float32).
    ``data`` is a read-only byte view of the (contiguous, little-endian) pixels, not a copy: the
    message constructor makes the one copy a message needs (a 2048x1024 RGB frame is 6 MB).
    """
    if encoding not in _OUTPUT_ENCODINGS:
        raise ValueError(f'cannot write encoding {encoding!r}; supported: {", ".join(_OUTPUT_ENCODINGS)}')
    channels, dtype = _OUTPUT_ENCODINGS[encoding]
    expected_ndim = 3 if channels > 1 else 2
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels) or array.dtype != dtype:
        layout = f'HxWx{channels}' if channels > 1 else 'HxW'
        raise ValueError(f'{encoding} needs an array of {layout} {dtype}, got shape {array.shape} '
                         f'dtype {array.dtype}')
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    return {
        'height': height,
        'width': width,
        'encoding': encoding,
        'is_bigendian': 0,
        'step': width * channels * dtype.itemsize,
        'data': memoryview(np.ascontiguousarray(array.astype(dtype.newbyteorder('<'), copy=False))).cast('B')
        .toreadonly(),
    }


def image_to_cdr(array: np.ndarray, encoding: str, stamp_sec: int, stamp_nanosec: int, frame_id: str) -> bytes:
    """numpy image -> a serialized sensor_msgs/Image, as rclpy's ``serialize_message`` writes it.

    Plain CDR, little endian (encapsulation 0x0001), the format of every ROS 2 DDS middleware;
    ``Publisher.publish(bytes)`` sends it as is. Building it copies the pixels once, where a message
    object costs three copies (into the Python message, into the C message, into the CDR buffer).
    ``array`` and ``encoding`` as for :func:`array_to_image_fields`.
    """
    fields = array_to_image_fields(array, encoding)
    head = bytearray(b'\x00\x01\x00\x00')  # CDR_LE; alignment counts from the byte after it

    def align(size: int) -> None:
        head.extend(bytes(-(len(head) - 4) % size))

    def string(text: str) -> None:
        encoded = text.encode() + b'\x00'
        align(4)
        head.extend(struct.pack('<I', len(encoded)) + encoded)

    head.extend(struct.pack('<iI', stamp_sec, stamp_nanosec))
    string(frame_id)
    align(4)
    head.extend(struct.pack('<II', fields['height'], fields['width']))
    string(encoding)
    head.append(0)  # is_bigendian
    align(4)
    data = fields['data']
    head.extend(struct.pack('<II', fields['step'], len(data)))
    return b''.join((head, data))


def image_msg_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image in an output encoding (rgb8, bgr8, mono8, mono16, 32FC1; also 8UC1, 16UC1)
    -> numpy, as published.

    The inverse of :func:`array_to_image_fields`: HxWx3 uint8 for rgb8/bgr8 (channels as stored),
    HxW uint8 / uint16 / float32 otherwise. Rows may be padded; big-endian data is byte-swapped.
    """
    encoding = str(msg.encoding)
    if encoding not in _ARRAY_ENCODINGS:
        raise ImageConversionError(f'cannot read encoding {encoding!r} as an array; supported: '
                                   f'{", ".join(_ARRAY_ENCODINGS)}')
    channels, dtype = _ARRAY_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    data = msg.data
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8)
    if height <= 0 or width <= 0 or step < row_bytes or buffer.size != step * height:
        raise ImageConversionError(f'{encoding} image {width}x{height} with step {step} does not match its '
                                   f'{buffer.size} bytes of data')
    order = '>' if int(getattr(msg, 'is_bigendian', 0)) else '<'
    rows = np.ascontiguousarray(buffer.reshape(height, step)[:, :row_bytes])
    values = rows.view(dtype.newbyteorder(order)).astype(dtype, copy=False)
    return values.reshape((height, width, channels) if channels > 1 else (height, width))


def rgb_to_compressed_fields(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 90) -> dict[str, Any]:
    """HxWx3 uint8 RGB -> fields of sensor_msgs/CompressedImage (format, data)."""
    extension = {'jpeg': '.jpg', 'jpg': '.jpg', 'png': '.png'}.get(fmt)
    if extension is None:
        raise ValueError(f'unsupported compressed format {fmt!r}; use jpeg or png')
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if extension == '.jpg' else []
    ok, encoded = cv2.imencode(extension, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageConversionError(f'OpenCV could not encode a {rgb.shape} image as {fmt}')
    return {'format': 'rgb8; jpeg compressed bgr8' if extension == '.jpg' else 'rgb8; png compressed bgr8',
            'data': encoded.tobytes()}


def header_stamp_from_cdr(data: bytes) -> int:
    """Header stamp (ns) of a serialized message that starts with std_msgs/Header, without deserializing it
    (CDR: the 4-byte encapsulation header, whose second byte says the byte order, then int32 sec, uint32
    nanosec)."""
    sec, nanosec = struct.unpack_from('<iI' if data[1] & 1 else '>iI', data, 4)
    return sec * 1_000_000_000 + nanosec
