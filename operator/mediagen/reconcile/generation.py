"""Which generation of a MediaGeneration the stored state speaks for, once its request can be edited.

A *request* is what a spec asks Replicate for (:data:`~mediagen.api.types.REQUEST_FIELDS`, digested by
:func:`~mediagen.api.types.request_hash`); a *generation* is one run of one request: the attempts made for it, its
retries, its deadline, its final phase and outputs. An edit of the request starts a new generation of the same
resource; an edit of anything else (retries, timeout, TTL, deletionPolicy, cancel) applies to the current one.

Two records say what the operator last worked on, and both name their generation:

- the status (``requestHash`` and ``firstAttempt``), written on the lifecycle's writes;
- the pending-create marker (:class:`PendingCreate`), written before each create with the attempt, the request and
  the generation's first attempt.

Attempt numbers run on across generations (a new generation's first attempt is one past every number used before),
so the correlation marker ``<uid>.<attempt>`` that Replicate echoes keeps naming exactly one prediction, and the
markers an earlier version of the operator wrote (without request or first attempt) read as belonging to the status
beside them. An unresolved marker (an attempt the status does not count yet) whose generation differs from the
status's is a generation the operator already moved on to: the status is then of an older one, even when the
request was edited back to what it says (and one whose request differs from the spec's is of an older generation
itself, even beside a status not written yet) (the older result may be gone: its outputs are deleted under
``deletionPolicy: Delete`` when a generation replaces it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from mediagen.api.types import MediaGenerationStatus


@dataclass(frozen=True)
class PendingCreate:
    """Written (with the finalizer) just before a create call: "attempt N may exist on Replicate".

    ``request`` and ``first`` name the generation the attempt belongs to (its request's digest and first attempt);
    markers written before requests could be edited have neither and belong to the status's generation."""

    attempt: int
    since: dt.datetime
    request: str | None = None
    first: int | None = None

    def to_annotation(self) -> str:
        """The annotation value: compact JSON."""
        raw: dict[str, object] = {"attempt": self.attempt, "since": self.since.isoformat()}
        if self.request is not None:
            raw["request"] = self.request
        if self.first is not None:
            raw["first"] = self.first
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def from_annotation(cls, value: str | None) -> PendingCreate | None:
        """Parse the annotation; a missing or mangled one reads as no marker."""
        if not value:
            return None
        try:
            raw = json.loads(value)
            request, first = raw.get("request"), raw.get("first")
            return cls(
                attempt=int(raw["attempt"]),
                since=dt.datetime.fromisoformat(raw["since"]),
                request=str(request) if request is not None else None,
                first=int(first) if first is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class Generation:
    """The status as it applies to the spec's request, and what the stored state says beside it."""

    status: MediaGenerationStatus
    """The written status when it is of the current generation; otherwise a fresh one (Pending, nothing started)
    that keeps only the attempt count and names the new generation."""
    superseded: bool
    """The written status is of an older generation: its result no longer answers the spec, and the new
    generation's first status write replaces all of it."""
    pending: PendingCreate | None
    """The marker of an attempt of the current generation that the status does not count yet."""
    stale_pending: PendingCreate | None
    """The marker of an attempt of an older generation that the status does not count: a create that may have
    reached Replicate for a request that was edited since (to be found and canceled)."""


def identify(request: str, written: MediaGenerationStatus, marker: PendingCreate | None) -> Generation:
    """Which generation ``written`` and ``marker`` speak for, given the spec's ``request``.

    A status written before requests could be edited (no ``requestHash``) is taken to be of the spec's request:
    the operator never guesses its way into a paid prediction."""
    written_request = written.request_hash or request
    written_first = written.first_attempt or 1
    unresolved = marker if marker is not None and marker.attempt > written.attempts else None
    marker_request = (unresolved.request or written_request) if unresolved else None
    marker_first = (unresolved.first or written_first) if unresolved else None
    superseded = written_request != request or (
        unresolved is not None and (marker_first != written_first or marker_request != request)
    )
    if not superseded:
        return Generation(written, False, unresolved, None)
    if unresolved is not None and marker_request == request and marker_first == unresolved.attempt:
        # The operator started this generation already (its first create may be under way): keep to it.
        first, pending, stale = unresolved.attempt, unresolved, None
    else:
        first, pending, stale = next_attempt(written, marker), None, unresolved
    fresh = MediaGenerationStatus(attempts=written.attempts, request_hash=request, first_attempt=first)
    return Generation(fresh, True, pending, stale)


def next_attempt(written: MediaGenerationStatus, marker: PendingCreate | None) -> int:
    """The first attempt of a new generation: one past every attempt number the resource ever used (each one is a
    correlation marker on Replicate, which must never name two predictions)."""
    used = [written.attempts, written.first_attempt or 1]
    if marker is not None:
        used.append(marker.attempt)
    return max(used) + 1
