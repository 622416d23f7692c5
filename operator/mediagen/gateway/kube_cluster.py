""":class:`~mediagen.gateway.cluster.Cluster` on the shared Kubernetes adapter (:mod:`mediagen.kube.client`): its
timeouts, its field manager on every write, its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s

from mediagen.gateway.cluster import AccessRequest, Decision, Page, Review
from mediagen.kube.client import KubeClient, KubeTimeouts

__all__ = ["FIELD_MANAGER", "KubernetesCluster"]

FIELD_MANAGER = "mediagen-gateway"


class KubernetesCluster:
    """The gateway's Kubernetes access, to the server (and with the credentials) of an official client's
    :class:`kubernetes.client.ApiClient`; ``workers`` calls in flight at once."""

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = 15.0, workers: int = 16) -> None:
        self._kube = KubeClient(
            api_client.configuration,
            field_manager=FIELD_MANAGER,
            timeouts=KubeTimeouts(read=timeout),
            connections=workers,
        )

    async def aclose(self) -> None:
        """Close the connections (in the event loop that made the calls)."""
        await self._kube.aclose()

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._kube.create(namespace, body)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._kube.get(namespace, name)

    async def list_page(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        return await self._kube.list_page(
            namespace, limit=limit, continue_token=continue_token, field_selector=field_selector
        )

    async def list_metadata(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        return await self._kube.list_page(
            namespace, limit=limit, continue_token=continue_token, field_selector=field_selector, metadata_only=True
        )

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._kube.patch(namespace, name, patch)

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        return await self._kube.read_secret(namespace, name)

    async def read_configmap(self, namespace: str, name: str) -> Mapping[str, str]:
        return await self._kube.read_configmap(namespace, name)

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        return await self._kube.review_token(token, audiences)

    async def review_access(self, request: AccessRequest) -> Decision:
        return await self._kube.review_access(request)

    async def ping(self) -> None:
        await self._kube.ping()
