"""Fixtures of the reliability tests, reused from the ROS and runtime tests rather than copied.

The node fixtures (``ros_context``, ``executor``, ``make_node``, ``probe``, ``start_node``) come from
test/ros/conftest.py, loaded here under a name of its own; the tiny exported model comes from
test/runtime/tiny_models.py, whose export is cached on disk once per test session and shared with
the runtime and export tests.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
TEST_ROOT = HERE.parent
for _folder in (HERE, TEST_ROOT / 'ros', TEST_ROOT / 'runtime'):  # fake_pipeline, probe, node_process, tiny_models
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

pytest.importorskip('rclpy')


def _load_ros_conftest() -> Any:
    spec = importlib.util.spec_from_file_location('_reliability_ros_fixtures', TEST_ROOT / 'ros' / 'conftest.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_ros = _load_ros_conftest()
ros_context = _ros.ros_context
executor = _ros.executor
make_node = _ros.make_node
probe = _ros.probe
start_node = _ros.start_node


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random model exported to ONNX (10 synthetic classes, segmentation 128x64). Read-only."""
    from tiny_models import tiny_model_dirs

    return tiny_model_dirs(tmp_path_factory.getbasetemp())[1]


@pytest.fixture
def probe_factory(ros_context: Any, executor: Any) -> Iterator[Callable[[], Any]]:
    """``probe_factory()``: a test-side node on this test's domain (for nodes started as processes)."""
    from probe import Probe

    probes: list[Any] = []

    def make() -> Any:
        probes.append(Probe(ros_context, executor))
        return probes[-1]

    yield make
    for made in probes:
        made.destroy()
