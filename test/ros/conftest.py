"""Fixtures of the ROS tests: an rclpy context per test, in-process nodes with a fake pipeline,
a model directory for the node as its own process, and helpers to start and probe that process."""
from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
DEMO_MODELS = HERE.parents[1] / 'models' / 'demo'
sys.path.insert(0, str(HERE))  # fake_pipeline, probe, node_process

rclpy = pytest.importorskip('rclpy')

from fake_pipeline import make_fake_pipeline  # noqa: E402
from node_process import node_command  # noqa: E402
from probe import Probe  # noqa: E402

from anomaly_seg_ros.ros.node_process import NodeProcess  # noqa: E402


@pytest.fixture
def ros_context(ros_domain_id: int) -> Iterator[Any]:
    """An initialized rclpy context on this test's ROS domain."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def executor(ros_context: Any) -> Iterator[Any]:
    from rclpy.executors import SingleThreadedExecutor
    executor = SingleThreadedExecutor(context=ros_context)
    yield executor
    executor.shutdown()


@pytest.fixture
def make_node(ros_context: Any, executor: Any) -> Iterator[Callable[..., Any]]:
    """``make_node(pipeline=None, **parameters)``: the node in this process, with a fake pipeline."""
    from rclpy.parameter import Parameter

    from anomaly_seg_ros.ros.node import AnomalySegNode

    nodes = []

    def make(pipeline: Any = None, remaps: Sequence[str] = (), **parameters: Any) -> Any:
        pipeline = pipeline if pipeline is not None else make_fake_pipeline()
        overrides = [Parameter(name.replace('__', '.'), value=value)
                     for name, value in {'model_dir': '/fake', **parameters}.items()]
        cli_args = ['--ros-args', *(arg for remap in remaps for arg in ('-r', remap))] if remaps else None
        node = AnomalySegNode(pipeline_factory=lambda *args, **kwargs: pipeline, context=ros_context,
                              parameter_overrides=overrides, cli_args=cli_args)
        nodes.append(node)
        executor.add_node(node)
        return node

    yield make
    for node in nodes:
        node.close()
        executor.remove_node(node)
        node.destroy_node()


@pytest.fixture
def probe(ros_context: Any, executor: Any) -> Iterator[Probe]:
    """A test-side node that publishes frames and records what the node publishes."""
    probe = Probe(ros_context, executor)
    yield probe
    probe.destroy()


# --- the node as its own process ------------------------------------------------------------------
def _complete_onnx_model(directory: Path) -> bool:
    """True when ``directory`` holds model.yaml and the ONNX file of every stage (not a half-trained one)."""
    from anomaly_seg_ros.errors import ModelError
    from anomaly_seg_ros.model_config import STAGE_NAMES, load_model_config

    try:
        config = load_model_config(directory)
    except ModelError:
        return False
    files = [config.stage(stage).files.get('onnx') for stage in STAGE_NAMES]
    return all(name and (directory / name).is_file() for name in files)


@pytest.fixture(scope='session')
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped models/demo when present, else a tiny random model exported to ONNX.

    The random model has every file and shape of a real one (meaningless weights) at tiny stage
    resolutions, so the node runs it in milliseconds.
    """
    if _complete_onnx_model(DEMO_MODELS):
        return DEMO_MODELS
    try:
        from anomaly_seg_ros.stage_modules import init_random_model_dir, light_model_config
    except ImportError as exc:
        pytest.skip(f'no models/demo and no stage_modules to build a random model ({exc})')
    root = tmp_path_factory.mktemp('tiny_model')
    sizes = {'segmentation': (64, 128), 'synthesis': (32, 64), 'perceptual': (32, 64), 'dissimilarity': (32, 64)}
    init_random_model_dir(root / 'torch', light_model_config(input_sizes=sizes), seed=0)
    try:
        from anomaly_seg_ros.export import export_model
    except ImportError:
        return root / 'torch'
    export_model(root / 'torch', root / 'onnx', frames=[np.zeros((48, 80, 3), dtype=np.uint8)])
    return root / 'onnx'


@pytest.fixture
def start_node(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """``start_node(*ros_args, fake=False, env=None)``: the node as a process on the current domain."""
    started: list[NodeProcess] = []

    def start(*ros_args: str, fake: bool = False, env: dict[str, str] | None = None) -> NodeProcess:
        node = NodeProcess(node_command(*ros_args, fake=fake), {**os.environ, **(env or {})},
                           tmp_path / f'node{len(started)}.log')
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop(signal.SIGKILL, timeout=5.0)
