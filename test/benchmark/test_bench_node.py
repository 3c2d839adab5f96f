"""`anomaly_seg bench --node` against the real node (its own process, tiny model): well-formed results."""
from __future__ import annotations

import json

import pytest

from anomaly_seg_ros.cli import main

pytestmark = [pytest.mark.ros, pytest.mark.slow]
pytest.importorskip('rclpy')


def test_node_benchmark_measures_both_runs(tiny_dir, tmp_path, ros_domain_id, capsys):
    out = tmp_path / 'node.json'
    assert main(['bench', '--node', '--models', str(tiny_dir), '--backend', 'onnxruntime', '--input-size', '160x96',
                 '--rate', '5', '--duration', '2', '--domain-id', str(ros_domain_id), '--quiet',
                 '--json', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'run "all outputs"' in text and 'run "only anomaly"' in text and 'targets:' in text
    doc = json.loads(out.read_text())
    assert doc['kind'] == 'node' and doc['result']['settings']['domain_id'] == ros_domain_id
    # As the launch file starts it: with the shipped Fast DDS profile for large images.
    assert doc['result']['settings']['dds_profile'].endswith('fastdds_large_images.xml')
    assert 'Fast DDS profile: ' in text
    everything, only = doc['result']['runs']
    assert everything['name'] == 'all outputs' and len(everything['topics']) == 10
    assert only['topics'] == ['anomaly']
    for run in (everything, only):
        assert run['frames_published'] >= 5
        assert run['node']['frames_processed'] >= 1
        assert run['received']['anomaly'] >= 1
        latency = run['latency_ms']['anomaly']
        assert latency['n'] == run['received']['anomaly'] and 0 < latency['median'] <= latency['p90']
        expected = {'convert', 'prepare', 'segmentation', 'dissimilarity', 'fetch', 'publish'}
        assert expected <= set(run['node_timings_ms'])
        assert run['overhead']['ratio'] is not None and run['overhead']['stages_ms'] > 0
    assert all(n == 0 for topic, n in only['published'].items() if topic != 'anomaly')
    assert only['published']['anomaly'] >= 1
    statuses = {t['name']: t['status'] for t in doc['targets']}
    assert statuses['nothing published on topics nobody subscribes to'] == 'PASS'
