"""Tiny frames and labelled folders for the bag tests."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data.sample import Sample


def _frames(count: int = 3, size: tuple[int, int] = (12, 16), seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        image = rng.integers(0, 256, size + (3,), dtype=np.uint8)
        anomaly = rng.choice(np.array([0, 0, 0, 1, 255], np.uint8), size=size)
        anomaly[0, 0], anomaly[0, 1] = 0, 1  # both classes in every frame
        semantic = rng.integers(0, 10, size, dtype=np.uint8)
        frames.append(Sample(f'f{i}', image, semantic, None, None, anomaly))
    return frames


@pytest.fixture
def frames() -> list[Sample]:
    return _frames()


@pytest.fixture
def fishyscapes_root(tmp_path: Path, frames) -> Path:
    root = tmp_path / 'fishy'
    (root / 'original').mkdir(parents=True)
    (root / 'labels').mkdir()
    for sample in frames:
        cv2.imwrite(str(root / 'original' / f'{sample.name}.png'), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / 'labels' / f'{sample.name}.png'), sample.anomaly)
    return root
