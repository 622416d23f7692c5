"""The one small interface every generation backend implements, and the errors that carry intent.

A backend speaks in predictions, Replicate's unit of work. The operator never sees HTTP: it sees a
:class:`Prediction` snapshot or one of three errors that say what to do next (wait and retry, slow down,
or stop for good). Backends decide transient versus permanent at the point where they know; nothing
downstream re-classifies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

# Replicate's statuses. Anything else a backend sees is passed through verbatim and treated as "in flight".
STARTING = "starting"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"
ABORTED = "aborted"
TERMINAL_STATUSES = frozenset({SUCCEEDED, FAILED, CANCELED, ABORTED})


@dataclass(frozen=True)
class CreateRequest:
    """What to run: exactly one of ``model`` (``owner/name`` or ``owner/name:version``) or ``deployment``."""

    input: Mapping[str, Any]
    correlation: str
    """An opaque marker that the backend must be able to find the prediction by later (see ``find``).

    Replicate has no idempotency key; the marker travels in the webhook URL's query string, which Replicate
    echoes back on every read of the prediction."""
    model: str | None = None
    deployment: str | None = None
    cancel_after_seconds: int | None = None
    """Remote deadline (Replicate's ``Cancel-After``); ``None`` for none."""


@dataclass(frozen=True)
class Prediction:
    """A snapshot of one prediction as the backend last saw it."""

    id: str
    status: str
    output: Any = None
    error: str | None = None
    logs: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    predict_time_seconds: float | None = None
    data_removed: bool = False
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        """True once the prediction can no longer change."""
        return self.status in TERMINAL_STATUSES


@dataclass
class ResponseNotes:
    """What a backend's answer said beside its body, for whoever paces the requests (see :data:`RESPONSE_NOTES`)."""

    status: int | None = None
    """The HTTP status of the answer; None when none came back."""
    remaining: int | None = None
    """Replicate's ``ratelimit-remaining``: requests its bucket held after this one, when the answer said."""


RESPONSE_NOTES: ContextVar[ResponseNotes | None] = ContextVar("mediagen_response_notes", default=None)
"""Set by a caller around one backend call to hear about the answer; a backend that knows fills it in. A context
variable rather than a return value: the :class:`Generator` interface stays about predictions, and only the
request pacer (which wraps every call) listens."""


class GeneratorError(Exception):
    """Base of every error a backend raises. ``str(err)`` is safe to show users: it never holds a secret."""


class TransientError(GeneratorError):
    """Worth retrying after a backoff: 5xx, network errors, timeouts."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ThrottledError(TransientError):
    """Rate limited (429). ``retry_after`` is what the server asked for, in seconds."""


class PermanentError(GeneratorError):
    """Retrying cannot help: bad credentials, billing, unknown model, invalid input.

    ``reason`` is a CamelCase word for conditions and events (``InvalidInput``, ``ModelNotFound``,
    ``Unauthorized``, ``BillingRequired``, ``NotFound``...); ``field`` names the offending input field when
    the backend knows it (e.g. ``input.num_inference_steps``)."""

    def __init__(self, reason: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class Generator(Protocol):
    """A generation backend. All methods are coroutines and safe to call concurrently."""

    name: str
    """Short name for logs and metrics: ``replicate`` or ``mock``."""

    async def create(self, request: CreateRequest) -> Prediction:
        """Start a prediction. Never retries on its own: a lost response is recovered through ``find``."""
        ...

    async def get(self, prediction_id: str) -> Prediction:
        """Read a prediction's current state."""
        ...

    async def cancel(self, prediction_id: str) -> Prediction:
        """Ask the backend to stop a prediction; a terminal one comes back unchanged."""
        ...

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        """Find the prediction created with ``correlation`` after ``created_after``, or ``None``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
