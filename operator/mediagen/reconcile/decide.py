"""The reconcile decision: given what the resource says, what this worker remembers and the time, what next?

A pure function, tested exhaustively in tests/unit/test_decide.py. The worker performs the returned step,
folds its result into :class:`~mediagen.reconcile.state.Memory` (or the API server, for writes) and asks
again, until the answer is :class:`~mediagen.reconcile.state.Done`.

The order of the checks is the policy: deletion beats everything, a final phase is never left, the user's
cancel beats the deadline, the deadline beats retries, and a recorded failure is handled before new work.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mediagen.api.input_limits import input_violation
from mediagen.api.types import DeletionPolicy, Phase
from mediagen.generators.base import ABORTED, CANCELED, FAILED, SUCCEEDED, Prediction
from mediagen.reconcile import backoff
from mediagen.reconcile.failures import Kind, model_failure
from mediagen.reconcile.state import (
    CancelRemote,
    Cleanup,
    Create,
    DeleteResource,
    Done,
    Finish,
    MarkPending,
    Memory,
    ObserveGeneration,
    Poll,
    Record,
    Recover,
    RefreshURLs,
    ReleaseFinalizer,
    ScheduleRetry,
    Step,
    Upload,
    View,
    Wait,
)

DEFAULT_THROTTLE_SECONDS = 10.0


@dataclass(frozen=True)
class Pacing:
    """Operator-wide timing knobs the decisions need (from Settings)."""

    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 15.0
    url_refresh_before_seconds: float | None = None
    """Re-sign a Succeeded generation's presigned URLs this long before they expire (None: never). Each
    re-sign writes the status once and dates the URLs a full lifetime ahead, so with a lifetime L a resource is
    written at most once per L minus this; public URLs never expire and cost nothing."""


def decide(view: View, memory: Memory, now: dt.datetime, pacing: Pacing = Pacing()) -> Step:
    """The next step for one MediaGeneration."""
    if view.deleting:
        return _deleting(view, memory)
    if view.terminal:
        return _finished(view, now, pacing)

    spec, status = view.spec, view.status
    recorded = status.prediction
    live = memory.prediction if recorded and memory.prediction and memory.prediction.id == recorded.id else None
    pending = view.pending if view.pending and view.pending.attempt > status.attempts else None
    fresh = (
        memory.prediction if pending and memory.prediction and memory.prediction_attempt == pending.attempt else None
    )
    current = fresh or live

    if status.attempts == 0 and pending is None:
        violation = input_violation(spec.input)
        if violation:
            return Finish(Phase.FAILED, "InvalidInput", violation)

    if current is not None and current.status == SUCCEEDED and memory.outputs is not None:
        return _outcome(view, memory, current, now)  # done in all but the writing: a late cancel changes nothing
    if spec.cancel or _past_deadline(view, now):
        return _stopping(view, memory, current, pending is not None and fresh is None, now)

    failure = memory.failure
    if failure is not None:
        if failure.kind is Kind.PERMANENT:
            return Finish(Phase.FAILED, failure.reason, failure.message)
        if failure.kind is Kind.THROTTLED:
            return Wait(now + dt.timedelta(seconds=failure.retry_after or DEFAULT_THROTTLE_SECONDS))
        if memory.failure_during == "poll":
            # Reading a prediction is free and changes nothing: retry in memory, bounded by the deadline.
            delay = min(pacing.poll_max_seconds, pacing.poll_initial_seconds * 2.0**memory.poll_failures)
            return Poll(max(delay, failure.retry_after or 0.0))
        if status.retries >= spec.retry.limit:
            return Finish(Phase.FAILED, failure.reason, _exhausted(failure.message, spec.retry.limit))
        delay = backoff.retry_delay(spec.retry, status.retries, at_least=failure.retry_after)
        return ScheduleRetry(failure, delay, new_attempt=False)

    if status.next_retry_time and now < status.next_retry_time:
        return Wait(status.next_retry_time)

    if pending is not None:
        if fresh is not None:
            # A prediction that finished inside the create call needs no durable id: nothing will poll it.
            if not (fresh.terminal and fresh.status == SUCCEEDED):
                return Record()
        elif memory.recovery_done_for == pending.attempt:
            return Create(pending.attempt, _remaining_seconds(view, now))
        else:
            return Recover(pending.attempt, pending.since)

    if current is None:
        if recorded is None:
            return MarkPending(1)
        return Poll(0.0)  # after a restart: learn where the recorded prediction is

    if not current.terminal:
        started = current.created_at or status.start_time or now
        elapsed = max(0.0, (now - started).total_seconds())
        return Poll(backoff.poll_delay(elapsed, initial=pacing.poll_initial_seconds, maximum=pacing.poll_max_seconds))
    return _outcome(view, memory, current, now)


def _outcome(view: View, memory: Memory, prediction: Prediction, now: dt.datetime) -> Step:
    """What a terminal prediction means for the generation."""
    spec, status = view.spec, view.status
    if prediction.status == SUCCEEDED:
        if prediction.data_removed:
            return Finish(
                Phase.FAILED,
                "OutputExpired",
                "Replicate removed the outputs before they were copied (outputs are kept for one hour)",
            )
        if memory.outputs is None:
            return Upload()
        count = len(memory.outputs)
        return Finish(Phase.SUCCEEDED, "Succeeded", f"stored {count} output{'s' if count != 1 else ''}")
    if prediction.status == FAILED:
        failure = model_failure(prediction.error)
        if failure.kind is Kind.PERMANENT:
            return Finish(Phase.FAILED, failure.reason, failure.message)
        recorded = status.prediction
        counted = recorded is not None and recorded.id == prediction.id and recorded.status == FAILED
        if not counted:
            if status.retries >= spec.retry.limit:
                return Finish(Phase.FAILED, failure.reason, _exhausted(failure.message, spec.retry.limit))
            return ScheduleRetry(failure, backoff.retry_delay(spec.retry, status.retries), new_attempt=True)
        if status.next_retry_time and now < status.next_retry_time:
            return Wait(status.next_retry_time)
        return MarkPending(status.attempts + 1)
    if prediction.status == ABORTED:
        return Finish(
            Phase.FAILED,
            "Aborted",
            "Replicate aborted the prediction before it started: its deadline (Cancel-After) passed in the queue",
        )
    if prediction.status == CANCELED:
        return Finish(Phase.CANCELED, "CanceledRemotely", "the prediction was canceled on Replicate")
    return Finish(Phase.FAILED, "UnknownStatus", f"Replicate reported an unknown status {prediction.status!r}")


def _stopping(view: View, memory: Memory, current: Prediction | None, unresolved: bool, now: dt.datetime) -> Step:
    """Cancel requested or deadline passed: stop the remote prediction, then finish."""
    recorded = view.status.prediction
    if not memory.cancel_requested_remote:
        if current is not None and not current.terminal:
            return CancelRemote(current.id)
        if current is None and recorded is not None and recorded.status not in (SUCCEEDED, FAILED, CANCELED, ABORTED):
            return CancelRemote(recorded.id)
        if unresolved and view.pending is not None and memory.recovery_done_for != view.pending.attempt:
            return Recover(view.pending.attempt, view.pending.since)  # a prediction may exist: find it to cancel it
    if view.spec.cancel:
        return Finish(Phase.CANCELED, "Canceled", "canceled by setting spec.cancel")
    return Finish(
        Phase.FAILED,
        "DeadlineExceeded",
        f"the generation did not finish within spec.timeoutSeconds ({view.spec.timeout_seconds}s)",
    )


def _deleting(view: View, memory: Memory) -> Step:
    if not view.has_finalizer:
        return Done()
    if memory.cleanup_done:
        return ReleaseFinalizer()
    recorded = view.status.prediction
    in_flight = not view.terminal and (
        (memory.prediction is not None and not memory.prediction.terminal)
        or (recorded is not None and recorded.status not in (SUCCEEDED, FAILED, CANCELED, ABORTED))
    )
    unresolved = not view.terminal and view.pending is not None and view.pending.attempt > view.status.attempts
    return Cleanup(
        cancel_prediction=in_flight,
        find_pending=unresolved,
        delete_objects=view.spec.output.deletion_policy is DeletionPolicy.DELETE,
    )


def _finished(view: View, now: dt.datetime, pacing: Pacing) -> Step:
    """A final phase: restate it for a later spec change, delete it once its TTL has passed, keep its presigned URLs
    signed until then."""
    observed = view.status.observed_generation
    if observed is not None and observed < view.generation:
        return ObserveGeneration()  # e.g. spec.cancel set after the end: the status must speak for this generation
    ttl = view.spec.ttl_seconds_after_finished
    done_at = view.status.completion_time
    delete_at = done_at + dt.timedelta(seconds=ttl) if ttl is not None and done_at is not None else None
    if delete_at is not None and now >= delete_at:
        return DeleteResource()
    refresh_at = _url_refresh_due(view, pacing)
    if refresh_at is not None and now >= refresh_at:
        return RefreshURLs()
    wakes = [moment for moment in (delete_at, refresh_at) if moment is not None]
    return Wait(min(wakes)) if wakes else Done()


def _url_refresh_due(view: View, pacing: Pacing) -> dt.datetime | None:
    """When the presigned URLs of a Succeeded generation are to be signed again; None for public URLs."""
    expires = view.status.url_expires_at
    if pacing.url_refresh_before_seconds is None or expires is None or view.status.phase is not Phase.SUCCEEDED:
        return None
    if not view.status.outputs:
        return None
    return expires - dt.timedelta(seconds=pacing.url_refresh_before_seconds)


def _past_deadline(view: View, now: dt.datetime) -> bool:
    start = view.status.start_time
    return start is not None and now >= start + dt.timedelta(seconds=view.spec.timeout_seconds)


def _remaining_seconds(view: View, now: dt.datetime) -> int:
    start = view.status.start_time or now
    remaining = (start + dt.timedelta(seconds=view.spec.timeout_seconds) - now).total_seconds()
    return max(1, int(remaining))


def _exhausted(message: str, limit: int) -> str:
    return f"{message} (retry limit of {limit} reached)" if limit else f"{message} (retries are disabled)"
