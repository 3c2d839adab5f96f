"""A real AnomalyPipeline over a fake numpy backend: the right tensors, no networks, no model files.

Used by the node's unit tests (in process) and by fake_node.py (the node as its own process) to test
the ROS side without trained models. ``delay_s`` per stage makes the pipeline as slow as wanted;
``nonfinite`` makes the dissimilarity stage return NaN.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from anomaly_seg_ros.labels import SYNTHETIC
from anomaly_seg_ros.model_config import ModelConfig, StageConfig
from anomaly_seg_ros.pipeline import AnomalyPipeline
from anomaly_seg_ros.stages import stage_specs

SIZES = {'segmentation': (64, 128), 'synthesis': (32, 64), 'perceptual': (32, 64), 'dissimilarity': (32, 64)}


def fake_config() -> ModelConfig:
    stages = {name: StageConfig(input_size=size) for name, size in SIZES.items()}
    return ModelConfig(label_set=SYNTHETIC, stages=stages, ensemble_weights=(0.75, 0.25, 0.0, 0.0))


def _resize(chw: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    hwc = np.ascontiguousarray(np.moveaxis(chw, 0, -1))
    out = cv2.resize(hwc, (size[1], size[0]), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
    return np.moveaxis(out.reshape(size[0], size[1], -1), -1, 0)


class FakeBackend:
    name = 'fake'
    device = 'cpu'

    def __init__(self, config: ModelConfig, delay_s: float = 0.0, nonfinite: bool = False) -> None:
        self.specs = stage_specs(config)
        self.delay_s = delay_s
        self.nonfinite = nonfinite
        self.runs: Counter[str] = Counter()
        self.closed = False
        self.num_classes = config.label_set.num_classes
        self.last_weights: np.ndarray | None = None

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def download(self, value: np.ndarray) -> np.ndarray:
        return value

    def close(self) -> None:
        self.closed = True

    def run(self, stage: str, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        self.runs[stage] += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        out = {spec.name: spec.shape for spec in self.specs[stage].outputs}
        image = inputs['image'][0]
        if stage == 'segmentation':
            gray = image.mean(axis=0)
            semantic = np.minimum((gray * self.num_classes).astype(np.int32), self.num_classes - 1)
            return {'semantic': semantic[None], 'entropy': image[0][None, None].copy(),
                    'softmax_distance': image[1][None, None].copy()}
        if stage == 'synthesis':
            size = out['synthesis'][2:]
            labels = _resize(inputs['semantic'].astype(np.float32), size, nearest=True)[0]
            rgb = np.stack([labels / self.num_classes, 1 - labels / self.num_classes, np.full_like(labels, 0.5)])
            return {'synthesis': rgb[None].astype(np.float32)}
        if stage == 'perceptual':
            size = out['perceptual_difference'][2:]
            diff = np.abs(_resize(image, size) - inputs['synthesis'][0]).mean(axis=0)
            return {'perceptual_difference': np.clip(diff, 0, 1)[None, None].astype(np.float32)}
        size = out['anomaly'][2:]
        self.last_weights = np.array(inputs['ensemble_weights'])
        weights = inputs['ensemble_weights'] / inputs['ensemble_weights'].sum()
        dissimilarity = _resize(image[2:3], size)[0]
        maps = [dissimilarity] + [_resize(inputs[name][0], size)[0]
                                  for name in ('entropy', 'perceptual_difference', 'softmax_distance')]
        anomaly = sum(w * m for w, m in zip(weights, maps))
        if self.nonfinite:
            anomaly = anomaly.copy()
            anomaly[0, 0] = np.nan
        return {'dissimilarity': dissimilarity[None, None].astype(np.float32),
                'anomaly': np.asarray(anomaly, dtype=np.float32)[None, None]}


def make_fake_pipeline(delay_s: float = 0.0, nonfinite: bool = False) -> AnomalyPipeline:
    config = fake_config()
    return AnomalyPipeline(config, FakeBackend(config, delay_s=delay_s, nonfinite=nonfinite))


def rgb_frame(height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    """A random HxWx3 uint8 RGB frame."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
