"""Failover: two operator replicas with kopf peering; the active one is SIGKILLed mid-run; the standby takes over.

Measured: the takeover time (from the kill to the standby's "Resuming operations" line), whether every generation
still succeeds, and that the hand-over paid for no prediction twice. Trials run with kopf's default peering
lifetime (what the chart deploys) and, for comparison, with a shorter one (see :mod:`.peer`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import STARTED, Stack, phase_of
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import ModelScript
from mediagen_dev.operator_process import OperatorProcess

PEERING = "mediagen"
RESUMED = "Resuming operations after the pause"
KOPF_DEFAULT_LIFETIME = 60

PEERING_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: kopfpeerings.kopf.dev
spec:
  group: kopf.dev
  scope: Namespaced
  names: {kind: KopfPeering, listKind: KopfPeeringList, plural: kopfpeerings, singular: kopfpeering}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    generations: int
    prediction_seconds: float
    lifetimes: tuple[int | None, ...]
    """One trial per entry: None runs the operator unchanged (kopf's 60 s), a number runs :mod:`.peer`."""


SMALL = Params(generations=4, prediction_seconds=5.0, lifetimes=(8,))
FULL = Params(generations=20, prediction_seconds=15.0, lifetimes=(None, None, 15))


class Replica(OperatorProcess):
    """An operator replica with peering arguments (and optionally a shorter peering lifetime)."""

    def __init__(
        self, kubeconfig: Path, env: Mapping[str, str], log_path: Path, priority: int, lifetime: int | None
    ) -> None:
        super().__init__(kubeconfig, env, log_path)
        operator = ["operator", f"--peering={PEERING}", f"--priority={priority}"]
        peer = ["-m", "mediagen_dev.chaos.peer", f"--lifetime={lifetime}"]
        prefix = ["-m", "mediagen.cli"] if lifetime is None else peer
        self.argv = [sys.executable, *prefix, *operator]

    def start(self) -> Self:
        if self.pid is not None:
            raise RuntimeError("already running")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.starts += 1
        return self

    def count(self, text: str) -> int:
        """How often ``text`` appears in the log."""
        return self.logs().count(text)


def _wait(predicate: object, what: str, timeout: float) -> float:
    """Poll ``predicate()`` every 0.1 s; returns when it held (monotonic time) or raises TimeoutError."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic()


def _peers(stack: Stack, namespace: str) -> int:
    """How many operators keep their keep-alive in the namespace's peering object."""
    try:
        body = stack.api.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", PEERING)
    except Exception:  # not created yet
        return 0
    status = body.get("status") if isinstance(body, dict) else None
    return len(status) if isinstance(status, dict) else 0


def _trial(stack: Stack, params: Params, lifetime: int | None, number: int) -> dict[str, object]:
    namespace = stack.namespace("chaos-fo")
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.5, processing_seconds=params.prediction_seconds - 0.5))
    env = stack.operator_env(namespace, via_proxy=False)
    active = Replica(stack.plane.kubeconfig, env, stack.workdir / f"failover-{number}-a.log", 200, lifetime)
    standby = Replica(stack.plane.kubeconfig, env, stack.workdir / f"failover-{number}-b.log", 100, lifetime)
    stack.operators.extend([active, standby])
    try:
        active.start()
        _wait(lambda: active.count(STARTED) and active.count(RESUMED), "the first replica to work", 60)
        standby.start()
        # A peered operator starts paused and stays so while a higher priority peer is alive: wait until both
        # are registered in the peering object, then check the standby did not resume.
        _wait(lambda: standby.count(STARTED) and _peers(stack, namespace) == 2, "both replicas in the peering", 60)
        time.sleep(2.0)
        if standby.count(RESUMED):
            raise RuntimeError("the lower-priority replica resumed while the other was alive")

        names = stack.create(
            namespace,
            ((f"gen-{i:02d}", {"model": model, "input": {"prompt": str(i)}}) for i in range(params.generations)),
        )
        # Kill the active replica while the predictions run (their ids recorded, their outputs not yet copied).
        _wait(
            lambda: (
                sum(1 for b in stack.generations(namespace).values() if (b.get("status") or {}).get("prediction"))
                >= params.generations
            ),
            "every prediction to be recorded",
            60,
        )
        resumed_before = standby.count(RESUMED)
        killed_at = time.monotonic()
        active.kill()
        took_over_at = _wait(lambda: standby.count(RESUMED) > resumed_before, "the standby to take over", 180)
        bodies = stack.wait_terminal(namespace, names, timeout=120)
        done_at = time.monotonic()
    finally:
        active.kill()
        standby.stop()
    phases: dict[str, int] = {}
    for body in bodies.values():
        phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
    uids = [str(b["metadata"]["uid"]) for b in bodies.values()]
    return {
        "peering_lifetime": lifetime or KOPF_DEFAULT_LIFETIME,
        "operator": "unchanged" if lifetime is None else "mediagen_dev.chaos.peer (shorter lifetime)",
        "takeover_seconds": round(took_over_at - killed_at, 1),
        "all_final_after_kill_seconds": round(done_at - killed_at, 1),
        "phases": phases,
        "duplicates": checks.duplicate_predictions(stack, uids),
        "predictions": checks.predictions_of(stack, uids),
        "generations": params.generations,
        "crash_lines": len(checks.operator_crashes(standby.logs())),
    }


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    stack.plane.kubectl("apply", "-f", "-", input=PEERING_CRD)
    stack.plane.wait_crd_established("kopfpeerings.kopf.dev")
    trials = [_trial(stack, params, lifetime, number) for number, lifetime in enumerate(params.lifetimes)]
    notes: list[str] = []
    survived = True
    for trial in trials:
        if trial["phases"] != {"Succeeded": params.generations} or trial["duplicates"]:
            survived = False
            notes.append(f"trial with lifetime {trial['peering_lifetime']} s: {trial}")
    default = [float(str(t["takeover_seconds"])) for t in trials if t["operator"] == "unchanged"]
    measured = default or [float(str(t["takeover_seconds"])) for t in trials]
    if default:
        notes.append(
            f"with kopf's default 60 s peering lifetime the standby took over {min(default):.0f}-{max(default):.0f} s "
            "after the kill: a SIGKILLed leader counts as alive until its last keep-alive is a lifetime old"
        )
    return Outcome(
        name="failover",
        survived=survived,
        headline={
            "failover_seconds": max(measured),
            "duplicate_predictions": sum(int(str(t["duplicates"])) for t in trials),
        },
        details={"trials": trials, "failover_seconds_is": "the slowest takeover of the unchanged operator's trials"},
        notes=notes,
        seconds=time.monotonic() - began,
    )
