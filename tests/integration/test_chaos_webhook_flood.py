"""The webhook-flood scenario of ``make chaos`` at a small scale: forged deliveries with large, slow bodies cost the
operator little memory, are all refused, and leave it working."""

from __future__ import annotations

from mediagen_dev.chaos import webhook_flood
from mediagen_dev.chaos.chaos_stack import Stack


def test_a_webhook_flood_is_refused_cheaply(stack: Stack) -> None:
    outcome = webhook_flood.run(stack, webhook_flood.SMALL)
    assert outcome.survived, outcome.notes
    # 20 senders of 2 MiB each: read whole, that is 40 MiB; refused before their bodies, next to nothing.
    assert outcome.headline["webhook_flood_rss_growth_mb"] < 20, outcome.details
    assert sum(outcome.details["answers"].values()) == webhook_flood.SMALL.connections
