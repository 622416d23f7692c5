"""The operator-wide rate limits: no window of time ever sees more requests than the configured limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import pytest

from mediagen.generators.base import CreateRequest, Prediction
from mediagen.operator.limits import JITTER_HEADROOM, RateLimitedGenerator, TokenBucket, paced


def busiest(times: list[float], window: float) -> int:
    """The most requests in any ``window`` seconds (closed at both ends, as a server's counter may be)."""
    return max(sum(1 for t in times[i:] if t - start <= window) for i, start in enumerate(times))


class Recording:
    """A generator that records when each call arrived."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def _seen(self, what: str) -> Prediction:
        self.calls.append((what, time.monotonic()))
        return Prediction(id=f"p{len(self.calls)}", status="starting")

    async def create(self, request: CreateRequest) -> Prediction:
        return self._seen("create")

    async def get(self, prediction_id: str) -> Prediction:
        return self._seen("get")

    async def cancel(self, prediction_id: str) -> Prediction:
        return self._seen("cancel")

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        self._seen("find")
        return None

    async def aclose(self) -> None:
        return None


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


async def test_a_paced_bucket_keeps_every_window_under_the_limit() -> None:
    # 40 in a tenth of a second: the default 40/s in one second, ten times faster so the test is quick.
    limit, window = 400.0, 0.1
    bucket = paced(limit)
    times = []
    for _ in range(100):
        await bucket.acquire()
        times.append(time.monotonic())
    # Never closer than 1 / (0.95 * limit), however late a sleep wakes (the saved-up burst is one token) ...
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / (limit * (1 - JITTER_HEADROOM)) - 1e-6
    # ... so any window holds at most 39 of them: one under the limit, room for a request the network delays.
    assert busiest(times, window) <= limit * window - 1
    # Spaced exactly 1 / limit apart, 41 fit in a closed window: what the headroom prevents.
    assert busiest([i / limit for i in range(100)], window) == limit * window + 1


async def test_concurrent_callers_share_the_limits() -> None:
    inner = Recording()
    generator = RateLimitedGenerator(inner, requests=paced(400.0), creates=paced(200.0))
    request = CreateRequest(input={}, correlation="u.1", model="a/b")
    await asyncio.gather(*(generator.create(request) for _ in range(45)), *(generator.get("p") for _ in range(60)))
    creates = [t for what, t in inner.calls if what == "create"]
    everything = [t for _, t in inner.calls]
    assert len(creates) == 45 and len(everything) == 105
    assert busiest(sorted(creates), 0.2) <= 40 - 1  # 200/s: under 40 in any 0.2 s
    assert busiest(sorted(everything), 0.1) <= 40 - 1  # 400/s: under 40 in any 0.1 s
