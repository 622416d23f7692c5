"""decide() when the spec is edited: every phase of the generation an edit meets, each kind of edit, and the
operator's memory lost at each point between the edit and the new generation's first write (a crash)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mediagen.api.types import MediaGenerationSpec, Phase, StoredOutput, request_hash
from mediagen.generators.base import Prediction
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.decide import decide
from mediagen.reconcile.failures import Failure, Kind
from mediagen.reconcile.state import (
    FINALIZER,
    PENDING_ANNOTATION,
    CancelBecause,
    CancelRemote,
    Create,
    DeleteObjects,
    DeleteSuperseded,
    Done,
    Finish,
    MarkPending,
    Memory,
    ObserveGeneration,
    PendingCreate,
    Poll,
    Record,
    Recover,
    ScheduleRetry,
    View,
    Wait,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(hours=2)  # the first generation ran long ago
MARKED = NOW - dt.timedelta(seconds=10)  # when the operator took the edit up
OLD: dict[str, Any] = {"model": "a/b", "input": {"prompt": "a fox", "width": 64}}
NEW: dict[str, Any] = {"model": "a/b", "input": {"prompt": "a dog", "width": 64}}


def ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def digest(spec: dict[str, Any]) -> str:
    return request_hash(MediaGenerationSpec.model_validate(spec))


def view(
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    marker: PendingCreate | None = None,
    generation: int = 2,
    deleting: bool = False,
) -> View:
    meta: dict[str, Any] = {
        "name": "gen",
        "namespace": "ns",
        "uid": "u-1",
        "generation": generation,
        "creationTimestamp": ts(T0),
        "finalizers": [FINALIZER],
        "annotations": {PENDING_ANNOTATION: marker.to_annotation()} if marker else {},
    }
    if deleting:
        meta["deletionTimestamp"] = ts(NOW)
    return View.from_body({"metadata": meta, "spec": spec, "status": status or {}})


def of_old(**status: Any) -> dict[str, Any]:
    """A status the operator wrote for generation 1 (the request OLD)."""
    return {"observedGeneration": 1, "requestHash": digest(OLD), "firstAttempt": 1} | status


def marker(attempt: int, spec: dict[str, Any] = OLD, first: int = 1, since: dt.datetime = T0) -> PendingCreate:
    return PendingCreate(attempt, since, request=digest(spec), first=first)


def pred(status: str = "processing", pid: str = "p1", **kw: Any) -> Prediction:
    return Prediction(id=pid, status=status, **({"created_at": NOW - dt.timedelta(seconds=30)} | kw))


def mem(**kw: Any) -> Memory:
    m = Memory()
    for key, value in kw.items():
        setattr(m, key, value)
    return m


OUTPUTS = [{"url": "https://media/ns/gen/u-1/p1/0.png", "key": "ns/gen/u-1/p1/0.png", "contentType": "image/png"}]
STORED = [StoredOutput.model_validate(o) for o in OUTPUTS]
STARTED = NOW - dt.timedelta(seconds=30)
RUNNING = of_old(
    phase="Running", attempts=1, startTime=ts(STARTED), prediction={"id": "p1", "status": "processing", "attempt": 1}
)
SUCCEEDED = of_old(
    phase="Succeeded",
    reason="Succeeded",
    attempts=1,
    startTime=ts(T0),
    completionTime=ts(T0),
    prediction={"id": "p1", "status": "succeeded", "attempt": 1},
    outputs=OUTPUTS,
    url=OUTPUTS[0]["url"],
    progress=100,
)
# The phases a generation can be in when its request is edited, as stored (status, marker) and as remembered.
PHASES: dict[str, tuple[dict[str, Any], PendingCreate | None, Memory]] = {
    "pending-create": (of_old(phase="Pending"), marker(1), mem(recovery_done_for=1)),
    "retry-scheduled": (
        of_old(phase="Pending", retries=1, nextRetryTime=ts(NOW + dt.timedelta(minutes=5))),
        marker(1),
        mem(recovery_done_for=1),
    ),
    "running": (RUNNING, marker(1), mem(prediction=pred(), prediction_attempt=1)),
    "model-retry-waiting": (
        RUNNING
        | {
            "retries": 1,
            "nextRetryTime": ts(NOW + dt.timedelta(minutes=5)),
            "prediction": {"id": "p1", "status": "failed"},
        },
        marker(1),
        mem(prediction=pred("failed", error="(code: PA)"), prediction_attempt=1),
    ),
    "uploading": (
        RUNNING | {"phase": "Uploading", "prediction": {"id": "p1", "status": "succeeded", "attempt": 1}},
        marker(1),
        mem(prediction=pred("succeeded"), prediction_attempt=1, outputs=STORED),
    ),
    "succeeded": (SUCCEEDED, marker(1), Memory()),
    "failed": (of_old(phase="Failed", reason="ModelFailed", attempts=1, completionTime=ts(T0)), marker(1), Memory()),
    "canceled": (of_old(phase="Canceled", reason="Canceled", attempts=1, completionTime=ts(T0)), marker(1), Memory()),
}


def first_new_step(phase: str) -> object:
    """What an edit of the request meets first in ``phase``: the replaced generation's loose ends."""
    return {
        "pending-create": MarkPending(2),  # this worker wrote the marker and created nothing yet
        "retry-scheduled": MarkPending(2),  # no waiting for the old retry
        "running": CancelRemote("p1", CancelBecause.EDIT),
        "model-retry-waiting": MarkPending(2),
        "uploading": MarkPending(2),  # Retain: the copied outputs stay where they are
        "succeeded": MarkPending(2),
        "failed": MarkPending(2),
        "canceled": MarkPending(2),
    }[phase]


@pytest.mark.parametrize("phase", PHASES)
def test_an_edit_of_the_request_winds_the_old_generation_down_then_marks_the_new_ones_first_attempt(
    phase: str,
) -> None:
    status, mark, memory = PHASES[phase]
    edited = view(NEW, status, mark)
    assert edited.superseded and edited.status.phase is None and edited.first_attempt == 2
    step = decide(edited, memory, NOW)
    assert step == first_new_step(phase)
    if isinstance(step, CancelRemote):
        memory.cancel_requested_remote = True
        assert decide(edited, memory, NOW) == MarkPending(2)


@pytest.mark.parametrize("phase", PHASES)
def test_after_a_crash_the_old_generation_is_found_from_what_is_stored(phase: str) -> None:
    """The operator died between the edit and the new marker: nothing in memory, the old generation's loose ends
    are found again from the status and the marker (a cancel repeated is harmless)."""
    status, mark, _ = PHASES[phase]
    edited = view(NEW, status, mark)
    step = decide(edited, Memory(), NOW)
    if phase in ("pending-create", "retry-scheduled"):
        assert step == Recover(1, T0, best_effort=True)  # its create may have reached Replicate: find it to cancel it
        found = mem(prediction=pred("starting", pid="p0"), prediction_attempt=1)
        assert decide(edited, found, NOW) == CancelRemote("p0", CancelBecause.EDIT)
        assert decide(edited, mem(recovery_done_for=1), NOW) == MarkPending(2)  # nothing was created
    elif phase in ("running", "uploading"):
        # Uploading: the recorded prediction succeeded, nothing to cancel; Running: cancel what the status records.
        assert step == (CancelRemote("p1", CancelBecause.EDIT) if phase == "running" else MarkPending(2))
    else:
        assert step == MarkPending(2)


@pytest.mark.parametrize("phase", ["uploading", "succeeded"])
def test_under_delete_the_replaced_generations_outputs_are_deleted_before_the_new_one_starts(phase: str) -> None:
    status, mark, memory = PHASES[phase]
    spec = NEW | {"output": {"deletionPolicy": "Delete"}}
    edited = view(spec, status, mark)
    assert decide(edited, memory, NOW) == DeleteSuperseded(("ns/gen/u-1/p1/",))
    memory.superseded_outputs_done = True
    assert decide(edited, memory, NOW) == MarkPending(2)


def test_outputs_stored_under_an_edited_key_prefix_are_found_by_their_keys() -> None:
    old = SUCCEEDED | {"outputs": [{"url": "u", "key": "summer/ns/gen/u-1/p1/0.png"}, {"url": "v", "key": "x/y"}]}
    spec = NEW | {"output": {"keyPrefix": "winter", "deletionPolicy": "Delete"}}
    assert decide(view(spec, old, marker(1)), Memory(), NOW) == DeleteSuperseded(("summer/ns/gen/u-1/p1/",))


def test_an_edit_before_the_first_status_write_is_told_apart_by_the_marker() -> None:
    """An instant prediction writes its status only at the end: an edit during its create or copy meets a status
    not written yet, and only the marker says which request the attempt was for."""
    edited = view(NEW, {}, marker(1))
    assert edited.superseded and edited.first_attempt == 2
    assert decide(edited, mem(recovery_done_for=1), NOW) == MarkPending(2)
    copied = mem(prediction=pred("succeeded"), prediction_attempt=1, outputs=STORED)
    assert decide(edited, copied, NOW) == MarkPending(2)  # its result is not the new request's
    delete = view(NEW | {"output": {"deletionPolicy": "Delete"}}, {}, marker(1))
    assert decide(delete, copied, NOW) == DeleteSuperseded(("ns/gen/u-1/p1/",))
    assert decide(view(OLD, {}, marker(1), generation=1), copied, NOW) == Finish(
        Phase.SUCCEEDED, "Succeeded", "stored 1 output"
    )


def test_the_new_generation_is_created_exactly_once_whatever_the_operator_forgets() -> None:
    marked = view(NEW, SUCCEEDED, marker(2, NEW, first=2, since=MARKED))
    assert not marked.status.outputs and marked.first_attempt == 2 and marked.current.pending is not None
    # This worker wrote the marker: create, with the whole timeout (the old generation's start is not this one's).
    assert decide(marked, mem(recovery_done_for=2), NOW) == Create(2, 3600)
    # A crash after the marker: the create may have happened; look it up by its own attempt's marker first.
    assert decide(marked, Memory(), NOW) == Recover(2, MARKED)
    assert decide(marked, mem(recovery_done_for=2), NOW) == Create(2, 3600)  # not found: create
    found = mem(prediction=pred("starting", pid="p2"), prediction_attempt=2)
    assert decide(marked, found, NOW) == Record()  # found (or just created): record it, never create again


def test_the_new_generations_first_write_replaces_the_old_result_whole() -> None:
    marked = view(NEW, SUCCEEDED, marker(2, NEW, first=2, since=MARKED))
    p2 = pred("starting", pid="p2", created_at=NOW)
    patch = patches.record_patch(marked, p2, 2, NOW)["status"]
    stored = {k: v for k, v in (SUCCEEDED | patch).items() if v is not None}  # a merge patch deletes nulls
    assert stored["observedGeneration"] == 2 and stored["requestHash"] == digest(NEW) and stored["firstAttempt"] == 2
    assert (stored["phase"], stored["attempts"], stored["prediction"]["id"], stored["retries"]) == (
        "Running",
        2,
        "p2",
        0,
    )
    assert stored["outputs"] == [] and stored["url"] == "" and stored["startTime"] == ts(NOW)
    assert "completionTime" not in stored and "progress" not in stored and "nextRetryTime" not in stored
    assert {c["type"]: c["status"] for c in stored["conditions"]}["Succeeded"] == "Unknown"
    assert {c["observedGeneration"] for c in stored["conditions"]} == {2}
    recorded = view(NEW, stored, marker(2, NEW, first=2, since=MARKED))
    assert not recorded.superseded and recorded.status.prediction is not None
    assert decide(recorded, mem(prediction=p2, prediction_attempt=2), NOW) == Poll(1.0)


def test_an_instant_new_generation_resets_the_status_on_its_final_write() -> None:
    marked = view(NEW, SUCCEEDED, marker(2, NEW, first=2, since=MARKED))
    out = [StoredOutput(url="https://media/ns/gen/u-1/p2/0.png", key="ns/gen/u-1/p2/0.png")]
    done = mem(prediction=pred("succeeded", pid="p2"), prediction_attempt=2, outputs=out)
    assert decide(marked, done, NOW) == Finish(Phase.SUCCEEDED, "Succeeded", "stored 1 output")
    patch = patches.finish_patch(marked, done, Phase.SUCCEEDED, "Succeeded", "stored 1 output", NOW)["status"]
    assert patch["outputs"][0]["key"] == "ns/gen/u-1/p2/0.png" and patch["prediction"]["id"] == "p2"
    assert (patch["attempts"], patch["observedGeneration"], patch["retries"]) == (2, 2, 0)


def test_a_failed_new_create_spends_the_new_generations_own_budget() -> None:
    marked = view(NEW, SUCCEEDED | {"retries": 3}, marker(2, NEW, first=2, since=MARKED))
    failure = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503")
    step = decide(marked, mem(recovery_done_for=2, failure=failure, failure_during="create"), NOW)
    assert step == ScheduleRetry(failure, 5.0, new_attempt=False, look_up_create=True)  # 5 s: none of 3 used yet
    patch = patches.retry_patch(marked, failure, 5.0, None, NOW)["status"]
    stored = {k: v for k, v in (SUCCEEDED | patch).items() if v is not None}
    assert (stored["retries"], stored["phase"], stored["outputs"], stored["requestHash"]) == (
        1,
        "Pending",
        [],
        digest(NEW),
    )
    waiting = view(NEW, stored, marker(2, NEW, first=2, since=MARKED))
    assert not waiting.superseded and waiting.current.pending is not None  # the same generation, going on
    assert decide(waiting, Memory(), NOW) == Wait(NOW + dt.timedelta(seconds=5))


def test_attempt_numbers_run_on_so_that_every_correlation_marker_names_one_prediction() -> None:
    retried = SUCCEEDED | {"attempts": 3, "retries": 2}
    assert decide(view(NEW, retried, marker(3)), Memory(), NOW) == MarkPending(4)
    never_started = of_old(phase="Canceled", reason="Canceled", attempts=0)  # canceled before any attempt
    assert decide(view(NEW, never_started), Memory(), NOW) == MarkPending(2)


def test_a_later_generations_deadline_counts_from_its_own_beginning() -> None:
    short = NEW | {"timeoutSeconds": 60}
    # Created two hours ago: the first generation's rule (from creation) would fail the new one at once.
    assert decide(view(short, SUCCEEDED, marker(1)), Memory(), NOW) == MarkPending(2)
    marked = view(short, SUCCEEDED, marker(2, short, first=2, since=MARKED))
    assert marked.began == MARKED
    assert decide(marked, mem(recovery_done_for=2), NOW) == Create(2, 60)
    late = NOW + dt.timedelta(seconds=60)
    step = decide(marked, mem(recovery_done_for=2), late)
    assert isinstance(step, Finish) and step.reason == "DeadlineExceeded"


# --- edits that are not of the request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"retry": {"limit": 0}},
        {"timeoutSeconds": 60},
        {"ttlSecondsAfterFinished": 86400},
        {"output": {"deletionPolicy": "Delete"}},
        {"cancel": True},
        {"input": {"width": 64, "prompt": "a fox"}},  # the same input, its keys in another order
    ],
    ids=["retry", "timeout", "ttl", "deletion-policy", "cancel", "reordered-input"],
)
def test_an_edit_of_anything_but_the_request_only_restates_a_finished_generation(change: dict[str, Any]) -> None:
    edited = view(OLD | change, SUCCEEDED, marker(1))
    assert not edited.superseded
    step = decide(edited, Memory(), NOW)
    assert step == ObserveGeneration()
    observed = view(OLD | change, SUCCEEDED | {"observedGeneration": 2}, marker(1))
    assert decide(observed, Memory(), NOW) in (Done(), Wait(T0 + dt.timedelta(seconds=86400)))


def test_an_edit_of_anything_but_the_request_goes_on_with_the_prediction_in_flight() -> None:
    edited = view(OLD | {"retry": {"limit": 0}, "timeoutSeconds": 86400}, RUNNING, marker(1))
    assert decide(edited, mem(prediction=pred(created_at=NOW), prediction_attempt=1), NOW) == Poll(1.0)
    shorter = view(OLD | {"timeoutSeconds": 20}, RUNNING, marker(1))  # started 30 s ago: past the new deadline
    assert decide(shorter, mem(prediction=pred(), prediction_attempt=1), NOW) == CancelRemote(
        "p1", CancelBecause.DEADLINE
    )


def test_a_label_edit_costs_nothing() -> None:
    same_generation = view(OLD, SUCCEEDED, marker(1), generation=1)
    assert decide(same_generation, Memory(), NOW) == Done()


# --- edits on top of edits ------------------------------------------------------------------------------------


def test_an_edit_undone_before_the_operator_acted_costs_nothing() -> None:
    assert decide(view(OLD, SUCCEEDED, marker(1), generation=3), Memory(), NOW) == ObserveGeneration()
    in_flight = mem(prediction=pred(), prediction_attempt=1)
    assert isinstance(decide(view(OLD, RUNNING, marker(1), generation=3), in_flight, NOW), Poll)


def test_an_edit_undone_after_the_operator_acted_is_a_new_generation_of_its_own() -> None:
    """The operator moved on to the edited request (its marker is written, the old outputs may be gone): going back
    is one more new generation, not a return to a result that may no longer exist."""
    moved_on = view(OLD, SUCCEEDED, marker(2, NEW, first=2, since=MARKED), generation=3)
    assert moved_on.superseded
    assert decide(moved_on, Memory(), NOW) == Recover(2, MARKED, best_effort=True)  # the B create may exist
    assert decide(moved_on, mem(prediction=pred(pid="p2"), prediction_attempt=2), NOW) == CancelRemote(
        "p2", CancelBecause.EDIT
    )
    assert decide(moved_on, mem(recovery_done_for=2), NOW) == MarkPending(3)
    again = view(OLD, SUCCEEDED, marker(3, OLD, first=3, since=NOW), generation=3)
    assert again.superseded and again.first_attempt == 3
    assert decide(again, mem(recovery_done_for=3), NOW) == Create(3, 3600)


def test_an_edit_during_the_new_generations_create_cancels_that_one_too() -> None:
    third = {"model": "a/b", "input": {"prompt": "a cow"}}
    during = view(third, SUCCEEDED, marker(2, NEW, first=2, since=MARKED), generation=3)
    created = mem(prediction=pred("starting", pid="p2"), prediction_attempt=2)
    assert decide(during, created, NOW) == CancelRemote("p2", CancelBecause.EDIT)
    created.cancel_requested_remote = True
    assert decide(during, created, NOW) == MarkPending(3)


# --- cancel with an edit --------------------------------------------------------------------------------------


def test_cancel_in_the_same_edit_stops_the_old_prediction_and_ends_the_new_generation_canceled() -> None:
    edited = view(NEW | {"cancel": True}, RUNNING, marker(1))
    memory = mem(prediction=pred(), prediction_attempt=1)
    assert decide(edited, memory, NOW) == CancelRemote("p1", CancelBecause.EDIT)
    memory.cancel_requested_remote = True
    memory.prediction = pred("canceled")
    assert decide(edited, memory, NOW) == Finish(Phase.CANCELED, "Canceled", "canceled by setting spec.cancel")
    patch = patches.finish_patch(edited, memory, Phase.CANCELED, "Canceled", "c", NOW)["status"]
    assert patch["prediction"] is None and patch["requestHash"] == digest(NEW)  # nothing of the old one is kept


def test_cancel_taken_back_alone_changes_nothing_and_with_a_new_request_runs_it() -> None:
    canceled = of_old(phase="Canceled", reason="Canceled", attempts=1, completionTime=ts(T0))
    assert decide(view(OLD | {"cancel": False}, canceled, marker(1)), Memory(), NOW) == ObserveGeneration()
    assert decide(view(NEW | {"cancel": False}, canceled, marker(1)), Memory(), NOW) == MarkPending(2)


def test_an_oversized_new_input_fails_the_new_generation_before_any_call() -> None:
    huge = {"model": "a/b", "input": {"prompt": "x" * 20000}}
    step = decide(view(huge, SUCCEEDED, marker(1)), Memory(), NOW)
    assert isinstance(step, Finish) and step.reason == "InvalidInput"


# --- deletion wins --------------------------------------------------------------------------------------------


def test_deletion_during_an_edit_cancels_whatever_runs_and_deletes_every_generations_objects() -> None:
    spec = NEW | {"output": {"keyPrefix": "winter", "deletionPolicy": "Delete"}}
    old = SUCCEEDED | {"outputs": [{"url": "u", "key": "summer/ns/gen/u-1/p1/0.png"}]}
    deleting = view(spec, old, marker(2, spec, first=2, since=MARKED), deleting=True)
    assert decide(deleting, Memory(), NOW) == Recover(2, MARKED, best_effort=True)
    found = mem(prediction=pred(pid="p2"), prediction_attempt=2)
    assert decide(deleting, found, NOW) == CancelRemote("p2", CancelBecause.DELETION)
    found.cancel_requested_remote = True
    assert decide(deleting, found, NOW) == DeleteObjects(("winter/ns/gen/u-1/", "summer/ns/gen/u-1/p1/"))
    running = view(NEW, RUNNING, marker(1), deleting=True)  # edited, then deleted before the edit was acted on
    assert decide(running, Memory(), NOW) == CancelRemote("p1", CancelBecause.DELETION)


# --- statuses and markers an earlier version wrote ------------------------------------------------------------


def test_an_earlier_versions_finished_status_is_stamped_once_and_never_costs_a_prediction() -> None:
    legacy = {k: v for k, v in SUCCEEDED.items() if k not in ("requestHash", "firstAttempt")}
    assert decide(view(OLD, legacy, PendingCreate(1, T0), generation=1), Memory(), NOW) == ObserveGeneration()
    patch = patches.observe_patch(view(OLD, legacy, PendingCreate(1, T0), generation=1), NOW)["status"]
    assert (patch["requestHash"], patch["firstAttempt"], patch["observedGeneration"]) == (digest(OLD), 1, 1)
    # An unstamped status beside an edit cannot tell what it was of: it is taken to be of the spec as it is.
    assert not view(NEW, legacy, PendingCreate(1, T0)).superseded


def test_an_earlier_versions_marker_is_still_looked_up_before_creating() -> None:
    legacy = view(OLD, {}, PendingCreate(1, T0), generation=1)  # crashed after the marker, then upgraded
    assert legacy.current.pending == PendingCreate(1, T0)
    assert decide(legacy, Memory(), NOW) == Recover(1, T0)


def test_the_marker_round_trips_and_old_or_mangled_ones_parse() -> None:
    new = PendingCreate(2, MARKED, request="abc", first=2)
    assert PendingCreate.from_annotation(new.to_annotation()) == new
    assert PendingCreate.from_annotation('{"attempt":1,"since":"2026-01-01T00:00:00+00:00"}') == PendingCreate(
        1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    for bad in (
        "",
        "[]",
        '{"attempt":"x"}',
        '{"attempt":1,"since":"then"}',
        '{"attempt":1,"since":"2026-01-01","first":"a"}',
    ):
        assert PendingCreate.from_annotation(bad) is None
