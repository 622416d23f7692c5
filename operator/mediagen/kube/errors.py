"""What can go wrong talking to the Kubernetes API, said with intent. Raised by :mod:`mediagen.kube.client` for the
operator and the gateway alike, so nothing above the adapter ever sees an HTTP status of the Kubernetes API."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_SPEC_FIELD = re.compile(r"\bspec\.[A-Za-z0-9_.\[\]-]+")


class KubeError(Exception):
    """Base of every error the Kubernetes adapter raises."""


class NotFound(KubeError):
    """The object (or its namespace) does not exist (HTTP 404)."""


Gone = NotFound
"""The operator's word for it: the object it works on no longer exists."""


class Conflict(KubeError):
    """The object changed since it was read (HTTP 409): read it again and decide again."""


class AlreadyExists(Conflict):
    """An object with this name exists already (HTTP 409 to a create)."""


class Expired(KubeError):
    """A continue token (or a watch's resourceVersion) is too old (HTTP 410): list again from the start."""


class Forbidden(KubeError):
    """RBAC does not allow this (HTTP 403): a deployment problem, never the caller's."""


@dataclass
class Cause:
    """One field-level reason the API server gave for rejecting an object."""

    field: str
    message: str


class Invalid(KubeError):
    """The API server rejected the object (schema, CEL rule, admission policy); ``causes`` name the fields."""

    def __init__(self, message: str, causes: list[Cause] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes or []


class TooLarge(KubeError):
    """The object is too large for the API server (or for etcd behind it)."""


class BadRequest(KubeError):
    """The API server refused a request parameter (e.g. a malformed continue token)."""


class Unavailable(KubeError):
    """The API server could not be reached, did not answer in time, or failed (5xx, 429): try again later."""


def translate(code: int, body: str | bytes | None, reason: str = "") -> KubeError:
    """The :class:`KubeError` for an error answer of the API server (``body`` is its ``Status`` object)."""
    status = _status(body)
    message = str(status.get("message") or reason or "")
    if code == 404:
        return NotFound(message)
    if code == 409:
        return AlreadyExists(message) if status.get("reason") == "AlreadyExists" else Conflict(message)
    if code == 410:
        return Expired(message)
    if code == 403:
        return Forbidden(message)
    if code == 422:
        causes = [
            Cause(field=str(c.get("field") or ""), message=str(c.get("message") or ""))
            for c in (status.get("details") or {}).get("causes") or []
            if isinstance(c, dict)
        ]
        if not any(c.field for c in causes):
            # Admission policies answer without causes; their message names the field (spec.input.<key>).
            found = _SPEC_FIELD.search(message)
            causes = [Cause(field=found.group(0) if found else "", message=message)]
        return Invalid(message, causes)
    if code == 413 or "request is too large" in message:  # etcd's limit surfaces as a 500 from the API server
        return TooLarge(message)
    if code == 400:
        return BadRequest(message)
    return Unavailable(f"the Kubernetes API answered HTTP {code}")


def _status(body: str | bytes | None) -> dict[str, Any]:
    try:
        parsed = json.loads(body or "{}")
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
