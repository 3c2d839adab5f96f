"""Hypothesis strategies for camera messages, most of them malformed, and the oracle that says which are valid.

Raw frames: any encoding (supported or not), sizes from 0 and 1 pixel to 16384 pixels wide, steps
shorter than a row or padded, data shorter or longer than ``height * step``, declared sizes far
larger than the data. Compressed frames: empty, random bytes, truncated or bit-flipped PNG/JPEG,
PNG headers declaring huge images, and valid images of 1 pixel and 16384 pixels wide.

:func:`raw_is_valid` states the documented contract of ``sensor_msgs/Image`` independently of the
node's converter; a compressed payload is valid when OpenCV decodes it.
"""
from __future__ import annotations

import array
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image

from anomaly_seg_ros.ros.conversions import INPUT_ENCODINGS, MAX_IMAGE_PIXELS

UNSUPPORTED_ENCODINGS = ('nv24', '32FC1', '16SC1', '8UC4', 'rgb16', 'RGB8', '', 'jpeg', 'bayer_rggb32')
WIDE = 16384
_MAX_DATA = 1 << 21  # bytes actually sent per frame (declared sizes may be far larger)


@dataclass(frozen=True)
class RawCase:
    encoding: str
    width: int
    height: int
    step: int
    data_size: int
    big_endian: bool
    fill: int

    def message(self, stamp_ns: int) -> Image:
        msg = Image(encoding=self.encoding, width=self.width, height=self.height, step=self.step,
                    is_bigendian=int(self.big_endian))
        msg.data = array.array('B', bytes([self.fill]) * self.data_size)
        msg.header.frame_id = 'fuzz'
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return msg


def raw_is_valid(case: RawCase) -> bool:
    """The contract of sensor_msgs/Image for the encodings the node accepts."""
    if case.encoding not in INPUT_ENCODINGS or case.width <= 0 or case.height <= 0:
        return False
    if case.width * case.height > MAX_IMAGE_PIXELS:
        return False
    if case.encoding.startswith('bayer_') and (case.width % 2 or case.height % 2):
        return False  # a mosaic of 2x2 cells
    if INPUT_ENCODINGS[case.encoding][0] == 2 and case.width % 2:
        return False  # YUV 4:2:2: one chroma pair per two pixels
    semi_planar = case.encoding in ('nv12', 'nv21')  # Y plane, then a half-height plane of chroma pairs
    if semi_planar and (case.width % 2 or case.height % 2):
        return False
    channels, depth = INPUT_ENCODINGS[case.encoding]
    rows = case.height * 3 // 2 if semi_planar else case.height
    return case.step >= case.width * channels * depth and case.data_size == case.step * rows


@st.composite
def raw_cases(draw: st.DrawFn) -> RawCase:
    encoding = draw(st.one_of(st.sampled_from(sorted(INPUT_ENCODINGS)), st.sampled_from(UNSUPPORTED_ENCODINGS),
                              st.text('abcdefgrmonoUC0123456789_;', max_size=12)))
    width = draw(st.one_of(st.sampled_from([0, 1, 2, 3, WIDE]), st.integers(0, 400)))
    height = draw(st.one_of(st.sampled_from([0, 1, 2]), st.integers(0, 8 if width >= 4096 else 300)))
    if draw(st.integers(0, 19)) == 0:  # declared far larger than anything sent (or than the pixel limit)
        width, height = draw(st.sampled_from([(WIDE, WIDE), (WIDE + 1, WIDE), (100_000, 100_000), (1, 2**31 - 1)]))
    channels, depth = INPUT_ENCODINGS.get(encoding, (3, 1))
    row = width * channels * depth
    step = max(0, row + draw(st.one_of(st.just(0), st.integers(-8, 8), st.sampled_from([-row, -1, 1, 64, 4096]))))
    step = min(step, 2**32 - 1)
    declared = step * (height * 3 // 2 if encoding in ('nv12', 'nv21') else height)
    size = declared + draw(st.one_of(st.just(0), st.integers(-16, 16), st.sampled_from([-declared, -1, 1, 1000])))
    size = max(0, min(size, _MAX_DATA))
    return RawCase(encoding, width, height, step, size, draw(st.booleans()), draw(st.integers(0, 255)))


# --- compressed -------------------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB but whose data is (almost) empty."""
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', header) + _png_chunk(b'IDAT', zlib.compress(b'\0' * 16))
            + _png_chunk(b'IEND', b''))


def encoded(width: int, height: int, fmt: str, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    bgr = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode('.png' if fmt == 'png' else '.jpg', bgr)
    assert ok
    return data.tobytes()


_SAMPLES = {(fmt, w, h): encoded(w, h, fmt) for fmt in ('png', 'jpeg') for w, h in ((1, 1), (40, 24), (WIDE, 1))}


@st.composite
def compressed_payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(['empty', 'random', 'truncated', 'flipped', 'huge_header', 'valid', 'appended']))
    fmt, width, height = draw(st.sampled_from(sorted(_SAMPLES)))
    sample = _SAMPLES[(fmt, width, height)]
    if kind == 'empty':
        return b''
    if kind == 'random':
        return draw(st.binary(min_size=1, max_size=512))
    if kind == 'truncated':
        return sample[: draw(st.integers(0, len(sample) - 1))]
    if kind == 'flipped':
        data = bytearray(sample)
        for position in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[position] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == 'huge_header':
        return png_header_only(*draw(st.sampled_from([(WIDE, WIDE), (30000, 30000), (100_000, 10), (0, 10)])))
    if kind == 'appended':
        return sample + draw(st.binary(min_size=1, max_size=64))
    return sample


def compressed_message(payload: bytes, stamp_ns: int, fmt: str = 'rgb8; png compressed bgr8') -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array('B', payload)
    msg.header.frame_id = 'fuzz'
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg


def compressed_is_valid(payload: bytes) -> bool:
    if not payload:
        return False
    return cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR) is not None
