"""The one Kubernetes adapter of the operator and the gateway: a small async interface over the official client.

Every call has a timeout (connect and read, from settings, plus a backstop around the whole call), every write names
its field manager, and every error is translated into :mod:`mediagen.kube.errors` (Conflict, NotFound, Unavailable…),
so nothing above this module sees the transport. The official client is blocking: calls run on a thread pool of
their own, so the event loop never stalls. The interface is async and speaks plain dicts, so the transport can be
swapped (an asyncio client) without touching a caller.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from mediagen.api.types import GROUP, KIND, PLURAL, VERSION
from mediagen.kube.errors import Conflict, Gone, KubeError, NotFound, Unavailable, translate

__all__ = ["MERGE_PATCH", "Conflict", "Gone", "Kube", "KubeClient", "KubeTimeouts", "Page", "Review", "load_api_client"]

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
KUBE_THREADS = 16
"""Kubernetes API calls in flight at once (the connection pool holds as many); more wait for a thread."""
T = TypeVar("T")


METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
"""Asks the API server for a list's metadata only: the objects themselves never leave it."""


@dataclass(frozen=True)
class KubeTimeouts:
    """How long one call may take, in seconds: to connect, and to wait for each read of the answer."""

    connect: float = 5.0
    read: float = 15.0

    @property
    def request(self) -> tuple[float, float]:
        """The official client's ``_request_timeout``."""
        return (self.connect, self.read)

    @property
    def backstop(self) -> float:
        """The whole call, however the transport behaves (a server that trickles bytes resets a read timeout)."""
        return self.connect + 2 * self.read


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
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
    audiences: list[str] = field(default_factory=list)
    """The audiences the token was found valid for (a client that asked for some must check one is among them)."""


@dataclass(frozen=True)
class UserInfo:
    """A Kubernetes identity, as authentication (TokenReview, or kube-apiserver's front proxy) reported it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Sorted (key, values) pairs: hashable, so decisions can be cached by identity."""


@dataclass(frozen=True)
class AccessRequest:
    """May ``user`` perform ``verb`` on MediaGenerations in ``namespace`` (on the one named ``name``, if set)?"""

    user: UserInfo
    verb: str
    namespace: str
    name: str = ""


@dataclass(frozen=True)
class Decision:
    """The answer of a SubjectAccessReview."""

    allowed: bool
    reason: str = ""


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
    # One connection per concurrent call; the default (5 per core) starves a busy operator.
    configuration.connection_pool_maxsize = 2 * KUBE_THREADS
    return k8s.ApiClient(configuration)


class KubeClient:
    """MediaGenerations, events, Secrets, ConfigMaps, TokenReviews and SubjectAccessReviews on an
    :class:`kubernetes.client.ApiClient`.

    ``field_manager`` names every write (``metadata.managedFields`` says who wrote what)."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        field_manager: str = "mediagen-operator",
        timeouts: KubeTimeouts = KubeTimeouts(),
        threads: int = KUBE_THREADS,
    ) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._auth = k8s.AuthenticationV1Api(api_client)
        self._authz = k8s.AuthorizationV1Api(api_client)
        self._version = k8s.VersionApi(api_client)
        self.field_manager = field_manager
        self.timeouts = timeouts
        # Threads of its own: in asyncio's default pool (6 threads on two cores) API calls queued behind output
        # copies, which hold a thread for as long as an upload takes (minutes for a large video).
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube")

    def close(self, *, wait: bool = False) -> None:
        """Let the threads go (``wait``: once the calls in progress finish)."""
        self._pool.shutdown(wait=wait)

    # -- MediaGenerations ---------------------------------------------------------------------------------------

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._json(self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    async def list_page(
        self,
        namespace: str,
        *,
        limit: int,
        continue_token: str = "",
        field_selector: str = "",
        metadata_only: bool = False,
    ) -> Page:
        """One page of MediaGenerations in ``namespace``, in the API server's order (by name).

        ``field_selector`` filters in the API server (``status.phase`` is a selectable field); with
        ``metadata_only`` each item is the object's metadata alone (a ``PartialObjectMetadata``)."""
        result = await self._json(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            limit=limit,
            _continue=continue_token or None,
            field_selector=field_selector or None,
            _headers={"Accept": METADATA_LIST} if metadata_only else None,
        )
        items = result.get("items") or []
        return Page(items=list(items), continue_token=(result.get("metadata") or {}).get("continue") or "")

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._json(
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            body,
            field_manager=self.field_manager,
        )

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on the object (not its status); returns the updated object."""
        return await self._json(
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            field_manager=self.field_manager,
            _content_type=MERGE_PATCH,
        )

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.patch(namespace, name, patch)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._json(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            field_manager=self.field_manager,
            _content_type=MERGE_PATCH,
        )

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        options = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid))
        # Already gone, or replaced by a new object of the same name: nothing of ours to delete either way.
        with contextlib.suppress(NotFound, Conflict):
            await self._json(
                self._custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name, body=options
            )

    # -- events, secrets, reviews --------------------------------------------------------------------------------

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata", {})
        now = dt.datetime.now(dt.UTC)
        component = self.field_manager
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
            source=k8s.V1EventSource(component=component),
            reporting_component=component,
            reporting_instance=component,
        )
        try:
            await self._call(self._post_event, meta.get("namespace"), event)
        except KubeError as err:  # events are best effort by nature; the status carries the truth
            log.warning("could not record event %s: %s: %s", reason, type(err).__name__, err)

    def _post_event(self, namespace: str, event: k8s.CoreV1Event, **kwargs: Any) -> None:
        # The raw response: the created Event is not needed, and parsing it into a model costs about as much as
        # building the request. Reading it to the end gives the connection back to the pool.
        response: Any = self._core.create_namespaced_event(
            namespace, event, field_manager=self.field_manager, _preload_content=False, **kwargs
        )
        response.drain_conn()
        response.release_conn()

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The decoded data of a Secret (keys that are not base64 are left out, with a warning)."""
        secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        data: dict[str, bytes] = {}
        for key, value in (secret.data or {}).items():
            try:
                data[key] = base64.b64decode(value or "", validate=True)
            except (binascii.Error, ValueError):
                log.warning("secret %s/%s: key %s is not base64; ignored", namespace, name, key)
        return data

    async def read_configmap(self, namespace: str, name: str) -> Mapping[str, str]:
        """The data of a ConfigMap."""
        configmap = await self._call(self._core.read_namespaced_config_map, name, namespace)
        return dict(configmap.data or {})

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        """Ask the API server who ``token`` belongs to (TokenReview)."""
        spec = k8s.V1TokenReviewSpec(token=token, audiences=audiences or None)
        review = await self._call(self._auth.create_token_review, k8s.V1TokenReview(spec=spec))
        status = review.status
        if status is None:
            return Review(authenticated=False, error="no status")
        user = status.user
        return Review(
            authenticated=bool(status.authenticated),
            username=(user.username or "") if user else "",
            groups=list(user.groups or []) if user else [],
            uid=(user.uid or "") if user else "",
            extra={k: list(v or []) for k, v in (user.extra or {}).items()} if user else {},
            audiences=list(status.audiences or []),
            error=status.error or "",
        )

    async def review_access(self, request: AccessRequest) -> Decision:
        """Ask the API server's authorizers about ``request`` on MediaGenerations (SubjectAccessReview)."""
        user = request.user
        spec = k8s.V1SubjectAccessReviewSpec(
            user=user.username,
            uid=user.uid or None,
            groups=list(user.groups) or None,
            extra={key: list(values) for key, values in user.extra} or None,
            resource_attributes=k8s.V1ResourceAttributes(
                group=GROUP,
                resource=PLURAL,
                verb=request.verb,
                namespace=request.namespace,
                name=request.name or None,
            ),
        )
        review = await self._call(self._authz.create_subject_access_review, k8s.V1SubjectAccessReview(spec=spec))
        status = review.status
        if status is None:
            return Decision(allowed=False, reason="the API server gave no decision")
        return Decision(allowed=bool(status.allowed) and not status.denied, reason=status.reason or "")

    async def ping(self) -> None:
        """Return when the API server answers; raise :class:`Unavailable` otherwise."""
        await self._call(self._version.get_code)

    # -- the transport -------------------------------------------------------------------------------------------

    async def _json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``fn``'s answer as parsed JSON. The raw response skips the client's generic deserialization (decoding,
        content-type sniffing, type dispatch); the custom-object calls return plain dicts anyway."""
        result = await self._call(_raw_json, fn, *args, **kwargs)
        if not isinstance(result, dict):
            raise Unavailable(f"the Kubernetes API answered with a {type(result).__name__}, not an object")
        return result

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(fn, *args, _request_timeout=self.timeouts.request, **kwargs)
        try:
            async with asyncio.timeout(self.timeouts.backstop):
                return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except ApiException as err:
            raise translate(err.status or 0, err.body, err.reason or "") from None
        except TimeoutError:
            raise Unavailable(f"the Kubernetes API did not answer within {self.timeouts.backstop:g} s") from None
        except (Urllib3Error, OSError) as err:
            raise Unavailable(f"the Kubernetes API is unreachable: {type(err).__name__}") from None


def _raw_json(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    response = fn(*args, _preload_content=False, **kwargs)
    return json.loads(response.data)
