"""Run the scenarios at one scale on one loopback stack and write the reliability report."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediagen_dev.chaos import (
    abuse,
    apiserver_faults,
    controlplane,
    failover,
    fuzz,
    kills,
    outages,
    secrets,
    transfers,
    webhook_flood,
)
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.chaos.results import Outcome, combine, load, merged, write
from mediagen_dev.paths import REPO_ROOT

log = logging.getLogger(__name__)

DEFAULT_OUT = REPO_ROOT / "bench" / "reliability.json"


@dataclass(frozen=True)
class Scenario:
    """A scenario: its ``run(stack, params)`` and its parameters at each scale."""

    run: Callable[[Stack, Any], Outcome]
    small: object
    full: object


# In this order: the control-plane restarts go last, so they cannot disturb another scenario's operator.
SCENARIOS: dict[str, Scenario] = {
    "fuzz": Scenario(fuzz.run, fuzz.SMALL, fuzz.FULL),
    "secrets": Scenario(secrets.run, secrets.SMALL, secrets.FULL),
    "abuse": Scenario(abuse.run, abuse.SMALL, abuse.FULL),
    "kills": Scenario(kills.run, kills.SMALL, kills.FULL),
    "outages": Scenario(outages.run, outages.SMALL, outages.FULL),
    "failover": Scenario(failover.run, failover.SMALL, failover.FULL),
    "apifaults": Scenario(apiserver_faults.run, apiserver_faults.SMALL, apiserver_faults.FULL),
    "transfers": Scenario(transfers.run, transfers.SMALL, transfers.FULL),
    "webhookflood": Scenario(webhook_flood.run, webhook_flood.SMALL, webhook_flood.FULL),
    "controlplane": Scenario(controlplane.run, controlplane.SMALL, controlplane.FULL),
}


def run_one(name: str, stack: Stack, scale: str) -> Outcome:
    """Run one scenario; a scenario that breaks is reported as not survived, with its traceback."""
    scenario = SCENARIOS[name]
    began, started = time.monotonic(), dt.datetime.now(dt.UTC)
    log.info("scenario %s (%s) starting", name, scale)
    try:
        outcome = scenario.run(stack, scenario.full if scale == "full" else scenario.small)
    except Exception as err:
        outcome = Outcome(
            name=name,
            survived=False,
            notes=[f"the scenario itself failed: {type(err).__name__}: {err}"],
            details={"traceback": traceback.format_exc()[-3000:]},
            seconds=time.monotonic() - began,
        )
    outcome.at = started.isoformat(timespec="seconds")
    log.info(
        "scenario %s: %s in %.0f s %s",
        name,
        "survived" if outcome.survived else "FAILED",
        outcome.seconds,
        "; ".join(outcome.notes),
    )
    return outcome


def run(
    scale: str, *, out: Path = DEFAULT_OUT, only: Sequence[str] = (), workdir: Path | None = None
) -> dict[str, Any]:
    """Run the scenarios (all, or ``only`` these) at ``scale`` and write the report to ``out``.

    With ``only``, the other scenarios of a report already at ``out`` for the same scale are kept as they were
    (each with the time it ran), and the headline is summed over all of them again."""
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; choose from {sorted(SCENARIOS)}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mediagen-chaos-"))
    started, began = dt.datetime.now(dt.UTC), time.monotonic()
    log.info("chaos run (%s) in %s", scale, workdir)
    fresh = []
    with Stack.running(workdir) as stack:
        for name in SCENARIOS:
            if not only or name in only:
                fresh.append(run_one(name, stack, scale))
    outcomes = merged(load(out), fresh, scale=scale) if only else fresh
    report = combine(outcomes, scale=scale, started=started, seconds=time.monotonic() - began)
    report["workdir"] = str(workdir)
    write(report, out)
    return report
