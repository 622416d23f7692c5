"""The Lease (``coordination.k8s.io/v1``) that makes one operator replica the only one acting.

Three small calls, each bounded by a timeout: read it, create it, and replace it (a PUT carrying the
resourceVersion it was read at, so of two replicas writing the same version only one succeeds). They block; the
elector runs them on a thread of its own so that a busy event loop can never delay a renewal.

Lease API reference: https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

API_VERSION = "coordination.k8s.io/v1"


class LeaseConflict(Exception):
    """The Lease changed since it was read, or another replica created it first (HTTP 409)."""


class LeaseError(Exception):
    """Any other failure to read or write the Lease; the message says which and why (never a secret)."""


@dataclass(frozen=True)
class LeaseRecord:
    """What a Lease says about who leads. Times are the writer's wall clock: informational only, never compared
    with this process's clock (see :mod:`mediagen.controller.election`)."""

    holder: str
    """``spec.holderIdentity``; empty when nobody holds the Lease (released)."""
    duration_seconds: int
    """``spec.leaseDurationSeconds``: how long others wait, from when they saw this record, before taking it."""
    acquire_time: dt.datetime | None = None
    renew_time: dt.datetime | None = None
    transitions: int = 0
    """``spec.leaseTransitions``: how often the Lease changed hands."""
    version: str = ""
    """``metadata.resourceVersion``; empty for a record not stored yet."""


class LeaseStore(Protocol):
    """One named Lease. Each call raises :class:`LeaseConflict` or :class:`LeaseError`."""

    def describe(self) -> str:
        """``namespace/name``, for logs."""
        ...

    def get(self) -> LeaseRecord | None:
        """The Lease as stored, or None when it does not exist."""
        ...

    def create(self, record: LeaseRecord) -> LeaseRecord:
        """Create the Lease; :class:`LeaseConflict` when it exists already."""
        ...

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        """Overwrite the Lease if it is still at ``record.version``; :class:`LeaseConflict` otherwise."""
        ...


def micro_time(value: dt.datetime | None) -> str | None:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return None if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def record_from_body(body: dict[str, Any]) -> LeaseRecord:
    """Parse a Lease object; absent or mangled fields read as empty (a Lease without a holder is free)."""
    spec = body.get("spec") or {}
    holder = spec.get("holderIdentity")
    return LeaseRecord(
        holder=holder if isinstance(holder, str) else "",
        duration_seconds=_int(spec.get("leaseDurationSeconds")),
        acquire_time=_parse_time(spec.get("acquireTime")),
        renew_time=_parse_time(spec.get("renewTime")),
        transitions=_int(spec.get("leaseTransitions")),
        version=str((body.get("metadata") or {}).get("resourceVersion") or ""),
    )


def body_from_record(record: LeaseRecord, namespace: str, name: str) -> dict[str, Any]:
    """The Lease object that stores ``record`` (with its resourceVersion, which guards a replace)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if record.version:
        metadata["resourceVersion"] = record.version
    spec = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.duration_seconds,
        "acquireTime": micro_time(record.acquire_time),
        "renewTime": micro_time(record.renew_time),
        "leaseTransitions": record.transitions,
    }
    return {"apiVersion": API_VERSION, "kind": "Lease", "metadata": metadata, "spec": spec}


class KubernetesLeaseStore:
    """:class:`LeaseStore` on the official client. Each request gives up after ``timeout`` seconds."""

    def __init__(self, api_client: k8s.ApiClient, namespace: str, name: str, *, timeout: float) -> None:
        self._api = k8s.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self._timeout = timeout

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    def get(self) -> LeaseRecord | None:
        try:
            return record_from_body(self._call("read", self._api.read_namespaced_lease, self.name, self.namespace))
        except _NotFound:
            return None

    def create(self, record: LeaseRecord) -> LeaseRecord:
        body = body_from_record(record, self.namespace, self.name)
        return record_from_body(self._call("create", self._api.create_namespaced_lease, self.namespace, body))

    def replace(self, record: LeaseRecord) -> LeaseRecord:
        body = body_from_record(record, self.namespace, self.name)
        try:
            result = self._call("update", self._api.replace_namespaced_lease, self.name, self.namespace, body)
        except _NotFound:
            raise LeaseConflict(f"the Lease {self.describe()} was deleted") from None
        return record_from_body(result)

    def _call(self, verb: str, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            response = fn(*args, _preload_content=False, _request_timeout=self._timeout)
            result: dict[str, Any] = json.loads(response.data)
        except ApiException as err:
            if err.status == 404:
                raise _NotFound from None
            if err.status == 409:
                raise LeaseConflict(f"{verb} Lease {self.describe()}: HTTP 409 {err.reason}") from None
            detail = _status_message(err.body)
            raise LeaseError(
                f"{verb} Lease {self.describe()}: HTTP {err.status} {err.reason}{f': {detail}' if detail else ''}"
            ) from None
        except Exception as err:  # timeouts, refused connections, unreadable answers
            raise LeaseError(f"{verb} Lease {self.describe()}: {type(err).__name__}: {str(err)[:200]}") from None
        return result


class _NotFound(Exception):
    pass


def _status_message(body: object) -> str:
    """The API server's own explanation (a Status object's message: who may not do what, which policy refused)."""
    try:
        message = json.loads(body)["message"] if isinstance(body, (str, bytes)) else ""
    except (ValueError, KeyError, TypeError):
        return ""
    return str(message)[:300]
