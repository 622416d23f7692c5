"""The gateway's abuse limits against the real API server (the scenario of ``make chaos``): a flooding token gets
429 with Retry-After while another is served, and a tenant at its in-flight quota gets 429 on POST /generate
until its generations finish."""

from __future__ import annotations

from mediagen_dev.chaos import abuse
from mediagen_dev.chaos.chaos_stack import Stack


def test_floods_and_quota_overruns_get_429_with_retry_after(stack: Stack) -> None:
    outcome = abuse.run(stack, abuse.SMALL)
    assert outcome.survived, outcome.notes
    flood = outcome.details["flood"]
    assert flood["served"] >= abuse.SMALL.burst and flood["refused_429"] >= 1
    assert outcome.details["other_token_during_flood"] == 200
    assert outcome.details["quota"]["answers"] == [202] * abuse.SMALL.quota + [429, 429]
    assert outcome.details["create_after_finishing"] == 202
