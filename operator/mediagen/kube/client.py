"""The operator's writes to the Kubernetes API, behind one small interface.

The official client is blocking; every call goes through a thread so kopf's event loop never stalls. Tests
of the worker swap in an in-memory implementation of :class:`Kube`; integration tests use the real one
against the real API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from mediagen.api.types import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
KUBE_THREADS = 16
"""Kubernetes API calls in flight at once (the connection pool holds as many); more wait for a thread."""
T = TypeVar("T")


class Conflict(Exception):
    """The object changed since it was read (HTTP 409); read it again and retry."""


class Gone(Exception):
    """The object no longer exists (HTTP 404)."""


class Kube(Protocol):
    """What the operator does to MediaGenerations besides watching them (kopf watches)."""

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        """Read one MediaGeneration."""
        ...

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch on the status subresource; returns the updated object."""
        ...

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch on the object (metadata only); include metadata.resourceVersion to guard it."""
        ...

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        """Delete the object if it is still the one with ``uid``."""
        ...

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event about ``body``. Best effort: failures are logged, never raised."""
        ...


def load_api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """An API client from a kubeconfig file, the in-cluster service account, or ~/.kube/config."""
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    # One connection per concurrent write; the default (5 per core) starves a busy operator.
    configuration.connection_pool_maxsize = 2 * KUBE_THREADS
    return k8s.ApiClient(configuration)


class KubernetesKube:
    """:class:`Kube` on the official kubernetes client."""

    def __init__(
        self, api_client: k8s.ApiClient, *, component: str = "mediagen-operator", threads: int = KUBE_THREADS
    ) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._component = component
        # Threads of its own: in asyncio's default pool (6 threads on two cores) API calls queued behind output
        # copies, which hold a thread for as long as an upload takes (minutes for a large video).
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    def close(self) -> None:
        """Let the threads go once the calls in progress finish."""
        self._pool.shutdown(wait=False)

    async def _in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._call(self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            _content_type=MERGE_PATCH,
        )

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        options = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid))
        # Already gone, or replaced by a new object of the same name: nothing of ours to delete either way.
        with contextlib.suppress(Gone, Conflict):
            await self._call(
                self._custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name, body=options
            )

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata", {})
        now = dt.datetime.now(dt.UTC)
        event = k8s.CoreV1Event(
            # Named as client-go's recorder names them, <object>.<unix nanoseconds in hex>: lists come back in
            # name order, so `kubectl describe` (which sorts by whole seconds only) keeps same-second events
            # in the order they happened instead of a random one.
            metadata=k8s.V1ObjectMeta(
                name=f"{str(meta.get('name', 'mediageneration'))[:236]}.{time.time_ns():x}",
                namespace=meta.get("namespace"),
            ),
            involved_object=k8s.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=KIND,
                name=meta.get("name"),
                namespace=meta.get("namespace"),
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=k8s.V1EventSource(component=self._component),
            reporting_component=self._component,
            reporting_instance=self._component,
        )
        try:
            await self._in_thread(self._post_event, meta.get("namespace"), event)
        except Exception as err:  # events are best effort by nature; the status carries the truth
            log.warning("could not record event %s: %s", reason, _describe(err))

    def _post_event(self, namespace: str, event: k8s.CoreV1Event) -> None:
        # The raw response: the created Event is not needed, and parsing it into a model costs about as much as
        # building the request. Reading it to the end gives the connection back to the pool.
        response: Any = self._core.create_namespaced_event(namespace, event, _preload_content=False)
        response.drain_conn()
        response.release_conn()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self._in_thread(_json_call, fn, *args, **kwargs)
        except ApiException as err:
            if err.status == 409:
                raise Conflict(_describe(err)) from None
            if err.status == 404:
                raise Gone(_describe(err)) from None
            raise
        return result


def _json_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn``'s response body as parsed JSON. The custom-object calls return plain dicts anyway; the raw response
    skips the client's generic deserialization (decoding, content-type sniffing, type dispatch). Errors still
    raise :class:`ApiException` with the status."""
    response = fn(*args, _preload_content=False, **kwargs)
    return json.loads(response.data)


def _describe(err: BaseException) -> str:
    if isinstance(err, ApiException):
        return f"HTTP {err.status} {err.reason}"
    return f"{type(err).__name__}: {err}"
