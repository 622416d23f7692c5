"""Knobs of the fake that are not per model: paging, limits of the platform, retention guesses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeConfig:
    """Server-wide behaviour. Mutable: tests may tweak a field between requests (under ``fake.lock``)."""

    page_size: int = 100
    """Predictions per ``GET /v1/predictions`` page (Replicate: 100)."""
    run_timeout: float = 1800.0
    """Seconds of processing before ``failed`` with ``"Prediction timed out."`` (Replicate: 30 min)."""
    retention_ttl: float = 3600.0
    """Seconds after creation when a finished API prediction loses its data (Replicate: one hour)."""
    removed_input: dict[str, Any] | None = field(default_factory=dict)
    """What ``input`` reads after data removal (unverified guess: ``{}``)."""
    removed_logs: str | None = None
    """What ``logs`` reads after data removal (unverified guess: ``null``)."""
    sync_wait_cap: float = 60.0
    """Upper bound, in real seconds, for holding a ``Prefer: wait`` create."""
    correlation_param: str = "mg"
    """Query parameter of the webhook URL that :attr:`FakeReplicate.creates_by_marker` counts by."""
    default_webhook_events: tuple[str, ...] = ("output", "completed")
    """Events delivered when a create sets ``webhook`` without ``webhook_events_filter`` (docs default)."""
    ratelimit_headers: bool = True
    """Send ``ratelimit-remaining`` and ``ratelimit-reset`` (Replicate does); off to see a client cope without."""
    valid_tokens: frozenset[str] = frozenset({"r8_fake_token"})
    """Tokens accepted as ``Bearer``/``Token``; any other value gets 401."""
