"""A short overload run of the node as its own process (benchmark/soak.py): a few hundred frames sent
several times faster than the tiny model's pipeline.

Only what does not depend on timing is asserted: drops are counted and every frame is accounted
for, the newest frame wins (output stamps strictly increasing), nothing fails, resident memory grows
by less than a generous bound, the node stops cleanly. The minutes-long figures come from
``anomaly_seg bench --soak`` (docs/RELIABILITY.md).
"""
from __future__ import annotations

import os

import pytest

from anomaly_seg_ros.benchmark.soak import run_soak

pytestmark = pytest.mark.ros

FRAMES = 400
RSS_GROWTH_LIMIT_MB = 100.0


def test_a_few_hundred_frames_far_faster_than_the_pipeline_are_dropped_not_queued(tiny_model, ros_domain_id):
    report = run_soak(tiny_model, max_frames=FRAMES, input_size=(320, 240), rate_factor=6.0, max_rate_hz=250.0,
                      outputs=('anomaly', 'overlay'), rss_period_s=0.2, domain_id=ros_domain_id,
                      rss_growth_limit_mb=RSS_GROWTH_LIMIT_MB)
    print('\n' + '\n'.join(report.lines()))
    node = report.node
    assert report.frames_sent == FRAMES
    assert node['received'] + report.lost_before_node == FRAMES
    # every frame the node took in is published, dropped for a newer one, or skipped, and counted
    assert report.checks['frames_accounted'], node
    assert node['processed'] >= 5
    assert node['dropped'] + report.lost_before_node > 0, 'the publisher was not faster than the pipeline'
    assert report.outputs_received <= node['processed']
    assert report.checks['newest_frame_wins']
    assert report.checks['no_failed_frames'], node
    assert report.checks['rss_bounded'], report.rss_mb
    assert report.rss_samples >= 3
    assert report.exit_code == 0, open(report.log).read()
    assert os.path.getsize(report.log) > 0
