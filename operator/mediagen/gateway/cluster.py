"""What the gateway needs from Kubernetes, behind one small async interface.

:class:`~mediagen.gateway.kube_cluster.KubernetesCluster` implements it on the official client (against the real
API server in integration tests and production); the unit tests have one in memory
(tests/support/memory_cluster.py). Errors are translated into the few exceptions below at this boundary, so nothing
above it sees an HTTP status of the Kubernetes API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class ClusterError(Exception):
    """Base of every error the cluster layer raises."""


class NotFound(ClusterError):
    """The object (or its namespace) does not exist."""


class AlreadyExists(ClusterError):
    """An object with this name exists already."""


@dataclass
class Cause:
    """One field-level reason the API server gave for rejecting an object."""

    field: str
    message: str


class Invalid(ClusterError):
    """The API server rejected the object (schema, CEL rule, admission policy); ``causes`` name the fields."""

    def __init__(self, message: str, causes: list[Cause] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.causes = causes or []


class TooLarge(ClusterError):
    """The object is too large for the API server (or for etcd behind it)."""


class BadRequest(ClusterError):
    """The API server refused a request parameter (e.g. a malformed continue token)."""


class Expired(ClusterError):
    """A continue token is too old (HTTP 410): list again from the start."""


class Forbidden(ClusterError):
    """RBAC does not let the gateway do this: a deployment problem, never the caller's."""


class Unavailable(ClusterError):
    """The API server could not be reached or failed (5xx, timeout, connection refused)."""


@dataclass
class Page:
    """One page of a list: the objects and the continue token of the next page ("" at the end)."""

    items: list[dict[str, Any]]
    continue_token: str = ""


@dataclass
class Review:
    """The outcome of a TokenReview."""

    authenticated: bool
    username: str = ""
    error: str = ""
    groups: list[str] = field(default_factory=list)


class Cluster(Protocol):
    """The Kubernetes operations the gateway performs. Every method may raise :class:`ClusterError`."""

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a MediaGeneration; returns it as stored."""
        ...

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """Read one MediaGeneration."""
        ...

    async def list_page(self, namespace: str, *, limit: int, continue_token: str = "") -> Page:
        """One page of MediaGenerations in ``namespace``, in the API server's order (by name)."""
        ...

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on a MediaGeneration (not its status); returns the updated object."""
        ...

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The decoded data of a Secret."""
        ...

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        """Ask the API server who ``token`` belongs to (TokenReview)."""
        ...

    async def ping(self) -> None:
        """Return when the API server answers; raise :class:`Unavailable` otherwise."""
        ...
