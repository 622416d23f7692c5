"""The reconcile decision, exhaustively: every branch of decide() from plain values, no I/O."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mediagen.api.types import MediaGenerationSpec, Phase, StoredOutput, request_hash
from mediagen.generators.base import Prediction
from mediagen.reconcile.decide import MAX_SERVER_WAIT_SECONDS, Pacing, decide
from mediagen.reconcile.failures import Failure, Kind
from mediagen.reconcile.state import (
    FINALIZER,
    PENDING_ANNOTATION,
    AbandonCleanup,
    CancelBecause,
    CancelRemote,
    Create,
    DeleteObjects,
    DeleteResource,
    Done,
    Finish,
    MarkPending,
    Memory,
    ObserveGeneration,
    PendingCreate,
    Poll,
    Record,
    Recover,
    ReleaseFinalizer,
    ScheduleRetry,
    Upload,
    View,
    Wait,
    WriteProgress,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)
T0 = NOW - dt.timedelta(seconds=30)


def ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def view(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    pending: int | None = None,
    deleting: bool = False,
    finalizer: bool = True,
    generation: int = 1,
    created: dt.datetime | None = None,
    stamped: bool = True,
    marker: PendingCreate | None = None,
) -> View:
    """A MediaGeneration as read from the API server. A non-empty ``status`` is of the spec's request (``stamped``;
    False: written by a version of the operator from before requests could be edited)."""
    meta: dict[str, Any] = {"name": "gen", "namespace": "ns", "uid": "u-1", "generation": generation, "annotations": {}}
    if created is not None:
        meta["creationTimestamp"] = ts(created)
    if pending is not None:
        marker = PendingCreate(pending, T0)
    if marker is not None:
        meta["annotations"][PENDING_ANNOTATION] = marker.to_annotation()
    if finalizer:
        meta["finalizers"] = [FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = ts(NOW)
    full_spec = {"model": "a/b", "input": {"prompt": "x"}} | (spec or {})
    if status and stamped and "requestHash" not in status:
        status = status | {"requestHash": request_of(full_spec)}
    return View.from_body({"metadata": meta, "spec": full_spec, "status": status or {}})


def request_of(spec: dict[str, Any]) -> str:
    return request_hash(MediaGenerationSpec.model_validate(spec))


def running(attempt: int = 1, pid: str = "p1", pstatus: str = "processing", **extra: Any) -> dict[str, Any]:
    return {
        "phase": "Running",
        "attempts": attempt,
        "startTime": ts(T0),
        "prediction": {"id": pid, "status": pstatus, "attempt": attempt},
    } | extra


def pred(status: str = "processing", pid: str = "p1", **kw: Any) -> Prediction:
    return Prediction(id=pid, status=status, created_at=T0, **kw)


def mem(**kw: Any) -> Memory:
    m = Memory()
    for key, value in kw.items():
        setattr(m, key, value)
    return m


OUT = [StoredOutput(url="https://x/0.png", key="k/0.png", content_type="image/png", size_bytes=3, sha256="ab")]


# --- starting ------------------------------------------------------------------------------------------


def test_a_new_resource_marks_attempt_one_pending_with_the_finalizer() -> None:
    assert decide(view(finalizer=False), Memory(), NOW) == MarkPending(1)


def test_a_marker_this_worker_wrote_leads_straight_to_create_with_the_remaining_deadline() -> None:
    v = view(pending=1, status={"startTime": ts(NOW - dt.timedelta(seconds=100))}, spec={"timeoutSeconds": 600})
    assert decide(v, mem(recovery_done_for=1), NOW) == Create(1, 500)


def test_a_marker_found_after_a_restart_is_looked_up_before_creating_again() -> None:
    assert decide(view(pending=1), Memory(), NOW) == Recover(1, T0)


def test_recovery_that_found_nothing_creates() -> None:
    assert isinstance(decide(view(pending=1), mem(recovery_done_for=1), NOW), Create)


def test_a_created_or_recovered_prediction_is_recorded_before_anything_else() -> None:
    m = mem(prediction=pred("starting"), prediction_attempt=1)
    assert decide(view(pending=1), m, NOW) == Record()


def test_a_prediction_that_succeeded_inside_create_skips_the_record_write_and_uploads() -> None:
    m = mem(prediction=pred("succeeded", output=["data:,x"]), prediction_attempt=1)
    assert decide(view(pending=1), m, NOW) == Upload(report_slow_after=None)


def test_a_marker_of_an_older_attempt_is_already_resolved() -> None:
    v = view(pending=1, status=running())
    assert decide(v, Memory(), NOW) == Poll(0.0)


# --- polling -------------------------------------------------------------------------------------------


def test_after_a_restart_the_recorded_prediction_is_polled_at_once() -> None:
    assert decide(view(pending=1, status=running()), Memory(), NOW) == Poll(0.0)


@pytest.mark.parametrize(("age", "expected"), [(0, 1.0), (2, 1.0), (30, 10.0), (600, 15.0)])
def test_polls_back_off_with_the_predictions_age(age: int, expected: float) -> None:
    p = Prediction(id="p1", status="processing", created_at=NOW - dt.timedelta(seconds=age))
    assert decide(view(status=running()), mem(prediction=p, prediction_attempt=1), NOW) == Poll(expected)


def test_poll_pacing_is_configurable() -> None:
    p = Prediction(id="p1", status="processing", created_at=NOW - dt.timedelta(seconds=600))
    step = decide(view(status=running()), mem(prediction=p), NOW, Pacing(poll_initial_seconds=2, poll_max_seconds=4))
    assert step == Poll(4.0)


def test_a_failed_poll_is_retried_in_memory_with_backoff_without_spending_the_budget() -> None:
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "boom")
    m = mem(prediction=pred(), failure=f, failure_during="poll", poll_failures=3)
    assert decide(view(status=running(retries=3), spec={"retry": {"limit": 3}}), m, NOW) == Poll(8.0)


def test_a_throttled_poll_waits_as_long_as_asked() -> None:
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "slow", retry_after=30.0)
    m = mem(prediction=pred(), failure=f, failure_during="poll", poll_failures=1)
    assert decide(view(status=running()), m, NOW) == Poll(30.0)


# --- outcomes ------------------------------------------------------------------------------------------


def test_success_uploads_then_finishes_succeeded() -> None:
    v = view(status=running())
    p = pred("succeeded", output=["https://replicate.delivery/a.png"])
    assert decide(v, mem(prediction=p), NOW) == Upload(report_slow_after=5.0)
    assert decide(v, mem(prediction=p, outputs=OUT), NOW) == Finish(Phase.SUCCEEDED, "Succeeded", "stored 1 output")


def test_outputs_removed_by_replicate_fail_as_expired() -> None:
    p = pred("succeeded", data_removed=True)
    step = decide(view(status=running()), mem(prediction=p), NOW)
    assert isinstance(step, Finish) and (step.phase, step.reason) == (Phase.FAILED, "OutputExpired")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("NSFW content detected. Try running it again, or try a different prompt.", "ContentFlagged"),
        ("Prediction timed out.", "ModelTimedOut"),
        ("ValueError: bad things", "ModelFailed"),
        (None, "ModelFailed"),
    ],
)
def test_final_model_failures_fail_with_replicates_message(error: str | None, reason: str) -> None:
    step = decide(view(status=running()), mem(prediction=pred("failed", error=error)), NOW)
    assert isinstance(step, Finish) and (step.phase, step.reason) == (Phase.FAILED, reason)
    assert (error or "without an error message") in step.message


@pytest.mark.parametrize(
    "error",
    [
        "Prediction interrupted; please retry (code: PA)",
        "model container failed to boot and complete setup within 600 seconds",
        "CUDA out of memory. Tried to allocate 2.00 GiB",
    ],
)
def test_retryable_model_failures_spend_a_retry_on_a_new_prediction(error: str) -> None:
    step = decide(view(status=running(retries=1)), mem(prediction=pred("failed", error=error)), NOW)
    assert isinstance(step, ScheduleRetry)
    assert step == ScheduleRetry(step.failure, 10.0, new_attempt=True)
    assert step.failure.reason == "ModelInterrupted"


def test_a_counted_model_failure_waits_for_its_retry_time_then_marks_the_next_attempt() -> None:
    due = NOW + dt.timedelta(seconds=7)
    status = running(pstatus="failed", retries=1, nextRetryTime=ts(due))
    p = pred("failed", error="(code: PA)")
    assert decide(view(status=status), mem(prediction=p), NOW) == Wait(due)
    later = NOW + dt.timedelta(seconds=8)
    assert decide(view(status=status), mem(prediction=p), later) == MarkPending(2)


def test_a_retryable_model_failure_with_no_budget_left_fails() -> None:
    v = view(status=running(retries=2), spec={"retry": {"limit": 2}})
    step = decide(v, mem(prediction=pred("failed", error="(code: PA)")), NOW)
    assert isinstance(step, Finish) and step.phase is Phase.FAILED and "retry limit of 2" in step.message


def test_aborted_fails_with_reason_aborted() -> None:
    step = decide(view(status=running()), mem(prediction=pred("aborted")), NOW)
    assert isinstance(step, Finish) and (step.phase, step.reason) == (Phase.FAILED, "Aborted")


def test_canceled_remotely_ends_canceled() -> None:
    step = decide(view(status=running()), mem(prediction=pred("canceled")), NOW)
    assert isinstance(step, Finish) and (step.phase, step.reason) == (Phase.CANCELED, "CanceledRemotely")


def test_an_unknown_terminal_status_is_not_possible_and_unknown_ones_keep_polling() -> None:
    step = decide(view(status=running()), mem(prediction=pred("warming-up")), NOW)
    assert isinstance(step, Poll)


# --- failures of our own steps -------------------------------------------------------------------------


def test_permanent_failures_finish_failed_with_their_reason() -> None:
    f = Failure(Kind.PERMANENT, "InvalidInput", "input.steps: must be <= 4")
    step = decide(view(pending=1), mem(recovery_done_for=1, failure=f, failure_during="create"), NOW)
    assert step == Finish(Phase.FAILED, "InvalidInput", "input.steps: must be <= 4")


def test_throttling_waits_without_spending_the_budget() -> None:
    f = Failure(Kind.THROTTLED, "Throttled", "429", retry_after=12.0)
    step = decide(view(pending=1, status={"retries": 3}), mem(failure=f, failure_during="create"), NOW)
    assert step == Wait(NOW + dt.timedelta(seconds=12))


@pytest.mark.parametrize(("used", "delay"), [(0, 5.0), (1, 10.0), (2, 20.0)])
def test_transient_failures_spend_a_retry_with_exponential_backoff(used: int, delay: float) -> None:
    f = Failure(Kind.TRANSIENT, "StorageUnavailable", "s3 500")
    step = decide(
        view(status=running(retries=used)), mem(prediction=pred("succeeded"), failure=f, failure_during="upload"), NOW
    )
    assert step == ScheduleRetry(f, delay, new_attempt=False)


def test_backoff_is_capped_and_a_longer_retry_after_wins() -> None:
    spec = {"retry": {"limit": 9, "backoffSeconds": 100, "maxBackoffSeconds": 150}}
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503")
    assert decide(view(spec=spec, status={"retries": 3}), mem(failure=f), NOW) == ScheduleRetry(f, 150.0, False)
    f2 = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503", retry_after=400.0)
    assert decide(view(spec=spec, status={"retries": 3}), mem(failure=f2), NOW) == ScheduleRetry(f2, 400.0, False)


def test_transient_failures_beyond_the_limit_fail_naming_the_limit() -> None:
    f = Failure(Kind.TRANSIENT, "StorageUnavailable", "s3 500")
    step = decide(
        view(status=running(retries=3)), mem(prediction=pred("succeeded"), failure=f, failure_during="upload"), NOW
    )
    assert step == Finish(Phase.FAILED, "StorageUnavailable", "s3 500 (retry limit of 3 reached)")


def test_retries_disabled_fail_on_the_first_transient_failure() -> None:
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503")
    step = decide(view(spec={"retry": {"limit": 0}}, pending=1), mem(failure=f), NOW)
    assert step == Finish(Phase.FAILED, "ReplicateUnavailable", "503 (retries are disabled)")


def test_a_scheduled_retry_waits_until_due() -> None:
    due = NOW + dt.timedelta(seconds=20)
    assert decide(view(pending=1, status={"retries": 1, "nextRetryTime": ts(due)}), Memory(), NOW) == Wait(due)


# --- cancel and deadline -------------------------------------------------------------------------------


def test_cancel_stops_the_running_prediction_then_finishes_canceled() -> None:
    v = view(spec={"cancel": True}, status=running())
    assert decide(v, mem(prediction=pred()), NOW) == CancelRemote("p1", CancelBecause.CANCEL)
    assert decide(v, mem(prediction=pred(), cancel_requested_remote=True), NOW) == Finish(
        Phase.CANCELED, "Canceled", "canceled by setting spec.cancel"
    )


def test_cancel_after_a_restart_cancels_the_recorded_prediction() -> None:
    step = decide(view(spec={"cancel": True}, status=running()), Memory(), NOW)
    assert step == CancelRemote("p1", CancelBecause.CANCEL)


def test_cancel_before_anything_started_needs_no_remote_call() -> None:
    step = decide(view(spec={"cancel": True}), Memory(), NOW)
    assert isinstance(step, Finish) and step.phase is Phase.CANCELED


def test_cancel_with_an_unresolved_create_looks_the_prediction_up_to_cancel_it() -> None:
    assert decide(view(spec={"cancel": True}, pending=1), Memory(), NOW) == Recover(1, T0)
    step = decide(view(spec={"cancel": True}, pending=1), mem(recovery_done_for=1), NOW)
    assert isinstance(step, Finish) and step.phase is Phase.CANCELED


def test_cancel_does_not_undo_a_finished_upload() -> None:
    v = view(spec={"cancel": True}, status=running())
    step = decide(v, mem(prediction=pred("succeeded"), outputs=OUT), NOW)
    assert isinstance(step, Finish) and step.phase is Phase.SUCCEEDED


def test_the_deadline_cancels_then_fails_with_deadline_exceeded() -> None:
    v = view(spec={"timeoutSeconds": 20}, status=running())  # started 30 s ago
    assert decide(v, mem(prediction=pred()), NOW) == CancelRemote("p1", CancelBecause.DEADLINE)
    step = decide(v, mem(prediction=pred("canceled"), cancel_requested_remote=True), NOW)
    assert isinstance(step, Finish) and (step.phase, step.reason) == (Phase.FAILED, "DeadlineExceeded")


def test_the_deadline_beats_pending_retries() -> None:
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503")
    v = view(spec={"timeoutSeconds": 20}, status=running(pstatus="succeeded"))
    step = decide(v, mem(prediction=pred("succeeded"), failure=f, cancel_requested_remote=True), NOW)
    assert isinstance(step, Finish) and step.reason == "DeadlineExceeded"


# --- final phases, TTL, deletion -----------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Canceled"])
def test_final_phases_never_change(phase: str) -> None:
    v = view(spec={"cancel": True}, status={"phase": phase, "completionTime": ts(T0)})
    m = mem(prediction=pred("failed", error="(code: PA)"), failure=Failure(Kind.PERMANENT, "X", "y"))
    assert decide(v, m, NOW) == Done()


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Canceled"])
def test_a_spec_change_after_the_end_is_observed_and_changes_nothing_else(phase: str) -> None:
    """spec.cancel set on a finished generation makes generation 2: the status must say it speaks for it (kstatus
    reads an older observedGeneration as in progress), then nothing is left to do."""
    finished = {"phase": phase, "completionTime": ts(T0), "observedGeneration": 1}
    spec = {"cancel": True, "ttlSecondsAfterFinished": 60}
    assert decide(view(spec=spec, status=finished, generation=2), Memory(), NOW) == ObserveGeneration()
    observed = view(spec=spec, status=finished | {"observedGeneration": 2}, generation=2)
    assert decide(observed, Memory(), NOW) == Wait(T0 + dt.timedelta(seconds=60))
    assert decide(view(status=finished), Memory(), NOW) == Done()


def test_ttl_after_finished_waits_then_deletes() -> None:
    v = view(spec={"ttlSecondsAfterFinished": 60}, status={"phase": "Succeeded", "completionTime": ts(T0)})
    assert decide(v, Memory(), NOW) == Wait(T0 + dt.timedelta(seconds=60))
    assert decide(v, Memory(), T0 + dt.timedelta(seconds=60)) == DeleteResource()


def test_deleting_a_running_generation_cancels_it_then_releases_the_finalizer() -> None:
    v = view(status=running(), deleting=True)
    assert decide(v, Memory(), NOW) == CancelRemote("p1", CancelBecause.DELETION)
    assert decide(v, mem(cancel_requested_remote=True), NOW) == ReleaseFinalizer()


def test_deleting_a_finished_generation_deletes_objects_only_when_asked() -> None:
    status = {"phase": "Succeeded", "completionTime": ts(T0), "prediction": {"id": "p1", "status": "succeeded"}}
    retain = view(status=status, deleting=True)
    assert decide(retain, Memory(), NOW) == ReleaseFinalizer()
    delete = view(spec={"output": {"deletionPolicy": "Delete"}}, status=status, deleting=True)
    assert decide(delete, Memory(), NOW) == DeleteObjects(("ns/gen/u-1/",))
    assert decide(delete, mem(objects_deleted=True), NOW) == ReleaseFinalizer()


def test_deleting_with_an_unresolved_create_finds_it_and_cancels_what_it_found() -> None:
    v = view(pending=1, deleting=True)
    assert decide(v, Memory(), NOW) == Recover(1, T0, best_effort=True)
    assert decide(v, mem(recovery_done_for=1), NOW) == ReleaseFinalizer()  # nothing found
    found = mem(prediction=pred(pid="p9"), prediction_attempt=1)
    assert decide(v, found, NOW) == CancelRemote("p9", CancelBecause.DELETION)


def test_cleanup_is_bounded_in_time_and_gives_up_on_a_failure() -> None:
    v = view(status=running(), deleting=True, spec={"output": {"deletionPolicy": "Delete"}})
    seen = NOW - dt.timedelta(seconds=59)
    assert isinstance(decide(v, mem(deletion_seen=seen), NOW), CancelRemote)
    late = mem(deletion_seen=NOW - dt.timedelta(seconds=60))
    assert decide(v, late, NOW) == AbandonCleanup("cleanup did not finish in time; releasing the resource")
    failed = mem(cancel_requested_remote=True, failure=Failure(Kind.TRANSIENT, "StorageError", "s3 500"))
    failed.failure_during = "cleanup"
    assert decide(v, failed, NOW) == AbandonCleanup("cleanup failed: s3 500")
    assert decide(v, mem(cleanup_done=True), NOW) == ReleaseFinalizer()


def test_a_deleted_resource_without_our_finalizer_needs_nothing() -> None:
    assert decide(view(deleting=True, finalizer=False), Memory(), NOW) == Done()


def test_oversized_input_fails_before_any_call_when_the_admission_policy_is_missing() -> None:
    step = decide(view(spec={"input": {"prompt": "x" * 20000}}), Memory(), NOW)
    assert isinstance(step, Finish) and step.reason == "InvalidInput" and "spec.input.prompt" in step.message


def test_a_minute_long_prediction_costs_at_most_fifteen_polls() -> None:
    pacing = Pacing()
    elapsed, polls = 0.0, 0
    while elapsed < 60.0:  # poll until the first poll at or after completion
        step = decide(
            view(status=running()),
            mem(prediction=Prediction(id="p1", status="processing", created_at=NOW - dt.timedelta(seconds=elapsed))),
            NOW,
            pacing,
        )
        assert isinstance(step, Poll)
        elapsed += step.delay
        polls += 1
    assert polls <= 15


# --- policies that used to live in the worker ----------------------------------------------------------


def test_progress_is_written_when_it_moves_at_most_once_per_interval() -> None:
    v = view(status=running())
    p = mem(prediction=pred(), prediction_attempt=1, progress_seen=40)
    assert decide(v, p, NOW) == WriteProgress(40)
    p.last_status_write = NOW - dt.timedelta(seconds=4)
    assert isinstance(decide(v, p, NOW), Poll)  # the last status write was less than 5 s ago
    p.last_status_write = NOW - dt.timedelta(seconds=5)
    assert decide(v, p, NOW) == WriteProgress(40)
    p.progress_written = 40
    assert isinstance(decide(v, p, NOW), Poll)  # unchanged


def test_progress_never_moves_back_and_waits_for_the_record_write() -> None:
    backwards = mem(prediction=pred(), prediction_attempt=1, progress_seen=10, progress_written=80)
    assert isinstance(decide(view(status=running()), backwards, NOW), Poll)  # a second tqdm bar starting over
    unrecorded = mem(prediction=pred("processing"), prediction_attempt=1, progress_seen=10)
    assert decide(view(pending=1), unrecorded, NOW) == Record()
    assert isinstance(decide(view(status=running()), mem(prediction=pred()), NOW), Poll)  # nothing seen


def test_uploading_is_written_only_for_a_slow_copy_of_a_recorded_prediction() -> None:
    p = pred("succeeded", output=["https://replicate.delivery/a.png"])
    pacing = Pacing(progress_interval_seconds=7)
    assert decide(view(status=running()), mem(prediction=p), NOW, pacing) == Upload(report_slow_after=7)
    instant = mem(prediction=p, prediction_attempt=1)
    assert decide(view(pending=1), instant, NOW, pacing) == Upload(report_slow_after=None)


def test_a_failed_create_is_looked_up_before_the_retry_creates_again() -> None:
    f = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "timed out")
    step = decide(view(pending=1), mem(recovery_done_for=1, failure=f, failure_during="create"), NOW)
    assert step == ScheduleRetry(f, 5.0, new_attempt=False, look_up_create=True)
    other = decide(view(status=running()), mem(prediction=pred("succeeded"), failure=f, failure_during="upload"), NOW)
    assert isinstance(other, ScheduleRetry) and not other.look_up_create


def test_a_failed_cancel_is_retried_with_backoff_then_let_go() -> None:
    v = view(spec={"cancel": True}, status=running())
    delays = [decide(v, mem(prediction=pred(), cancel_failures=n), NOW) for n in range(4)]
    assert delays == [CancelRemote("p1", CancelBecause.CANCEL, delay) for delay in (0.0, 0.5, 1.0, 2.0)]
    step = decide(v, mem(prediction=pred(), cancel_failures=4), NOW)
    assert isinstance(step, Finish) and step.phase is Phase.CANCELED


# --- server-told waits and the deadline ----------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [float("inf"), 1e300, 86400.0])
def test_a_servers_wait_is_capped_at_ten_minutes(retry_after: float) -> None:
    f = Failure(Kind.THROTTLED, "Throttled", "429", retry_after=retry_after)
    step = decide(view(pending=1, spec={"timeoutSeconds": 86400}), mem(failure=f, failure_during="create"), NOW)
    assert step == Wait(NOW + dt.timedelta(seconds=MAX_SERVER_WAIT_SECONDS))


def test_a_servers_wait_never_outlasts_the_deadline() -> None:
    status = running()  # started 30 s ago
    f = Failure(Kind.THROTTLED, "Throttled", "429", retry_after=86400.0)
    step = decide(view(spec={"timeoutSeconds": 35}, status=status), mem(prediction=pred(), failure=f), NOW)
    assert step == Wait(NOW + dt.timedelta(seconds=5))
    poll = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503", retry_after=86400.0)
    m = mem(prediction=pred(), failure=poll, failure_during="poll", poll_failures=1)
    assert decide(view(spec={"timeoutSeconds": 35}, status=status), m, NOW) == Poll(5.0)
    retry = Failure(Kind.TRANSIENT, "ReplicateUnavailable", "503", retry_after=float("inf"))
    m = mem(prediction=pred("succeeded"), failure=retry, failure_during="upload")
    step = decide(view(spec={"timeoutSeconds": 35}, status=status), m, NOW)
    assert step == ScheduleRetry(retry, 5.0, new_attempt=False)


def test_a_nonsense_wait_falls_back_to_the_default() -> None:
    f = Failure(Kind.THROTTLED, "Throttled", "429", retry_after=float("nan"))
    assert decide(view(pending=1), mem(failure=f), NOW) == Wait(NOW + dt.timedelta(seconds=10))


def test_the_deadline_counts_from_creation_while_nothing_has_started() -> None:
    created = NOW - dt.timedelta(seconds=100)
    throttled = Failure(Kind.THROTTLED, "Throttled", "429", retry_after=5.0)
    v = view(spec={"timeoutSeconds": 60}, pending=1, created=created)
    step = decide(v, mem(failure=throttled, failure_during="create", recovery_done_for=1), NOW)
    assert isinstance(step, Finish) and step.reason == "DeadlineExceeded"
    fresh = view(spec={"timeoutSeconds": 600}, pending=1, created=created)
    # Starting now: the deadline counts from the start from here on, and Replicate's Cancel-After ends with it.
    assert decide(fresh, mem(recovery_done_for=1), NOW) == Create(1, 600)
