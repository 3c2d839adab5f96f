"""Fixtures of the data tests: a small generated synthetic dataset, shared by the session."""
from __future__ import annotations

from pathlib import Path

import pytest

from anomaly_seg_ros.data.synthetic import write_dataset

SYNTH_COUNTS = {'train': 4, 'val': 2, 'anomaly_test': 3}
SYNTH_SIZE = (256, 128)
SYNTH_SEED = 7


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset (4 train, 2 val, 3 anomaly_test frames at 256x128, seed 7); do not modify."""
    root = tmp_path_factory.mktemp('synthetic') / 'synth'
    write_dataset(root, SYNTH_COUNTS, SYNTH_SIZE, SYNTH_SEED, progress=False)
    return root
