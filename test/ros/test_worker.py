"""The latest-frame worker: the newest frame wins, older ones are dropped and counted."""
from __future__ import annotations

import threading
import time

from anomaly_seg_ros.ros.worker import LatestFrameWorker


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.005)
    return predicate()


def test_newest_frame_wins_and_replaced_frames_are_counted_as_dropped():
    release = threading.Event()
    handled = []

    def handler(item):
        handled.append(item)
        release.wait(5)

    worker = LatestFrameWorker(handler, on_error=lambda exc: None)
    worker.start()
    try:
        assert worker.submit(1) is False
        assert _wait(lambda: worker.busy)
        assert [worker.submit(i) for i in (2, 3, 4)] == [False, True, True]
        release.set()
        assert _wait(lambda: worker.handled == 2)
        assert handled == [1, 4]
        assert (worker.submitted, worker.dropped) == (4, 2)
    finally:
        release.set()
        worker.stop(2)


def test_submit_never_waits_for_the_handler():
    worker = LatestFrameWorker(lambda item: time.sleep(0.5), on_error=lambda exc: None)
    worker.start()
    try:
        worker.submit(0)
        assert _wait(lambda: worker.busy)
        start = time.perf_counter()
        for i in range(1000):
            worker.submit(i)
        assert time.perf_counter() - start < 0.2
        assert worker.dropped == 999
    finally:
        worker.stop(2)


def test_a_failing_frame_is_reported_and_the_worker_goes_on():
    errors, handled = [], []

    def handler(item):
        if item == 'bad':
            raise RuntimeError('boom')
        handled.append(item)

    worker = LatestFrameWorker(handler, on_error=errors.append)
    worker.start()
    try:
        worker.submit('bad')
        assert _wait(lambda: worker.handled == 1)
        worker.submit('good')
        assert _wait(lambda: handled == ['good'])
        assert [str(e) for e in errors] == ['boom']
    finally:
        worker.stop(2)


def test_stop_returns_within_its_timeout_while_a_frame_is_still_running():
    release = threading.Event()
    worker = LatestFrameWorker(lambda item: release.wait(10), on_error=lambda exc: None)
    worker.start()
    worker.submit(0)
    assert _wait(lambda: worker.busy)
    start = time.monotonic()
    assert worker.stop(0.2) is False
    assert time.monotonic() - start < 0.5
    release.set()
    assert _wait(lambda: not worker.busy)
    assert worker.stop(2) is True
