"""What went wrong, and whether trying again can help.

Backends and storage say transient or permanent where they know; this module only turns their exceptions
into one plain value the decisions can reason about, and sorts model failures (a prediction that ran and
failed) into retryable and final ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mediagen.generators.base import GeneratorError, PermanentError, ThrottledError, TransientError
from mediagen.storage.base import StorageError


class Kind(StrEnum):
    """How a failure should be handled."""

    THROTTLED = "Throttled"
    """Rate limited: wait as asked, without spending the retry budget."""
    TRANSIENT = "Transient"
    """Retry with backoff while the budget lasts."""
    PERMANENT = "Permanent"
    """Stop: the generation fails with this reason."""


@dataclass(frozen=True)
class Failure:
    """One failed operation, in the terms the decisions need."""

    kind: Kind
    reason: str
    message: str
    retry_after: float | None = None


def from_exception(err: BaseException, *, during: str) -> Failure:
    """Classify an exception raised while ``during`` (``create``, ``poll``, ``upload``...)."""
    if isinstance(err, ThrottledError):
        return Failure(Kind.THROTTLED, "Throttled", f"Replicate rate limit during {during}: {err}", err.retry_after)
    if isinstance(err, TransientError):
        return Failure(Kind.TRANSIENT, _transient_reason(during), f"{during} failed: {err}", err.retry_after)
    if isinstance(err, PermanentError):
        return Failure(Kind.PERMANENT, err.reason, str(err))
    if isinstance(err, StorageError):
        kind = Kind.TRANSIENT if err.transient else Kind.PERMANENT
        return Failure(kind, "StorageError", f"storing outputs failed: {err}")
    reason = getattr(err, "reason", None)
    transient = getattr(err, "transient", None)
    if isinstance(reason, str) and isinstance(transient, bool):  # transfer errors carry both
        return Failure(Kind.TRANSIENT if transient else Kind.PERMANENT, reason, f"{during} failed: {err}")
    if isinstance(err, GeneratorError):
        return Failure(Kind.TRANSIENT, _transient_reason(during), f"{during} failed: {err}")
    # An unexpected exception is a bug or an unknown outage; retrying within the budget is the safe choice.
    return Failure(Kind.TRANSIENT, _transient_reason(during), f"{during} failed: {type(err).__name__}: {err}")


def _transient_reason(during: str) -> str:
    return {"upload": "StorageUnavailable"}.get(during, "ReplicateUnavailable")


# Failures inside the model that another prediction may well not hit (docs/replicate.md#failures-inside-the-model).
_RETRYABLE_MODEL_ERRORS = (
    re.compile(r"\(code: PA\)|prediction interrupted", re.IGNORECASE),
    re.compile(r"failed to boot|failed to start|setup failed", re.IGNORECASE),
    re.compile(r"out of memory|CUDA error", re.IGNORECASE),
    re.compile(r"internal server error|service unavailable", re.IGNORECASE),
)
_FLAGGED = re.compile(r"NSFW|sensitive|flagged|safety", re.IGNORECASE)
_TIMED_OUT = re.compile(r"timed out", re.IGNORECASE)


def model_failure(error: str | None) -> Failure:
    """Classify the ``error`` of a prediction that ended ``failed``."""
    text = (error or "").strip() or "the model failed without an error message"
    if any(pattern.search(text) for pattern in _RETRYABLE_MODEL_ERRORS):
        return Failure(Kind.TRANSIENT, "ModelInterrupted", f"model failed: {text}")
    if _FLAGGED.search(text):
        return Failure(Kind.PERMANENT, "ContentFlagged", f"model failed: {text}")
    if _TIMED_OUT.search(text):
        return Failure(Kind.PERMANENT, "ModelTimedOut", f"model failed: {text}")
    return Failure(Kind.PERMANENT, "ModelFailed", f"model failed: {text}")
