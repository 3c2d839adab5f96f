"""Host-side image work around the stage graphs: frame in, maps out. numpy and OpenCV only.

Everything between the stages (normalization, resizing between stage resolutions, one-hot) runs
inside the stage graphs, on the backend's device. What is left for the host is the frame's way in
(resize to the segmentation resolution, HWC uint8 -> NCHW float) and the requested outputs' way
out (resize to the frame or output size).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ['check_rgb', 'prepare_image', 'resize_map', 'to_uint8_rgb']


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate an HxWx3 uint8 RGB frame; returns it C-contiguous."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, 'shape', None)
        dtype = getattr(rgb, 'dtype', type(rgb).__name__)
        raise ValueError(f'expected an HxWx3 uint8 RGB frame, got shape {shape} dtype {dtype}')
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f'frame has no pixels (shape {rgb.shape})')
    return np.ascontiguousarray(rgb)


def _interpolation(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    # Area averaging when shrinking avoids aliasing; bilinear when growing.
    shrinking = dst_hw[0] < src_hw[0] or dst_hw[1] < src_hw[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def prepare_image(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 RGB -> (1, 3, H', W') float32 in [0, 1] at ``size`` = (H', W')."""
    rgb = check_rgb(rgb)
    height, width = size
    if rgb.shape[:2] != (height, width):
        rgb = cv2.resize(rgb, (width, height), interpolation=_interpolation(rgb.shape[:2], size))
    chw = np.empty((1, 3, height, width), dtype=np.float32)
    np.multiply(rgb.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=chw[0], casting='unsafe')
    return chw


def resize_map(values: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize an HxW (or HxWxC) map to ``size`` = (H', W').

    ``nearest`` for label maps (no new values appear); bilinear otherwise.
    """
    height, width = size
    if values.shape[:2] == (height, width):
        return values
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(values, (width, height), interpolation=interpolation)


def to_uint8_rgb(chw: np.ndarray) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> HxWx3 uint8."""
    hwc = np.clip(np.asarray(chw, dtype=np.float32).transpose(1, 2, 0), 0.0, 1.0)
    return np.ascontiguousarray((hwc * 255.0 + 0.5).astype(np.uint8))
