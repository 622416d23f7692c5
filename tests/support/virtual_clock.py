"""Virtual time for unit tests of the worker: no test sleeps in real time.

A sleeper lets everything else run first (``settle_rounds`` turns of the event loop); if nothing woke it by then
and no other sleeper is due sooner, the clock jumps to its deadline. Waits on work in progress (:meth:`wait`) never
move the clock themselves: a timeout fires only when a sleeper (or the test, with :meth:`advance`) moves time past
it, so a copy that takes real milliseconds never looks slow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class VirtualClock:
    """A :class:`~mediagen.controller.worker_deps.Clock` whose time moves only when every task waits for it."""

    def __init__(self, start: dt.datetime = START, *, settle_rounds: int = 50) -> None:
        self.start = start
        self.elapsed = 0.0
        """Virtual seconds since ``start``."""
        self.settle_rounds = settle_rounds
        self._sleepers: dict[int, float] = {}
        self._ids = itertools.count()

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass."""
        self.elapsed += seconds

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        if seconds <= 0:
            return
        deadline, token = self.elapsed + seconds, next(self._ids)
        self._sleepers[token] = deadline
        try:
            turns = 0
            while self.elapsed < deadline:
                if wake is not None and wake.is_set():
                    return
                await asyncio.sleep(0)
                turns += 1
                if turns >= self.settle_rounds and deadline <= min(self._sleepers.values()):
                    self.elapsed = max(self.elapsed, deadline)
        finally:
            del self._sleepers[token]

    async def wait(self, awaitable: Awaitable[object], seconds: float) -> bool:
        future = asyncio.ensure_future(awaitable)
        deadline = self.elapsed + seconds
        while not future.done():
            if self.elapsed >= deadline:
                return False
            await asyncio.sleep(0)
        return True


async def until(condition: object, *, turns: int = 100_000) -> None:
    """Let the event loop run until ``condition()`` holds (no real time passes); fail after ``turns`` turns."""
    assert callable(condition)
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition was never reached")
