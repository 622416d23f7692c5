"""Delays: exponential retry backoff and the polling schedule."""

from __future__ import annotations

from mediagen.api.types import RetrySpec


def retry_delay(retry: RetrySpec, retries_used: int, *, at_least: float | None = None) -> float:
    """Seconds to wait before retry number ``retries_used + 1``: backoff doubling per retry, capped.

    ``at_least`` is what the server asked for (``Retry-After``); it wins when longer."""
    delay = min(float(retry.backoff_seconds) * 2.0**retries_used, float(retry.max_backoff_seconds))
    if at_least is not None:
        delay = max(delay, at_least)
    return delay


def poll_delay(elapsed_seconds: float, *, initial: float, maximum: float) -> float:
    """How long to wait before the next poll of a prediction that has run for ``elapsed_seconds``.

    Quick predictions are noticed quickly; long ones are polled at most every ``maximum`` seconds. The delay
    grows with elapsed time (a third of it), so a 60-second prediction costs at most 15 polls (14 measured
    on paper: 1, 2, 3, 4, 5.3, 7.1, … 53 s, then 68 s)."""
    return max(initial, min(maximum, elapsed_seconds / 3.0))
