"""Fixtures of the training tests: a tiny synthetic dataset and a tiny configuration."""
from __future__ import annotations

from pathlib import Path

import pytest

# Stage sizes small enough for seconds-long training runs (ICNet needs multiples of 32, the SPADE
# generator multiples of 32 with 5 upsamplings).
TINY_SIZES = {'segmentation': [64, 128], 'synthesis': [32, 64], 'perceptual': [32, 64], 'dissimilarity': [32, 64]}


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset: 6 train, 3 val, 2 anomaly-test frames of 128x64."""
    from anomaly_seg_ros.data.synthetic import write_dataset
    root = tmp_path_factory.mktemp('tiny_synthetic')
    write_dataset(root, {'train': 6, 'val': 3, 'anomaly_test': 2}, size=(128, 64), seed=0, progress=False)
    return root


def _tiny_sets(epochs: int = 1) -> dict:
    return {
        'input_sizes': TINY_SIZES,
        'calibration': {'frames': 6},
        'segmentation': {'epochs': epochs, 'batch_size': 2},
        'synthesis': {'epochs': epochs, 'batch_size': 2, 'discriminator': {'ndf': 8, 'n_layers': 3}},
        'dissimilarity': {'epochs': epochs, 'batch_size': 2},
    }


@pytest.fixture
def tiny_config(tiny_dataset: Path):
    """Factory: a TrainConfig for a seconds-long run on :func:`tiny_dataset` (``epochs`` per stage)."""
    from anomaly_seg_ros.training import load_train_config

    def make(epochs: int = 1, **sets):
        data = _tiny_sets(epochs)
        data['data'] = {'dataset': 'synthetic', 'root': str(tiny_dataset)}
        for key, value in sets.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return load_train_config('light', sets=data)
    return make
