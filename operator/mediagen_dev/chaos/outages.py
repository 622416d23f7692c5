"""Dependency outages: S3 unavailable, Replicate answering 5xx, Replicate answering 429, each for a while.

Work must pause and resume: nothing may fail that the retry budget covers. Each outage runs two groups side by
side: one with a ``spec.retry`` designed to cover the outage, one with the defaults (limit 3, 5 s doubling: 35 s
of cover for creates and uploads), whose result is reported as it is. Failed polls are retried in memory without
budget and 429s are waited out without budget, so generations already running survive any of these outages.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import Stack, phase_of
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import Fault, ModelScript

COVERED_RETRY = {"limit": 5, "backoffSeconds": 5, "maxBackoffSeconds": 60}
"""5 + 10 + 20 + 40 + 60 = 135 s of cover: more than any outage below."""


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    s3_seconds: float
    replicate_seconds: float
    throttle_seconds: float
    group: int
    """Generations per group (covered and default retry specs; running and new for Replicate)."""
    timeout: float
    """How long everything may take once an outage is over."""
    covered_retry: dict[str, int]
    retry_after: int = 5
    """The ``Retry-After`` of the 429s."""


SMALL = Params(
    s3_seconds=6,
    replicate_seconds=8,
    throttle_seconds=8,
    group=2,
    timeout=90,
    covered_retry={"limit": 4, "backoffSeconds": 2, "maxBackoffSeconds": 8},
)
FULL = Params(
    s3_seconds=30, replicate_seconds=60, throttle_seconds=60, group=5, timeout=240, covered_retry=COVERED_RETRY
)


@dataclass
class _Group:
    label: str
    names: list[str]


def _summary(stack: Stack, namespace: str, groups: list[_Group], timeout: float) -> dict[str, Any]:
    bodies = stack.wait_terminal(namespace, [n for g in groups for n in g.names], timeout)
    summary: dict[str, Any] = {}
    for group in groups:
        phases: dict[str, int] = {}
        reasons: dict[str, int] = {}
        retries = 0
        for name in group.names:
            body = bodies.get(name, {})
            phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
            status = body.get("status") or {}
            retries += int(status.get("retries") or 0)
            if phase_of(body) != "Succeeded":
                reason = str(status.get("reason") or "?")
                reasons[reason] = reasons.get(reason, 0) + 1
        summary[group.label] = {"phases": phases, "retries": retries, **({"reasons": reasons} if reasons else {})}
    uids = [str(b["metadata"]["uid"]) for b in bodies.values()]
    summary["duplicates"] = checks.duplicate_predictions(stack, uids)
    return summary


def _outage(
    stack: Stack,
    namespace: str,
    label: str,
    seconds: float,
    groups: Callable[[], list[_Group]],
    start: Callable[[], None],
    end: Callable[[], None],
    timeout: float,
    before: Callable[[], list[_Group]] | None = None,
    felt: Callable[[list[_Group]], bool] | None = None,
) -> dict[str, Any]:
    """Create ``before`` groups, begin the outage, create ``groups``, end it after ``seconds``, wait for all.

    With ``felt``, the outage also lasts until ``felt(groups)`` says it was noticed (bounded by ``timeout``): on a
    busy machine the generations may not even have reached the part that fails within ``seconds``, and an outage
    nobody felt proves nothing."""
    early = before() if before else []
    if early:
        time.sleep(1.5)  # running when the outage begins
    start()
    began = time.monotonic()
    try:
        late = groups()
        time.sleep(max(0.0, seconds - (time.monotonic() - began)))
        while felt is not None and not felt(late) and time.monotonic() - began < timeout:
            time.sleep(0.2)
    finally:
        end()
    ended = time.monotonic()
    summary = _summary(stack, namespace, [*early, *late], timeout)
    summary["outage_seconds"] = round(ended - began, 1)
    summary["final_after_outage_seconds"] = round(time.monotonic() - ended, 1)
    summary["label"] = label
    return summary


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    started = time.monotonic()
    namespace = stack.namespace("chaos-out")
    quick, running = f"{namespace}/quick", f"{namespace}/running"
    stack.fake.add_model(quick, ModelScript(queue_seconds=0.2, processing_seconds=1.0))
    stack.fake.add_model(
        running, ModelScript(queue_seconds=0.2, processing_seconds=max(2.0, params.replicate_seconds / 3))
    )
    operator = stack.operator(f"outages-{namespace}", stack.operator_env(namespace, via_proxy=True))
    start_and_wait(operator)
    covered = params.covered_retry

    def batch(prefix: str, model: str, retry: dict[str, int] | None) -> _Group:
        spec: dict[str, Any] = {"model": model, "input": {"prompt": prefix}}
        if retry:
            spec["retry"] = retry
        items = [(f"{prefix}-{i}", spec) for i in range(params.group)]
        return _Group(prefix, stack.create(namespace, items))

    def clear_faults() -> None:
        with stack.fake.lock:
            stack.fake.faults.clear()

    def retried(name: str) -> bool:
        """Whether the generation has spent a retry (its upload met the outage)."""
        return int((stack.generations(namespace).get(name, {}).get("status") or {}).get("retries") or 0) >= 1

    def s3_down() -> None:
        stack.proxy.down = True

    def s3_up() -> None:
        stack.proxy.down = False

    results = {
        "s3_down": _outage(
            stack,
            namespace,
            f"S3 refuses every request (503) for {params.s3_seconds:g} s while outputs are uploaded",
            params.s3_seconds,
            lambda: [batch("s3-covered", quick, covered), batch("s3-defaults", quick, None)],
            s3_down,
            s3_up,
            params.timeout,
            felt=lambda groups: all(retried(name) for name in groups[0].names),
        ),
        "replicate_5xx": _outage(
            stack,
            namespace,
            f"Replicate answers 503 to every API call for {params.replicate_seconds:g} s",
            params.replicate_seconds,
            lambda: [batch("rep-new-covered", quick, covered), batch("rep-new-defaults", quick, None)],
            lambda: stack.fake.inject(Fault.server_error(503).repeat(10**9)),
            clear_faults,
            params.timeout,
            before=lambda: [
                batch("rep-running-covered", running, covered),
                batch("rep-running-defaults", running, None),
            ],
        ),
        "replicate_429": _outage(
            stack,
            namespace,
            f"Replicate answers 429 (Retry-After: {params.retry_after}) to every API call for "
            f"{params.throttle_seconds:g} s",
            params.throttle_seconds,
            lambda: [batch("throttled-new", quick, None)],
            lambda: stack.fake.inject(Fault.throttled(params.retry_after).repeat(10**9)),
            clear_faults,
            params.timeout,
            before=lambda: [batch("throttled-running", running, None)],
        ),
    }
    operator.stop()

    notes: list[str] = []
    covered_failed = 0
    default_failed = 0
    for key, summary in results.items():
        for label, group in summary.items():
            if not isinstance(group, dict) or "phases" not in group:
                continue
            failed = sum(n for phase, n in group["phases"].items() if phase != "Succeeded")
            if "defaults" in label:
                default_failed += failed
                if failed:
                    notes.append(
                        f"{key}: {failed} of {params.group} with the default spec.retry did not succeed "
                        f"({group.get('reasons')}): the outage outlasted the default budget"
                    )
            else:
                covered_failed += failed
                if failed:
                    notes.append(
                        f"{key}: {failed} of {params.group} in {label} did not succeed ({group.get('reasons')})"
                    )
        if summary["duplicates"]:
            notes.append(f"{key}: {summary['duplicates']} duplicate predictions")
    throttled_retries = sum(results["replicate_429"][g]["retries"] for g in ("throttled-new", "throttled-running"))
    if throttled_retries:
        notes.append(f"replicate_429: {throttled_retries} retries were spent on throttling (it should cost none)")
    crashes = checks.operator_crashes(operator.logs())
    if crashes:
        notes.append(f"{len(crashes)} crash lines in the operator log, e.g. {crashes[0]}")
    duplicates = sum(int(s["duplicates"]) for s in results.values())
    return Outcome(
        name="dependency_outages",
        survived=covered_failed == 0 and duplicates == 0 and throttled_retries == 0,
        headline={"duplicate_predictions": duplicates},
        details={
            "namespace": namespace,
            "covered_retry": covered,
            "covered_failures": covered_failed,
            "default_retry_failures": default_failed,
            **results,
        },
        notes=notes,
        seconds=time.monotonic() - started,
    )
