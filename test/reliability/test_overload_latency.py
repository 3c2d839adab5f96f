"""Under a publisher much faster than the pipeline, published outputs keep a bounded latency.

The node runs the tiny real model with every stage slowed by 50 ms (node_runner.py), so a frame
takes at least 0.2 s whatever the machine's load, and a test publisher streaming as fast as it can
is always many times faster. Latency is measured from publishing a frame to receiving its output;
the bound (2 s) is several frame times, so it only fails when frames queue up.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_pipeline import rgb_frame
from node_process import CONFIG_FILE
from probe import image_msg, stamp_ns

from anomaly_seg_ros.ros.node_process import NodeProcess

pytestmark = pytest.mark.ros

RUNNER = Path(__file__).resolve().parent / 'node_runner.py'
STAGE_DELAY_S = 0.05
STREAM_S = 4.0


@pytest.fixture
def slow_node(tiny_model: Path, tmp_path: Path, ros_domain_id: int) -> Iterator[NodeProcess]:
    command = [sys.executable, str(RUNNER), '--ros-args', '-r', '__node:=anomaly_seg', '--params-file',
               str(CONFIG_FILE), '-p', f'model_dir:={tiny_model}', '-p', 'backend:=onnxruntime']
    node = NodeProcess(command, dict(os.environ, RELIABILITY_DELAY_S=str(STAGE_DELAY_S)), tmp_path / 'node.log')
    try:
        yield node
    finally:
        node.stop(signal.SIGKILL, timeout=5.0)


def _diagnostics_after(probe: Any, since_ns: int, timeout: float = 10.0) -> dict[str, str]:
    def fresh() -> list[Any]:
        return [a for a in probe.diagnostics if stamp_ns(a) > since_ns]
    assert probe.spin_until(lambda: bool(fresh()), timeout), 'no diagnostics'
    return {kv.key: kv.value for kv in fresh()[-1].status[0].values}


def test_under_a_much_faster_publisher_latency_stays_bounded_and_drops_are_counted(slow_node, probe_factory):
    probe: Any = probe_factory()
    probe.wait_for_node_subscription(timeout=90)
    probe.subscribe(['anomaly'])
    warm = probe.send_until(lambda: image_msg(rgb_frame(), probe.now_ns()), lambda: bool(probe.messages('anomaly')),
                            60, period=0.3)
    assert warm, f'no output before the overload:\n{slow_node.log()}'
    before = _diagnostics_after(probe, probe.now_ns())
    publisher = probe.publisher()
    frames = [rgb_frame(seed=i) for i in range(8)]
    sent_at: dict[int, float] = {}
    start = time.monotonic()
    while time.monotonic() - start < STREAM_S:
        msg = image_msg(frames[len(sent_at) % len(frames)], probe.now_ns())
        publisher.publish(msg)
        sent_at[stamp_ns(msg)] = time.monotonic()
        probe.executor.spin_once(timeout_sec=0.002)
    probe.spin_until(lambda: False, 1.5)
    after = _diagnostics_after(probe, probe.now_ns())
    outputs = [(received, stamp_ns(msg)) for received, msg in probe.received['anomaly'] if stamp_ns(msg) in sent_at]
    latencies = [received - sent_at[stamp] for received, stamp in outputs]
    dropped = int(after['frames_dropped']) - int(before['frames_dropped'])
    print(f'\nsent {len(sent_at)} frames in {STREAM_S:.0f} s, {len(outputs)} outputs, node dropped {dropped}; '
          f'latency ms p50 {np.percentile(latencies, 50) * 1e3:.0f} max {max(latencies) * 1e3:.0f}')
    assert len(outputs) >= 3
    assert dropped > 0, 'frames the node could not keep up with must be counted as dropped'
    # the newest frame wins: outputs come in stamp order, and no frame waits behind a queue
    assert [stamp for _, stamp in outputs] == sorted(stamp for _, stamp in outputs)
    half = len(latencies) // 2
    assert np.median(latencies[half:]) < 2 * np.median(latencies[:half]) + 0.1, 'latency grows under load'
    assert max(latencies) < 2.0
