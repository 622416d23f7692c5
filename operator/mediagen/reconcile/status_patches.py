"""Status patches: what each step writes. Pure functions returning JSON merge patches for ``/status``.

Every key written here is declared in the CRD schema (the API server would silently prune anything else;
tests/integration/test_crd.py proves the schema keeps what these functions write).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mediagen.api.conditions import READY, STALLED, SUCCEEDED, condition_statuses
from mediagen.api.types import Condition, Phase, PredictionStatus, StoredOutput
from mediagen.generators.base import Prediction
from mediagen.reconcile.failures import Failure
from mediagen.reconcile.state import Memory, View

INVALID_RESOURCE = "InvalidResource"
"""Reason of the event and conditions for a resource the operator cannot read."""


def _ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(view: View, phase: Phase, reason: str, message: str, now: dt.datetime) -> list[dict[str, Any]]:
    """Every condition of ``phase`` (see :mod:`mediagen.api.conditions`), for ``view``'s generation.

    The whole list goes into each write (a merge patch replaces lists), so conditions that no longer hold drop
    out; each keeps its lastTransitionTime while its status stays the same."""
    previous = {c.type: c for c in view.status.conditions}
    written = []
    for kind, status in condition_statuses(phase, reason).items():
        before = previous.get(kind)
        kept = before.last_transition_time if before is not None and before.status == status else None
        since = kept or now
        wire = Condition(
            type=kind, status=status, reason=reason, message=message, observed_generation=view.generation
        ).to_wire()
        written.append(wire | {"lastTransitionTime": _ts(since)})
    return written


def generation_fields(view: View) -> dict[str, Any]:
    """What every lifecycle write says about the generation it is of: the metadata.generation, the request and its
    first attempt. When the written status is of a generation an edit replaced, also the reset of everything that
    belonged to it (a merge patch deletes a key set to null): the new generation's first write replaces the old
    result whole, so nothing of it is ever read as the new one's (three writes per generation still: the reset rides
    on the Record or the final write)."""
    fields: dict[str, Any] = {
        "observedGeneration": view.generation,
        "requestHash": view.request,
        "firstAttempt": view.first_attempt,
    }
    if view.superseded:
        fields |= {
            "startTime": None,
            "completionTime": None,
            "retries": 0,
            "nextRetryTime": None,
            "prediction": None,
            "progress": None,
            "outputs": [],
            "url": "",
            "urlExpiresAt": None,
        }
    return fields


def prediction_status(prediction: Prediction, attempt: int) -> dict[str, Any]:
    """The status.prediction block for a backend snapshot."""
    wire = PredictionStatus(
        id=prediction.id,
        status=prediction.status,
        attempt=attempt,
        predict_time_seconds=prediction.predict_time_seconds,
    ).to_wire()
    for key, value in (
        ("createdAt", prediction.created_at),
        ("startedAt", prediction.started_at),
        ("completedAt", prediction.completed_at),
    ):
        if value is not None:
            wire[key] = _ts(value)
    return wire


def record_patch(view: View, prediction: Prediction, attempt: int, now: dt.datetime) -> dict[str, Any]:
    """After a create (or a recovery): the prediction id becomes durable and the generation is Running."""
    message = f"prediction {prediction.id} (attempt {attempt}) is {prediction.status}"
    return {
        "status": generation_fields(view)
        | {
            "phase": Phase.RUNNING.value,
            "reason": "Running",
            "message": message,
            "startTime": _ts(view.status.start_time or now),
            "attempts": attempt,
            "prediction": prediction_status(prediction, attempt),
            "conditions": conditions(view, Phase.RUNNING, "Running", message, now),
        }
    }


def progress_patch(
    view: View, phase: Phase, progress: int | None, prediction: Prediction | None, now: dt.datetime
) -> dict[str, Any]:
    """A rate-limited progress update while the model runs or outputs upload (counted apart from the rest)."""
    patch: dict[str, Any] = {"phase": phase.value, "reason": phase.value}
    if progress is not None:
        patch["progress"] = progress
    if prediction is not None and view.status.prediction is not None:
        patch["prediction"] = prediction_status(prediction, view.status.prediction.attempt)
    if phase is Phase.UPLOADING:
        patch["message"] = "copying outputs to storage"
        patch["conditions"] = conditions(view, phase, "Uploading", patch["message"], now)
    return {"status": patch}


def retry_patch(
    view: View, failure: Failure, delay: float, prediction: Prediction | None, now: dt.datetime
) -> dict[str, Any]:
    """One retry spent: how many, why, and when the next try is due."""
    retries = view.status.retries + 1
    due = now + dt.timedelta(seconds=delay)
    message = f"{failure.message}; retry {retries} of {view.spec.retry.limit} in {delay:.0f}s"
    phase = view.status.phase or Phase.PENDING
    patch: dict[str, Any] = generation_fields(view) | {
        "phase": phase.value,
        "reason": failure.reason,
        "message": message,
        "retries": retries,
        "nextRetryTime": _ts(due),
        "conditions": conditions(view, phase, failure.reason, message, now),
    }
    if prediction is not None and view.status.prediction is not None and view.status.prediction.id == prediction.id:
        patch["prediction"] = prediction_status(prediction, view.status.prediction.attempt)
    return {"status": patch}


def finish_patch(
    view: View, memory: Memory, phase: Phase, reason: str, message: str, now: dt.datetime
) -> dict[str, Any]:
    """The final status. After this the phase never changes again."""
    patch: dict[str, Any] = generation_fields(view) | {
        "phase": phase.value,
        "reason": reason,
        "message": message,
        "completionTime": _ts(now),
        "startTime": _ts(view.status.start_time or now),
        "conditions": conditions(view, phase, reason, message, now),
    }
    prediction, attempt = memory.prediction_of(view), memory.prediction_attempt
    if prediction is not None:
        attempt = attempt or (view.status.prediction.attempt if view.status.prediction else 1)
        patch["prediction"] = prediction_status(prediction, attempt)
        patch["attempts"] = max(view.status.attempts, attempt)
    if phase is Phase.SUCCEEDED and memory.outputs is not None:
        outputs: list[StoredOutput] = memory.outputs
        patch["outputs"] = [o.to_wire() for o in outputs]
        patch["url"] = outputs[0].url if outputs else ""
        patch["progress"] = 100
        if memory.url_expires_at is not None:
            patch["urlExpiresAt"] = _ts(memory.url_expires_at)
    return {"status": patch}


def urls_patch(outputs: list[StoredOutput], expires_at: dt.datetime | None) -> dict[str, Any]:
    """Freshly signed URLs for a Succeeded generation's outputs; the phase and everything else stay as they are."""
    return {
        "status": {
            "outputs": [o.to_wire() for o in outputs],
            "url": outputs[0].url if outputs else "",
            "urlExpiresAt": _ts(expires_at),
        }
    }


def observe_patch(view: View, now: dt.datetime) -> dict[str, Any]:
    """A finished generation, restated for the resource's current metadata.generation (its spec changed after the
    end in a way that changes nothing, such as a late ``spec.cancel``), with its request's digest."""
    phase = view.status.phase or Phase.FAILED
    reason, message = view.status.reason, view.status.message
    return {"status": generation_fields(view) | {"conditions": conditions(view, phase, reason, message, now)}}


def invalid_patch(generation: int, message: str, now: dt.datetime) -> dict[str, Any]:
    """The resource cannot be read (see :class:`~mediagen.reconcile.state.InvalidResource`): say what is wrong until
    someone fixes it. Succeeded stays Unknown (nothing was decided) and Stalled is True with the reason (kstatus:
    Failed, the operator cannot make progress). Written from the raw body, since no :class:`View` can be had."""
    kinds = {SUCCEEDED: "Unknown", READY: "False", STALLED: "True"}
    return {
        "status": {
            "reason": INVALID_RESOURCE,
            "message": message,
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": INVALID_RESOURCE,
                    "message": message,
                    "lastTransitionTime": _ts(now),
                    "observedGeneration": generation,
                }
                for kind, status in kinds.items()
            ],
        }
    }
