"""Fixtures of the runtime tests: a tiny random model directory exported once per session, and a
model directory of hand-made constant stage graphs (no torch needed)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # tiny_models

from tiny_models import tiny_model_dirs, write_constant_model_dir  # noqa: E402

from anomaly_seg_ros.model_config import ModelConfig  # noqa: E402


@pytest.fixture(scope='session')
def tiny_torch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.yaml + random <stage>.pt files of the tiny configuration."""
    return tiny_model_dirs(tmp_path_factory.getbasetemp())[0]


@pytest.fixture(scope='session')
def tiny_exported_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported: <stage>.onnx, <stage>.fp16.onnx, <stage>.pt, model.yaml. Read-only."""
    return tiny_model_dirs(tmp_path_factory.getbasetemp())[1]


@pytest.fixture
def constant_model_dir(tmp_path: Path) -> tuple[Path, ModelConfig]:
    """A model directory of constant ONNX stage graphs with the contract's names, shapes and dtypes."""
    return write_constant_model_dir(tmp_path / 'constant')
