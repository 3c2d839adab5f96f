"""Throttled logging and the diagnostics report."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.ros.diagnostics import ERROR, OK, WARN, DiagnosticThresholds, NodeStatistics, diagnostic_array
from anomaly_seg_ros.ros.throttle import LogThrottle


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_lets_the_first_message_through_and_counts_the_held_back_ones():
    clock = _Clock()
    throttle = LogThrottle(5.0, clock)
    assert throttle.format('bad', 'frame 1') == 'frame 1'
    assert [throttle.format('bad', f'frame {i}') for i in range(2, 6)] == [None] * 4
    assert throttle.format('other', 'x') == 'x'  # keys are independent
    clock.now += 5.0
    assert throttle.format('bad', 'frame 6') == 'frame 6 (4 similar messages suppressed since the last one)'
    clock.now += 6.0
    assert throttle.format('bad', 'frame 7') == 'frame 7'


def test_report_gives_totals_rates_latency_stage_times_and_run_counts():
    clock = _Clock()
    stats = NodeStatistics(clock)
    for _ in range(10):
        stats.count('received')
    stats.count('dropped', 4)
    stats.stages_ran(['segmentation'])
    stats.frame_published({'segmentation': 10.0, 'total': 12.0}, 20.0, ['semantic'], stamp_age_ms=25.0)
    stats.frame_published({'segmentation': 30.0, 'total': 32.0}, 40.0, ['semantic', 'semantic_color'])
    clock.now += 2.0
    report = stats.report({'backend': 'fake'})
    values = report.values
    assert report.level == OK
    assert values['frames_received'] == '10' and values['frames_dropped'] == '4'
    assert values['frames_processed'] == '2'
    assert values['input_rate_hz'] == '5.00' and values['output_rate_hz'] == '1.00'
    assert values['drop_rate_hz'] == '2.00'
    assert values['latency_ms_p50'] == '30.0' and values['latency_ms_max'] == '40.0'
    assert values['stamp_age_ms_p50'] == '25.0'
    assert values['stage_ms.segmentation'] == '20.00'
    assert values['stage_runs.segmentation'] == '1' and 'stage_runs.synthesis' not in values
    assert values['published.semantic'] == '2' and values['published.semantic_color'] == '1'
    assert values['backend'] == 'fake'
    # rates and latency cover one period; totals stay
    clock.now += 1.0
    values = stats.report().values
    assert values['input_rate_hz'] == '0.00' and 'latency_ms_p50' not in values
    assert values['frames_received'] == '10'


@pytest.mark.parametrize(('counter', 'level', 'text'), [
    ('malformed', WARN, 'malformed input frames skipped'),
    ('nonfinite', ERROR, 'non-finite outputs'),
    ('failed', ERROR, 'failed frames'),
])
def test_problems_raise_the_level_for_one_period(counter, level, text):
    clock = _Clock()
    stats = NodeStatistics(clock)
    stats.count('received', 2)
    stats.frame_published({'total': 1.0}, 5.0, ['anomaly'])
    stats.count(counter, problem='what happened')
    report = stats.report()
    assert report.level == level and text in report.message
    assert report.values[f'last_{counter}'] == 'what happened'
    stats.count('received')
    stats.frame_published({'total': 1.0}, 5.0, ['anomaly'])
    assert stats.report().level == OK


def _period(received=10, dropped=0, malformed=0, published=10, latency_ms=50.0, stamp_age_ms=20.0, thresholds=None):
    stats = NodeStatistics(_Clock())
    stats.count('received', received)
    if dropped:
        stats.count('dropped', dropped)
    if malformed:
        stats.count('malformed', malformed, problem='bad')
    for _ in range(published):
        stats.frame_published({'total': 1.0}, latency_ms, ['anomaly'], stamp_age_ms=stamp_age_ms)
    return stats.report(thresholds=thresholds)


def test_a_healthy_period_is_ok():
    assert _period().level == OK


@pytest.mark.parametrize('period, level, text', [
    (dict(received=10, dropped=9, published=1), WARN, '90% of input frames dropped'),
    (dict(latency_ms=1500.0), WARN, 'latency p90 1500 ms'),
    (dict(stamp_age_ms=-3.6e6), WARN, 'in the future'),
    (dict(stamp_age_ms=3.6e6), WARN, 'old: clock mismatch'),
    (dict(received=5, malformed=5, published=0), ERROR, 'every input frame refused'),
    (dict(received=5, published=0), ERROR, '5 input frames and no output'),
])
def test_trouble_is_flagged_with_a_reason(period, level, text):
    report = _period(**period)
    assert report.level == level and text in report.message, report.message


def test_the_worst_problem_sets_the_level_and_every_problem_is_named():
    report = _period(received=10, dropped=6, published=4, latency_ms=2000.0, stamp_age_ms=-1e5)
    assert report.level == WARN
    assert all(text in report.message for text in ('dropped', 'latency', 'future'))


def test_thresholds_come_from_the_parameters():
    relaxed = DiagnosticThresholds(max_drop_fraction=0.95, max_latency_ms=5000.0, max_stamp_skew_ms=1e7)
    assert _period(received=10, dropped=9, published=1, latency_ms=1500.0, stamp_age_ms=3.6e6,
                   thresholds=relaxed).level == OK


def test_no_input_is_a_warning():
    assert NodeStatistics(_Clock()).report().level == WARN


def test_report_becomes_a_diagnostic_array():
    pytest.importorskip('diagnostic_msgs')
    from builtin_interfaces.msg import Time

    stats = NodeStatistics(_Clock())
    stats.count('received')
    msg = diagnostic_array(stats.report({'backend': 'fake'}), 'anomaly_seg: anomaly segmentation', 'fake cpu',
                           Time(sec=3))
    status = msg.status[0]
    assert status.level == bytes([OK]) and status.hardware_id == 'fake cpu'
    assert {kv.key: kv.value for kv in status.values}['backend'] == 'fake'
    assert msg.header.stamp.sec == 3
