"""``bench/results.json`` key ``e2e``: what `make e2e --scale full` measured on the local kubelet node.

``python -m mediagen_dev.e2e.results FIGURES TIMINGS RESULTS`` merges the scenarios' figures (a JSON object)
and the node's bring-up timings (``name=seconds`` lines) into RESULTS under ``e2e``, leaving every other key as it
was."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mediagen_dev.bench import results

HEADLINE = ("node_ready_s", "install_to_first_success_s", "failover_s", "operator_rss_mb_2000")
"""The figures the README quotes; a full run has all of them."""


def parse_timings(text: str) -> dict[str, float]:
    """``name=seconds`` lines (hack/node/cluster.sh's timings file) as numbers; other lines are ignored."""
    timings: dict[str, float] = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name:
            try:
                timings[name] = float(value)
            except ValueError:
                continue
    return timings


def e2e_entry(figures: Mapping[str, Any], timings: Mapping[str, float], when: str) -> dict[str, Any]:
    """The ``e2e`` value: timings and figures together, when they were taken, and which headline ones are missing."""
    entry: dict[str, Any] = {**timings, **figures, "measured_at": when}
    missing = [name for name in HEADLINE if name not in entry]
    if missing:
        entry["missing"] = missing
    return entry


def merge(existing: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """``existing`` with ``e2e`` replaced by ``entry``; nothing else changes."""
    return {**existing, "e2e": dict(entry)}


def main(argv: Sequence[str] | None = None) -> int:
    """Merge FIGURES and TIMINGS into RESULTS (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print("usage: python -m mediagen_dev.e2e.results FIGURES TIMINGS RESULTS", file=sys.stderr)
        return 2
    figures_path, timings_path, results_path = (Path(a) for a in args)
    figures = results.load(figures_path)
    timings = parse_timings(timings_path.read_text()) if timings_path.exists() else {}
    entry = e2e_entry(figures, timings, results.now())
    results.write(results_path, merge(results.load(results_path), entry))
    print(f"wrote e2e figures to {results_path}: {entry}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
