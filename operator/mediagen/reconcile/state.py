"""The inputs of a decision (what is known about one MediaGeneration) and its possible outcomes (steps)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from mediagen.api.types import (
    TERMINAL_PHASES,
    MediaGenerationSpec,
    MediaGenerationStatus,
    Phase,
    StoredOutput,
    request_hash,
)
from mediagen.generators.base import Prediction
from mediagen.reconcile.failures import Failure
from mediagen.reconcile.generation import Generation, identify
from mediagen.reconcile.generation import PendingCreate as PendingCreate

FINALIZER = "mediagen.fleek.xyz/finalizer"
PENDING_ANNOTATION = "mediagen.fleek.xyz/pending-create"


def correlation(uid: str, attempt: int) -> str:
    """The marker a prediction is created with, so it can be found again: unique per resource and attempt."""
    return f"{uid}.{attempt}"


def parse_correlation(value: str) -> tuple[str, int] | None:
    """``(uid, attempt)`` from a :func:`correlation` marker, or None when ``value`` is not one."""
    uid, _, attempt = value.rpartition(".")
    if not uid or not attempt.isdigit() or len(value) > 100:
        return None
    return uid, int(attempt)


class InvalidResource(ValueError):
    """The resource cannot be read: a field its models reject (a hand-edited timestamp, a value written by a newer
    version). ``fields`` are the top-level keys of ``section`` (``spec`` or ``status``) at fault."""

    def __init__(self, message: str, section: str = "", fields: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        self.section = section
        self.fields = fields


def _validated(model: type[MediaGenerationSpec] | type[MediaGenerationStatus], section: str, value: Any) -> Any:
    try:
        return model.model_validate(value if value is not None else {})
    except ValidationError as err:
        problems, fields = [], set()
        for error in err.errors():
            path = ".".join(str(part) for part in error["loc"])
            fields.add(str(error["loc"][0]) if error["loc"] else "")
            problems.append(f"{section}.{path}: {error['msg']}" if path else f"{section}: {error['msg']}")
        raise InvalidResource("; ".join(problems)[:1000], section, frozenset(fields)) from None


@dataclass(frozen=True)
class View:
    """What the API server says about one MediaGeneration, parsed, and read for the spec's current request (see
    :mod:`mediagen.reconcile.generation`)."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: MediaGenerationSpec
    written: MediaGenerationStatus
    """The status as stored, whichever generation it is of (deletion cleans up after all of them)."""
    pending: PendingCreate | None
    """The pending-create marker as stored, whichever generation it is of."""
    has_finalizer: bool
    deleting: bool
    created: dt.datetime | None = None
    """metadata.creationTimestamp: the first generation's deadline counts from it until its first attempt starts."""
    request: str = field(init=False, compare=False)
    """The digest of the spec's request (:func:`~mediagen.api.types.request_hash`)."""
    current: Generation = field(init=False, repr=False, compare=False)
    """The generation the spec asks for, as the status and the marker tell it (:mod:`.generation`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "request", request_hash(self.spec))
        object.__setattr__(self, "current", identify(self.request, self.written, self.pending))

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> View:
        """Parse a MediaGeneration as read from the API server (a dict); :class:`InvalidResource` says what in it
        cannot be read."""
        meta = body.get("metadata", {})
        annotations = meta.get("annotations") or {}
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 1),
            spec=_validated(MediaGenerationSpec, "spec", body.get("spec")),
            written=_validated(MediaGenerationStatus, "status", body.get("status")),
            pending=PendingCreate.from_annotation(annotations.get(PENDING_ANNOTATION)),
            has_finalizer=FINALIZER in (meta.get("finalizers") or []),
            deleting=meta.get("deletionTimestamp") is not None,
            created=_timestamp(meta.get("creationTimestamp")),
        )

    @property
    def status(self) -> MediaGenerationStatus:
        """The status of the current generation: the written one, or a fresh one when that is of an older
        generation (the request was edited); what the lifecycle reads and writes."""
        return self.current.status

    @property
    def superseded(self) -> bool:
        """The written status is of an older generation: the next status write starts from scratch."""
        return self.current.superseded

    @property
    def first_attempt(self) -> int:
        """The first attempt of the current generation."""
        return self.status.first_attempt or 1

    @property
    def terminal(self) -> bool:
        """True once the current generation's phase is final: Succeeded, Failed and Canceled never change again
        (only an edit of the request starts another generation)."""
        return self.status.phase in TERMINAL_PHASES

    @property
    def began(self) -> dt.datetime | None:
        """When the current generation began, for its deadline: its first attempt's start; before that, the
        resource's creation for the first generation, and for a later one the marker of its first attempt (written
        when the operator took the edit up); None while nothing of a later generation is written yet."""
        if self.status.start_time is not None:
            return self.status.start_time
        if self.first_attempt == 1:
            return self.created
        pending = self.current.pending
        return pending.since if pending is not None and pending.attempt == self.first_attempt else None

    def owns(self, attempt: int) -> bool:
        """Whether ``attempt`` belongs to the current generation (not to one an edit replaced)."""
        return attempt >= self.first_attempt


def _timestamp(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp the API server wrote (always UTC), or None when missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class Memory:
    """What one worker learnt since it started and has not (or need not have) written down.

    Lost on restart by design: everything needed to resume is in the resource; this only saves calls."""

    prediction: Prediction | None = None
    prediction_attempt: int = 0
    recovery_done_for: int = 0
    """The attempt whose pending create was looked up on Replicate and not found."""
    failure: Failure | None = None
    failure_during: str = ""
    outputs: list[StoredOutput] | None = None
    url_expires_at: dt.datetime | None = None
    poll_failures: int = 0
    cancel_requested_remote: bool = False
    """A cancel reached the backend (or there was nothing left to cancel)."""
    cancel_failures: int = 0
    """Cancels that failed in a row; after :data:`~mediagen.reconcile.cancels.CANCEL_ATTEMPTS` the worker lets go."""
    superseded_outputs_done: bool = False
    """The outputs of the generation an edit replaced were dealt with (deleted, or kept by deletionPolicy)."""
    cleanup_done: bool = False
    """Deletion gave up cleaning up (and said so in an event): release the finalizer."""
    objects_deleted: bool = False
    deletion_seen: dt.datetime | None = None
    """When this worker first saw the deletion: cleanup is bounded from then on."""
    progress_seen: int | None = None
    """The progress the model's logs showed at the last poll."""
    progress_written: int | None = None
    last_status_write: dt.datetime | None = None

    def start_attempt(self, attempt: int) -> None:
        """A new attempt was marked pending: forget everything about the previous prediction (of this generation,
        or of one an edit replaced)."""
        self.prediction, self.prediction_attempt, self.recovery_done_for = None, 0, attempt
        self.outputs, self.url_expires_at = None, None
        self.poll_failures, self.cancel_requested_remote, self.cancel_failures = 0, False, 0
        self.progress_seen, self.progress_written = None, None
        self.superseded_outputs_done = False

    def prediction_of(self, view: View) -> Prediction | None:
        """The prediction in memory when it belongs to ``view``'s current generation (after an edit it may still be
        the one of the generation that was replaced, kept to cancel it)."""
        if self.prediction is None or not view.owns(self.prediction_attempt or view.first_attempt):
            return None
        return self.prediction


# ----------------------------------------------------------------------------------------------------------
# Steps: the decision's answer. Each names one piece of I/O for the worker to perform.


@dataclass(frozen=True)
class MarkPending:
    """Patch metadata: add the finalizer (if missing) and the pending-create marker for ``attempt`` of the current
    generation (the marker names it: the request's digest and its first attempt)."""

    attempt: int


@dataclass(frozen=True)
class Recover:
    """Look the pending attempt's prediction up on the backend (a crash may have lost its id).

    ``best_effort``: a failed look-up counts as "not found" (deletion must not wait for Replicate)."""

    attempt: int
    since: dt.datetime
    best_effort: bool = False


@dataclass(frozen=True)
class Create:
    """Create the prediction for ``attempt``; ``cancel_after_seconds`` is the remaining deadline."""

    attempt: int
    cancel_after_seconds: int


@dataclass(frozen=True)
class Record:
    """Write the in-memory prediction (id, status) to the status: the id is durable before polling."""


@dataclass(frozen=True)
class Poll:
    """Wait ``delay`` seconds (or until woken by a change), then read the prediction."""

    delay: float


class CancelBecause(StrEnum):
    """Why a prediction is being canceled (the Canceling event says so)."""

    CANCEL = "spec.cancel"
    DEADLINE = "deadline"
    DELETION = "deletion"
    EDIT = "edit"
    """The request was edited: the prediction belongs to a generation that was replaced."""


@dataclass(frozen=True)
class CancelRemote:
    """Wait ``delay`` seconds (a retry after a failed cancel), then ask the backend to cancel the prediction."""

    prediction_id: str
    because: CancelBecause
    delay: float = 0.0


@dataclass(frozen=True)
class WriteProgress:
    """Write the model's progress while it runs (rate-limited; counted apart from the lifecycle writes)."""

    progress: int


@dataclass(frozen=True)
class Upload:
    """Copy the succeeded prediction's outputs into storage.

    ``report_slow_after``: if the copy is still running after this many seconds, write the Uploading phase
    (most copies take milliseconds, and writing it up front would cost every generation a write); None: never."""

    report_slow_after: float | None = None


@dataclass(frozen=True)
class Wait:
    """Sleep until ``until`` (or until woken by a change), then decide again."""

    until: dt.datetime


@dataclass(frozen=True)
class ScheduleRetry:
    """Spend one retry from the budget: write it and when it is due, then wait."""

    failure: Failure
    delay: float
    new_attempt: bool
    """True when the retry needs a new prediction (the model failed), False to repeat the failed step."""
    look_up_create: bool = False
    """The failed step was a create that may have reached the backend: look for it before creating again."""


@dataclass(frozen=True)
class Finish:
    """Write the final status. ``phase`` is Succeeded, Failed or Canceled."""

    phase: Phase
    reason: str
    message: str


@dataclass(frozen=True)
class RefreshURLs:
    """The presigned output URLs of a Succeeded generation expire soon: sign them again and write them."""


@dataclass(frozen=True)
class ObserveGeneration:
    """The spec of a finished generation changed but not its request (``spec.cancel`` set after the end, another
    retry limit or TTL): nothing is left to do, and the status says so for the new ``metadata.generation``, or
    kstatus would read it as in progress for ever. Also stamps a status written by an earlier version of the operator
    with its request's digest, once, so that a later edit of the request is recognised."""


@dataclass(frozen=True)
class DeleteResource:
    """ttlSecondsAfterFinished has passed: delete the MediaGeneration."""


@dataclass(frozen=True)
class DeleteSuperseded:
    """An edit replaced a generation that stored outputs, under ``deletionPolicy: Delete``: delete them (each of
    ``prefixes`` is one prediction's folder). Under Retain they stay, and no step is needed.

    Best effort: a failure is reported in an event and does not hold the new generation back."""

    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class DeleteObjects:
    """The resource is being deleted with ``deletionPolicy: Delete``: remove its stored objects, the resource's
    folder and the folders of outputs stored under another keyPrefix before an edit."""

    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class AbandonCleanup:
    """Deletion could not clean up (in time, or at all): say so in an event and release the resource."""

    message: str


@dataclass(frozen=True)
class ReleaseFinalizer:
    """Cleanup is done: remove the finalizer so the API server can delete the resource."""


@dataclass(frozen=True)
class Done:
    """Nothing left to do for this resource until something changes."""


Step = (
    MarkPending
    | Recover
    | Create
    | Record
    | Poll
    | WriteProgress
    | CancelRemote
    | Upload
    | Wait
    | ScheduleRetry
    | Finish
    | RefreshURLs
    | ObserveGeneration
    | DeleteResource
    | DeleteSuperseded
    | DeleteObjects
    | AbandonCleanup
    | ReleaseFinalizer
    | Done
)
"""Every step :func:`~mediagen.reconcile.decide.decide` can answer; the worker's dispatch over it is exhaustive
(``match`` with ``assert_never``, checked by mypy), so a step nobody performs cannot be added by mistake."""
