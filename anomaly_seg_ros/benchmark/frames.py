"""Deterministic camera-like frames for benchmarks: sky, road, blocks and noise (numpy and OpenCV).

Timings do not depend on what a frame shows, but a few different frames keep caches honest; every
backend in a run gets the same frame at the same step.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

__all__ = ['bench_frames', 'frame_size_argument']


def frame_size_argument(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` on a command line -> (width, height), both positive (an argparse ``type``)."""
    width, _, height = text.lower().partition('x')
    try:
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}') from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f'sizes must be positive, got {text!r}')
    return size


def bench_frames(width: int, height: int, count: int = 4, seed: int = 0) -> list[np.ndarray]:
    """``count`` HxWx3 uint8 RGB frames of ``width`` x ``height``."""
    if width < 1 or height < 1 or count < 1:
        raise ValueError(f'need a positive frame size and count, got {width}x{height}, {count} frames')
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        horizon = int(height * rng.uniform(0.35, 0.55))
        sky = rng.uniform(120, 255, 3)
        frame[:horizon] = (sky * np.linspace(1.0, 0.7, max(horizon, 1))[:horizon, None, None]).astype(np.uint8)
        frame[horizon:] = np.uint8(rng.uniform(50, 120))
        for _ in range(8):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            w, h = int(rng.integers(1, width // 4 + 2)), int(rng.integers(1, height // 3 + 2))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.rectangle(frame, (x, y), (x + w, y + h), color, thickness=-1)
        noise = rng.integers(-8, 9, (height, width, 1), dtype=np.int16)
        frames.append(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return frames
