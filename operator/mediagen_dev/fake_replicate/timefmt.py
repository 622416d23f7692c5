"""RFC 3339 formatting with Replicate's varied precision, and lenient ISO 8601 parsing for list filters."""

from __future__ import annotations

import datetime as dt

PRECISIONS = (9, 6, 3, 0)
"""Fraction digits seen in real responses (``…16.064900134Z``, ``…00.077Z``, ``…55Z``)."""


def rfc3339(epoch: float, digits: int = 6) -> str:
    """Format epoch seconds as UTC RFC 3339 with ``Z`` and ``digits`` fraction digits (0, 3, 6 or 9)."""
    whole = int(epoch // 1)
    nanos = round((epoch - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return base + "Z"
    fraction = f"{nanos:09d}"[:digits]
    return f"{base}.{fraction}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 timestamp (naive means UTC) into epoch seconds; raises ``ValueError``."""
    cleaned = text.strip().replace(" ", "+") if "T" in text else text.strip()
    # A '+' in a query string arrives as a space when the client did not percent-encode it.
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
