"""The reconcile decision: given what the resource says, what this worker remembers and the time, what next?

A pure function, tested exhaustively in tests/unit/test_decide.py. The worker performs the returned step,
folds its result into :class:`~mediagen.reconcile.state.Memory` (or the API server, for writes) and asks
again, until the answer is :class:`~mediagen.reconcile.state.Done`.

The order of the checks is the policy: deletion beats everything, an edit of the request winds the replaced
generation down before anything else (:mod:`.supersede`), a final phase is never left (within its generation), the
user's cancel beats the deadline, the deadline beats retries, and a recorded failure is handled before new work.
Everything with a policy is here, including what looks like plumbing: when progress is written, when the
Uploading phase is worth a write, how often a failed cancel is tried again, how long a server may make us wait.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from mediagen.api.input_limits import input_violation
from mediagen.api.types import TERMINAL_PHASES, DeletionPolicy, Phase
from mediagen.generators.base import ABORTED, CANCELED, FAILED, SUCCEEDED, Prediction
from mediagen.reconcile import backoff
from mediagen.reconcile.cancels import cancel_delay, cancel_settled
from mediagen.reconcile.failures import Kind, model_failure
from mediagen.reconcile.generation import PendingCreate
from mediagen.reconcile.state import (
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
    WriteProgress,
)
from mediagen.reconcile.supersede import wind_down
from mediagen.storage.keys import prediction_folder, resource_prefix

DEFAULT_THROTTLE_SECONDS = 10.0
MAX_SERVER_WAIT_SECONDS = 600.0
"""The longest any server may make us wait (``Retry-After``, ``retry_after``): a day, or 1e400, is a bug or an
attack, not a plan. The remaining deadline caps it further."""


@dataclass(frozen=True)
class Pacing:
    """Operator-wide timing knobs the decisions need (from Settings)."""

    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 15.0
    url_refresh_before_seconds: float | None = None
    """Re-sign a Succeeded generation's presigned URLs this long before they expire (None: never). Each
    re-sign writes the status once and dates the URLs a full lifetime ahead, so with a lifetime L a resource is
    written at most once per L minus this; public URLs never expire and cost nothing."""
    progress_interval_seconds: float = 5.0
    """At most one progress write per resource per interval, counting every status write."""
    delete_timeout_seconds: float = 60.0
    """How long deletion keeps trying to clean up (cancel, delete objects) before letting go."""


def decide(view: View, memory: Memory, now: dt.datetime, pacing: Pacing = Pacing()) -> Step:
    """The next step for one MediaGeneration."""
    if view.deleting:
        return _deleting(view, memory, now, pacing)
    winding_down = wind_down(view, memory)
    if winding_down is not None:
        return winding_down
    if view.terminal:
        return _finished(view, now, pacing)

    spec, status = view.spec, view.status
    recorded = status.prediction
    live = memory.prediction if recorded and memory.prediction and memory.prediction.id == recorded.id else None
    pending = view.current.pending
    fresh = (
        memory.prediction if pending and memory.prediction and memory.prediction_attempt == pending.attempt else None
    )
    current = fresh or live

    if pending is None and recorded is None and status.attempts < view.first_attempt:
        violation = input_violation(spec.input)  # nothing of this generation started: check before the first call
        if violation:
            return Finish(Phase.FAILED, "InvalidInput", violation)

    if current is not None and current.status == SUCCEEDED and memory.outputs is not None:
        return _outcome(
            view, memory, current, now, pacing
        )  # done in all but the writing: a late cancel changes nothing
    if spec.cancel or _past_deadline(view, now):
        return _stopping(view, memory, current, pending if fresh is None else None, now)

    failure = memory.failure
    if failure is not None:
        if failure.kind is Kind.PERMANENT:
            return Finish(Phase.FAILED, failure.reason, failure.message)
        told = _server_wait(view, failure.retry_after, now)
        if failure.kind is Kind.THROTTLED:
            return Wait(now + dt.timedelta(seconds=DEFAULT_THROTTLE_SECONDS if told is None else told))
        if memory.failure_during == "poll":
            # Reading a prediction is free and changes nothing: retry in memory, bounded by the deadline.
            delay = min(pacing.poll_max_seconds, pacing.poll_initial_seconds * 2.0**memory.poll_failures)
            return Poll(max(delay, told or 0.0))
        if status.retries >= spec.retry.limit:
            return Finish(Phase.FAILED, failure.reason, _exhausted(failure.message, spec.retry.limit))
        delay = backoff.retry_delay(spec.retry, status.retries, at_least=told)
        # A create that failed may still have reached Replicate (a timeout, a dropped connection): look first.
        return ScheduleRetry(failure, delay, new_attempt=False, look_up_create=memory.failure_during == "create")

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
            return MarkPending(max(status.attempts + 1, view.first_attempt))  # this generation's first attempt
        return Poll(0.0)  # after a restart: learn where the recorded prediction is

    if not current.terminal:
        progress = _progress_to_write(view, memory, now, pacing)
        if progress is not None:
            return WriteProgress(progress)
        started = current.created_at or status.start_time or now
        elapsed = max(0.0, (now - started).total_seconds())
        return Poll(backoff.poll_delay(elapsed, initial=pacing.poll_initial_seconds, maximum=pacing.poll_max_seconds))
    return _outcome(view, memory, current, now, pacing)


def _progress_to_write(view: View, memory: Memory, now: dt.datetime, pacing: Pacing) -> int | None:
    """The progress worth a write now, or None: it changed, it is recorded where to, and the rate allows it.

    Progress never moves back (a model's second tqdm bar starts again at 0); writes are extra by design, so at
    most one per ``progress_interval_seconds``, counting every status write."""
    seen, written = memory.progress_seen, memory.progress_written
    if seen is None or view.status.prediction is None:
        return None  # nothing to say, or not recorded yet: the Record write comes first
    if memory.last_status_write is not None and (
        (now - memory.last_status_write).total_seconds() < pacing.progress_interval_seconds
    ):
        return None
    progress = seen if written is None else max(seen, written)
    return None if progress == written else progress


def _outcome(view: View, memory: Memory, prediction: Prediction, now: dt.datetime, pacing: Pacing) -> Step:
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
            # Uploading is written only for a copy that outlasts one progress interval, and only for a recorded
            # prediction (an instant one goes straight from nothing to its final status).
            report = pacing.progress_interval_seconds if status.prediction is not None else None
            return Upload(report_slow_after=report)
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


def _stopping(
    view: View, memory: Memory, current: Prediction | None, unresolved: PendingCreate | None, now: dt.datetime
) -> Step:
    """Cancel requested or deadline passed: stop the remote prediction, then finish. ``unresolved``: the marker of
    an attempt whose prediction may exist without this worker knowing it."""
    recorded = view.status.prediction
    because = CancelBecause.CANCEL if view.spec.cancel else CancelBecause.DEADLINE
    if not cancel_settled(memory):
        if current is not None and not current.terminal:
            return CancelRemote(current.id, because, cancel_delay(memory))
        if current is None and recorded is not None and recorded.status not in (SUCCEEDED, FAILED, CANCELED, ABORTED):
            return CancelRemote(recorded.id, because, cancel_delay(memory))
        if unresolved is not None and memory.recovery_done_for != unresolved.attempt:
            return Recover(unresolved.attempt, unresolved.since)  # a prediction may exist: find it to cancel it
    if view.spec.cancel:
        return Finish(Phase.CANCELED, "Canceled", "canceled by setting spec.cancel")
    return Finish(
        Phase.FAILED,
        "DeadlineExceeded",
        f"the generation did not finish within spec.timeoutSeconds ({view.spec.timeout_seconds}s)",
    )


def _deleting(view: View, memory: Memory, now: dt.datetime, pacing: Pacing) -> Step:
    """Deletion: find an unrecorded prediction, cancel what runs, delete objects if asked, release the finalizer.

    Bounded: after ``delete_timeout_seconds`` (from when this worker saw the deletion), or when deleting the
    objects fails, the resource is released anyway with a CleanupIncomplete event."""
    if not view.has_finalizer:
        return Done()
    if memory.cleanup_done:
        return ReleaseFinalizer()
    if memory.failure is not None and memory.failure_during == "cleanup":
        return AbandonCleanup(f"cleanup failed: {memory.failure.message}")
    seen = memory.deletion_seen or now
    if (now - seen).total_seconds() >= pacing.delete_timeout_seconds:
        return AbandonCleanup("cleanup did not finish in time; releasing the resource")
    written, pending = view.written, view.pending
    # A finished generation's unresolved marker was resolved by its end (canceled or failed before a prediction was
    # known); one beside a status an edit replaced may be the new generation's create.
    finished = written.phase in TERMINAL_PHASES and not view.superseded
    if not finished and pending is not None and pending.attempt > written.attempts:
        looked_up = memory.recovery_done_for == pending.attempt or (
            memory.prediction is not None and memory.prediction_attempt == pending.attempt
        )
        if not looked_up:
            return Recover(pending.attempt, pending.since, best_effort=True)
    if not finished and not cancel_settled(memory):
        if memory.prediction is not None and not memory.prediction.terminal:
            return CancelRemote(memory.prediction.id, CancelBecause.DELETION, cancel_delay(memory))
        recorded = written.prediction
        in_flight = (
            written.phase not in TERMINAL_PHASES
            and recorded is not None
            and recorded.status
            not in (
                SUCCEEDED,
                FAILED,
                CANCELED,
                ABORTED,
            )
        )
        if memory.prediction is None and recorded is not None and in_flight:
            return CancelRemote(recorded.id, CancelBecause.DELETION, cancel_delay(memory))
    if view.spec.output.deletion_policy is DeletionPolicy.DELETE and not memory.objects_deleted:
        return DeleteObjects(_stored_prefixes(view, memory))
    return ReleaseFinalizer()


def _stored_prefixes(view: View, memory: Memory) -> tuple[str, ...]:
    """Where a resource being deleted has objects: its folder under the spec's keyPrefix, and the folders of outputs
    stored under another one (the keyPrefix was edited since they were stored)."""
    own = resource_prefix(view.spec.output.key_prefix, view.namespace, view.name, view.uid)
    outputs = [*view.written.outputs, *(memory.outputs or [])]
    folders = {prediction_folder(output.key, view.namespace, view.name, view.uid) for output in outputs}
    return (own, *sorted(f for f in folders if f is not None and not f.startswith(own)))


def _finished(view: View, now: dt.datetime, pacing: Pacing) -> Step:
    """A final phase: restate it for a later spec change, delete it once its TTL has passed, keep its presigned URLs
    signed until then."""
    observed = view.status.observed_generation
    if observed is not None and observed < view.generation:
        return ObserveGeneration()  # e.g. spec.cancel set after the end: the status must speak for this generation
    if view.status.request_hash is None:
        return ObserveGeneration()  # written by an earlier version: stamp its request, or an edit would go unseen
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


def _deadline(view: View) -> dt.datetime | None:
    """When ``spec.timeoutSeconds`` runs out for the current generation: from its first attempt's start, or from
    when it began before that (:attr:`View.began`: the creation, or for a later generation the marking of its first
    attempt); none for a later generation not marked yet."""
    start = view.began
    return None if start is None else start + dt.timedelta(seconds=view.spec.timeout_seconds)


def _past_deadline(view: View, now: dt.datetime) -> bool:
    deadline = _deadline(view)
    return deadline is not None and now >= deadline


def _remaining_seconds(view: View, now: dt.datetime) -> int:
    """Replicate's Cancel-After for a create. The first attempt starts now (its Record write makes ``now`` the
    start time), so it gets the whole timeout, which ends with ours: from creation it would end first, and the
    generation would end CanceledRemotely instead of DeadlineExceeded."""
    start = view.status.start_time or now
    remaining = (start + dt.timedelta(seconds=view.spec.timeout_seconds) - now).total_seconds()
    return max(1, int(remaining))


def _server_wait(view: View, seconds: float | None, now: dt.datetime) -> float | None:
    """A wait a server asked for, made safe: at most :data:`MAX_SERVER_WAIT_SECONDS` and no later than the
    deadline (whose own step then takes over). None when the server said nothing usable."""
    if seconds is None or math.isnan(seconds):
        return None
    wait = min(max(0.0, seconds), MAX_SERVER_WAIT_SECONDS)
    deadline = _deadline(view)
    if deadline is not None:
        wait = min(wait, max(0.0, (deadline - now).total_seconds()))
    return wait


def _exhausted(message: str, limit: int) -> str:
    return f"{message} (retry limit of {limit} reached)" if limit else f"{message} (retries are disabled)"
