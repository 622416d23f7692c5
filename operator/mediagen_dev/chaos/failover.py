"""Failover: two operator replicas with leader election on a Lease; the leader is SIGKILLed mid-run; the standby
takes over and finishes the work.

Each trial kills the leader at one of two moments: ``running`` (every prediction created and recorded, the
outputs not copied yet) or ``creating`` (creates that Replicate has carried out but not yet answered, held by the
fake: the pending-create markers are all the standby has to go on). Measured from the kill: when the standby holds
the Lease (``takeover_seconds``), when it first acts (its first request to Replicate: ``acting_seconds``, the
headline ``failover_seconds`` is the slowest), and when every generation is final; and that no prediction was
paid for twice. The replicas run with the defaults the chart deploys (a 10 s lease, 7 s renew deadline, 2 s retry).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mediagen.controller.settings import Settings
from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import STARTED, Stack, phase_of
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import ModelScript
from mediagen_dev.fake_replicate.faults import Fault
from mediagen_dev.replicas import BECAME_LEADER, STANDING_BY, LeaseReader, elected_env

TARGET_SECONDS = 15.0
"""From the leader's death to the standby acting (client-go's controllers manage about this)."""
CREATE_HOLD_SECONDS = 4.0
"""In ``creating`` trials, how long the fake Replicate sits on each create it has already carried out."""


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    generations: int
    prediction_seconds: float
    kills: tuple[str, ...]
    """One trial per entry: ``running`` or ``creating`` (see the module docstring)."""


SMALL = Params(generations=4, prediction_seconds=4.0, kills=("creating",))
FULL = Params(generations=20, prediction_seconds=15.0, kills=("running", "creating", "running"))


def _wait(predicate: Callable[[], object], what: str, timeout: float, poll: float = 0.05) -> float:
    """Poll ``predicate()``; returns the monotonic time it first held, or raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
    return time.monotonic()


def _replicate_requests(stack: Stack) -> int:
    with stack.fake.lock:
        return len(stack.fake.request_log)


def _trial(stack: Stack, params: Params, kill: str, number: int) -> dict[str, object]:
    namespace = stack.namespace("chaos-fo")
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.5, processing_seconds=params.prediction_seconds - 0.5))
    lease = LeaseReader(stack.plane.kubeconfig, namespace)
    env = stack.operator_env(namespace, via_proxy=False)
    first, second = (f"failover-{number}-{side}" for side in "ab")
    leader = stack.operator(first, {**env, **elected_env(namespace, first)})
    standby = stack.operator(second, {**env, **elected_env(namespace, second)})
    try:
        leader.start()
        _wait(lambda: STARTED in leader.logs() and lease.holder_pod() == first, "the first replica to lead", 60)
        standby.start()
        _wait(lambda: STANDING_BY in standby.logs(), "the second replica to stand by", 60)
        if kill == "creating":
            stack.fake.inject(Fault.held(CREATE_HOLD_SECONDS).on("create").repeat(params.generations))
        names = stack.create(
            namespace,
            ((f"gen-{i:02d}", {"model": model, "input": {"prompt": str(i)}}) for i in range(params.generations)),
        )
        uids = [str(b["metadata"]["uid"]) for b in stack.generations(namespace).values()]

        def recorded() -> int:
            bodies = stack.generations(namespace).values()
            return sum(1 for b in bodies if (b.get("status") or {}).get("prediction"))

        if kill == "running":
            _wait(lambda: recorded() >= params.generations, "every prediction to be recorded", 60)
        else:  # some creates carried out on Replicate, none of them answered yet
            _wait(lambda: checks.predictions_of(stack, uids) >= params.generations // 2, "creates to arrive", 60)
        created_before_kill, recorded_before_kill = checks.predictions_of(stack, uids), recorded()
        last_renewal = lease.record()
        killed_at = time.monotonic()
        leader.kill()
        took_over_at = _wait(lambda: lease.holder_pod() == second, "the standby to hold the Lease", 60)
        took_over_wall = time.time()
        requests = _replicate_requests(stack)
        acting_at = _wait(lambda: _replicate_requests(stack) > requests, "the new leader's first request", 60)
        bodies = stack.wait_terminal(namespace, names, timeout=120)
        done_at = time.monotonic()
    finally:
        leader.kill()
        standby.stop()
        stack.fake.faults.clear()
    phases: dict[str, int] = {}
    for body in bodies.values():
        phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
    record = lease.record()
    renewed_at = last_renewal.renew_time if last_renewal else None
    return {
        "kill": kill,
        "created_before_kill": created_before_kill,
        "recorded_before_kill": recorded_before_kill,
        "takeover_seconds": round(took_over_at - killed_at, 2),
        # Same machine, same clock: the Lease may change hands only a lease duration after the last renewal.
        "takeover_after_last_renewal_seconds": round(took_over_wall - renewed_at.timestamp(), 2)
        if renewed_at
        else None,
        "acting_seconds": round(acting_at - killed_at, 2),
        "all_final_after_kill_seconds": round(done_at - killed_at, 1),
        "lease_transitions": record.transitions if record else None,
        "phases": phases,
        "duplicates": checks.duplicate_predictions(stack, uids),
        "predictions": checks.predictions_of(stack, uids),
        "generations": params.generations,
        "became_leader_lines": standby.logs().count(BECAME_LEADER),
        "crash_lines": len(checks.operator_crashes(standby.logs())),
    }


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    timing = Settings.model_construct().lease_timing()  # the defaults, which the chart deploys too
    trials = [_trial(stack, params, kill, number) for number, kill in enumerate(params.kills)]
    notes: list[str] = []
    survived = True
    for trial in trials:
        if trial["phases"] != {"Succeeded": params.generations} or trial["duplicates"] or trial["crash_lines"]:
            survived = False
            notes.append(f"trial killing while {trial['kill']}: {trial}")
    acting = [float(str(t["acting_seconds"])) for t in trials]
    if max(acting) > TARGET_SECONDS:
        notes.append(f"a takeover took {max(acting):.1f} s, over the {TARGET_SECONDS:.0f} s target")
    after_renewal = [float(str(t["takeover_after_last_renewal_seconds"] or "nan")) for t in trials]
    if any(not seconds >= timing.lease_duration for seconds in after_renewal):
        survived = False
        notes.append(
            f"the Lease changed hands sooner than {timing.lease_duration} s after its last renewal: {after_renewal}"
        )
    return Outcome(
        name="failover",
        survived=survived,
        headline={
            "failover_seconds": max(acting),
            "duplicate_predictions": sum(int(str(t["duplicates"])) for t in trials),
        },
        details={
            "trials": trials,
            "lease": {
                "duration_seconds": timing.lease_duration,
                "renew_deadline_seconds": timing.renew_deadline,
                "retry_period_seconds": timing.retry_period,
            },
            "failover_seconds_is": "the slowest trial's time from SIGKILL of the leader to the standby's first "
            "request to Replicate (it holds the Lease and runs the operator by then)",
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
