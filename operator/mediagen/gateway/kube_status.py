"""Errors of the aggregated API as Kubernetes ``Status`` objects (what kubectl prints), not problem+json.

https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def reason_of(code: int) -> str:
    """The ``StatusReason`` Kubernetes uses for an HTTP status code."""
    return _REASONS.get(code, "Unknown")


def status_body(
    code: int,
    message: str,
    *,
    causes: Sequence[Mapping[str, str]] = (),
    details: Mapping[str, Any] | None = None,
    retry_after: int | None = None,
) -> dict[str, Any]:
    """A ``Status`` object; ``causes`` are ``{"field", "message"}`` pairs (reason FieldValueInvalid)."""
    found: dict[str, Any] = dict(details or {})
    if causes:
        found["causes"] = [
            {"reason": "FieldValueInvalid", "message": c["message"], "field": c["field"]} for c in causes
        ]
    if retry_after is not None:
        found["retryAfterSeconds"] = retry_after
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason_of(code),
        "code": code,
    }
    if found:
        body["details"] = found
    return body


def status_response(
    code: int,
    message: str,
    *,
    causes: Sequence[Mapping[str, str]] = (),
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The ``Status`` response."""
    retry = (headers or {}).get("Retry-After")
    body = status_body(
        code, message, causes=causes, details=details, retry_after=int(retry) if retry and retry.isdigit() else None
    )
    return JSONResponse(body, status_code=code, headers=dict(headers or {}))
