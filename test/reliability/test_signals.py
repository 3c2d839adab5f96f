"""SIGINT and SIGTERM while a frame is being inferred end the node within 2 s, leaving no process.

The node runs the tiny real model whose backend sleeps 5 s in every stage of a camera frame
(node_runner.py, injection.InjectingBackend), and writes a marker line as a stage starts: the signal
is sent once the marker shows inference in progress, so it always lands in the middle of a frame.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_pipeline import rgb_frame
from node_process import CONFIG_FILE
from probe import image_msg

from anomaly_seg_ros.ros.node_process import NodeProcess

pytestmark = pytest.mark.ros

RUNNER = Path(__file__).resolve().parent / 'node_runner.py'
STAGE_DELAY_S = 5.0


@pytest.fixture
def slow_node(tiny_model: Path, tmp_path: Path, ros_domain_id: int) -> Iterator[tuple[NodeProcess, Path]]:
    marker = tmp_path / 'inference_started'
    command = [sys.executable, str(RUNNER), '--ros-args', '-r', '__node:=anomaly_seg', '--params-file',
               str(CONFIG_FILE), '-p', f'model_dir:={tiny_model}', '-p', 'backend:=onnxruntime',
               '-p', 'qos.input_reliability:=reliable']
    env = dict(os.environ, RELIABILITY_DELAY_S=str(STAGE_DELAY_S), RELIABILITY_MARKER=str(marker))
    node = NodeProcess(command, env, tmp_path / 'node.log')
    try:
        yield node, marker
    finally:
        node.stop(signal.SIGKILL, timeout=5.0)


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_a_signal_during_inference_ends_the_node_within_two_seconds(slow_node, probe_factory, sig):
    node, marker = slow_node
    probe: Any = probe_factory()
    probe.wait_for_node_subscription(timeout=90)
    probe.subscribe(['anomaly'])
    started = probe.send_until(lambda: image_msg(rgb_frame(), probe.now_ns()), marker.exists, 30, period=0.2)
    assert started, f'inference never started:\n{node.log()}'
    assert node.process.poll() is None
    time.sleep(0.2)  # well inside the 5 s stage
    seconds = node.stop(sig, timeout=10.0)
    log = node.log()
    print(f'\n{sig.name} during inference: the node ended after {seconds:.2f} s, exit code {node.process.returncode}')
    assert seconds < 2.0, f'{sig.name}: took {seconds:.2f} s to end:\n{log}'
    assert node.process.returncode == 0, log
    with pytest.raises(ProcessLookupError):
        os.killpg(node.process.pid, 0)  # nothing of its process group is left
    assert 'Traceback' not in log
    assert not probe.messages('anomaly'), 'the slow frame cannot have finished'


def test_ctrl_c_twice_during_inference_still_ends_the_node_cleanly(slow_node, probe_factory):
    node, marker = slow_node
    probe: Any = probe_factory()
    probe.wait_for_node_subscription(timeout=90)
    probe.subscribe(['anomaly'])  # outputs nobody subscribes to are not computed
    started = probe.send_until(lambda: image_msg(rgb_frame(), probe.now_ns()), marker.exists, 30, period=0.2)
    assert started, f'inference never started:\n{node.log()}'
    time.sleep(0.2)
    node.process.send_signal(signal.SIGINT)
    time.sleep(0.05)  # the second lands during the tear-down
    seconds = node.stop(signal.SIGINT, timeout=10.0)
    log = node.log()
    assert seconds < 2.0, f'took {seconds:.2f} s to end:\n{log}'
    assert node.process.returncode == 0, log
    assert 'Traceback' not in log
