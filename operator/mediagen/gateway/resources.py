"""Translation between the gateway's bodies and MediaGeneration resources. Pure functions.

Ids are resource names. Idempotency: a request with an ``Idempotency-Key`` gets the name
``gen-<sha256(namespace, key)[:16]>``, so a retry lands on the same name; the resource carries the SHA-256 of
the request (its canonical, defaults-filled form) in an annotation, so a retry with the same body is recognised
and one with a different body is refused. A request with an explicit ``name`` works the same way. Without
either, the API server picks a name (``generateName``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError

from mediagen.api.types import (
    API_VERSION,
    KIND,
    TERMINAL_PHASES,
    MediaGenerationSpec,
    MediaGenerationStatus,
    Phase,
)
from mediagen.gateway.schemas import ConditionView, ErrorView, GenerateRequest, GenerationView, OutputView

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "gateway.mediagen.fleek.xyz/"
REQUEST_HASH_ANNOTATION = ANNOTATION_PREFIX + "request-sha256"
SUBJECT_ANNOTATION = ANNOTATION_PREFIX + "created-by"
CREATED_BY_LABEL = "mediagen.fleek.xyz/created-by"
GENERATE_NAME = "gen-"
MAX_IDEMPOTENCY_KEY_LENGTH = 255


PHASE_FIELD = "status.phase"
"""A selectable field of the CRD: lists filter on it in the API server. An object without a status has ""."""
UNFINISHED_SELECTOR = ",".join(f"{PHASE_FIELD}!={phase.value}" for phase in sorted(TERMINAL_PHASES))
"""Generations not yet Succeeded, Failed or Canceled (those without a status included)."""


def phase_selector(phase: Phase) -> str:
    """The field selector of generations in ``phase``; Pending includes those the operator has not seen yet."""
    if phase is Phase.PENDING:
        return ",".join(f"{PHASE_FIELD}!={other.value}" for other in Phase if other is not Phase.PENDING)
    return f"{PHASE_FIELD}={phase.value}"


def request_hash(request: GenerateRequest) -> str:
    """SHA-256 of the request in canonical form: equal for requests that ask for the same thing."""
    canonical = {"name": request.name, "spec": request.spec().to_wire()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def idempotent_name(namespace: str, key: str) -> str:
    """The resource name for ``Idempotency-Key`` ``key`` in tenant ``namespace``."""
    digest = hashlib.sha256(f"{namespace}\x00{key}".encode()).hexdigest()
    return f"{GENERATE_NAME}{digest[:16]}"


def build_resource(request: GenerateRequest, *, name: str | None, digest: str, subject: str) -> dict[str, Any]:
    """The MediaGeneration to create; ``name`` None lets the API server generate one."""
    metadata: dict[str, Any] = {
        "labels": {CREATED_BY_LABEL: "gateway"},
        "annotations": {REQUEST_HASH_ANNOTATION: digest, SUBJECT_ANNOTATION: subject},
    }
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = GENERATE_NAME
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": request.spec().to_wire()}


def stored_hash(body: dict[str, Any]) -> str:
    """The request hash a resource was created with ("" when not created by the gateway)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(REQUEST_HASH_ANNOTATION) or "")


def phase_of(body: dict[str, Any]) -> Phase:
    """The resource's phase; Pending until the operator wrote one."""
    raw = (body.get("status") or {}).get("phase")
    try:
        return Phase(raw) if raw else Phase.PENDING
    except ValueError:
        return Phase.PENDING


def is_done(body: dict[str, Any]) -> bool:
    """Whether the resource reached a final phase."""
    return phase_of(body) in TERMINAL_PHASES


def _status(body: dict[str, Any]) -> MediaGenerationStatus:
    try:
        return MediaGenerationStatus.model_validate(body.get("status") or {})
    except ValidationError as err:
        # Written by another version of the operator, perhaps; show what can be shown rather than fail.
        name = (body.get("metadata") or {}).get("name")
        log.warning("status of %s does not parse (%d errors); showing the phase only", name, err.error_count())
        return MediaGenerationStatus(phase=phase_of(body))


def _spec(body: dict[str, Any]) -> MediaGenerationSpec:
    raw = body.get("spec") or {}
    try:
        return MediaGenerationSpec.model_validate(raw)
    except ValidationError:
        fields: dict[str, Any] = {k: raw.get(k) for k in ("model", "deployment", "input", "cancel")}
        return MediaGenerationSpec.model_construct(**{k: v for k, v in fields.items() if v is not None})


def to_view(body: dict[str, Any], status_url: str) -> GenerationView:
    """A resource as the gateway shows it."""
    meta = body.get("metadata") or {}
    spec, status = _spec(body), _status(body)
    phase = phase_of(body)
    error = None
    if phase in (Phase.FAILED, Phase.CANCELED):
        error = ErrorView(reason=status.reason or phase.value, message=status.message)
    return GenerationView(
        id=str(meta.get("name") or ""),
        phase=phase,
        done=phase in TERMINAL_PHASES,
        model=spec.model,
        deployment=spec.deployment,
        input=dict(spec.input or {}),
        progress=status.progress,
        url=status.url or None,
        outputs=[
            OutputView(url=o.url, content_type=o.content_type, size_bytes=o.size_bytes, sha256=o.sha256)
            for o in status.outputs
        ],
        url_expires_at=status.url_expires_at,
        reason=status.reason,
        message=status.message,
        error=error,
        conditions=[
            ConditionView(
                type=c.type,
                status=c.status,
                reason=c.reason,
                message=c.message,
                last_transition_time=c.last_transition_time,
            )
            for c in status.conditions
        ],
        attempts=status.attempts,
        retries=status.retries,
        cancel_requested=bool(spec.cancel),
        created_at=meta.get("creationTimestamp"),
        start_time=status.start_time,
        completion_time=status.completion_time,
        prediction_id=status.prediction.id if status.prediction else None,
        status_url=status_url,
    )
