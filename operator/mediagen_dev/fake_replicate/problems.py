"""Error bodies exactly as Replicate sends them (docs/replicate.md#errors), as ready-to-send pieces."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Canned:
    """A complete HTTP answer: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = PROBLEM_JSON
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, detail: str, title: str | None = None, **extra: Any) -> Canned:
    """An RFC 7807 body the way Replicate writes it."""
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    body["detail"] = detail
    body["status"] = status
    body.update(extra)
    return Canned(status, json.dumps(body).encode())


def unauthenticated(token_present: bool) -> Canned:
    """401 for a missing or unknown token."""
    if token_present:
        return problem(401, "You did not pass a valid authentication token", "Unauthenticated")
    return problem(401, "You did not pass an authentication token", "Unauthenticated")


def not_found_resource() -> Canned:
    """404 for an unknown route or model."""
    return problem(404, "The requested resource could not be found.")


def not_found_prediction() -> Canned:
    """404 for an unknown prediction id (Replicate's short form)."""
    return Canned(404, b'{"detail":"Not found."}', "application/json")


def invalid_version() -> Canned:
    """422 for an unknown version, or a community model on the official-model endpoint."""
    return problem(
        422,
        "The specified version does not exist (or perhaps you don't have permission to use it?)",
        "Invalid version or not permitted",
    )


def validation_failed(invalid_fields: list[dict[str, str]]) -> Canned:
    """422 "Input validation failed" listing every offending field."""
    detail = "".join(f"- {f['field'] or 'body'}: {f['description']}\n" for f in invalid_fields)
    return problem(422, detail, "Input validation failed", invalid_fields=invalid_fields)


def throttled(retry_after: int, *, in_body: bool = True, in_header: bool = True, in_text: bool = True) -> Canned:
    """429 as Replicate sends it; each of the three retry hints can be left out to test parsing order."""
    text = f"Request was throttled. Your rate limit resets in ~{retry_after}s." if in_text else "Request was throttled."
    extra: dict[str, Any] = {"retry_after": retry_after} if in_body else {}
    canned = problem(429, text, **extra)
    headers = {"Retry-After": str(retry_after)} if in_header else {}
    return Canned(429, canned.body, canned.content_type, headers)


def billing_required() -> Canned:
    """402 when the account has no billing set up."""
    detail = "You need to set up billing to run this model. Go to https://replicate.com/account/billing"
    return problem(402, detail, "Billing required")


def forbidden() -> Canned:
    """403 for a token without access."""
    return problem(403, "You do not have permission to perform this action.", "Forbidden")


def cloudflare_html(status: int) -> Canned:
    """A 5xx page the way Cloudflare serves it: HTML, not JSON."""
    reason = {500: "Internal Server Error", 502: "Bad gateway", 503: "Service Unavailable", 504: "Gateway time-out"}
    text = reason.get(status, "Error")
    body = (
        f"<!DOCTYPE html>\n<html><head><title>api.replicate.com | {status}: {text}</title></head>"
        f"<body><h1>Error {status}</h1><p>{text}</p><p>Cloudflare Ray ID: 8f0e1d2c3b4a5968</p></body></html>\n"
    )
    return Canned(status, body.encode(), "text/html; charset=UTF-8")
