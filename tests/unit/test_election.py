"""Leader election decisions (pure): who may take the Lease when, and the safety property behind it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediagen.controller.election import (
    Observation,
    Take,
    Timing,
    Wait,
    candidate_step,
    new_identity,
    observe,
    pod_of,
    released,
    renewed,
    taken,
    valid_until,
)
from mediagen.kube.lease import LeaseRecord, body_from_record, micro_time, record_from_body

TIMING = Timing(lease_duration=10, renew_deadline=7, retry_period=2)
WALL = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HELD = LeaseRecord(holder="pod-a_1", duration_seconds=10, acquire_time=WALL, renew_time=WALL, version="5")


# --- Timing ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "deadline", "retry", "words"),
    [
        (10, 10, 2, "lease duration (10 s) must be longer than the renew deadline (10 s)"),
        (10, 12, 2, "lease duration (10 s) must be longer than the renew deadline (12 s)"),
        (10, 2, 2, "renew deadline (2 s) must be longer than the retry period (2 s)"),
        (10, 7, 0, "retry period must be positive"),
        (10, 7, -1, "retry period must be positive"),
    ],
)
def test_timings_that_cannot_be_safe_are_refused_with_the_reason(
    duration: int, deadline: float, retry: float, words: str
) -> None:
    with pytest.raises(ValueError, match="must") as caught:
        Timing(lease_duration=duration, renew_deadline=deadline, retry_period=retry)
    assert words in str(caught.value)


def test_the_gap_and_the_create_margin_follow_from_the_timing() -> None:
    assert TIMING.gap == 3
    # Just before an on-time renewal 7 - 2 = 5 s are left: creates wait only when renewals are failing.
    assert TIMING.create_margin == 2.5
    assert valid_until(100.0, TIMING) == 107.0


# --- A candidate's decisions -------------------------------------------------------------------------------------


def test_without_a_lease_the_candidate_creates_one_holding_it() -> None:
    seen, step = candidate_step(None, None, "me_1", TIMING, now=0.0, wall=WALL)
    assert seen is None
    assert step == Take(
        LeaseRecord(holder="me_1", duration_seconds=10, acquire_time=WALL, renew_time=WALL), create=True
    )


def test_a_released_lease_is_taken_at_once_and_counts_a_transition() -> None:
    free = released(replace(HELD, transitions=3), WALL)
    assert free.holder == "" and free.duration_seconds == 1
    _, step = candidate_step(free, None, "me_1", TIMING, now=0.0, wall=WALL)
    assert isinstance(step, Take) and not step.create
    assert step.record.holder == "me_1" and step.record.transitions == 4 and step.record.version == "5"
    assert step.record.acquire_time == WALL and step.record.duration_seconds == 10


def test_a_held_lease_is_taken_only_when_the_same_version_was_seen_a_lease_duration_ago() -> None:
    seen, step = candidate_step(HELD, None, "me_1", TIMING, now=100.0, wall=WALL)
    assert seen == Observation(HELD, 100.0)
    assert step == Wait(2.0)  # looks again after a retry period
    seen, step = candidate_step(HELD, seen, "me_1", TIMING, now=108.5, wall=WALL)
    assert step == Wait(1.5)  # and wakes exactly when the lease duration is over
    seen, step = candidate_step(HELD, seen, "me_1", TIMING, now=110.0, wall=WALL)
    assert isinstance(step, Take) and step.record.holder == "me_1" and step.record.transitions == 1


def test_a_renewal_restarts_the_count() -> None:
    seen, _ = candidate_step(HELD, None, "me_1", TIMING, now=100.0, wall=WALL)
    renewal = replace(renewed(HELD, WALL), version="6")
    seen, step = candidate_step(renewal, seen, "me_1", TIMING, now=109.0, wall=WALL)
    assert seen == Observation(renewal, 109.0)
    _, step = candidate_step(renewal, seen, "me_1", TIMING, now=118.9, wall=WALL)
    assert isinstance(step, Wait)
    _, step = candidate_step(renewal, seen, "me_1", TIMING, now=119.0, wall=WALL)
    assert isinstance(step, Take)


@pytest.mark.parametrize("renew_time", [WALL - dt.timedelta(days=1), WALL + dt.timedelta(days=1), None])
def test_the_holders_timestamps_never_decide_so_clock_skew_changes_nothing(renew_time: dt.datetime | None) -> None:
    record = replace(HELD, renew_time=renew_time)
    seen, step = candidate_step(record, None, "me_1", TIMING, now=0.0, wall=WALL)
    assert step == Wait(2.0)
    _, step = candidate_step(record, seen, "me_1", TIMING, now=9.99, wall=WALL)
    assert isinstance(step, Wait)


def test_the_lease_duration_is_the_one_the_holder_published() -> None:
    longer = replace(HELD, duration_seconds=30)
    seen, _ = candidate_step(longer, None, "me_1", TIMING, now=0.0, wall=WALL)
    _, step = candidate_step(longer, seen, "me_1", TIMING, now=29.0, wall=WALL)
    assert isinstance(step, Wait)
    _, step = candidate_step(longer, seen, "me_1", TIMING, now=30.0, wall=WALL)
    assert isinstance(step, Take)
    # A record without a duration (written by hand) is given ours, never none.
    bare = replace(HELD, duration_seconds=0)
    seen, _ = candidate_step(bare, None, "me_1", TIMING, now=0.0, wall=WALL)
    assert isinstance(candidate_step(bare, seen, "me_1", TIMING, now=9.0, wall=WALL)[1], Wait)


def test_a_record_naming_this_process_is_taken_back_without_a_transition() -> None:
    mine = replace(HELD, holder="me_1", transitions=2)
    _, step = candidate_step(mine, None, "me_1", TIMING, now=0.0, wall=WALL + dt.timedelta(seconds=5))
    assert isinstance(step, Take)
    assert step.record.transitions == 2 and step.record.acquire_time == WALL


def test_observe_keeps_the_first_sighting_of_a_version() -> None:
    first = observe(None, HELD, 1.0)
    assert observe(first, replace(HELD), 5.0) is first
    assert observe(first, replace(HELD, version="9"), 5.0) == Observation(replace(HELD, version="9"), 5.0)


def test_taken_from_another_holder_resets_the_acquire_time() -> None:
    later = WALL + dt.timedelta(minutes=1)
    record = taken(HELD, "me_1", TIMING, later)
    assert (record.holder, record.acquire_time, record.renew_time, record.transitions) == ("me_1", later, later, 1)


# --- The safety property -----------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=40),
    phase=st.floats(min_value=0.0, max_value=0.999),
    retry=st.sampled_from([0.5, 1.0, 2.0]),
    gap=st.sampled_from([1, 3, 5]),
)
def test_no_candidate_takes_over_before_the_leaders_deadline_plus_the_gap(
    outcomes: list[bool], phase: float, retry: float, gap: int
) -> None:
    """A leader renews every retry period, each renewal succeeding or failing as drawn, and stops for good after
    the drawn ones; a candidate looks every retry period (shifted by ``phase`` of one). Writes land the instant they are
    sent, the case least favourable to safety (a candidate sees them as early as possible).

    Whenever the candidate takes the Lease, the leader's own deadline (from its last successful renewal) lies at
    least the gap in the past; and the candidate does take it within a lease duration and a retry period of the
    leader's last renewal."""
    timing = Timing(lease_duration=4 * 2 + gap, renew_deadline=4 * 2, retry_period=retry)
    record = replace(HELD, holder="leader_1", version="1", duration_seconds=timing.lease_duration)
    leader_deadline = valid_until(0.0, timing)
    last_renewal = 0.0
    renewals = iter(outcomes)
    next_renewal, next_look = retry, phase * retry
    seen: Observation | None = None
    while True:
        if next_renewal < next_look and next_renewal < leader_deadline:
            if next(renewals, False):  # the leader stops renewing once the drawn outcomes run out
                record = replace(record, version=str(int(record.version) + 1))
                leader_deadline, last_renewal = valid_until(next_renewal, timing), next_renewal
            next_renewal += retry
            continue
        now = next_look
        seen, step = candidate_step(record, seen, "candidate_1", timing, now, WALL)
        if isinstance(step, Take):
            assert now >= leader_deadline + timing.gap
            assert now <= last_renewal + timing.lease_duration + retry
            return
        next_look = now + step.seconds


# --- Identities and the Lease object ------------------------------------------------------------------------


def test_identities_name_the_pod_and_differ_between_processes() -> None:
    first, second = new_identity("mediagen-operator-7d9f-abcde"), new_identity("mediagen-operator-7d9f-abcde")
    assert first != second
    assert pod_of(first) == pod_of(second) == "mediagen-operator-7d9f-abcde"
    assert pod_of("no-suffix") == "no-suffix"


def test_a_record_survives_the_round_trip_through_a_lease_object() -> None:
    record = replace(HELD, transitions=4, acquire_time=WALL + dt.timedelta(microseconds=12))
    body = body_from_record(record, "ns", "lease")
    assert body["metadata"] == {"name": "lease", "namespace": "ns", "resourceVersion": "5"}
    assert body["spec"]["renewTime"] == "2026-01-01T00:00:00.000000Z"
    assert body["spec"]["acquireTime"] == "2026-01-01T00:00:00.000012Z"
    assert record_from_body(body) == record
    assert "resourceVersion" not in body_from_record(replace(record, version=""), "ns", "lease")["metadata"]


def test_a_mangled_lease_reads_as_free_and_without_times() -> None:
    body = {
        "metadata": {"resourceVersion": "7"},
        "spec": {
            "holderIdentity": 5,
            "leaseDurationSeconds": "ten",
            "renewTime": "yesterday",
            "leaseTransitions": True,
        },
    }
    assert record_from_body(body) == LeaseRecord(holder="", duration_seconds=0, transitions=0, version="7")
    assert record_from_body({}) == LeaseRecord(holder="", duration_seconds=0)
    assert micro_time(None) is None
