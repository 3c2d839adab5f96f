"""Malformed camera frames, fuzzed: the node's callback never raises, every bad frame is counted as
malformed and logged (throttled), and the next good frame is processed.

In process: the node's real subscription callback and worker (conversion, pipeline, rendering,
publishing) with the fake pipeline, driven one frame at a time so no frame is dropped. Through DDS:
fewer cases, published to the node as its own process.
"""
from __future__ import annotations

import time
from typing import Any

import pytest
from fake_pipeline import rgb_frame
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from malformed import (
    WIDE,
    RawCase,
    compressed_is_valid,
    compressed_message,
    compressed_payloads,
    raw_cases,
    raw_is_valid,
)
from probe import compressed_msg, image_msg, stamp_ns

pytestmark = pytest.mark.ros

RAW_EXAMPLES = 600
COMPRESSED_EXAMPLES = 300
PROCESS_EXAMPLES = 25
_FUZZ = dict(database=None, deadline=None,
             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                    HealthCheck.data_too_large])


class _Logger:
    """Stands in for the node's logger; keeps (level, text)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda text, *args, **kwargs: self.lines.append((level, text))


class _Driver:
    """Feeds frames to an in-process node's callback one at a time and reads its counters."""

    def __init__(self, node: Any, probe: Any) -> None:
        self.node = node
        self.probe = probe
        self.cases = {'valid': 0, 'invalid': 0}
        self.good_stamps: list[int] = []
        self._stamp = 1_700_000_000 * 1_000_000_000

    def next_stamp(self) -> int:
        self._stamp += 1_000_000
        return self._stamp

    def feed(self, msg: Any) -> dict[str, int]:
        """Call the subscription callback with ``msg``; wait until the node is done with it; counter deltas."""
        before = self.node.statistics.totals()
        finished = self.node.frames_finished
        self.node._on_image(msg)  # the callback must return, whatever the message holds
        deadline = time.monotonic() + 30
        while self.node.frames_finished <= finished:
            assert time.monotonic() < deadline, 'the node never finished the frame'
            time.sleep(0.0005)
        self.probe.executor.spin_once(timeout_sec=0)
        after = self.node.statistics.totals()
        return {key: after[key] - before[key] for key in after}

    def feed_good(self, compressed: bool = False) -> None:
        stamp = self.next_stamp()
        msg = compressed_msg(rgb_frame(seed=stamp % 97), stamp) if compressed else image_msg(rgb_frame(), stamp)
        delta = self.feed(msg)
        assert (delta['processed'], delta['malformed'], delta['failed']) == (1, 0, 0), delta
        self.good_stamps.append(stamp)

    def check(self, delta: dict[str, int], valid: bool, what: object) -> None:
        self.cases['valid' if valid else 'invalid'] += 1
        assert delta['received'] == 1 and delta['dropped'] == 0, (delta, what)
        assert delta['failed'] == 0 and delta['nonfinite'] == 0, (delta, what, self.node.statistics.report().values)
        expected = (1, 0) if valid else (0, 1)
        assert (delta['processed'], delta['malformed']) == expected, (delta, what)


def _driver(make_node: Any, probe: Any, monkeypatch: pytest.MonkeyPatch, **parameters: Any) -> tuple[_Driver, _Logger]:
    node = make_node(outputs=['anomaly', 'overlay', 'semantic_color'], **parameters)
    logger = _Logger()
    monkeypatch.setattr(node, 'get_logger', lambda: logger)
    probe.subscribe(['anomaly'])
    assert probe.spin_until(lambda: node._outputs.active() == ['anomaly'], 10), 'the node never saw the subscriber'
    return _Driver(node, probe), logger


def _check_totals(driver: Any, kind: str) -> None:
    """Print the fuzz run's counts; every malformed case counted as malformed, no frame failed."""
    totals = driver.node.statistics.totals()
    print(f'\n{kind} fuzz: {sum(driver.cases.values())} cases ({driver.cases["invalid"]} malformed, '
          f'{driver.cases["valid"]} valid) + {len(driver.good_stamps)} good frames; node totals {totals}')
    assert totals['malformed'] == driver.cases['invalid'] and totals['failed'] == 0


def _check_logging(logger: _Logger, started: float, invalid: int) -> None:
    warnings = [text for level, text in logger.lines if level == 'warning' and 'skipping input frame' in text]
    periods = (time.monotonic() - started) / 5.0  # LogThrottle period of the node
    assert 1 <= len(warnings) <= periods + 2, (len(warnings), invalid)
    assert all('Traceback' not in text for _, text in logger.lines)


def _check_received(driver: _Driver) -> None:
    """The subscriber got the last good frames (the earlier ones may have left its queue)."""
    probe = driver.probe
    last = driver.good_stamps[-5:]
    assert probe.spin_until(lambda: set(last) <= probe.stamps('anomaly'), 10), 'good frames never arrived'


def test_fuzzed_raw_frames_are_counted_as_malformed_and_the_next_good_frame_is_processed(make_node, probe,
                                                                                         monkeypatch):
    driver, logger = _driver(make_node, probe, monkeypatch)
    started = time.monotonic()

    @settings(max_examples=RAW_EXAMPLES, **_FUZZ)
    @given(case=raw_cases())
    @example(case=RawCase('rgb8', 0, 0, 0, 0, False, 0))  # no pixels
    @example(case=RawCase('rgb8', 1, 1, 3, 3, False, 9))  # one pixel, valid
    @example(case=RawCase('mono16', 1, 1, 2, 2, True, 9))  # one pixel, big-endian 16 bit, valid
    @example(case=RawCase('bgra8', WIDE, 2, WIDE * 4, WIDE * 8, False, 7))  # 16384 wide, valid
    @example(case=RawCase('rgb8', WIDE, 1, WIDE * 3 - 1, WIDE * 3 - 1, False, 7))  # step one byte short
    @example(case=RawCase('rgb8', 10, 4, 64, 256, False, 7))  # padded rows, valid
    @example(case=RawCase('rgb8', 10, 4, 64, 255, False, 7))  # data one byte short
    @example(case=RawCase('rgb8', 10, 4, 30, 121, False, 7))  # data one byte long
    @example(case=RawCase('rgb8', WIDE, WIDE, WIDE * 3, 1000, False, 7))  # declared 768 MB, sent 1 kB
    @example(case=RawCase('nv24', 10, 4, 20, 80, False, 7))  # unsupported encoding
    def one_case(case: RawCase) -> None:
        driver.check(driver.feed(case.message(driver.next_stamp())), raw_is_valid(case), case)
        driver.feed_good()

    one_case()
    _check_totals(driver, 'raw')
    assert driver.cases['invalid'] >= RAW_EXAMPLES // 2
    values = driver.node.statistics.report().values  # what /diagnostics carries
    assert values['frames_malformed'] == str(driver.cases['invalid'])
    assert values['last_malformed']
    _check_logging(logger, started, driver.cases['invalid'])
    _check_received(driver)


def test_fuzzed_compressed_frames_are_counted_as_malformed_and_the_next_good_frame_is_processed(make_node, probe,
                                                                                                monkeypatch):
    driver, logger = _driver(make_node, probe, monkeypatch, input_transport='compressed')
    started = time.monotonic()

    @settings(max_examples=COMPRESSED_EXAMPLES, **_FUZZ)
    @given(payload=compressed_payloads(), fmt=st.sampled_from(['rgb8; png compressed bgr8', 'jpeg', '', 'garbage']))
    def one_case(payload: bytes, fmt: str) -> None:
        msg = compressed_message(payload, driver.next_stamp(), fmt)
        driver.check(driver.feed(msg), compressed_is_valid(payload), (fmt, payload[:32], len(payload)))
        driver.feed_good(compressed=True)

    one_case()
    _check_totals(driver, 'compressed')
    assert driver.cases['invalid'] >= COMPRESSED_EXAMPLES // 3
    _check_logging(logger, started, driver.cases['invalid'])
    _check_received(driver)


# --- through DDS, the node as its own process ------------------------------------------------------
def _diagnostics_after(probe: Any, since_ns: int, timeout: float = 10.0) -> dict[str, str]:
    def fresh() -> list[Any]:
        return [a for a in probe.diagnostics if stamp_ns(a) > since_ns]
    assert probe.spin_until(lambda: bool(fresh()), timeout), 'no diagnostics from the node'
    return {kv.key: kv.value for kv in fresh()[-1].status[0].values}


def _wait_for_counts(probe: Any, node: Any, done: Any, timeout: float = 15.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        assert node.process.poll() is None, f'the node died:\n{node.log()}'
        values = _diagnostics_after(probe, probe.now_ns())
        if done(values) or time.monotonic() > deadline:
            return values


def test_malformed_frames_sent_over_dds_to_the_node_process_are_counted_and_never_end_it(ros_domain_id, start_node,
                                                                                         probe_factory):
    node = start_node('-p', 'model_dir:=/fake', '-p', 'qos.input_reliability:=reliable',
                      '-p', 'diagnostics_period:=0.1', fake=True)
    probe = probe_factory()
    probe.wait_for_node_subscription(timeout=60)
    probe.subscribe(['anomaly'])
    assert probe.spin_until(lambda: probe.publisher().get_subscription_count() > 0
                            and probe.node.count_publishers('/anomaly_seg/anomaly') > 0, 20)
    publisher = probe.publisher()
    probe.send_until(lambda: image_msg(rgb_frame(), probe.now_ns()), lambda: bool(probe.messages('anomaly')), 20)
    cases = {'valid': 0, 'invalid': 0}

    @settings(max_examples=PROCESS_EXAMPLES, **_FUZZ)
    @given(case=raw_cases())
    def one_case(case: RawCase) -> None:
        before = _diagnostics_after(probe, probe.now_ns())
        publisher.publish(case.message(probe.now_ns()))
        valid = raw_is_valid(case)
        key = 'frames_processed' if valid else 'frames_malformed'
        after = _wait_for_counts(probe, node, lambda v: int(v[key]) > int(before[key]))
        cases['valid' if valid else 'invalid'] += 1
        assert int(after[key]) == int(before[key]) + 1, (case, before, after)
        assert after['frames_failed'] == '0', after

    one_case()
    print(f'\nover DDS to the node process: {sum(cases.values())} cases ({cases["invalid"]} malformed)')
    assert cases['invalid'] >= 1
    probe.received.clear()
    sent = set()

    def good() -> Any:
        msg = image_msg(rgb_frame(), probe.now_ns())
        sent.add(stamp_ns(msg))
        return msg

    assert probe.send_until(good, lambda: bool(probe.messages('anomaly')), 20), 'no output after the bad frames'
    assert stamp_ns(probe.messages('anomaly')[0]) in sent
    assert node.process.poll() is None
    assert 'Traceback' not in node.log()
    warnings = [line for line in node.log().splitlines() if 'skipping input frame' in line]
    assert 1 <= len(warnings) < cases['invalid'] or cases['invalid'] == 1, warnings  # throttled
