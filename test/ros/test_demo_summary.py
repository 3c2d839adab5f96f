"""The demo's printed summary and summary.json: the CPU the figures are from, and, when the node dropped
frames, one line saying this is its newest-frame-wins policy on a CPU slower than the stream (no ROS needed)."""
from __future__ import annotations

import json

from anomaly_seg_ros.demo.output import DemoSummary, format_summary

ZEN3 = 'AMD EPYC 7B13, 2 vCPUs, AVX2'
# The node's diagnostics as the demo client keeps them (strings, ms per frame per part of the frame).
SLOW_NODE = {'backend': 'onnxruntime', 'device': 'cpu', 'frames_dropped': '33', 'stage_ms.convert': '1.00',
             'stage_ms.prepare': '2.00', 'stage_ms.segmentation': '30.00', 'stage_ms.synthesis': '60.00',
             'stage_ms.perceptual': '30.00', 'stage_ms.dissimilarity': '110.00', 'stage_ms.fetch': '3.00'}


def _summary(sent: int, received: int, node: dict[str, str], rate_hz: float = 10.0) -> DemoSummary:
    return DemoSummary(source='60 synthetic scenes', model_dir='/models/demo', backend='onnxruntime', rate_hz=rate_hz,
                       frames_sent=sent, frames_received=received, frames_dropped=sent - received, node=node,
                       out_dir='/tmp/demo', cpu=ZEN3)


def test_the_summary_names_the_cpu_in_print_and_in_summary_json(tmp_path):
    summary = _summary(60, 60, {**SLOW_NODE, 'frames_dropped': '0'})
    text = format_summary(summary)
    assert f'CPU: {ZEN3}' in text.splitlines()
    assert json.loads(summary.save(tmp_path / 'summary.json').read_text())['cpu'] == ZEN3
    assert 'newest frame' not in text  # nothing dropped, nothing to explain


def test_dropped_frames_are_explained_as_newest_frame_wins_on_a_slower_cpu_with_the_measured_frame_time():
    summary = _summary(60, 27, SLOW_NODE)
    assert summary.frame_ms() == 236.0
    lines = format_summary(summary).splitlines()
    assert '60 frames sent at 10 Hz, 27 came back with every output, 33 did not' in lines[2]
    (why,) = [line for line in lines if line.startswith('dropped frames are not a fault')]
    assert 'newest frame wins' in why and 'arrive while it is still processing one' in why
    assert 'at 236 ms a frame on this CPU it keeps up with 4.2 Hz, slower than the 10 Hz sent' in why
    assert '--rate' in why


def test_drops_on_a_cpu_fast_enough_on_average_are_put_down_to_busy_moments_not_to_the_cpu():
    fast = {'frames_dropped': '2', 'stage_ms.segmentation': '30.0', 'stage_ms.dissimilarity': '35.0'}
    (why,) = [line for line in format_summary(_summary(60, 58, fast)).splitlines()
              if line.startswith('dropped frames are not a fault')]
    assert 'keeps up with 15.4 Hz on average' in why and 'slower than' not in why


def test_without_node_timings_the_line_still_names_the_policy_and_drops_outside_the_node_get_none():
    (why,) = [line for line in format_summary(_summary(60, 27, {'frames_dropped': '33'})).splitlines()
              if line.startswith('dropped frames are not a fault')]
    assert 'newest frame wins' in why and 'slower than the stream' in why
    lost_in_transport = format_summary(_summary(60, 58, {'frames_dropped': '0'}))
    assert 'are not a fault' not in lost_in_transport
