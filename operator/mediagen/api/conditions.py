"""Which conditions a MediaGeneration carries in each phase, so that every tool reads it right.

``Succeeded`` is this project's own (``kubectl wait --for=condition=Succeeded``). The other three are the ones
kstatus (sigs.k8s.io/cli-utils/pkg/kstatus, behind Flux's ``wait``/``healthChecks``, kpt and cli-utils) looks
for: ``Reconciling=True`` reads as InProgress, ``Stalled=True`` as Failed, ``Ready=True`` (with neither of those
true) as Current; without any of them kstatus calls a resource Current, which is why a generation in flight used
to look done. Reconciling and Stalled are "abnormal-true" conditions: present while they hold, absent otherwise.
(https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md)

| phase | Succeeded | Ready | Reconciling | Stalled | kstatus |
|---|---|---|---|---|---|
| Pending, Running, Uploading (also while a retry waits) | Unknown | False | True | | InProgress |
| Succeeded | True | True | | | Current |
| Failed | False | False | | True | Failed |
| Canceled by ``spec.cancel`` (reason Canceled) | False | | | | Current: stopped as asked |
| Canceled elsewhere (e.g. CanceledRemotely) | False | False | | True | Failed |

A generation canceled through ``spec.cancel`` has reached the state its spec asks for, so GitOps tools must not
hold a sync as failed for it; it has no ``Ready`` condition (``Ready=False`` would read as InProgress for ever,
``Ready=True`` would claim an output). Every condition carries the ``observedGeneration`` it was computed from,
and so does the status; kstatus reads a status older than ``metadata.generation`` as InProgress.
"""

from __future__ import annotations

from typing import Any

from mediagen.api.types import TERMINAL_PHASES, Phase

SUCCEEDED = "Succeeded"
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONDITION_TYPES = (SUCCEEDED, READY, RECONCILING, STALLED)

CANCELED_ON_REQUEST = "Canceled"
"""The reason of a generation canceled through ``spec.cancel``."""

PENDING_MESSAGE = "waiting for the mediagen operator to pick it up"


def condition_statuses(phase: Phase, reason: str) -> dict[str, str]:
    """The conditions a generation in ``phase`` (ended for ``reason``) carries: type -> status, in order."""
    if phase not in TERMINAL_PHASES:
        return {SUCCEEDED: "Unknown", READY: "False", RECONCILING: "True"}
    if phase is Phase.SUCCEEDED:
        return {SUCCEEDED: "True", READY: "True"}
    if phase is Phase.CANCELED and reason == CANCELED_ON_REQUEST:
        return {SUCCEEDED: "False"}
    return {SUCCEEDED: "False", READY: "False", STALLED: "True"}


def initial_status() -> dict[str, Any]:
    """The status a MediaGeneration has before the operator's first write: the CRD's default for ``status``.

    The API server fills it in whenever it reads an object without a status, so a new generation is Pending and
    Reconciling from its creation on (kstatus would call a resource without conditions Current) at no write."""
    return {
        "phase": Phase.PENDING.value,
        "reason": Phase.PENDING.value,
        "message": PENDING_MESSAGE,
        "conditions": [
            {"type": kind, "status": status, "reason": Phase.PENDING.value, "message": PENDING_MESSAGE}
            for kind, status in condition_statuses(Phase.PENDING, Phase.PENDING.value).items()
        ],
    }
