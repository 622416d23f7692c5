"""Control-plane faults: kube-apiserver and etcd restarted (gracefully and by SIGKILL) under a working operator.

For each fault: a batch of generations is running when the server goes away; once it is back a second batch is
created (it can only be picked up if the operator's watch reconnected by itself). A fault is survived when both
batches succeed, no prediction was paid for twice, and the operator process was never restarted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import Stack, phase_of
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import ModelScript


@dataclass(frozen=True)
class Fault:
    """One restart: which server, SIGTERM or SIGKILL, and how long it stays down."""

    server: str
    graceful: bool
    downtime: float


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    batch: int
    prediction_seconds: float
    faults: tuple[Fault, ...]
    timeout: float
    """How long both batches of one fault may take, after the server is back."""


SMALL = Params(
    batch=3,
    prediction_seconds=4.0,
    faults=(Fault("apiserver", graceful=False, downtime=3.0), Fault("etcd", graceful=False, downtime=3.0)),
    timeout=60,
)
FULL = Params(
    batch=10,
    prediction_seconds=8.0,
    faults=(
        Fault("apiserver", graceful=True, downtime=5.0),
        Fault("apiserver", graceful=False, downtime=10.0),
        Fault("etcd", graceful=True, downtime=5.0),
        Fault("etcd", graceful=False, downtime=10.0),
    ),
    timeout=120,
)


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-cp")
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.5, processing_seconds=params.prediction_seconds - 0.5))
    operator = stack.operator(f"controlplane-{namespace}", stack.operator_env(namespace, via_proxy=False))
    start_and_wait(operator)
    pid = operator.pid

    survived = {"apiserver": 0, "etcd": 0}
    rounds: list[dict[str, object]] = []
    notes: list[str] = []
    for number, fault in enumerate(params.faults):
        before = stack.create(
            namespace,
            ((f"f{number}-before-{i}", {"model": model, "input": {"prompt": "x"}}) for i in range(params.batch)),
        )
        time.sleep(1.5)  # the predictions are created and running when the server goes away
        down_at = time.monotonic()
        if fault.server == "apiserver":
            stack.plane.restart_apiserver(downtime=fault.downtime, graceful=fault.graceful)
        else:
            stack.plane.restart_etcd(downtime=fault.downtime, graceful=fault.graceful)
        back_at = time.monotonic()
        after = stack.create(
            namespace,
            ((f"f{number}-after-{i}", {"model": model, "input": {"prompt": "x"}}) for i in range(params.batch)),
        )
        bodies = stack.wait_terminal(namespace, [*before, *after], params.timeout)
        done_at = time.monotonic()
        phases: dict[str, int] = {}
        for body in bodies.values():
            phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
        duplicates = checks.duplicate_predictions(stack, [str(b["metadata"]["uid"]) for b in bodies.values()])
        restarted = operator.pid != pid or operator.starts != 1
        ok = phases == {"Succeeded": 2 * params.batch} and not duplicates and not restarted
        if ok:
            survived[fault.server] += 1
        else:
            stuck = sorted(name for name, body in bodies.items() if phase_of(body) != "Succeeded")
            notes.append(
                f"{fault.server} {'restart' if fault.graceful else 'SIGKILL'} ({fault.downtime:g} s down): phases "
                f"{phases}, duplicates {duplicates}, operator restarted: {restarted}; not succeeded: {stuck[:6]}"
            )
        rounds.append(
            {
                "server": fault.server,
                "graceful": fault.graceful,
                "downtime": fault.downtime,
                "down_seconds": round(back_at - down_at, 1),
                "all_final_after_back_seconds": round(done_at - back_at, 1),
                "phases": phases,
                "duplicates": duplicates,
                "survived": ok,
            }
        )
    operator.stop()
    crashes = checks.operator_crashes(operator.logs())
    if crashes:
        notes.append(f"{len(crashes)} crash lines in the operator log, e.g. {crashes[0]}")
    apiserver_faults = sum(1 for f in params.faults if f.server == "apiserver")
    etcd_faults = len(params.faults) - apiserver_faults
    return Outcome(
        name="control_plane",
        survived=survived["apiserver"] == apiserver_faults and survived["etcd"] == etcd_faults,
        headline={"apiserver_restarts_survived": survived["apiserver"], "etcd_restarts_survived": survived["etcd"]},
        details={
            "namespace": namespace,
            "apiserver_restarts": apiserver_faults,
            "etcd_restarts": etcd_faults,
            "rounds": rounds,
            "operator_restarts": operator.starts - 1,
            "crash_lines": len(crashes),
            "worker_crashes": operator.logs().count("worker crashed"),
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
