"""A flaky API server: a fault proxy in front of kube-apiserver answers the operator's patches with 409 Conflict and
its reads of single objects with 503, at random, while generations run and while they are deleted.

Every worker must come through: each failure backs off, re-reads and decides again (a worker that died on a failed
re-read after a 409 used to leave its resource without a status, or Terminating, until the operator restarted).
``stuck_workers`` counts the resources that did not reach a final phase, plus those still present after deletion.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import Stack, phase_of
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.kubeconfig import write_kubeconfig
from mediagen_dev.fake_replicate import ModelScript
from mediagen_dev.fault_proxy import FaultProxy, Rule

_OBJECT = r"/apis/mediagen\.fleek\.xyz/v1alpha1/namespaces/[^/]+/mediagenerations/[^/]+"


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    generations: int
    conflict_chance: float
    """Of each PATCH (metadata or status) of a MediaGeneration: answered 409 instead of applied."""
    failed_get_chance: float
    """Of each GET of one MediaGeneration (the re-read after a conflict or a failure): answered 503."""
    min_seconds: int
    max_seconds: int
    timeout: float


# A worker backs off up to 30 s between tries; with a third of the re-reads failing, a streak of failures now and
# then is expected, and the timeouts leave room for it.
SMALL = Params(generations=8, conflict_chance=0.3, failed_get_chance=0.3, min_seconds=1, max_seconds=3, timeout=180)
FULL = Params(generations=200, conflict_chance=0.2, failed_get_chance=0.3, min_seconds=2, max_seconds=10, timeout=600)


def _status(code: int, reason: str, message: str) -> bytes:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason}
    return json.dumps(body | {"code": code}).encode()


def kube_fault_proxy(plane: ControlPlane, seed: int) -> FaultProxy:
    """A fault proxy to kube-apiserver that authenticates upstream as the plane's admin (not started)."""
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    pki = plane.workdir / "pki"
    context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    return FaultProxy(plane.server, verify=context, drop_headers=frozenset({"authorization"}), seed=seed)


def proxy_kubeconfig(plane: ControlPlane, proxy: FaultProxy, path: Path) -> Path:
    """A kubeconfig that reaches the API server through ``proxy`` (plain HTTP on loopback). Its token is a
    placeholder the proxy drops: the proxy authenticates upstream with the admin's certificate."""
    placeholder = "dropped-by-the-proxy"
    return write_kubeconfig(path, server=proxy.url, ca_pem=plane.ca_file.read_bytes(), user="chaos", token=placeholder)


def run(stack: Stack, params: Params, seed: int = 5) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-api")
    models = {}
    for seconds in range(params.min_seconds, params.max_seconds + 1):
        models[seconds] = f"{namespace}/d{seconds}"
        stack.fake.add_model(models[seconds], ModelScript(queue_seconds=0.2, processing_seconds=seconds - 0.2))
    with kube_fault_proxy(stack.plane, seed) as proxy:
        kubeconfig = proxy_kubeconfig(stack.plane, proxy, stack.workdir / f"{namespace}.kubeconfig")
        operator = stack.operator(f"apifaults-{namespace}", stack.operator_env(namespace), kubeconfig=kubeconfig)
        start_and_wait(operator)
        conflicts = proxy.add_rule(
            Rule(
                "PATCH",
                re.compile(_OBJECT + r"(/status)?$"),
                409,
                _status(409, "Conflict", "injected"),
                chance=params.conflict_chance,
            )
        )
        failed_gets = proxy.add_rule(
            Rule(
                "GET",
                re.compile(_OBJECT + r"$"),
                503,
                _status(503, "ServiceUnavailable", "injected"),
                chance=params.failed_get_chance,
                unless_query=("watch",),
            )
        )
        items = [
            (f"gen-{i:03d}", {"model": models[params.min_seconds + i % len(models)], "input": {"prompt": f"api {i}"}})
            for i in range(params.generations)
        ]
        names = stack.create(namespace, items)
        bodies = stack.wait_terminal(namespace, names, params.timeout)
        phases: dict[str, int] = {}
        for body in bodies.values():
            phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
        unfinished = sorted(name for name in names if phase_of(bodies.get(name, {})) not in ("Succeeded",))
        uids = [str(body["metadata"]["uid"]) for body in bodies.values()]
        duplicates = checks.duplicate_predictions(stack, uids)
        stack.delete_all(namespace)  # the faults go on while the finalizers are released
        left = checks.stuck_after_deletion(stack, namespace, timeout=180)
        operator.stop()
        injected = {"conflicts": conflicts.hits, "failed_gets": failed_gets.hits}
    crashes = checks.operator_crashes(operator.logs())
    stuck = len(unfinished) + len(left)
    notes = []
    if unfinished:
        notes.append(f"{len(unfinished)} generations did not succeed: {phases}; e.g. {unfinished[:5]}")
    if left:
        notes.append(f"{len(left)} resources still present 180 s after deletion: {left[:5]}")
    if duplicates:
        notes.append(f"{duplicates} predictions were paid for twice")
    if crashes:
        notes.append(f"{len(crashes)} crash lines in the operator log: {crashes[:3]}")
    return Outcome(
        name="apiserver_faults",
        survived=stuck == 0 and duplicates == 0 and not crashes,
        headline={"stuck_workers": stuck, "duplicate_predictions": duplicates},
        details={
            "namespace": namespace,
            "generations": params.generations,
            "phases": phases,
            "injected": injected,
            "conflict_chance": params.conflict_chance,
            "failed_get_chance": params.failed_get_chance,
            "predictions": checks.predictions_of(stack, uids),
            "crash_lines": len(crashes),
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
