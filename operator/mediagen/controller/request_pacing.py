"""Every request to Replicate waits its turn here: one line per kind of request, paced by a :class:`Quota`.

Replicate limits creates (600 a minute) and every other request (3000 a minute) in separate buckets
(docs/replicate.md#rate-limits), so creates and the rest queue in separate lines and never hold each other up;
a configured ceiling on all requests together (``MEDIAGEN_REPLICATE_RPS``) is a :class:`SharedCeiling` the two
lines take turns at. Each line is first come, first served: its first caller sleeps until the quota lets a
request go, the others wait behind it, so a thousand pending resources never become a thousand concurrent
calls, and a burst the quota allows leaves at once. What Replicate answers (accepted, 429 with ``retry_after``,
``ratelimit-remaining``) goes back into the quota through :class:`RateLimitedGenerator`, which wraps the
backend every worker shares; the worker sees the same errors as before and waits as told on a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from mediagen.controller.quota import Quota, Spacing
from mediagen.generators.base import RESPONSE_NOTES, CreateRequest, Generator, Prediction, ResponseNotes, ThrottledError

Kind = Literal["create", "other"]
KINDS: tuple[Kind, ...] = ("create", "other")
PaceObserver = Callable[[Kind, Quota], None]
"""Told after every answer how the quota of one kind stands now (for metrics)."""
Waiter = Callable[[asyncio.Event, float], Awaitable[None]]
"""Waits until the event is set or the seconds have passed, whichever comes first."""
T = TypeVar("T")


async def wait_or_wake(event: asyncio.Event, seconds: float) -> None:
    """The real :data:`Waiter`: sleep ``seconds`` (possibly infinite), or less when ``event`` is set (an answer
    changed the quota)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=None if math.isinf(seconds) else seconds)


class SharedCeiling:
    """A configured ceiling on every request together; the lines take turns at it."""

    def __init__(self, per_second: float) -> None:
        self.spacing = Spacing(per_second)
        self.turn = asyncio.Lock()


class Lane:
    """The line for one kind of request: :meth:`depart` waits for the quota, the answer is reported back."""

    def __init__(
        self,
        kind: Kind,
        quota: Quota,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedCeiling | None = None,
        observer: PaceObserver | None = None,
        wait: Waiter = wait_or_wake,
    ) -> None:
        self.kind = kind
        self.quota = quota
        self._clock = clock
        self._shared = shared
        self._observer = observer
        self._wait = wait
        self._line = asyncio.Lock()  # first come, first served: a new caller never overtakes a waiting one
        self._changed = asyncio.Event()
        self.waiting = 0
        """Callers in the line (for tests and metrics)."""
        self._observe()

    async def depart(self) -> int:
        """Wait for this request's turn and for the quota to let it go; its ticket, for the answer."""
        self.waiting += 1
        try:
            async with self._line:
                now = await self._until(self.quota.delay)
                shared = self._shared
                if shared is None:
                    return self.quota.depart(now)
                async with shared.turn:
                    now = await self._until(lambda at: max(self.quota.delay(at), shared.spacing.delay(at)))
                    shared.spacing.depart(now)
                    return self.quota.depart(now)
        finally:
            self.waiting -= 1

    async def _until(self, delay: Callable[[float], float]) -> float:
        """Sleep until ``delay`` is 0, re-reading it whenever an answer changes the quota; the time then."""
        while True:
            now = self._clock()
            seconds = delay(now)
            if seconds <= 0:
                return now
            self._changed.clear()
            await self._wait(self._changed, seconds)

    def accepted(self, ticket: int, remaining: int | None) -> None:
        """The request was answered (not 429); ``remaining`` from ``ratelimit-remaining``."""
        self.quota.accepted(ticket, self._clock(), remaining)
        self._heard()

    def throttled(self, ticket: int, retry_after: float | None) -> None:
        """The request was answered 429, to be retried after ``retry_after`` seconds."""
        self.quota.throttled(ticket, self._clock(), retry_after)
        self._heard()

    def unanswered(self, ticket: int) -> None:
        """No answer came back."""
        self.quota.unanswered(ticket, self._clock())
        self._heard()

    def _heard(self) -> None:
        self._observe()
        self._changed.set()  # the first in line re-reads the quota: a hint may let it go sooner

    def _observe(self) -> None:
        if self._observer is not None:
            self._observer(self.kind, self.quota)


def lanes(
    *,
    creates_per_minute: float,
    requests_per_minute: float,
    create_ceiling: float | None = None,
    request_ceiling: float | None = None,
    observer: PaceObserver | None = None,
    clock: Callable[[], float] = time.monotonic,
    wait: Waiter = wait_or_wake,
) -> tuple[Lane, Lane]:
    """The create line and the line for everything else, from the account's allowances and the ceilings."""
    shared = SharedCeiling(request_ceiling) if request_ceiling is not None else None
    now = clock()
    creates = Quota(creates_per_minute, now=now, ceiling=create_ceiling)
    others = Quota(requests_per_minute, now=now)
    return (
        Lane("create", creates, clock=clock, shared=shared, observer=observer, wait=wait),
        Lane("other", others, clock=clock, shared=shared, observer=observer, wait=wait),
    )


class RateLimitedGenerator:
    """Wraps a :class:`Generator` so every call waits in its line and its answer informs the pace."""

    def __init__(self, inner: Generator, creates: Lane, others: Lane) -> None:
        self._inner = inner
        self.creates = creates
        self.others = others
        self.name = inner.name

    async def create(self, request: CreateRequest) -> Prediction:
        return await self._send(self.creates, lambda: self._inner.create(request))

    async def get(self, prediction_id: str) -> Prediction:
        return await self._send(self.others, lambda: self._inner.get(prediction_id))

    async def cancel(self, prediction_id: str) -> Prediction:
        return await self._send(self.others, lambda: self._inner.cancel(prediction_id))

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        return await self._send(self.others, lambda: self._inner.find(correlation, created_after))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _send(self, lane: Lane, call: Callable[[], Awaitable[T]]) -> T:
        ticket = await lane.depart()
        notes = ResponseNotes()
        token = RESPONSE_NOTES.set(notes)
        try:
            result = await call()
        except ThrottledError as err:
            lane.throttled(ticket, err.retry_after)
            raise
        except BaseException:
            if notes.status is not None and notes.status < 500:  # refused, but counted against the bucket
                lane.accepted(ticket, notes.remaining)
            else:
                lane.unanswered(ticket)
            raise
        finally:
            RESPONSE_NOTES.reset(token)
        lane.accepted(ticket, notes.remaining)
        return result
