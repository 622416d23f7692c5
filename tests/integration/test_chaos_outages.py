"""The dependency-outage scenario of ``make chaos`` at a small scale: S3 down, Replicate answering 503, Replicate
answering 429; work pauses and resumes, nothing covered by the retry budget fails, throttling costs no retries."""

from __future__ import annotations

from mediagen_dev.chaos import outages
from mediagen_dev.chaos.chaos_stack import Stack


def test_outages_pause_work_and_nothing_covered_by_the_budget_fails(stack: Stack) -> None:
    params = outages.Params(
        s3_seconds=3,
        replicate_seconds=4,
        throttle_seconds=3,
        group=1,
        timeout=60,
        covered_retry={"limit": 4, "backoffSeconds": 1, "maxBackoffSeconds": 4},
        retry_after=2,
    )
    outcome = outages.run(stack, params)
    assert outcome.survived, outcome.notes
    details = outcome.details
    assert details["covered_failures"] == 0
    assert details["s3_down"]["s3-covered"]["retries"] >= 1  # the outage was felt, and ridden out
    assert details["replicate_5xx"]["rep-new-covered"]["retries"] >= 1
    assert details["replicate_429"]["throttled-new"] == {"phases": {"Succeeded": 1}, "retries": 0}
