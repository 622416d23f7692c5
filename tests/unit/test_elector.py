"""The elector's loops, the watchdog and the create fence, on an injected clock and an in-memory Lease."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from mediagen.controller.create_fence import FencedGenerator
from mediagen.controller.election import Timing, renewed, taken
from mediagen.controller.elector import LeaderElector, Leadership, Watchdog
from mediagen.generators.base import CreateRequest
from mediagen.generators.mock import MockGenerator
from mediagen.kube.lease import LeaseConflict, LeaseError, LeaseRecord

TIMING = Timing(lease_duration=10, renew_deadline=7, retry_period=2)
WALL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class FakeClock:
    """Monotonic time that only moves when someone waits; ``hooks`` run at every move (other replicas' deeds)."""

    def __init__(self, now: float = 0.0, stop_at: float = math.inf) -> None:
        self.now = now
        self.stop_at = stop_at
        self.hooks: list[Callable[[float], None]] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        assert seconds >= 0
        self.now = min(self.now + seconds, self.stop_at)
        for hook in self.hooks:
            hook(self.now)
        return self.now >= self.stop_at


class MemoryLease:
    """One Lease in memory with resourceVersion checks; it can refuse writes, or every call, for a while."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.record: LeaseRecord | None = None
        self.writes: list[tuple[float, str]] = []
        self.down = False
        self.refuse_holder = ""
        self.before_write: Callable[[], None] | None = None

    def describe(self) -> str:
        return "ns/lease"

    def get(self) -> LeaseRecord | None:
        if self.down:
            raise LeaseError("read Lease ns/lease: HTTP 503 Service Unavailable")
        return self.record

    def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check(record)
        if self.record is not None:
            raise LeaseConflict("exists")
        return self._store(record)

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        self._check(record)
        if self.record is None or self.record.version != record.version:
            raise LeaseConflict("changed")
        return self._store(record)

    def _check(self, record: LeaseRecord) -> None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()
        if self.down or (self.refuse_holder and record.holder == self.refuse_holder):
            raise LeaseError("update Lease ns/lease: HTTP 403 Forbidden")

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        version = int(self.record.version) + 1 if self.record else 1
        self.record = replace(record, version=str(version))
        self.writes.append((self.clock.now, record.holder))
        return self.record


def elector(store: MemoryLease, clock: FakeClock, identity: str) -> LeaderElector:
    return LeaderElector(store, identity, TIMING, monotonic=clock.monotonic, wall=lambda: WALL, wait=clock.wait)


def test_the_first_replica_creates_the_lease_and_leads_for_a_renew_deadline() -> None:
    clock = FakeClock(now=5.0)
    store = MemoryLease(clock)
    first = elector(store, clock, "a_1")
    assert first.acquire()
    assert store.writes == [(5.0, "a_1")]
    assert first.valid_until == 12.0 and first.remaining() == 7.0 and first.leader == "a_1"
    assert store.record is not None and store.record.duration_seconds == 10 and store.record.transitions == 0


def test_a_standby_takes_over_a_silent_holder_exactly_a_lease_duration_after_it_saw_it() -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    assert elector(store, clock, "a_1").acquire()
    clock.now = 0.5
    standby = elector(store, clock, "b_1")
    assert standby.acquire()
    assert store.writes[-1] == (10.5, "b_1")
    assert store.record is not None and store.record.transitions == 1
    assert standby.leader == "b_1"


def test_a_standby_never_takes_a_lease_that_is_renewed() -> None:
    clock = FakeClock(stop_at=120.0)
    store = MemoryLease(clock)
    holder = elector(store, clock, "a_1")
    assert holder.acquire()
    renew_at = [TIMING.retry_period]

    def holder_renews(now: float) -> None:
        while renew_at[0] <= now:
            assert store.record is not None
            store.replace(renewed(store.record, WALL))
            renew_at[0] += TIMING.retry_period

    clock.hooks.append(holder_renews)
    standby = elector(store, clock, "b_1")
    assert not standby.acquire()  # stopped at 120 s, still standing by
    assert {holder for _, holder in store.writes} == {"a_1"}
    assert standby.leader == "a_1"


def test_a_released_lease_is_taken_at_the_next_look(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    holder = elector(store, clock, "a_1")
    assert holder.acquire()
    assert holder.release()
    assert holder.valid_until == -math.inf and holder.held is None
    assert store.record is not None and store.record.holder == ""
    caplog.set_level(logging.INFO)
    standby = elector(store, clock, "b_1")
    assert standby.acquire()
    assert store.writes[-1] == (0.0, "b_1")
    assert "became the leader: Lease ns/lease held by b_1 (transition 1)" in caplog.text


def test_of_two_candidates_racing_for_a_free_lease_one_wins_and_the_other_stands_by() -> None:
    clock = FakeClock(stop_at=5.0)
    store = MemoryLease(clock)
    free = LeaseRecord(holder="", duration_seconds=1, version="3")
    store.record = free
    # Both read version 3; b writes first, so c's write conflicts, and c reads again and stands by.
    store.before_write = lambda: store.replace(taken(free, "b_1", TIMING, WALL))
    loser = elector(store, clock, "c_1")
    assert not loser.acquire()
    assert [holder for _, holder in store.writes] == ["b_1"]
    assert loser.leader == "b_1" and loser.valid_until == -math.inf


def test_read_errors_are_retried_each_retry_period_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    store.down = True
    clock.hooks.append(lambda now: setattr(store, "down", now < 5.0))
    candidate = elector(store, clock, "a_1")
    assert candidate.acquire()
    assert store.writes == [(6.0, "a_1")]  # looked at 0, 2, 4 (down) and 6
    assert caplog.text.count("cannot read the Lease: read Lease ns/lease: HTTP 503") == 3


def test_a_leader_renews_each_retry_period_and_its_deadline_follows() -> None:
    clock = FakeClock(stop_at=21.0)
    store = MemoryLease(clock)
    leader = elector(store, clock, "a_1")
    assert leader.acquire()
    assert leader.keep() is None  # asked to stop
    assert [when for when, _ in store.writes] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
    assert leader.valid_until == 27.0


def test_a_leader_that_cannot_renew_gives_up_once_its_deadline_passed(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    leader = elector(store, clock, "a_1")
    assert leader.acquire()
    clock.hooks.append(lambda now: setattr(store, "refuse_holder", "a_1" if now > 5.0 else ""))
    reason = leader.keep()
    assert reason == "no renewal succeeded within the renew deadline (7 s)"
    assert [when for when, _ in store.writes] == [0.0, 2.0, 4.0]
    assert leader.valid_until == 11.0 and clock.now == 12.0  # the watchdog (below) ends it at 11.0 already
    assert "renewing the Lease failed (5.0 s of leadership left): update Lease ns/lease: HTTP 403" in caplog.text


def test_a_leader_whose_lease_was_taken_stops_at_its_next_renewal() -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    leader = elector(store, clock, "a_1")
    assert leader.acquire()
    assert store.record is not None
    store.record = replace(store.record, holder="intruder_1", version="99")
    assert leader.keep() == "the Lease is held by intruder_1 now"
    store.record = None
    assert leader.acquire()
    store.record = None
    assert leader.keep() == "the Lease was deleted"


def test_a_lease_changed_by_someone_else_but_still_ours_is_renewed_at_once() -> None:
    clock = FakeClock(stop_at=3.0)
    store = MemoryLease(clock)
    leader = elector(store, clock, "a_1")
    assert leader.acquire()
    assert store.record is not None
    store.record = replace(store.record, version="50")  # e.g. a label added by hand
    assert leader.keep() is None
    assert store.writes == [(0.0, "a_1"), (2.0, "a_1")]
    assert store.record.version == "51" and leader.valid_until == 9.0


def test_the_watchdog_ends_the_leadership_exactly_at_the_deadline_unless_it_moves() -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    leader = elector(store, clock, "a_1")
    assert leader.acquire()
    ended: list[tuple[float, str]] = []
    # A renewal at 6.0 moves the deadline from 7.0 to 13.0; none comes after.
    clock.hooks.append(lambda now: setattr(leader, "valid_until", 13.0) if now >= 6.0 else None)
    Watchdog(leader, lambda why: ended.append((clock.now, why)), monotonic=clock.monotonic, wait=clock.wait).run()
    assert ended == [(13.0, "the leadership ran out 0.00 s ago without a renewal")]


def test_a_stopped_watchdog_ends_nothing() -> None:
    clock = FakeClock(stop_at=3.0)
    leader = elector(MemoryLease(clock), clock, "a_1")
    leader.valid_until = 5.0
    ended: list[str] = []
    Watchdog(leader, ended.append, monotonic=clock.monotonic, wait=clock.wait).run()
    assert ended == []


def test_leadership_threads_release_the_lease_on_a_clean_finish() -> None:
    clock = FakeClock()
    store = MemoryLease(clock)
    # Real threads and waits: the leadership is made long, so nothing renews or expires during the test.
    leader = LeaderElector(
        store, "a_1", Timing(lease_duration=3600, renew_deadline=3000, retry_period=1000), wall=lambda: WALL
    )
    assert leader.acquire()
    lost: list[str] = []
    leadership = Leadership(leader, on_lost=lost.append)
    leadership.start()
    leadership.finish()
    assert lost == []
    assert store.record is not None and store.record.holder == "" and store.record.duration_seconds == 1


# --- The create fence ------------------------------------------------------------------------------------------


async def test_creates_wait_while_the_leadership_runs_short_and_go_once_it_is_renewed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    left = [1.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            left[0] = 6.5  # a renewal came through

    fenced = FencedGenerator(MockGenerator(), lambda: left[0], margin=2.5, sleep=sleep)
    prediction = await fenced.create(CreateRequest(input={"prompt": "x"}, correlation="u.1", model="a/b"))
    assert prediction.status == "succeeded"
    assert slept == [0.1, 0.1, 0.1]
    assert "holding a create: 1.0 s of leadership left, 2.5 s needed" in caplog.text


async def test_a_healthy_leader_creates_without_waiting_and_reads_are_never_held() -> None:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError("must not wait")

    left = [2.5]
    fenced = FencedGenerator(MockGenerator(), lambda: left[0], margin=2.5, sleep=no_sleep)
    assert fenced.name == "mock"
    created = await fenced.create(CreateRequest(input={"prompt": "x"}, correlation="u.1", model="a/b"))
    left[0] = -1.0
    assert (await fenced.get(created.id)).id == created.id
    await fenced.find("u.1", WALL)
    await fenced.cancel(created.id)
    await fenced.aclose()
