"""``bench/reliability.json``: the headline numbers the issue asks for, plus every scenario's own account.

The headline keys are fixed (``kills`` … ``secret_leaks``); ``scenarios`` keeps what each scenario measured and
noticed, so a miss is reported with its reason rather than hidden in a total.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADLINE_KEYS = (
    "kills",
    "generations",
    "terminal",
    "duplicate_predictions",
    "lost_outputs",
    "orphan_uploads",
    "stuck_finalizers",
    "apiserver_restarts_survived",
    "etcd_restarts_survived",
    "failover_seconds",
    "fuzz_cases",
    "fuzz_failures",
    "secret_leaks",
    "stuck_workers",
    "webhook_flood_rss_growth_mb",
    "max_concurrent_transfers",
)
_LATEST = frozenset({"failover_seconds", "webhook_flood_rss_growth_mb"})
"""Headline keys a scenario reports as a figure of its own, not a count to add up."""
_MOST = frozenset({"max_concurrent_transfers"})
"""Headline keys that are a maximum across scenarios."""


@dataclass
class Outcome:
    """What one scenario measured: headline contributions, details, and whether it held."""

    name: str
    survived: bool
    headline: dict[str, Any] = field(default_factory=dict)
    """Contributions to the headline keys (summed across scenarios, except ``failover_seconds``)."""
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What went wrong or deserves a word, in plain sentences."""
    seconds: float = 0.0
    at: str = ""
    """When the scenario ran (ISO 8601); a report merged from several runs keeps each scenario's own."""


def combine(outcomes: list[Outcome], *, scale: str, started: dt.datetime, seconds: float) -> dict[str, Any]:
    """The reliability report: headline keys first, then per-scenario accounts."""
    headline: dict[str, Any] = dict.fromkeys(HEADLINE_KEYS, 0)
    for key in _LATEST | _MOST:
        headline[key] = None
    for outcome in outcomes:
        for key, value in outcome.headline.items():
            if key not in headline:
                raise KeyError(f"{outcome.name}: {key!r} is not a headline key")
            if key in _LATEST:
                headline[key] = value
            elif key in _MOST:
                headline[key] = value if headline[key] is None else max(headline[key], value)
            elif value is not None:
                headline[key] += value
    return {
        **headline,
        "all_survived": all(outcome.survived for outcome in outcomes),
        "scale": scale,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": {"python": platform.python_version(), "system": platform.system(), "machine": platform.machine()},
        "scenarios": {
            outcome.name: {
                "survived": outcome.survived,
                "seconds": round(outcome.seconds, 1),
                "at": outcome.at or started.isoformat(timespec="seconds"),
                **outcome.headline,
                "details": outcome.details,
                "notes": outcome.notes,
            }
            for outcome in outcomes
        },
    }


def stored_outcomes(report: Mapping[str, Any]) -> dict[str, Outcome]:
    """The scenarios of a written report as outcomes again, so a run of some scenarios can keep the others'."""
    outcomes = {}
    for name, stored in (report.get("scenarios") or {}).items():
        outcomes[name] = Outcome(
            name=name,
            survived=bool(stored.get("survived")),
            headline={key: stored[key] for key in HEADLINE_KEYS if key in stored},
            details=dict(stored.get("details") or {}),
            notes=list(stored.get("notes") or []),
            seconds=float(stored.get("seconds") or 0.0),
            at=str(stored.get("at") or report.get("started") or ""),
        )
    return outcomes


def merged(previous: Mapping[str, Any], fresh: Sequence[Outcome], *, scale: str) -> list[Outcome]:
    """The outcomes of a run of some scenarios (``fresh``) in place of theirs in an earlier report at the same
    scale, the others kept; new ones at the end. A report at another scale contributes nothing: its numbers do
    not compare."""
    kept = stored_outcomes(previous) if previous.get("scale") == scale else {}
    replacing = {outcome.name: outcome for outcome in fresh}
    outcomes = [replacing.pop(name, outcome) for name, outcome in kept.items()]
    return outcomes + list(replacing.values())


def load(path: Path) -> dict[str, Any]:
    """A written report, or an empty dict when there is none (or it cannot be read)."""
    try:
        report: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return report


def write(report: Mapping[str, Any], path: Path) -> None:
    """Write the report as indented JSON (stable key order: headline first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
