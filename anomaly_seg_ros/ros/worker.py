"""The node's two threads: the worker (the newest frame wins) and the publisher (one frame at a time).

The subscription callback only calls :meth:`LatestFrameWorker.submit`, which swaps the frame into
a slot under a lock and returns at once. The worker thread takes whatever is in the slot when it
is free. A frame still waiting when a newer one arrives is dropped and counted; frames are never
queued, so a slow pipeline shows up as drops, not as growing latency.

The worker hands each frame's results to a :class:`HandOffThread`, which renders and publishes
them. With parallel publishing the worker runs the next frame meanwhile (on a machine with a core
to spare, publishing no longer delays inference); inline, it waits for the publishing to end.
Handing off waits while the previous frame is still being published, so one frame at a time is
published, none is queued and none is lost after inference.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ['HandOffThread', 'LatestFrameWorker']

T = TypeVar('T')


class _SlotThread(Generic[T]):
    """A daemon thread that runs ``handler`` on the item in a one-item slot, one item at a time.

    Subclasses decide how an item enters the slot (replacing a waiting one, or waiting for the
    previous one to be handled). Exceptions from ``handler`` go to ``on_error``; the thread keeps
    running.
    """

    def __init__(self, handler: Callable[[T], None], on_error: Callable[[BaseException], None], name: str) -> None:
        self._handler = handler
        self._on_error = on_error
        self._condition = threading.Condition()
        self._slot: T | None = None
        self._has_item = False
        self._busy = False
        self._stopping = False
        self.submitted = 0
        self.handled = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def busy(self) -> bool:
        """True while ``handler`` runs."""
        return self._busy

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the thread to end after the current item; returns True when it has ended.

        A waiting item is discarded.
        """
        with self._condition:
            self._stopping = True
            self._slot, self._has_item = None, False
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _put(self, item: T) -> None:
        """Fill the slot; the caller holds the condition."""
        self._slot, self._has_item = item, True
        self.submitted += 1
        self._condition.notify_all()

    def _take(self) -> tuple[bool, T | None]:
        with self._condition:
            while not self._has_item and not self._stopping:
                self._condition.wait()
            if self._stopping:
                return False, None
            item, self._slot, self._has_item = self._slot, None, False
            self._busy = True
            return True, item

    def _run(self) -> None:
        while True:
            ok, item = self._take()
            if not ok:
                return
            try:
                self._handler(item)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - a frame must never end the thread
                if not self._stopping:
                    try:
                        self._on_error(exc)
                    except Exception:  # noqa: BLE001 - reporting must not end the thread either
                        pass
            finally:
                with self._condition:
                    self._busy = False
                    self.handled += 1
                    self._condition.notify_all()


class LatestFrameWorker(_SlotThread[T]):
    """Runs ``handler`` on the newest submitted item, one at a time, in a daemon thread.

    Args:
        handler: called with each item taken from the slot.
        on_error: called with any exception ``handler`` raises; the thread keeps running.
        name: the thread's name.
    """

    def __init__(self, handler: Callable[[T], None], on_error: Callable[[BaseException], None],
                 name: str = 'anomaly_seg_worker') -> None:
        super().__init__(handler, on_error, name)
        self.dropped = 0

    def submit(self, item: T) -> bool:
        """Put ``item`` in the slot; returns True when it replaced an item not yet taken (a drop).

        Never waits for the handler. An item still waiting at :meth:`stop` is discarded, not counted
        as dropped.
        """
        with self._condition:
            replaced = self._has_item
            if replaced:
                self.dropped += 1
            self._put(item)
        return replaced


class HandOffThread(_SlotThread[T]):
    """Runs ``handler`` on each submitted item in a daemon thread, one item at a time.

    :meth:`submit` waits until the previous item has been handled, then returns at once: the caller
    works on while the thread handles the item, and is never more than one item ahead of it.

    Args:
        handler: called with each submitted item.
        on_error: called with any exception ``handler`` raises; the thread keeps running.
        name: the thread's name.
    """

    def __init__(self, handler: Callable[[T], None], on_error: Callable[[BaseException], None],
                 name: str = 'anomaly_seg_publisher') -> None:
        super().__init__(handler, on_error, name)

    def wait_idle(self) -> float:
        """Wait until the previous item is handled (or :meth:`stop`); returns the seconds waited."""
        start = time.monotonic()
        with self._condition:
            self._wait_until_idle()
        return time.monotonic() - start

    def submit(self, item: T) -> None:
        """Hand ``item`` over once the previous one is handled. After :meth:`stop` it is discarded."""
        with self._condition:
            self._wait_until_idle()
            if not self._stopping:
                self._put(item)

    @property
    def idle(self) -> bool:
        """True when no item waits and none is being handled."""
        with self._condition:
            return not (self._has_item or self._busy)

    def _wait_until_idle(self) -> None:
        """The caller holds the condition; returns early on :meth:`stop`."""
        while (self._has_item or self._busy) and not self._stopping:
            self._condition.wait()
