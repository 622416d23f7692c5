"""The transfer-storm scenario of ``make chaos`` at a small scale: cancels and deletes in the middle of slow copies
never let more than ``MEDIAGEN_MAX_TRANSFERS`` copies run at once."""

from __future__ import annotations

from mediagen_dev.chaos import transfers
from mediagen_dev.chaos.chaos_stack import Stack


def test_a_storm_of_cancels_and_deletes_keeps_the_transfer_cap(stack: Stack) -> None:
    outcome = transfers.run(stack, transfers.SMALL)
    assert outcome.survived, outcome.notes
    assert outcome.headline["max_concurrent_transfers"] == transfers.SMALL.max_transfers  # the cap was reached...
    assert outcome.details["copies_started"] > transfers.SMALL.max_transfers  # ...by copies that queued for it


def test_overlaps_are_counted_from_the_log() -> None:
    def line(message: str, second: int) -> str:
        return f'{{"message": "{message}", "timestamp": "2026-01-01T00:00:{second:02d}+00:00"}}'

    log = "\n".join(
        [
            line("transfer started", 1),
            line("transfer started", 2),
            line("transfer ended", 3),
            line("transfer started", 3),
        ]
    )
    assert transfers.most_at_once(log) == (2, 3)
