"""The node's health in numbers: frame counts, rates, drops, latency, per-stage timings.

:class:`NodeStatistics` is written by the subscription callback and the worker thread and read by
the diagnostics timer (thread-safe). :meth:`NodeStatistics.report` turns the counts since the last
report into one status (level, message, key/values); :func:`diagnostic_array` wraps it in a
diagnostic_msgs/DiagnosticArray for ``/diagnostics``.

Keys (all values are strings, as DiagnosticStatus requires):
  frames_received, frames_processed, frames_dropped, frames_malformed, frames_nonfinite,
  frames_failed, frames_idle (no subscriber): totals since start.
  input_rate_hz, output_rate_hz, drop_rate_hz: over the last report period.
  latency_ms_p50/p90/max: frame received -> outputs published, over the last period.
  stamp_age_ms_p50: header stamp -> outputs published (meaningful when the camera clock is ours).
  stage_ms.<stage>: mean wall time per pipeline stage, and prepare, fetch, convert (worker thread),
    publish (rendering and publishing, in the publishing thread; beside the next frame's inference
    with publishing: parallel) and publish_wait (the worker waiting for the previous frame's
    publishing to end).
  stage_runs.<stage>: how often each pipeline stage ran (lazy outputs leave stages at 0).
  published.<topic>: messages published per output topic.
  last_malformed, last_nonfinite, last_error: the latest problem of each kind.
plus the static facts the node adds (backend, device, model, resolutions, torch_imported).
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ['OK', 'WARN', 'ERROR', 'DiagnosticThresholds', 'NodeStatistics', 'StatusReport', 'diagnostic_array']

OK, WARN, ERROR = 0, 1, 2
_COUNTERS = ('received', 'processed', 'dropped', 'malformed', 'nonfinite', 'failed', 'idle')


@dataclass
class StatusReport:
    """One report: diagnostic level (OK/WARN/ERROR), one-line message, ordered key/values."""

    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DiagnosticThresholds:
    """Where a period's figures turn the status to WARN (node parameters ``diagnostics.*``)."""

    max_drop_fraction: float = 0.5      # dropped / received frames
    max_latency_ms: float = 1000.0      # p90, receive -> publish
    max_stamp_skew_ms: float = 5000.0   # |now - header stamp| (median): clock mismatch or stale frames


class NodeStatistics:
    """Counters and recent timings of the node; ``clock`` returns seconds (monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: int = 1000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        self._at_last_report: Counter[str] = Counter()
        self._last_report_time = clock()
        self.stage_runs: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self._stage_ms: dict[str, deque[float]] = {}
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._stamp_age_ms: deque[float] = deque(maxlen=window)
        self._window = window
        self._last_problem: dict[str, str] = {}

    # --- writers -----------------------------------------------------------------------------
    def count(self, what: str, n: int = 1, problem: str | None = None) -> None:
        """Add ``n`` to counter ``what`` (one of received, dropped, malformed, nonfinite, failed, idle)."""
        if what not in _COUNTERS:
            raise KeyError(f'unknown counter {what!r}; counters: {", ".join(_COUNTERS)}')
        with self._lock:
            self._totals[what] += n
            if problem is not None:
                self._last_problem[what] = problem

    def frame_published(self, timings_ms: Mapping[str, float], latency_ms: float, topics: Iterable[str],
                        stamp_age_ms: float | None = None) -> None:
        """One frame went out: its stage timings (ms), receive->publish latency, topics published."""
        with self._lock:
            self._totals['processed'] += 1
            for stage, ms in timings_ms.items():
                self._stage_ms.setdefault(stage, deque(maxlen=self._window)).append(float(ms))
            self._latency_ms.append(float(latency_ms))
            if stamp_age_ms is not None:
                self._stamp_age_ms.append(float(stamp_age_ms))
            self.published.update(topics)

    def stages_ran(self, stages: Iterable[str]) -> None:
        with self._lock:
            self.stage_runs.update(stages)

    # --- readers -----------------------------------------------------------------------------
    def totals(self) -> dict[str, int]:
        with self._lock:
            return {name: self._totals[name] for name in _COUNTERS}

    def report(self, static: Mapping[str, Any] | None = None,
               thresholds: DiagnosticThresholds | None = None) -> StatusReport:
        """Status over the period since the previous report (rates, latency) plus totals; the level is
        the worst of the problems found (diagnostic_updater's convention), the message names each."""
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._last_report_time, 1e-9)
            delta = {name: self._totals[name] - self._at_last_report[name] for name in _COUNTERS}
            totals = {name: self._totals[name] for name in _COUNTERS}
            stage_ms = {stage: float(np.mean(values)) for stage, values in self._stage_ms.items() if values}
            latency = np.asarray(self._latency_ms, dtype=np.float64)
            stamp_age = np.asarray(self._stamp_age_ms, dtype=np.float64)
            stage_runs, published = dict(self.stage_runs), dict(self.published)
            problems = dict(self._last_problem)
            self._at_last_report = Counter(self._totals)
            self._last_report_time = now
            for values in self._stage_ms.values():
                values.clear()
            self._latency_ms.clear()
            self._stamp_age_ms.clear()

        values: dict[str, str] = {f'frames_{name}': str(totals[name]) for name in _COUNTERS}
        values['input_rate_hz'] = f'{delta["received"] / elapsed:.2f}'
        values['output_rate_hz'] = f'{delta["processed"] / elapsed:.2f}'
        values['drop_rate_hz'] = f'{delta["dropped"] / elapsed:.2f}'
        if latency.size:
            p50, p90 = np.percentile(latency, [50, 90])
            values.update(latency_ms_p50=f'{p50:.1f}', latency_ms_p90=f'{p90:.1f}',
                          latency_ms_max=f'{latency.max():.1f}')
        if stamp_age.size:
            values['stamp_age_ms_p50'] = f'{np.percentile(stamp_age, 50):.1f}'
        values.update({f'stage_ms.{stage}': f'{ms:.2f}' for stage, ms in sorted(stage_ms.items())})
        values.update({f'stage_runs.{stage}': str(n) for stage, n in sorted(stage_runs.items())})
        values.update({f'published.{topic}': str(n) for topic, n in sorted(published.items())})
        for kind in ('malformed', 'nonfinite', 'failed'):
            if kind in problems:
                values[f'last_{kind}'] = problems[kind]
        values.update({key: str(value) for key, value in (static or {}).items()})

        level, message = _level(delta, totals, latency, stamp_age, thresholds or DiagnosticThresholds())
        rates = f'in {values["input_rate_hz"]} Hz, out {values["output_rate_hz"]} Hz'
        if 'latency_ms_p50' in values:
            rates += f', latency p50 {values["latency_ms_p50"]} ms'
        return StatusReport(level, f'{message}; {rates}' if message else rates, values)


def _level(delta: Mapping[str, int], totals: Mapping[str, int], latency: np.ndarray, stamp_age: np.ndarray,
           thresholds: DiagnosticThresholds) -> tuple[int, str]:
    problems: list[tuple[int, str]] = []
    if delta['nonfinite'] or delta['failed']:
        problems.append((ERROR, f'{delta["nonfinite"]} frames with non-finite outputs and {delta["failed"]} '
                                'failed frames not published'))
    if delta['malformed'] and delta['malformed'] >= delta['received']:
        problems.append((ERROR, f'every input frame refused ({delta["malformed"]} malformed)'))
    elif delta['malformed']:
        problems.append((WARN, f'{delta["malformed"]} malformed input frames skipped'))
    # Three frames, none out, none dropped: with the one-slot mailbox a merely slow pipeline would have
    # dropped the middle one, so the outputs are stuck.
    elif delta['received'] >= 3 and not delta['processed'] and not delta['idle'] and not delta['dropped']:
        problems.append((ERROR, f'{delta["received"]} input frames and no output'))
    if delta['received'] and delta['dropped'] / delta['received'] > thresholds.max_drop_fraction:
        problems.append((WARN, f'{delta["dropped"] / delta["received"]:.0%} of input frames dropped (above '
                               f'{thresholds.max_drop_fraction:.0%}): the pipeline is slower than the camera'))
    if latency.size and np.percentile(latency, 90) > thresholds.max_latency_ms:
        problems.append((WARN, f'latency p90 {np.percentile(latency, 90):.0f} ms above '
                               f'{thresholds.max_latency_ms:.0f} ms'))
    if stamp_age.size:
        age = float(np.median(stamp_age))
        if age < -thresholds.max_stamp_skew_ms:
            problems.append((WARN, f'frame stamps {-age / 1e3:.1f} s in the future: camera and node clocks differ'))
        elif age > thresholds.max_stamp_skew_ms:
            problems.append((WARN, f'frame stamps {age / 1e3:.1f} s old: clock mismatch, or a bag replayed '
                                   'without use_sim_time'))
    if not problems:
        if totals['received'] == 0:
            problems.append((WARN, 'no input frames received yet'))
        elif delta['received'] == 0:
            problems.append((WARN, 'no input frames in the last period'))
        elif delta['processed'] == 0 and delta['idle']:
            problems.append((OK, 'idle: no subscriber on any output topic'))
    if not problems:
        return OK, ''
    return max(level for level, _ in problems), '; '.join(text for _, text in problems)


def diagnostic_array(report: StatusReport, name: str, hardware_id: str, stamp: Any) -> Any:
    """diagnostic_msgs/DiagnosticArray with ``report`` as its one status."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    status = DiagnosticStatus(level=bytes([report.level]), name=name, message=report.message,
                              hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg
