"""The one Kubernetes adapter of the operator and the gateway: a small async interface over HTTP on the event loop.

Every call has a timeout (connect and read, from settings, plus a backstop around the whole call), every write names
its field manager, and every error is translated into :mod:`mediagen.kube.errors` (Conflict, NotFound, Unavailable…),
so nothing above this module sees the transport. The transport (:mod:`mediagen.kube.transport`) makes the calls on
the event loop itself: a call used to cost a thread hop each way and the official client's request building, which
was about half of the operator's CPU. The interface speaks plain dicts, parsed once from the answer's bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote

from kubernetes import client as k8s

from mediagen.api.types import GROUP, KIND, PLURAL, VERSION
from mediagen.kube.errors import Conflict, Expired, Gone, KubeError, NotFound, Unavailable, translate
from mediagen.kube.transport import JSON, AiohttpTransport, Transport, TransportError, load_configuration
from mediagen.kube.types import AccessRequest, Decision, KubeTimeouts, Page, Review, UserInfo, WatchEvent

__all__ = [
    "MERGE_PATCH",
    "AccessRequest",
    "Conflict",
    "Decision",
    "Gone",
    "Kube",
    "KubeClient",
    "KubeTimeouts",
    "Page",
    "Review",
    "UserInfo",
    "WatchEvent",
    "load_api_client",
    "load_configuration",
]

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
DEFAULT_TIMEOUTS = KubeTimeouts()
KUBE_CONNECTIONS = 32
"""Kubernetes API calls in flight at once (one connection each); more wait for a connection."""


METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
"""Asks the API server for a list's metadata only: the objects themselves never leave it."""


class Kube(Protocol):
    """What the operator's workers do to MediaGenerations (the watch is :mod:`mediagen.controller.watcher`'s)."""

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
    """An official client (for tooling and leader election) from :func:`load_configuration`."""
    configuration = load_configuration(kubeconfig)
    # One connection per concurrent call; the default (5 per core) starves a busy caller.
    configuration.connection_pool_maxsize = KUBE_CONNECTIONS
    return k8s.ApiClient(configuration)


LIST_CHUNK = 100
"""Objects per page of a full listing: one unchunked LIST of thousands of 64 KiB objects held them all at once."""
WATCH_SECONDS = 300
"""How long the API server keeps one watch open before ending it cleanly (the watch then resumes)."""


def _collection(namespace: str | None) -> str:
    """MediaGenerations in one namespace, or in all of them (None)."""
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    return _path(namespace)


def _path(namespace: str, *rest: str) -> str:
    parts = "/".join(quote(p, safe="") for p in rest)
    return f"/apis/{GROUP}/{VERSION}/namespaces/{quote(namespace, safe='')}/{PLURAL}" + (f"/{parts}" if rest else "")


def _extra(found: object) -> dict[str, list[str]]:
    """A TokenReview's ``user.extra`` (key → values); anything else is left out."""
    if not isinstance(found, dict):
        return {}
    return {str(key): [str(v) for v in values] if isinstance(values, list) else [] for key, values in found.items()}


class KubeClient:
    """MediaGenerations, events, Secrets, ConfigMaps, TokenReviews and SubjectAccessReviews over a
    :class:`~mediagen.kube.transport.Transport`.

    ``field_manager`` names every write (``metadata.managedFields`` says who wrote what). ``transport`` may also
    be an official client's :class:`~kubernetes.client.Configuration` (its server and credentials)."""

    def __init__(
        self,
        transport: Transport | k8s.Configuration,
        *,
        field_manager: str = "mediagen-operator",
        timeouts: KubeTimeouts = DEFAULT_TIMEOUTS,
        connections: int = KUBE_CONNECTIONS,
    ) -> None:
        if isinstance(transport, k8s.Configuration):
            transport = AiohttpTransport(transport, connections=connections, user_agent=field_manager)
        self._transport = transport
        self.field_manager = field_manager
        self.timeouts = timeouts
        self._write_query = {"fieldManager": field_manager}

    async def aclose(self) -> None:
        """Close the connections."""
        await self._transport.aclose()

    # -- MediaGenerations ---------------------------------------------------------------------------------------

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._json("GET", _path(namespace, name))

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
        query: dict[str, str | int] = {"limit": limit}
        if continue_token:
            query["continue"] = continue_token
        if field_selector:
            query["fieldSelector"] = field_selector
        result = await self._json("GET", _path(namespace), query=query, accept=METADATA_LIST if metadata_only else JSON)
        items = result.get("items") or []
        return Page(items=list(items), continue_token=(result.get("metadata") or {}).get("continue") or "")

    async def list_all(self, namespace: str | None, *, limit: int = LIST_CHUNK) -> tuple[list[dict[str, Any]], str]:
        """Every MediaGeneration in ``namespace`` (None: all namespaces), page by page, and the resourceVersion
        of the list (where a watch takes over). A continue token that expired makes the list start over."""
        while True:
            items: list[dict[str, Any]] = []
            query: dict[str, str | int] = {"limit": limit}
            try:
                while True:
                    result = await self._json("GET", _collection(namespace), query=query)
                    items.extend(result.get("items") or [])
                    meta = result.get("metadata") or {}
                    if not meta.get("continue"):
                        return items, str(meta.get("resourceVersion") or "")
                    query["continue"] = meta["continue"]
            except Expired:
                continue

    async def watch(self, namespace: str | None, resource_version: str) -> AsyncIterator[WatchEvent]:
        """The changes to MediaGenerations after ``resource_version``, bookmarks included, until the server ends
        the watch (after :data:`WATCH_SECONDS`). :class:`Expired` when the version is too old (list again)."""
        query: dict[str, str | int] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        lines = self._transport.stream_lines(
            _collection(namespace),
            query=query,
            connect_timeout=self.timeouts.connect,
            read_timeout=WATCH_SECONDS + self.timeouts.read,  # a silent connection is noticed, a quiet one is not
        )
        try:
            async for line in lines:
                if line.status >= 400:
                    raise translate(line.status, line.body, line.reason)
                try:
                    event = json.loads(line.body)
                    kind, obj = event["type"], event["object"]
                except (ValueError, KeyError, TypeError):
                    raise Unavailable("the Kubernetes API sent a watch event that is not JSON") from None
                if not isinstance(obj, dict):
                    raise Unavailable("the Kubernetes API sent a watch event without an object")
                if kind == "ERROR":  # a Status: 410 when the version expired while watching
                    raise translate(int(obj.get("code") or 0), json.dumps(obj), str(obj.get("reason") or ""))
                yield WatchEvent(type=str(kind), object=obj)
        except TransportError as err:
            raise Unavailable(str(err)) from None

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._json("POST", _path(namespace), query=self._write_query, body=body)

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch on the object (not its status); returns the updated object."""
        return await self._json(
            "PATCH", _path(namespace, name), query=self._write_query, body=patch, content_type=MERGE_PATCH
        )

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.patch(namespace, name, patch)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._json(
            "PATCH", _path(namespace, name, "status"), query=self._write_query, body=patch, content_type=MERGE_PATCH
        )

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        # Already gone, or replaced by a new object of the same name: nothing of ours to delete either way.
        with contextlib.suppress(NotFound, Conflict):
            await self._json("DELETE", _path(namespace, name), body=options)

    # -- events, secrets, reviews --------------------------------------------------------------------------------

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = body.get("metadata", {})
        namespace = meta.get("namespace")
        if not namespace:
            log.warning("could not record event %s: the object has no namespace", reason)
            return
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        component = self.field_manager
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            # Named as client-go's recorder names them, <object>.<unix nanoseconds in hex>: lists come back in
            # name order, so `kubectl describe` (which sorts by whole seconds only) keeps same-second events
            # in the order they happened instead of a random one.
            "metadata": {
                "name": f"{str(meta.get('name', 'mediageneration'))[:236]}.{time.time_ns():x}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": component},
            "reportingComponent": component,
            "reportingInstance": component,
        }
        path = f"/api/v1/namespaces/{quote(str(namespace), safe='')}/events"
        try:
            # The created Event is not needed: the answer is read (the connection goes back) but not parsed.
            await self._call("POST", path, query=self._write_query, body=event)
        except KubeError as err:  # events are best effort by nature; the status carries the truth
            log.warning("could not record event %s: %s: %s", reason, type(err).__name__, err)

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        """The decoded data of a Secret (keys that are not base64 are left out, with a warning)."""
        secret = await self._json(
            "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets/{quote(name, safe='')}"
        )
        data: dict[str, bytes] = {}
        raw = secret.get("data") or {}
        for key, value in raw.items() if isinstance(raw, dict) else ():
            try:
                data[key] = base64.b64decode(value or "", validate=True)
            except (binascii.Error, ValueError, TypeError):
                log.warning("secret %s/%s: key %s is not base64; ignored", namespace, name, key)
        return data

    async def read_configmap(self, namespace: str, name: str) -> Mapping[str, str]:
        """The data of a ConfigMap."""
        configmap = await self._json(
            "GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps/{quote(name, safe='')}"
        )
        raw = configmap.get("data") or {}
        return {str(key): str(value) for key, value in raw.items()} if isinstance(raw, dict) else {}

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        """Ask the API server who ``token`` belongs to (TokenReview)."""
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = audiences
        review = await self._json(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        )
        status = review.get("status")
        if not isinstance(status, dict):
            return Review(authenticated=False, error="no status")
        found = status.get("user")
        user: dict[str, Any] = found if isinstance(found, dict) else {}
        return Review(
            authenticated=bool(status.get("authenticated")),
            username=str(user.get("username") or ""),
            groups=[str(g) for g in user.get("groups") or []],
            uid=str(user.get("uid") or ""),
            extra=_extra(user.get("extra")),
            audiences=[str(a) for a in status.get("audiences") or []],
            error=str(status.get("error") or ""),
        )

    async def review_access(self, request: AccessRequest) -> Decision:
        """Ask the API server's authorizers about ``request`` on MediaGenerations (SubjectAccessReview)."""
        user = request.user
        attributes = {"group": GROUP, "resource": PLURAL, "verb": request.verb, "namespace": request.namespace}
        if request.name:
            attributes["name"] = request.name
        spec: dict[str, Any] = {"user": user.username, "resourceAttributes": attributes}
        if user.uid:
            spec["uid"] = user.uid
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        review = await self._json(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        status = review.get("status")
        if not isinstance(status, dict):
            return Decision(allowed=False, reason="the API server gave no decision")
        allowed = status.get("allowed") is True and status.get("denied") is not True
        return Decision(allowed=allowed, reason=str(status.get("reason") or ""))

    async def ping(self) -> None:
        """Return when the API server answers; raise :class:`Unavailable` otherwise."""
        await self._call("GET", "/version")

    # -- the transport -------------------------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> dict[str, Any]:
        """The answer's body as parsed JSON (an object)."""
        data = await self._call(method, path, query=query, body=body, content_type=content_type, accept=accept)
        try:
            result = json.loads(data)
        except ValueError:
            raise Unavailable("the Kubernetes API answered with something other than JSON") from None
        if not isinstance(result, dict):
            raise Unavailable(f"the Kubernetes API answered with a {type(result).__name__}, not an object")
        return result

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> bytes:
        """The answer's body of a successful call; an error answer raised as its :class:`KubeError`."""
        encoded = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        try:
            async with asyncio.timeout(self.timeouts.backstop):
                answer = await self._transport.request(
                    method,
                    path,
                    query=query,
                    body=encoded,
                    content_type=content_type,
                    accept=accept,
                    connect_timeout=self.timeouts.connect,
                    read_timeout=self.timeouts.read,
                )
        except TimeoutError:
            raise Unavailable(f"the Kubernetes API did not answer within {self.timeouts.backstop:g} s") from None
        except TransportError as err:
            raise Unavailable(str(err)) from None
        if answer.status >= 400:
            raise translate(answer.status, answer.body, answer.reason)
        return answer.body
