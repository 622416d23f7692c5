"""The request pacer's pure logic: a model of Replicate's token bucket, corrected by its answers (no sleeping).

Each behaviour on its own here; tests/unit/test_request_pacing.py runs whole workloads through the real lines
against a simulated Replicate bucket in virtual time."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from mediagen.controller.quota import (
    CEILING_HEADROOM,
    DEFAULT_PAUSE_SECONDS,
    HINT_STRIKES,
    JITTER_SECONDS,
    MAX_PAUSE_SECONDS,
    PACE_MARGIN,
    Quota,
    Spacing,
)

CREATES = 600.0
PACE = CREATES / 60 * (1 - PACE_MARGIN)  # 9.8 a second
RESERVE = JITTER_SECONDS * PACE  # ~1 token kept against bunching on the way


def leave_all(quota: Quota, now: float) -> list[int]:
    """Every ticket the quota lets go at ``now``."""
    tickets = []
    while quota.delay(now) == 0:
        tickets.append(quota.depart(now))
    return tickets


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Quota(0, now=0)
    with pytest.raises(ValueError, match="positive"):
        Quota(600, now=0, ceiling=0)
    with pytest.raises(ValueError, match="positive"):
        Spacing(-1)


def test_a_request_may_not_leave_early_nor_be_answered_twice() -> None:
    quota = Quota(CREATES, now=0)
    ticket = leave_all(quota, 0)[0]
    with pytest.raises(ValueError, match="before its quota"):
        quota.depart(0)
    quota.accepted(ticket, 0)
    with pytest.raises(ValueError, match="not waiting"):
        quota.accepted(ticket, 0)
    with pytest.raises(ValueError, match="not waiting"):
        quota.throttled(999, 0, 1)


def test_it_starts_with_one_seconds_allowance_at_once_less_the_reserve() -> None:
    quota = Quota(CREATES, now=0)
    assert quota.burst == 10 and quota.pace == pytest.approx(PACE)
    tickets = leave_all(quota, 0)
    assert len(tickets) == 9  # the tenth token stays against bunching on the way
    assert quota.in_flight == 9
    # Until answers come, the nine may not have been counted: the bucket may be full of them, and nothing
    # refills beyond its size. Once counted, the refill goes on from what is left.
    assert quota.delay(5.0) == math.inf
    for ticket in tickets:
        quota.unanswered(ticket, 0.05)
    assert quota.delay(0.05) == pytest.approx((1 + RESERVE - 1) / PACE)


def test_as_many_may_be_on_the_way_as_the_bucket_holds() -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    quota.unanswered(tickets.pop(0), 0.5)
    assert quota.tokens(0.5) == 2  # the bucket may hold the eight on the way, and two
    assert quota.delay(0.5) == 0
    tickets.append(quota.depart(0.5))
    assert quota.delay(0.5) == math.inf


def test_once_the_burst_is_spent_requests_leave_at_the_documented_pace() -> None:
    quota = Quota(CREATES, now=0)
    for ticket in leave_all(quota, 0):
        quota.unanswered(ticket, 0)  # answers that teach nothing: only the pace matters here
    now, times = 0.0, []
    for _ in range(50):
        now += quota.delay(now)
        quota.unanswered(quota.depart(now), now)
        times.append(now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(1 / PACE) and max(gaps) == pytest.approx(1 / PACE)
    # 2 % under the documented 10 a second: the bucket is never run exactly dry.
    assert 49 / (times[-1] - times[0]) == pytest.approx(600 / 60 * 0.98)


def test_a_quiet_spell_refills_the_burst_but_never_beyond_it() -> None:
    quota = Quota(CREATES, now=0)
    for ticket in leave_all(quota, 0):
        quota.accepted(ticket, 0.05, remaining=10 - ticket)  # counted down as Replicate does: as believed
    assert quota.tokens(0.05) == pytest.approx(1 + 0.05 * PACE)
    assert quota.tokens(3600) == quota.burst == 10


def test_ratelimit_remaining_reveals_a_larger_burst() -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    quota.accepted(tickets[0], 0.02, remaining=599)
    # 599 left after the first, less the 8 that left after it, less what may have refilled on the way (at 10/s).
    assert quota.burst == 600
    assert quota.tokens(0.02) == pytest.approx(599 - 8 - 0.02 * 10 + 0.02 * PACE)
    assert len(leave_all(quota, 0.02)) == 599 - 8 - math.ceil(RESERVE)


def test_ratelimit_remaining_lowers_an_estimate_that_was_too_high() -> None:
    quota = Quota(CREATES, now=0)
    now = 0.0
    quota.accepted(quota.depart(now), now, remaining=500)  # the estimate now holds about 500
    tickets = leave_all(quota, now)
    assert len(tickets) > 400
    # Another client of the same account spent the bucket: the first answer shows it whatever crossed on the way.
    quota.accepted(tickets[0], now, remaining=0)
    assert quota.tokens(now) <= len(tickets)  # every one sent after it may have been counted first, no more
    for ticket in tickets[1:]:
        quota.accepted(ticket, now, remaining=0)
    assert quota.tokens(now) <= 1  # less than one more than the header said


@pytest.mark.parametrize("seed", range(5))
def test_answers_overtaking_each_other_never_raise_the_estimate_above_the_bucket(seed: int) -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    quota.accepted(tickets[0], 0, remaining=599)  # a whole minute's burst: hundreds more leave at once
    tickets = tickets[1:] + leave_all(quota, 0)
    left = 600 - 1 - len(tickets)  # what the bucket holds once Replicate has counted every one
    # Counted in the order they left, answered in an order jittered over ten of them.
    rng = random.Random(seed)
    for ticket in sorted(tickets, key=lambda t: t + rng.uniform(0, 10)):
        quota.accepted(ticket, 0, remaining=600 - ticket)
        assert quota.tokens(0) <= left
    assert quota.tokens(0) >= left - 10  # careful, not blind: it undershoots by about what overtook


def test_nonsense_in_the_header_is_ignored() -> None:
    quota = Quota(CREATES, now=0)
    ticket = leave_all(quota, 0)[0]
    quota.accepted(ticket, 0.01, remaining=-5)
    assert quota.burst == 11  # treated as no hint: slow start goes on


def test_without_hints_every_accepted_request_lets_one_more_go() -> None:
    # The burst estimate grows by one per accepted request (what leaves per round trip stays the same), until a
    # 429 or a whole minute's allowance.
    quota = Quota(CREATES, now=0)
    sent = leave_all(quota, 0)
    rounds = [len(sent)]
    while quota.burst < CREATES:
        for ticket in sent:
            quota.accepted(ticket, 0)  # answered in no time: nothing refills, only what the answers teach
        sent = leave_all(quota, 0)
        rounds.append(len(sent))
    assert set(rounds[:-1]) == {9}
    assert quota.burst == CREATES
    for ticket in sent:
        quota.accepted(ticket, 0)
    assert quota.burst == CREATES  # never believed larger than a minute's allowance
    assert leave_all(quota, 0) == []


def test_a_429_pauses_for_exactly_what_replicate_said() -> None:
    quota = Quota(CREATES, now=0)
    first, *rest = leave_all(quota, 0)
    quota.throttled(first, 1.0, retry_after=5)
    for ticket in rest:
        quota.unanswered(ticket, 1.0)
    assert quota.paused_until == 6.0
    assert quota.delay(5.999) > 0
    assert quota.delay(6.0) == 0  # refilled meanwhile: the requests sent after it were counted against it
    assert quota.throttled_count == 1


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [(None, DEFAULT_PAUSE_SECONDS), (0.0, 0.0), (-3.0, 0.0), (86400.0, MAX_PAUSE_SECONDS), (42.5, 42.5)],
)
def test_the_pause_is_clamped(retry_after: float | None, pause: float) -> None:
    quota = Quota(CREATES, now=0)
    ticket = leave_all(quota, 0)[0]
    quota.throttled(ticket, 100.0, retry_after)
    assert quota.paused_until == 100.0 + pause


def test_a_429_empties_the_bucket_whatever_was_still_on_the_way() -> None:
    quota = Quota(CREATES, now=0)
    now = 0.0
    quota.accepted(quota.depart(now), now, remaining=50)
    tickets = leave_all(quota, now)
    quota.throttled(tickets[0], now, retry_after=0)  # the estimate said ~48: another client took them
    assert quota.tokens(now) <= len(tickets) - 1  # at most the ones sent after it were counted first
    for ticket in tickets[1:]:  # and they were refused too
        quota.throttled(ticket, now, retry_after=0)
    assert quota.tokens(now) < 1  # empty, as Replicate said


def test_the_pace_halves_once_per_round_of_429s_and_climbs_back_additively() -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    quota.accepted(tickets[0], 0.01, remaining=8)  # steady: a 429 now means the pace is too fast
    for ticket in tickets[1:5]:  # four 429s of one round: one cut
        quota.throttled(ticket, 0.02, retry_after=1)
    assert quota.pace == pytest.approx(PACE / 2)
    for ticket in tickets[5:]:  # answers to requests sent before the cut do not undo it
        quota.accepted(ticket, 0.03)
    assert quota.pace == pytest.approx(PACE / 2)
    now, paces = 1.0, []
    while quota.pace < PACE:
        now += quota.delay(now)
        quota.accepted(quota.depart(now), now)
        paces.append(quota.pace)
    steps = [b - a for a, b in itertools.pairwise(paces)]
    assert steps and all(step == pytest.approx(0.02 * 10) for step in steps[:-1])  # a fiftieth of 10/s each
    assert quota.pace == pytest.approx(PACE)  # back to the documented pace, never above
    quota.accepted(quota.depart(now + 1), now + 1)
    assert quota.pace == pytest.approx(PACE)


def test_a_429_in_a_new_round_cuts_again() -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    quota.accepted(tickets[0], 0.01, remaining=8)
    quota.throttled(tickets[1], 0.02, retry_after=1)
    later = leave_all(quota, 10.0)
    quota.throttled(later[0], 10.1, retry_after=1)
    assert quota.pace == pytest.approx(PACE / 4)


def test_a_pace_halved_many_times_still_sends_one_a_minute() -> None:
    quota = Quota(CREATES, now=0)
    now = 0.0
    quota.accepted(leave_all(quota, now)[0], now, remaining=0)
    for _ in range(30):
        now += quota.delay(now)
        quota.throttled(quota.depart(now), now, retry_after=0)
    assert quota.pace == pytest.approx(1 / 60)


def test_overshooting_in_slow_start_halves_the_burst_not_the_pace() -> None:
    quota = Quota(CREATES, now=0)
    first = leave_all(quota, 0)
    for ticket in first:
        quota.accepted(ticket, 0.05)
    second = leave_all(quota, 0.05)
    assert quota.burst == 19
    quota.throttled(second[0], 0.1, retry_after=1)
    assert quota.burst == 9.5 and quota.pace == pytest.approx(PACE)
    for ticket in second[1:]:
        quota.accepted(ticket, 0.1)
    assert quota.burst == 9.5  # slow start is over


def test_a_low_credit_account_is_found_by_429s() -> None:
    # 6 a minute with a burst of 1: halvings bring the pace down to what the account allows.
    quota = Quota(CREATES, now=0)
    now = 0.0
    for _ in range(8):
        now += quota.delay(now)
        quota.throttled(quota.depart(now), now, retry_after=10)
    assert quota.pace < 0.1


def test_a_ceiling_spaces_requests_whatever_the_burst() -> None:
    quota = Quota(CREATES, now=0, ceiling=8)
    interval = 1 / (8 * (1 - CEILING_HEADROOM))
    assert quota.ceiling == 8 and quota.pace == pytest.approx(1 / interval)
    assert len(leave_all(quota, 0)) == 1
    assert quota.delay(0) == pytest.approx(interval)
    quota.accepted(1, 0.01, remaining=599)  # a huge burst is allowed, the ceiling still holds
    assert len(leave_all(quota, interval)) == 1


def test_a_ceiling_above_the_allowance_changes_nothing() -> None:
    quota = Quota(CREATES, now=0, ceiling=1000)
    assert quota.pace == pytest.approx(PACE)
    assert len(leave_all(quota, 0)) == 1  # spaced 1.1 ms apart, so one at the very same instant
    assert quota.delay(0) == pytest.approx(1 / 900)


def test_spacing_counts_from_the_last_departure() -> None:
    spacing = Spacing(40)
    assert spacing.delay(5.0) == 0
    spacing.depart(5.0)
    assert spacing.delay(5.0) == pytest.approx(1 / 36)
    assert spacing.delay(6.0) == 0


def strike(quota: Quota, now: float) -> None:
    """A hint says hundreds are left, and the next request is refused anyway."""
    assert quota.delay(now) == 0
    quota.accepted(quota.depart(now), now, remaining=500)
    quota.throttled(quota.depart(now), now, retry_after=0)


def test_hints_contradicted_by_429s_can_only_lower_the_estimate() -> None:
    quota = Quota(CREATES, now=0)
    for i in range(HINT_STRIKES - 1):
        strike(quota, 60.0 * (i + 1))
        assert quota.trusts_hints
    strike(quota, 1000.0)
    assert not quota.trusts_hints
    assert quota.burst == 10  # back to the one-second reading
    quota.accepted(quota.depart(2000.0), 2000.0, remaining=500)
    assert quota.tokens(2000.0) == 9  # not raised
    quota.accepted(quota.depart(2000.0), 2000.0, remaining=0)  # lowering still works
    assert quota.tokens(2000.0) <= 1


def test_a_429_from_bunching_is_not_held_against_the_hints() -> None:
    quota = Quota(CREATES, now=0)
    now = 0.0
    quota.accepted(leave_all(quota, now)[0], now, remaining=0)
    for _ in range(HINT_STRIKES + 2):
        now += quota.delay(now)
        ticket = quota.depart(now)
        quota.throttled(ticket, now, retry_after=1)  # the estimate said ~2 left: bunching explains that
        now += 1
    assert quota.trusts_hints


def test_an_unanswered_request_teaches_nothing() -> None:
    quota = Quota(CREATES, now=0)
    tickets = leave_all(quota, 0)
    before = (quota.burst, quota.pace, quota.tokens(0.5))
    quota.unanswered(tickets[0], 0.5)
    assert (quota.burst, quota.pace, quota.tokens(0.5)) == before
    assert quota.in_flight == len(tickets) - 1
