"""Throttled logging: at most one message per key and period, with a count of those held back.

A camera sending a stream of bad frames must not flood the log; the first message of a kind goes
out at once, later ones at most every ``period_s`` seconds, each saying how many were suppressed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ['LogThrottle']


class LogThrottle:
    """Decides which messages to log. ``clock`` returns seconds (monotonic)."""

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = float(period_s)
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> int | None:
        """``None`` when the message must be held back; else the number held back since the last one."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)

    def format(self, key: str, message: str) -> str | None:
        """``message`` with a suppression note appended, or ``None`` when it must be held back."""
        held_back = self.allow(key)
        if held_back is None:
            return None
        if held_back:
            return f'{message} ({held_back} similar messages suppressed since the last one)'
        return message
