"""Turn Replicate's HTTP failures into the backend errors of :mod:`mediagen.generators.base`.

This is the one place that decides transient versus permanent for Replicate (docs/replicate.md#errors).
Bodies may be RFC 7807 JSON, Cloudflare HTML or empty; nothing here assumes JSON.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from typing import Any, Literal

import httpx

from mediagen.generators.base import GeneratorError, PermanentError, ThrottledError, TransientError

Operation = Literal["create", "get", "cancel", "list", "secret"]

DEFAULT_RETRY_AFTER = 10.0
"""Seconds to wait after a 429 that carries no hint at all."""

_RESETS_IN = re.compile(r"~\s*(\d+(?:\.\d+)?)\s*s\b")
_CREDENTIAL_HINT = "check REPLICATE_API_TOKEN (the operator's Replicate API token)"


def problem_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object in an error response, or ``{}`` for HTML, empty or malformed bodies."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def retry_after_seconds(response: httpx.Response, body: dict[str, Any] | None = None) -> float:
    """How long a 429 asks us to wait: body ``retry_after``, then ``Retry-After``, then "~Ns" text."""
    body = problem_body(response) if body is None else body
    from_body = body.get("retry_after")
    if isinstance(from_body, int | float) and not isinstance(from_body, bool) and from_body >= 0:
        return float(from_body)
    if isinstance(from_body, str):
        try:
            return max(0.0, float(from_body))
        except ValueError:
            pass
    header = response.headers.get("retry-after", "").strip()
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            when = _http_date(header)
            if when is not None:
                return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    for key in ("detail", "title"):
        text = _text(body.get(key))
        if text and (match := _RESETS_IN.search(text)):
            return float(match.group(1))
    return DEFAULT_RETRY_AFTER


def _http_date(value: str) -> dt.datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def error_for_response(response: httpx.Response, operation: Operation) -> GeneratorError:
    """The error to raise for a non-2xx ``response`` to ``operation``."""
    status = response.status_code
    body = problem_body(response)
    detail = _text(body.get("detail"))
    title = _text(body.get("title"))
    described = detail or title or response.reason_phrase or "no details"
    summary = f"Replicate answered HTTP {status} to {operation}: {described}"

    if status == 429:
        seconds = retry_after_seconds(response, body)
        return ThrottledError(f"Replicate rate limit hit on {operation}; retry in {seconds:g}s", retry_after=seconds)
    if status >= 500:
        return TransientError(f"Replicate server error (HTTP {status}) on {operation}")
    if status == 401:
        return PermanentError(
            "Unauthorized", f"Replicate rejected the API token (HTTP 401: {described}); {_CREDENTIAL_HINT}"
        )
    if status == 402:
        return PermanentError("BillingRequired", detail or title or "Replicate requires billing to run this model")
    if status == 403:
        return PermanentError("Forbidden", f"Replicate refused access (HTTP 403: {described}); {_CREDENTIAL_HINT}")
    if status == 404:
        if operation == "create":
            return PermanentError("ModelNotFound", detail or "The model or deployment does not exist")
        if operation in ("get", "cancel"):
            return PermanentError("PredictionNotFound", f"Replicate does not know this prediction ({described})")
        return PermanentError("NotFound", summary)
    if status == 422:
        if _is_invalid_version(title, detail):
            return PermanentError("InvalidVersion", detail or title or "Invalid version or not permitted")
        message = detail or title or "Replicate rejected the input"
        return PermanentError("InvalidInput", message, field=_first_field(body))
    if 400 <= status < 500:
        return PermanentError("RequestRejected", summary)
    return PermanentError("UnexpectedResponse", f"Replicate answered an unexpected HTTP {status} to {operation}")


def _is_invalid_version(title: str | None, detail: str | None) -> bool:
    if title is not None and title.lower().startswith("invalid version"):
        return True
    return detail is not None and "version does not exist" in detail.lower()


def _first_field(body: dict[str, Any]) -> str | None:
    fields = body.get("invalid_fields")
    if isinstance(fields, list):
        for item in fields:
            if isinstance(item, dict) and isinstance(item.get("field"), str) and item["field"]:
                return str(item["field"])
    return None


def error_for_transport(exc: httpx.RequestError, operation: Operation) -> TransientError:
    """Network trouble: the request may or may not have reached Replicate (a create must be found later)."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"timed out talking to Replicate during {operation} ({kind})")
    return TransientError(f"network error talking to Replicate during {operation} ({kind})")
