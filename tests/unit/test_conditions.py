"""The conditions each status write carries (what kstatus, Flux and kubectl wait read), per phase and generation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mediagen.api import crd
from mediagen.api.conditions import CANCELED_ON_REQUEST, condition_statuses, initial_status
from mediagen.api.types import Phase, StoredOutput
from mediagen.generators.base import Prediction
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.failures import Failure, Kind
from mediagen.reconcile.state import Memory, View

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(seconds=30)
RUNNING = Prediction(id="p1", status="processing")


def view(status: dict[str, Any] | None = None, generation: int = 1) -> View:
    meta = {"name": "gen", "namespace": "ns", "uid": "u-1", "generation": generation}
    return View.from_body({"metadata": meta, "spec": {"model": "a/b"}, "status": status or initial_status()})


def apply(body_status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch of the status, as the API server applies it (lists replaced whole)."""
    return body_status | patch["status"]


def by_type(status: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {c["type"]: (c["status"], c.get("lastTransitionTime")) for c in status["conditions"]}


@pytest.mark.parametrize(
    ("phase", "reason", "expected"),
    [
        (Phase.PENDING, "Pending", {"Succeeded": "Unknown", "Ready": "False", "Reconciling": "True"}),
        (Phase.RUNNING, "ModelInterrupted", {"Succeeded": "Unknown", "Ready": "False", "Reconciling": "True"}),
        (Phase.UPLOADING, "Uploading", {"Succeeded": "Unknown", "Ready": "False", "Reconciling": "True"}),
        (Phase.SUCCEEDED, "Succeeded", {"Succeeded": "True", "Ready": "True"}),
        (Phase.FAILED, "ContentFlagged", {"Succeeded": "False", "Ready": "False", "Stalled": "True"}),
        (Phase.CANCELED, CANCELED_ON_REQUEST, {"Succeeded": "False"}),
        (Phase.CANCELED, "CanceledRemotely", {"Succeeded": "False", "Ready": "False", "Stalled": "True"}),
    ],
)
def test_each_phase_has_the_conditions_kstatus_reads(phase: Phase, reason: str, expected: dict[str, str]) -> None:
    assert condition_statuses(phase, reason) == expected
    assert next(iter(expected)) == "Succeeded"  # first, where `conditions[0]` readers find it


def test_the_crd_defaults_a_missing_status_to_pending_and_reconciling() -> None:
    status = crd.openapi_schema()["properties"]["status"]
    assert status["default"] == initial_status()
    assert initial_status()["phase"] == "Pending"
    assert by_type(initial_status()) == {
        "Succeeded": ("Unknown", None),
        "Ready": ("False", None),
        "Reconciling": ("True", None),
    }


def test_a_lifecycle_keeps_transition_times_until_a_condition_changes() -> None:
    status = initial_status()
    status = apply(status, patches.record_patch(view(status), RUNNING, 1, T0))
    start = "2026-01-01T00:00:00Z"
    assert by_type(status) == {
        "Succeeded": ("Unknown", start),
        "Ready": ("False", start),
        "Reconciling": ("True", start),
    }
    failure = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "poll failed")
    status = apply(status, patches.retry_patch(view(status), failure, 5, None, LATER))
    assert {c["reason"] for c in status["conditions"]} == {"ReplicateUnavailable"}
    assert {t for _, t in by_type(status).values()} == {start}  # still in flight: unchanged
    outputs = [StoredOutput(url="https://cdn/x.png", key="x.png")]
    memory = Memory(prediction=Prediction(id="p1", status="succeeded"), prediction_attempt=1, outputs=outputs)
    status = apply(status, patches.finish_patch(view(status), memory, Phase.SUCCEEDED, "Succeeded", "stored", LATER))
    assert by_type(status) == {"Succeeded": ("True", "2026-01-01T00:00:30Z"), "Ready": ("True", "2026-01-01T00:00:30Z")}
    assert {c["observedGeneration"] for c in status["conditions"]} == {1} and status["observedGeneration"] == 1


def test_uploading_is_in_flight_and_a_cancel_by_request_drops_ready() -> None:
    status = apply(initial_status(), patches.record_patch(view(), RUNNING, 1, T0))
    uploading = apply(status, patches.progress_patch(view(status), Phase.UPLOADING, 100, None, LATER))
    assert by_type(uploading)["Reconciling"] == ("True", "2026-01-01T00:00:00Z")
    running = patches.progress_patch(view(status), Phase.RUNNING, 40, None, LATER)
    assert "conditions" not in running["status"]  # progress alone changes no condition
    canceled = patches.finish_patch(view(status, 2), Memory(), Phase.CANCELED, "Canceled", "canceled", LATER)
    assert [(c["type"], c["status"], c["observedGeneration"]) for c in canceled["status"]["conditions"]] == [
        ("Succeeded", "False", 2)
    ]


def test_observing_a_new_generation_restates_the_end_for_it() -> None:
    status = apply(initial_status(), patches.record_patch(view(), RUNNING, 1, T0))
    failed = apply(status, patches.finish_patch(view(status), Memory(), Phase.FAILED, "ModelFailed", "boom", T0))
    patch = patches.observe_patch(view(failed, generation=2), LATER)["status"]
    assert patch["observedGeneration"] == 2
    assert patch["conditions"] == [c | {"observedGeneration": 2} for c in failed["conditions"]]
