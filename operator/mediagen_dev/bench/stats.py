"""Order statistics for benchmark samples, and the busiest window of a series of timestamps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks (numpy's default method)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """``p50``, ``p95``, ``p99``, ``min``, ``max`` (rounded to ``digits``), the sample count ``n`` and
    ``quantiles``: every percentile from 0 to 100, the distribution's CDF at one-percent steps (what
    :mod:`.plots` draws), compact whatever the sample count."""
    result: dict[str, Any] = {
        f"p{q}": round(percentile(values, q), digits) if values else math.nan for q in (50, 95, 99)
    }
    result["min"] = round(min(values), digits) if values else math.nan
    result["max"] = round(max(values), digits) if values else math.nan
    result["n"] = len(values)
    result["quantiles"] = [round(percentile(values, q), digits) for q in range(101)] if values else []
    return result


def busiest_window(times: Sequence[float], window: float) -> int:
    """The largest number of ``times`` that fall in any half-open interval ``[t, t + window)``.

    A sliding window anchored at every timestamp: the maximum over all windows, not over fixed buckets."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, value in enumerate(ordered):
        while value - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_overlap(spans: Sequence[tuple[Any, Any]]) -> int:
    """The most of ``spans`` (start, end: numbers or datetimes) covering one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    best = current = 0
    for _, step in edges:
        current += step
        best = max(best, current)
    return best
