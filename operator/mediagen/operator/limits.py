"""Operator-wide bounds: a token bucket for Replicate's request rate, and a generator wrapper that obeys it.

Replicate allows 600 creates and 3000 other requests a minute per account; a thousand pending resources
must never become a thousand concurrent calls. Every request goes through one bucket, creates through a
second, smaller one too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable

from mediagen.generators.base import CreateRequest, Generator, Prediction


class TokenBucket:
    """An asyncio token bucket: ``rate`` tokens a second, at most ``burst`` saved up. Fair (FIFO)."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._clock = clock
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        async with self._lock:  # FIFO: waiters queue on the lock, so no one starves
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)


class RateLimitedGenerator:
    """Wraps a :class:`Generator` so every call waits for the operator-wide rate limits."""

    def __init__(self, inner: Generator, requests: TokenBucket, creates: TokenBucket) -> None:
        self._inner = inner
        self._requests = requests
        self._creates = creates
        self.name = inner.name

    async def create(self, request: CreateRequest) -> Prediction:
        await self._creates.acquire()
        await self._requests.acquire()
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
