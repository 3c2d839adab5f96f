"""A fake pipeline (the AnomalyPipeline.process API, no models) and tiny labelled datasets."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from anomaly_seg_ros.data.sample import Sample
from anomaly_seg_ros.labels import SYNTHETIC

CUE_NAMES = ('anomaly', 'dissimilarity', 'entropy', 'softmax_distance', 'perceptual_difference')


class FakePipeline:
    """Scores from the red channel (the anomalies below are red), each cue a different transform.

    semantic: the green channel // 26 (ids 0..9 of the synthetic label set).
    """

    label_set = SYNTHETIC

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[str, ...], object]] = []

    def process(self, rgb, outputs=None, output_size=None):
        self.calls.append((rgb.shape, tuple(outputs), output_size))
        red = rgb[:, :, 0].astype(np.float32) / 255.0
        maps = {
            'anomaly': red,
            'dissimilarity': red ** 2,
            'entropy': 1.0 - red,  # an inverted cue: AUROC below 0.5
            'softmax_distance': np.full_like(red, 0.5),  # uninformative
            'perceptual_difference': np.sqrt(red),
            'semantic': (rgb[:, :, 1] // 26).astype(np.uint8),
        }
        if output_size is not None and tuple(output_size) != rgb.shape[:2]:
            h, w = output_size
            maps = {k: cv2.resize(v, (w, h), interpolation=cv2.INTER_NEAREST) for k, v in maps.items()}
        result = SimpleNamespace(timings_ms={'total': 1.0})
        for name in outputs:
            setattr(result, name, maps[name])
        return result

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_frames(count: int = 5, size: tuple[int, int] = (24, 32), seed: int = 0) -> list[Sample]:
    """Frames with a red-ish anomaly square (label 1), a void border row (255), semantic ids."""
    rng = np.random.default_rng(seed)
    frames = []
    h, w = size
    for i in range(count):
        image = rng.integers(0, 140, (h, w, 3), dtype=np.uint8)
        anomaly = np.zeros((h, w), np.uint8)
        anomaly[0] = 255
        if i != count - 1:  # the last frame has no anomaly
            y, x = rng.integers(2, h - 8), rng.integers(0, w - 8)
            side = 4 + i
            anomaly[y:y + side, x:x + side] = 1
            image[y:y + side, x:x + side, 0] = rng.integers(100 + 20 * i, 256, (side, side))
        semantic = (image[:, :, 1] // 26).astype(np.uint8)
        semantic[-1] = 255
        frames.append(Sample(f'frame{i:02d}', image, semantic, None, None, anomaly))
    return frames


class ListDataset:
    def __init__(self, samples, label_set=SYNTHETIC):
        self.samples = list(samples)
        self.names = [s.name for s in self.samples]
        self.label_set = label_set
        self.root = Path('.')

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[index]


@pytest.fixture
def fake_pipeline() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def fishyscapes_root(tmp_path: Path) -> Path:
    """A Fishyscapes-layout folder (original/, labels/) with the frames of :func:`make_frames`."""
    root = tmp_path / 'fishy'
    (root / 'original').mkdir(parents=True)
    (root / 'labels').mkdir()
    for sample in make_frames():
        cv2.imwrite(str(root / 'original' / f'{sample.name}.png'), cv2.cvtColor(sample.image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / 'labels' / f'{sample.name}.png'), sample.anomaly)
    return root


@pytest.fixture
def toy() -> SimpleNamespace:
    """The helpers of this conftest for tests (importlib mode: conftest is not importable)."""
    return SimpleNamespace(cues=CUE_NAMES, FakePipeline=FakePipeline, ListDataset=ListDataset,
                           make_frames=make_frames)
