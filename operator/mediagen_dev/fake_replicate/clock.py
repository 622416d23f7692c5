"""Time for the fake: an injectable clock so tests advance time instead of sleeping.

Every state change of a fake prediction is derived from "now" on read, so the clock is the only moving part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
"""A callable returning the current time as Unix epoch seconds (the default is :func:`time.time`)."""

DEFAULT_START = 1_750_000_000.25
"""2025-06-15T15:06:40.25Z: a fixed, recent-looking start so timestamps in tests are reproducible."""


class ManualClock:
    """A clock that only moves when told to. Thread-safe: the server thread reads, the test writes."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to an absolute epoch time (never backwards)."""
        with self._lock:
            if now < self._now:
                raise ValueError("time only moves forward")
            self._now = now


def wall_clock() -> float:
    """The default clock: real wall time, so timestamps look like Replicate's."""
    return time.time()
