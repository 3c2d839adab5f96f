"""The node as its own process: its command line in the checkout, a ROS domain per module.

Starting and stopping the process is the library's :class:`anomaly_seg_ros.ros.node_process.NodeProcess`.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

from anomaly_seg_ros.ros import node_process as library

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE.parents[1] / 'config' / 'anomaly_seg.yaml'

# Module-scoped node processes need a domain of their own for the whole module; draw those from the
# upper half so they never meet the per-test ids of test/conftest.py within one run.
_module_domain_ids = itertools.count((os.getpid() % 50) + 51)


def model_backend(model_dir: Path) -> str:
    """onnxruntime where the model directory has ONNX files (the deployment path), else torch."""
    return 'onnxruntime' if any(model_dir.glob('*.onnx')) else 'torch'


def node_command(*ros_args: str, fake: bool = False) -> list[str]:
    """The node's command line: ``--ros-args -r __node:=anomaly_seg --params-file <config> ...``."""
    program = (sys.executable, str(HERE / 'fake_node.py')) if fake else library.NODE_PROGRAM
    return [*library.node_command(params_file=CONFIG_FILE, program=program), *ros_args]


def module_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """Set a fresh ROS domain for a module-scoped fixture (``ros_domain_id`` is per test)."""
    domain = next(_module_domain_ids) % 100 + 1
    for name, value in library.ros_environment(domain, dds_profile=False).items():
        monkeypatch.setenv(name, value)
    return domain
