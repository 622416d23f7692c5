"""A leader starts a paid prediction only while its leadership has a margin left.

The one side effect that costs money is a create on Replicate, and the one a second replica could repeat: it looks
for a lost create by its correlation marker, and a create still on its way to Replicate is not found. A leader
that stops acting cuts its own connections, but a request already sent still lands. So a create is sent only
while the leadership has :attr:`~mediagen.controller.election.Timing.create_margin` left; together with the gap
between a leader's deadline and any takeover, every create has several seconds to reach Replicate before another
replica can look for it. A healthy leader never waits here; one whose renewals fail waits until a renewal
succeeds, or until the watchdog ends the process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from mediagen.generators.base import CreateRequest, Generator, Prediction

log = logging.getLogger(__name__)


class FencedGenerator:
    """Wraps a :class:`Generator`: ``create`` waits while ``remaining()`` is under ``margin`` seconds."""

    def __init__(
        self,
        inner: Generator,
        remaining: Callable[[], float],
        margin: float,
        *,
        poll_seconds: float = 0.1,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._inner = inner
        self._remaining = remaining
        self._margin = margin
        self._poll = poll_seconds
        self._sleep = sleep
        self.name = inner.name

    async def create(self, request: CreateRequest) -> Prediction:
        if self._remaining() < self._margin:
            log.warning("holding a create: %.1f s of leadership left, %.1f s needed", self._remaining(), self._margin)
            while self._remaining() < self._margin:
                await self._sleep(self._poll)
        return await self._inner.create(request)

    async def get(self, prediction_id: str) -> Prediction:
        return await self._inner.get(prediction_id)

    async def cancel(self, prediction_id: str) -> Prediction:
        return await self._inner.cancel(prediction_id)

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        return await self._inner.find(correlation, created_after)

    async def aclose(self) -> None:
        await self._inner.aclose()
