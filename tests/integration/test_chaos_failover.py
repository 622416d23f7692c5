"""The failover scenario of ``make chaos`` at a small scale: two replicas with leader election on a Lease, the
leader SIGKILLed while creates it sent are still unanswered; the standby takes the Lease no sooner than the lease
allows, finds the predictions the dead leader created instead of paying for them again, and finishes the work."""

from __future__ import annotations

from mediagen_dev.chaos import failover
from mediagen_dev.chaos.chaos_stack import Stack


def test_the_standby_takes_over_from_a_killed_leader_without_duplicates(stack: Stack) -> None:
    outcome = failover.run(stack, failover.SMALL)
    assert outcome.survived, outcome.notes
    (trial,) = outcome.details["trials"]
    assert trial["phases"] == {"Succeeded": 4} and trial["duplicates"] == 0 and trial["predictions"] == 4
    assert trial["created_before_kill"] >= 2 and trial["recorded_before_kill"] == 0  # killed mid-create
    assert trial["became_leader_lines"] == 1 and trial["lease_transitions"] == 1
    # Never before the lease allowed it (10 s from the last renewal), and soon after: within a look (2 s).
    assert 10 <= float(trial["takeover_after_last_renewal_seconds"]) <= 10 + 2 + 1
