"""The operator-kills scenario of ``make chaos`` at a small scale: SIGKILLs at random moments under load lose
nothing, pay for nothing twice, leave no multipart upload open and no resource held by its finalizer."""

from __future__ import annotations

import dataclasses

from mediagen_dev.chaos import kills
from mediagen_dev.chaos.chaos_stack import Stack


def test_kills_at_random_moments_lose_nothing_and_pay_for_nothing_twice(stack: Stack) -> None:
    params = dataclasses.replace(kills.SMALL, generations=8, window=5.0)
    outcome = kills.run(stack, params, seed=11)
    assert outcome.survived, outcome.notes
    assert outcome.headline == {
        "kills": params.kills + 1,
        "generations": 8,
        "terminal": 8,
        "duplicate_predictions": 0,
        "lost_outputs": 0,
        "orphan_uploads": 0,
        "stuck_finalizers": 0,
    }
    assert outcome.details["predictions"] == 8
    assert outcome.details["multipart_objects"] >= 1  # the large outputs really went through multipart uploads
