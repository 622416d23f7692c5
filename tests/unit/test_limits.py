"""The operator-wide rate limits: no window of time ever sees more requests than the configured limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time

import pytest

from mediagen.controller.request_pacing import JITTER_HEADROOM, Pacer, RateLimitedGenerator, paced
from mediagen.generators.base import CreateRequest, Prediction


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


def test_a_pacer_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


async def test_a_pacer_keeps_every_window_under_the_limit() -> None:
    # 40 in a tenth of a second: the default 40/s in one second, ten times faster so the test is quick.
    limit, window = 400.0, 0.1
    pacer = paced(limit)
    times = []
    for _ in range(100):
        await pacer.acquire()
        times.append(time.monotonic())
    # Never closer than 1 / (0.9 * limit), however late a sleep wakes ...
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / (limit * (1 - JITTER_HEADROOM)) - 1e-6
    # ... so any window holds at most 37 of them: room under the limit for requests bunched on the way.
    assert busiest(times, window) <= limit * window * (1 - JITTER_HEADROOM) + 1
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
    # Spaced as they leave, creates included: a create must not take its request token, then wait its turn
    # among the creates and go out right next to a get.
    spacing = 1 / (400.0 * (1 - JITTER_HEADROOM))
    assert min(b - a for a, b in itertools.pairwise(sorted(everything))) >= spacing - 1e-4


async def test_a_create_waiting_its_turn_does_not_go_out_next_to_a_get() -> None:
    # Creates are the slower class: when several queue for request tokens back to back, each must still leave
    # no sooner than a request token allows, not whenever its own (earlier) token was taken.
    inner = Recording()
    generator = RateLimitedGenerator(inner, requests=paced(400.0), creates=paced(200.0))
    request = CreateRequest(input={}, correlation="u.1", model="a/b")

    async def later_gets() -> None:
        await asyncio.sleep(0.1)
        await asyncio.gather(*(generator.get("p") for _ in range(40)))

    await asyncio.gather(
        *(generator.get("p") for _ in range(40)), *(generator.create(request) for _ in range(20)), later_gets()
    )
    times = sorted(t for _, t in inner.calls)
    assert len(times) == 100
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / (400.0 * (1 - JITTER_HEADROOM)) - 1e-4


async def test_creates_behind_a_long_queue_of_gets_keep_both_paces() -> None:
    # Creates book their moments behind 200 polls that came first; the polls, woken a little late each time,
    # drift into the creates' moments, and both paces must still hold as they interleave.
    inner = Recording()
    generator = RateLimitedGenerator(inner, requests=paced(400.0), creates=paced(100.0))
    request = CreateRequest(input={}, correlation="u.1", model="a/b")
    await asyncio.gather(*(generator.get("p") for _ in range(200)), *(generator.create(request) for _ in range(10)))
    creates = [t for what, t in inner.calls if what == "create"]
    create_interval = 1 / (100.0 * (1 - JITTER_HEADROOM))
    assert len(creates) == 10
    assert min(b - a for a, b in itertools.pairwise(creates)) >= create_interval - 1e-4
    times = sorted(t for _, t in inner.calls)
    assert min(b - a for a, b in itertools.pairwise(times)) >= 1 / (400.0 * (1 - JITTER_HEADROOM)) - 1e-4


async def test_a_canceled_wait_gives_its_moment_back() -> None:
    pacer = Pacer(10.0)  # 100 ms apart
    await pacer.acquire()
    waiter = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    began = time.monotonic()
    await pacer.acquire()  # takes the freed moment, 100 ms after the first, not 200
    assert time.monotonic() - began < 0.15
