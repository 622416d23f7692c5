"""The request pacer as the workers use it: whole workloads through the real lines and generator wrapper, against
a simulated Replicate (the fake's own token buckets, network latency with jitter), in virtual time.

Each simulated worker does what the real one does with a generation: create it, and on a 429 wait as told
(``retry_after``) and create again; nothing sleeps for real (tests/support/virtual_time.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from mediagen.controller.metrics import Metrics
from mediagen.controller.quota import CEILING_HEADROOM, PACE_MARGIN, Quota
from mediagen.controller.request_pacing import Kind, Lane, RateLimitedGenerator, lanes
from mediagen.generators.base import RESPONSE_NOTES, CreateRequest, Prediction, ThrottledError
from mediagen.generators.replicate import ReplicateGenerator
from mediagen_dev.fake_replicate import FAKE_TOKEN, FakeReplicate, ManualClock, RateLimits
from mediagen_dev.fake_replicate.faults import TokenBucket
from tests.support.virtual_time import VirtualTime

REQUEST = CreateRequest(input={"prompt": "x"}, correlation="0.1", model="acme/flux")


@dataclass(frozen=True)
class Arrival:
    """A request as the simulated Replicate counted it (``at``) and answered it (``answered``)."""

    at: float
    kind: Kind
    status: int
    caller: int
    answered: float
    retry_after: float | None


@dataclass
class SimulatedReplicate:
    """Replicate's two buckets behind a network: each request takes ``latency`` seconds (uniform, seeded) to get
    there and as long to come back, and answers 429 with ``retry_after`` when its bucket is empty."""

    vt: VirtualTime
    creates_burst: float
    others_burst: float
    headers: bool = True
    latency: tuple[float, float] = (0.005, 0.05)
    seed: int = 1
    per_minute: tuple[float, float] = (600.0, 3000.0)
    arrivals: list[Arrival] = field(default_factory=list)
    name: str = "simulated"

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._buckets = {
            "create": TokenBucket(self.per_minute[0], self.creates_burst, self.vt.now),
            "other": TokenBucket(self.per_minute[1], self.others_burst, self.vt.now),
        }
        self._ids = itertools.count()

    async def _request(self, kind: Kind, caller: int) -> Prediction:
        await self.vt.sleep(self._rng.uniform(*self.latency))
        bucket = self._buckets[kind]
        wait = bucket.try_take(self.vt.now)
        status = 429 if wait is not None else 200
        counted = self.vt.now
        remaining = bucket.remaining(counted)
        await self.vt.sleep(self._rng.uniform(*self.latency))
        self.arrivals.append(Arrival(counted, kind, status, caller, self.vt.now, None if wait is None else float(wait)))
        notes = RESPONSE_NOTES.get()
        if notes is not None:
            notes.status, notes.remaining = status, remaining if self.headers else None
        if wait is not None:
            raise ThrottledError("throttled", retry_after=float(wait))
        return Prediction(id=f"p{next(self._ids)}", status="starting")

    async def create(self, request: CreateRequest) -> Prediction:
        return await self._request("create", int(request.correlation.split(".")[0]))

    async def get(self, prediction_id: str) -> Prediction:
        return await self._request("other", int(prediction_id))

    async def cancel(self, prediction_id: str) -> Prediction:
        return await self._request("other", int(prediction_id))

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        await self._request("other", 0)
        return None

    async def aclose(self) -> None:
        return None

    def accepted(self, kind: Kind) -> list[float]:
        """When requests of ``kind`` were let through."""
        return [a.at for a in self.arrivals if a.kind == kind and a.status != 429]

    def throttled(self, kind: Kind) -> int:
        """How many requests of ``kind`` were answered 429."""
        return sum(1 for a in self.arrivals if a.kind == kind and a.status == 429)


def paced(
    vt: VirtualTime,
    replicate: SimulatedReplicate,
    *,
    create_ceiling: float | None = None,
    request_ceiling: float | None = None,
) -> RateLimitedGenerator:
    creates, others = lanes(
        creates_per_minute=replicate.per_minute[0],
        requests_per_minute=replicate.per_minute[1],
        create_ceiling=create_ceiling,
        request_ceiling=request_ceiling,
        clock=vt,
        wait=vt.wait,
    )
    return RateLimitedGenerator(replicate, creates, others)


async def generation(vt: VirtualTime, generator: RateLimitedGenerator, caller: int, polls: int = 0) -> int:
    """What a worker does: create (waiting as told after each 429), then poll ``polls`` times a second apart;
    returns the 429s it was answered."""
    throttled = 0
    request = CreateRequest(input={}, correlation=f"{caller}.1", model="acme/flux")
    while True:
        try:
            await generator.create(request)
            break
        except ThrottledError as err:
            throttled += 1
            await vt.sleep(err.retry_after or 10.0)
    for _ in range(polls):
        await vt.sleep(1.0)
        try:
            await generator.get(str(caller))
        except ThrottledError as err:
            throttled += 1
            await vt.sleep(err.retry_after or 10.0)
    return throttled


def busiest(times: list[float], window: float) -> int:
    """The most of ``times`` in any window of ``window`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def batch(
    count: int, *, burst: float, headers: bool = True, seed: int = 1, latency: tuple[float, float] = (0.005, 0.05)
) -> SimulatedReplicate:
    """``count`` generations submitted at once against Replicate's documented limits with ``burst``."""
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, burst, burst * 5, headers=headers, seed=seed, latency=latency)
    generator = paced(vt, replicate)
    await vt.run(*(generation(vt, generator, i) for i in range(count)))
    assert len(replicate.accepted("create")) == count  # every one created, exactly once
    return replicate


@pytest.mark.parametrize("headers", [True, False], ids=["hints", "no-hints"])
async def test_a_whole_minutes_burst_sends_two_hundred_creates_at_once(headers: bool) -> None:
    replicate = await batch(200, burst=600, headers=headers)
    assert replicate.throttled("create") == 0
    # With the header the burst is known from the first answer; without, each answer lets one more go.
    assert max(replicate.accepted("create")) < (0.25 if headers else 2.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("headers", [True, False], ids=["hints", "no-hints"])
async def test_a_one_second_burst_spreads_two_hundred_creates_at_the_refill_rate(headers: bool, seed: int) -> None:
    replicate = await batch(200, burst=10, headers=headers, seed=seed)
    ideal = (200 - 10) / 10  # the burst at once, then 10 a second
    assert max(replicate.accepted("create")) <= ideal * 1.1
    assert replicate.throttled("create") <= 0.05 * 200


@pytest.mark.parametrize("burst", [10, 600])
async def test_a_sustained_overload_holds_the_documented_rate_without_failing(burst: float) -> None:
    replicate = await batch(2000, burst=burst, latency=(0.002, 0.08))
    accepted = replicate.accepted("create")
    accepted.sort()
    assert busiest(accepted, 60.0) <= 600 + burst  # never more than a minute's allowance and the burst
    steady = [t for t in accepted if 10 <= t <= accepted[-1] - 10]
    rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60
    assert 600 * 0.95 <= rate <= 600 * 1.01, rate  # Replicate's own refill, as its header shows it
    assert replicate.throttled("create") <= 0.05 * 2000


async def test_slow_answers_keep_no_more_on_the_way_than_the_bucket_holds() -> None:
    # Answers taking a second: ten creates a second would mean ten on the way at once, as many as the bucket
    # holds, and any hold-up on the way would bring them in together, faster than it refills.
    replicate = await batch(600, burst=10, latency=(0.2, 0.8))
    assert replicate.throttled("create") == 0
    accepted = sorted(replicate.accepted("create"))
    assert (len(accepted) - 1) / (accepted[-1] - accepted[0]) * 60 >= 0.75 * 600


async def test_a_low_credit_account_is_served_and_every_retry_waits_as_told() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=1, others_burst=50, per_minute=(6.0, 3000.0))
    creates, others = lanes(creates_per_minute=600, requests_per_minute=3000, clock=vt, wait=vt.wait)
    generator = RateLimitedGenerator(replicate, creates, others)
    departures: list[float] = []
    depart = creates.depart

    async def recorded() -> int:
        ticket = await depart()
        departures.append(vt.now)
        return ticket

    creates.depart = recorded  # type: ignore[method-assign]
    await vt.run(*(generation(vt, generator, i) for i in range(20)))
    assert len(replicate.accepted("create")) == 20
    throttles = [a for a in replicate.arrivals if a.status == 429]
    assert throttles
    for refused in throttles:  # nothing left during a pause Replicate announced
        assert refused.retry_after is not None
        paused = (refused.answered, refused.answered + refused.retry_after)
        assert not [t for t in departures if paused[0] < t < paused[1]], (paused, departures)
    assert creates.quota.pace < 0.2  # found the account's 0.1 a second


async def test_callers_leave_first_come_first_served() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=10, others_burst=50, latency=(0.01, 0.01))
    generator = paced(vt, replicate)
    await vt.run(*(generation(vt, generator, i) for i in range(60)))
    order = [a.caller for a in replicate.arrivals if a.kind == "create"]
    assert order == list(range(60))


async def test_creates_waiting_out_a_429_do_not_hold_up_polls() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=10, others_burst=50)
    generator = paced(vt, replicate)
    ticket = await generator.creates.depart()
    generator.creates.throttled(ticket, retry_after=30.0)  # creates wait 30 s from now

    async def polls() -> float:
        await asyncio.gather(*(generator.get("1") for _ in range(40)))
        return vt.now

    finished, _ = await vt.run(polls(), generation(vt, generator, 2))
    assert finished < 1.0
    assert min(replicate.accepted("create")) >= 30.0


async def test_a_shared_ceiling_spaces_every_request_and_serves_both_lines_in_turn() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=600, others_burst=3000, latency=(0.001, 0.001))
    generator = paced(vt, replicate, request_ceiling=40.0)
    await vt.run(*(generation(vt, generator, i, polls=3) for i in range(100)))
    times = sorted(a.at for a in replicate.arrivals)
    interval = 1 / (40 * (1 - CEILING_HEADROOM))
    assert min(b - a for a, b in itertools.pairwise(times)) >= interval - 1e-9
    assert busiest(times, 1.0) <= 40 * (1 - CEILING_HEADROOM) + 1
    kinds = [a.kind for a in sorted(replicate.arrivals, key=lambda a: a.at)]
    # While both lines hold callers they take turns: no kind runs away with the ceiling.
    first_poll = kinds.index("other")
    last_create = len(kinds) - 1 - kinds[::-1].index("create")
    both = kinds[first_poll : last_create + 1]
    longest = max(len(list(run)) for _, run in itertools.groupby(both))
    assert longest <= 2, both


async def test_a_create_ceiling_holds_with_polls_in_between() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=600, others_burst=3000)
    generator = paced(vt, replicate, create_ceiling=8.0, request_ceiling=40.0)
    await vt.run(*(generation(vt, generator, i, polls=2) for i in range(40)))
    creates = replicate.accepted("create")
    departures_apart = 1 / (8 * (1 - CEILING_HEADROOM))
    # Spaced where they leave; the latency on the way (uniform 5-50 ms) may bunch them by up to 45 ms.
    assert busiest(creates, 1.0) <= 8
    assert (max(creates) - min(creates)) >= 39 * departures_apart - 0.05
    assert replicate.throttled("create") == replicate.throttled("other") == 0


async def test_a_caller_canceled_in_line_leaves_without_a_ticket() -> None:
    vt = VirtualTime()
    quota = Quota(600, now=0.0)
    lane = Lane("create", quota, clock=vt, wait=vt.wait)
    tickets = [await lane.depart() for _ in range(9)]  # the burst, less the reserve
    for ticket in tickets:
        lane.unanswered(ticket)
    waiting = asyncio.ensure_future(lane.depart())
    behind = asyncio.ensure_future(lane.depart())
    await asyncio.sleep(0)
    waiting.cancel()

    async def last() -> int:
        return await behind

    (ticket,) = await vt.run(last())
    assert ticket == tickets[-1] + 1  # the canceled caller took none
    assert vt.now == pytest.approx(0.1, abs=0.01)  # and the one behind it went at the first free moment
    assert lane.waiting == 0


async def test_a_429_reaches_the_worker_unchanged_and_pauses_the_line() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=1, others_burst=50, headers=False)
    generator = paced(vt, replicate)

    async def two_creates() -> None:
        await generator.create(REQUEST)
        with pytest.raises(ThrottledError) as caught:
            await generator.create(REQUEST)
        assert caught.value.retry_after == 1.0

    await vt.run(two_creates())
    assert generator.creates.quota.paused_until >= vt.now + 0.9


async def test_errors_without_an_answer_and_refusals_are_told_apart() -> None:
    class Failing:
        name = "failing"

        def __init__(self) -> None:
            self.status: int | None = None

        async def create(self, request: CreateRequest) -> Prediction:
            notes = RESPONSE_NOTES.get()
            assert notes is not None
            notes.status, notes.remaining = self.status, 7 if self.status else None
            raise RuntimeError("failed")

    failing = Failing()
    creates, others = lanes(creates_per_minute=600, requests_per_minute=3000, clock=lambda: 0.0)
    generator = RateLimitedGenerator(failing, creates, others)  # type: ignore[arg-type]
    for status in (None, 503, 422):
        failing.status = status
        with pytest.raises(RuntimeError):
            await generator.create(REQUEST)
    # Only the 422 was counted by the bucket: its header set the estimate (7, less nothing sent since).
    assert creates.quota.in_flight == 0
    assert creates.quota.tokens(0.0) == 7


async def test_the_real_client_hands_ratelimit_remaining_to_the_pacer() -> None:
    clock = ManualClock()
    fake = FakeReplicate(auto_models=True, clock=clock, rate_limits=RateLimits.one_minute_bursts())
    backend = ReplicateGenerator(
        FAKE_TOKEN,
        base_url="http://fake",
        webhook_base_url="https://hooks.example.com/hook",
        transport=httpx.ASGITransport(app=fake),
    )
    metrics = Metrics()

    def observe(kind: Kind, quota: Quota) -> None:
        metrics.pace(kind, quota.pace, quota.burst)

    creates, others = lanes(creates_per_minute=600, requests_per_minute=3000, clock=clock, observer=observe)
    generator = RateLimitedGenerator(backend, creates, others)
    try:
        prediction = await generator.create(REQUEST)
        await generator.get(prediction.id)
    finally:
        await generator.aclose()
    assert creates.quota.burst == 600 and others.quota.burst == 3000
    assert creates.quota.tokens(clock()) == 599  # exactly what the fake counted
    pace = metrics.registry.get_sample_value("mediagen_replicate_pace_per_second", {"kind": "create"})
    burst = metrics.registry.get_sample_value("mediagen_replicate_burst_estimate", {"kind": "other"})
    assert pace == pytest.approx(10 * (1 - PACE_MARGIN)) and burst == 3000


async def test_polls_and_creates_keep_their_own_buckets() -> None:
    vt = VirtualTime()
    replicate = SimulatedReplicate(vt, creates_burst=10, others_burst=50)
    generator = paced(vt, replicate)
    await vt.run(*(generation(vt, generator, i, polls=5) for i in range(100)))
    counts = Counter(a.kind for a in replicate.arrivals if a.status != 429)
    assert counts == {"create": 100, "other": 500}
    assert replicate.throttled("other") <= 0.05 * 500
