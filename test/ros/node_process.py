"""The node as its own process: its command line, a handle to stop it, a ROS domain per module."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE.parents[1] / 'config' / 'anomaly_seg.yaml'

# Module-scoped node processes need a domain of their own for the whole module; draw those from the
# upper half so they never meet the per-test ids of test/conftest.py within one run.
_module_domain_ids = itertools.count((os.getpid() % 50) + 51)


def model_backend(model_dir: Path) -> str:
    """onnxruntime where the model directory has ONNX files (the deployment path), else torch."""
    return 'onnxruntime' if any(model_dir.glob('*.onnx')) else 'torch'


class NodeProcess:
    """``anomaly_seg_node`` started as the launch file starts it, output captured to a file."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w')  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> float:
        """Send ``sig``; returns the seconds until the process ended (killed after ``timeout``)."""
        start = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return time.monotonic() - start


def node_command(*ros_args: str, fake: bool = False) -> list[str]:
    """The node's command line: ``--ros-args -r __node:=anomaly_seg --params-file <config> ...``."""
    program = [sys.executable, str(HERE / 'fake_node.py')] if fake else \
        [sys.executable, '-m', 'anomaly_seg_ros.ros.node']
    return [*program, '--ros-args', '-r', '__node:=anomaly_seg', '--params-file', str(CONFIG_FILE), *ros_args]


def module_domain(monkeypatch: pytest.MonkeyPatch) -> int:
    """Set a fresh ROS domain for a module-scoped fixture (``ros_domain_id`` is per test)."""
    domain = next(_module_domain_ids) % 100 + 1
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    monkeypatch.setenv('ROS_LOCALHOST_ONLY', '1')
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return domain
