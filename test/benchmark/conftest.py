"""Fixtures of the benchmark tests: the tiny random model of test/runtime, exported once per session."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME_TESTS = Path(__file__).resolve().parents[1] / 'runtime'
sys.path.insert(0, str(RUNTIME_TESTS))  # tiny_models

from tiny_models import tiny_config, tiny_model_dirs  # noqa: E402


@pytest.fixture(scope='session')
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random model: <stage>.pt and <stage>.onnx (+ .fp16.onnx) and model.yaml. Read-only."""
    return tiny_model_dirs(tmp_path_factory.getbasetemp())[1]


@pytest.fixture
def tiny_model_config():
    return tiny_config()


@pytest.fixture(autouse=True)
def _omp_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """`anomaly_seg bench` sets OMP_WAIT_POLICY for torch; keep that out of the other tests' environment."""
    monkeypatch.setenv('OMP_WAIT_POLICY', 'PASSIVE')
