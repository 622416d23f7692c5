"""Virtual time for asyncio code that takes its clock and its waiting as parameters: nothing sleeps for real.

:class:`VirtualTime` is a clock (call it) and two ways to wait on it (:meth:`sleep`, :meth:`wait`, the latter a
:data:`mediagen.controller.request_pacing.Waiter`). :meth:`VirtualTime.run` runs coroutines to completion: while
any task can run, they run; when every one of them waits for the clock, the clock jumps to the earliest moment
one of them waits for. So a minute of paced requests takes milliseconds, and the order of events is exact.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualTime:
    """A clock that moves only when every task waits for it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def _alarm(self, seconds: float) -> asyncio.Future[None]:
        """A future set once ``seconds`` of virtual time have passed (never, for an infinite wait)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not math.isinf(seconds):
            heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        return future

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of virtual time."""
        await self._alarm(seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> None:
        """Wait until ``event`` is set or ``seconds`` of virtual time have passed."""
        alarm = self._alarm(seconds)
        woken = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait([alarm, woken], return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            alarm.cancel()

    async def _settle(self) -> None:
        """Let every task that can run, run, until all wait (for the clock, a lock or an event)."""
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's queue of runnable callbacks
        for _ in range(10_000):
            await asyncio.sleep(0)
            if ready is not None and not ready:
                await asyncio.sleep(0)
                if not ready:
                    return
        if ready is not None:
            raise RuntimeError("tasks never settled")

    async def run(self, *aws: Awaitable[Any]) -> list[Any]:
        """Run ``aws`` concurrently to completion in virtual time; their results in order."""
        tasks = [asyncio.ensure_future(a) for a in aws]
        try:
            while True:
                await self._settle()
                if all(task.done() for task in tasks):
                    return [task.result() for task in tasks]
                while self._sleepers and self._sleepers[0][2].done():
                    heapq.heappop(self._sleepers)  # woken early by an event
                if not self._sleepers:
                    raise RuntimeError("deadlock: tasks wait for something that never comes")
                when = self._sleepers[0][0]
                self.now = max(self.now, when)
                while self._sleepers and self._sleepers[0][0] <= when:
                    _, _, future = heapq.heappop(self._sleepers)
                    if not future.done():
                        future.set_result(None)
        finally:
            for task in tasks:
                task.cancel()
