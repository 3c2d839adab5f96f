"""The latest-frame worker (the newest frame wins, older ones are dropped and counted) and the
hand-off thread (one item at a time, none dropped)."""
from __future__ import annotations

import threading
import time

import pytest

from anomaly_seg_ros.ros.worker import HandOffThread, LatestFrameWorker


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
    release = threading.Event()
    worker = LatestFrameWorker(lambda item: release.wait(10), on_error=lambda exc: None)
    worker.start()
    try:
        worker.submit(0)
        assert _wait(lambda: worker.busy)
        # 1000 submits in another thread: all of them return while the handler still holds item 0.
        submitting = threading.Thread(target=lambda: [worker.submit(i) for i in range(1, 1001)])
        submitting.start()
        submitting.join(5)
        assert not submitting.is_alive() and worker.busy and worker.handled == 0
        assert worker.dropped == 999
    finally:
        release.set()
        worker.stop(2)


@pytest.mark.parametrize('thread_type', [LatestFrameWorker, HandOffThread])
def test_a_failing_item_is_reported_and_the_thread_goes_on(thread_type):
    errors, handled = [], []

    def handler(item):
        if item == 'bad':
            raise RuntimeError('boom')
        handled.append(item)

    thread = thread_type(handler, on_error=errors.append)
    thread.start()
    try:
        thread.submit('bad')
        assert _wait(lambda: thread.handled == 1)
        thread.submit('good')
        assert _wait(lambda: handled == ['good'])
        assert [str(e) for e in errors] == ['boom'] and thread.handled == 2
    finally:
        thread.stop(2)


def test_stop_returns_within_its_timeout_while_a_frame_is_still_running():
    release = threading.Event()
    worker = LatestFrameWorker(lambda item: release.wait(10), on_error=lambda exc: None)
    worker.start()
    worker.submit(0)
    assert _wait(lambda: worker.busy)
    start = time.monotonic()
    assert worker.stop(0.2) is False
    assert time.monotonic() - start < 3.0  # the frame holds it for 10 s: returned at its timeout, not the frame's end
    release.set()
    assert _wait(lambda: not worker.busy)
    assert worker.stop(2) is True


def test_hand_off_returns_at_once_then_waits_for_the_previous_item_and_loses_none():
    releases = [threading.Event() for _ in range(3)]
    handled = []

    def handler(item):
        releases[item].wait(5)
        handled.append(item)

    thread = HandOffThread(handler, on_error=lambda exc: None)
    thread.start()
    try:
        thread.submit(0)
        assert handled == [] and _wait(lambda: not thread.idle)  # returned while item 0 waits for its release
        second = threading.Thread(target=thread.submit, args=(1,))
        second.start()
        second.join(0.2)
        assert second.is_alive(), 'the second item was taken while the first was still being handled'
        releases[0].set()
        second.join(2)
        assert not second.is_alive() and handled == [0]
        releases[1].set()
        assert thread.wait_idle() < 2 and handled == [0, 1] and thread.idle
        releases[2].set()
        thread.submit(2)
        assert _wait(lambda: thread.handled == 3)
        assert handled == [0, 1, 2] and thread.submitted == 3
    finally:
        for release in releases:
            release.set()
        thread.stop(2)


def test_stop_releases_a_waiting_hand_off_and_discards_its_item():
    release, started = threading.Event(), threading.Event()
    handled = []
    thread = HandOffThread(lambda item: (started.set(), release.wait(10), handled.append(item)),
                           on_error=lambda exc: None)
    thread.start()
    thread.submit(0)
    waiting = threading.Thread(target=thread.submit, args=(1,))
    waiting.start()
    # On a loaded machine the thread may not have taken item 0 yet; stop would then discard it.
    assert started.wait(5)
    assert thread.stop(0.2) is False  # item 0 is still being handled (for 10 s)
    waiting.join(5)
    assert not waiting.is_alive() and handled == []  # released by stop, not by the end of item 0
    release.set()
    assert thread.stop(2) is True
    assert handled == [0] and thread.submitted == 1
