"""The failover scenario of ``make chaos`` at a small scale: two peered replicas, the active one SIGKILLed, the
standby takes over and finishes the work without paying for a prediction twice.

It runs the operator with a short kopf peering lifetime (mediagen_dev.chaos.peer) to stay quick; ``make chaos``
measures the unchanged operator, whose takeover waits for kopf's 60 s lifetime."""

from __future__ import annotations

from mediagen_dev.chaos import failover
from mediagen_dev.chaos.chaos_stack import Stack


def test_the_standby_takes_over_from_a_killed_leader_without_duplicates(stack: Stack) -> None:
    outcome = failover.run(stack, failover.Params(generations=3, prediction_seconds=4.0, lifetimes=(6,)))
    assert outcome.survived, outcome.notes
    (trial,) = outcome.details["trials"]
    assert trial["phases"] == {"Succeeded": 3} and trial["duplicates"] == 0 and trial["predictions"] == 3
    assert 0 < float(trial["takeover_seconds"]) <= 6 + 2  # within the dead leader's lifetime (and a poll)
