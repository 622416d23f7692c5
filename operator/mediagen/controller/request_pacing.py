"""Operator-wide bounds: pacers for Replicate's request rates, and a generator wrapper that obeys them.

Replicate allows 600 creates and 3000 other requests a minute per account; a thousand pending resources
must never become a thousand concurrent calls. Every request leaves through one pacer, creates through a
second, slower one as well, and both hold at the moment a request leaves.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import math
import time
from collections.abc import Callable

from mediagen.generators.base import CreateRequest, Generator, Prediction

JITTER_HEADROOM = 0.10
"""Requests are paced this fraction below a configured limit, because the limit holds where the server counts,
and nothing on the way keeps time: between a departure here and its arrival there are the operator's busy
event loop, the network and the server's own. Measured with 500 predictions in flight, departures spaced at
least 1 / (0.95 x limit) apart (checked in the unit tests) still arrived up to ~50 ms bunched: 41 requests in
one second against 40, 9 creates against 8. Paced 10% below, 41 departures take 1.11 s and 9 creates 1.11 s,
so it takes more than 100 ms of bunching to break a limit."""


def paced(limit: float) -> Pacer:
    """A pacer that keeps requests under ``limit`` a second as the server counts them, not just as sent."""
    return Pacer(limit * (1.0 - JITTER_HEADROOM))


class Pacer:
    """Departures at least ``1 / rate`` apart, booked in order of arrival (a calendar of future departures).

    A caller books the earliest free moment (:meth:`book`), sleeps until it (:meth:`leave`) and goes. Booking
    ahead is what lets two pacers hold at once: a create books its moment on the create pacer, then the first
    free moment after it on the request pacer, and gets that arrive meanwhile fill the free moments before it
    instead of waiting behind it. :meth:`leave` also keeps the gap from the previous actual departure, so a
    stalled event loop waking several callers at once still lets them go one interval apart."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.interval = 1.0 / rate
        self._clock = clock
        self._booked: list[float] = []  # future departures, sorted
        self._last = -math.inf  # the latest actual departure

    def now(self) -> float:
        """The pacer's clock."""
        return self._clock()

    def book(self, not_before: float = -math.inf, *, now: float | None = None) -> float:
        """Book the earliest moment from ``now`` (and ``not_before``) at least an interval from every other one."""
        moment = max(self._clock() if now is None else now, not_before, self._last + self.interval)
        i = bisect.bisect_left(self._booked, moment - self.interval)
        while i < len(self._booked) and self._booked[i] < moment + self.interval:
            moment = max(moment, self._booked[i] + self.interval)
            i += 1
        self._booked.insert(i, moment)
        return moment

    def cancel(self, moment: float) -> None:
        """Give back a booked moment that will not be used."""
        i = bisect.bisect_left(self._booked, moment)
        if i < len(self._booked) and self._booked[i] == moment:
            del self._booked[i]

    async def leave(self, moment: float, *also: Pacer) -> None:
        """Wait for ``moment`` (booked here and on ``also``) and an interval since the last departure through
        each of them, then depart through all."""
        pacers = (self, *also)
        try:
            # A deadline to sleep until, not an event to wait for: the loop re-checks the gap that a departure
            # which woke first may have taken.
            while (wait := max(moment, *(p._last + p.interval for p in pacers)) - self._clock()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        finally:
            for pacer in pacers:
                pacer.cancel(moment)
        for pacer in pacers:
            pacer._last = self._clock()

    async def acquire(self) -> None:
        """Book the earliest moment and wait for it."""
        await self.leave(self.book())


class RateLimitedGenerator:
    """Wraps a :class:`Generator` so every call waits for the operator-wide rate limits."""

    def __init__(self, inner: Generator, requests: Pacer, creates: Pacer) -> None:
        self._inner = inner
        self._requests = requests
        self._creates = creates
        self.name = inner.name

    async def create(self, request: CreateRequest) -> Prediction:
        # One moment free on both calendars. (Taking a request token first and then waiting for the create
        # pacer sent creates out right next to gets; queueing for each pacer in turn let creates bunch, 11 in a
        # second against 8.)
        moment, now = -math.inf, self._requests.now()
        while True:  # each round only moves later, and both calendars have free moments further on
            create_moment = self._creates.book(not_before=moment, now=now)
            moment = self._requests.book(not_before=create_moment, now=now)
            if moment == create_moment:
                break
            self._creates.cancel(create_moment)
            self._requests.cancel(moment)
        await self._requests.leave(moment, self._creates)
        return await self._inner.create(request)

    async def get(self, prediction_id: str) -> Prediction:
        await self._requests.acquire()
        return await self._inner.get(prediction_id)

    async def cancel(self, prediction_id: str) -> Prediction:
        await self._requests.acquire()
        return await self._inner.cancel(prediction_id)

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        await self._requests.acquire()
        return await self._inner.find(correlation, created_after)

    async def aclose(self) -> None:
        await self._inner.aclose()
