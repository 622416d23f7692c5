"""What the gateway needs from Kubernetes, behind one small async interface.

:class:`~mediagen.gateway.kube_cluster.KubernetesCluster` implements it on the shared Kubernetes adapter (against the
real API server in integration tests and production); the unit tests have one in memory
(tests/support/memory_cluster.py). Errors are the shared adapter's (:mod:`mediagen.kube.errors`), so nothing above
it sees an HTTP status of the Kubernetes API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mediagen.kube.client import AccessRequest, Decision, Page, Review, UserInfo
from mediagen.kube.errors import (
    AlreadyExists,
    BadRequest,
    Cause,
    Expired,
    Forbidden,
    Invalid,
    KubeError,
    NotFound,
    TooLarge,
    Unavailable,
)

__all__ = [
    "AccessRequest",
    "AlreadyExists",
    "BadRequest",
    "Cause",
    "Cluster",
    "ClusterError",
    "Decision",
    "Expired",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Page",
    "Review",
    "TooLarge",
    "Unavailable",
    "UserInfo",
]


ClusterError = KubeError
"""Base of every error the cluster layer raises (the shared adapter's, :mod:`mediagen.kube.errors`)."""


class Cluster(Protocol):
    """The Kubernetes operations the gateway performs. Every method may raise :class:`ClusterError`."""

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a MediaGeneration; returns it as stored."""
        ...

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """Read one MediaGeneration."""
        ...

    async def list_page(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        """One page of MediaGenerations in ``namespace``, in the API server's order (by name).

        ``field_selector`` filters on the server (``status.phase`` is a selectable field of the CRD)."""
        ...

    async def list_metadata(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        """Like :meth:`list_page`, but each item is only the object's metadata (a ``PartialObjectMetadata``):
        what counting and sorting need, without the spec and status."""
        ...

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on a MediaGeneration (not its status); returns the updated object."""
        ...

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The decoded data of a Secret."""
        ...

    async def read_configmap(self, namespace: str, name: str) -> Mapping[str, str]:
        """The data of a ConfigMap."""
        ...

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        """Ask the API server who ``token`` belongs to (TokenReview)."""
        ...

    async def review_access(self, request: AccessRequest) -> Decision:
        """Ask the API server's authorizers (RBAC and the rest) about ``request`` (SubjectAccessReview)."""
        ...

    async def ping(self) -> None:
        """Return when the API server answers; raise :class:`Unavailable` otherwise."""
        ...
