""":class:`~mediagen.gateway.cluster.Cluster` on the official kubernetes client.

The client is blocking: every call runs on a small dedicated thread pool, so the event loop never stalls
and the number of API calls in flight is bounded by the pool's size. Every call has a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen.gateway.cluster import (
    AlreadyExists,
    BadRequest,
    Cause,
    ClusterError,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    Page,
    Review,
    TooLarge,
    Unavailable,
)
from mediagen.kube.client import MERGE_PATCH

log = logging.getLogger(__name__)

FIELD_MANAGER = "mediagen-gateway"
_SPEC_FIELD = re.compile(r"\bspec\.[A-Za-z0-9_.\[\]-]+")


class KubernetesCluster:
    """The gateway's Kubernetes access on an :class:`kubernetes.client.ApiClient`."""

    def __init__(self, api_client: k8s.ApiClient, *, timeout: float = 15.0, workers: int = 16) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._auth = k8s.AuthenticationV1Api(api_client)
        self._version = k8s.VersionApi(api_client)
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gateway-kube")

    def close(self) -> None:
        """Stop the thread pool (waits for calls in flight)."""
        self._pool.shutdown(wait=True)

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._object(
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            body,
            field_manager=FIELD_MANAGER,
        )

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._object(self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)

    async def list_page(self, namespace: str, *, limit: int, continue_token: str = "") -> Page:
        result = await self._object(
            self._custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            limit=limit,
            _continue=continue_token or None,
        )
        return Page(
            items=list(result.get("items") or []), continue_token=(result.get("metadata") or {}).get("continue") or ""
        )

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._object(
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            patch,
            field_manager=FIELD_MANAGER,
            _content_type=MERGE_PATCH,
        )

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        secret = await self._call(self._core.read_namespaced_secret, name, namespace)
        data: dict[str, bytes] = {}
        for key, value in (secret.data or {}).items():
            try:
                data[key] = base64.b64decode(value or "", validate=True)
            except (binascii.Error, ValueError):
                log.warning("secret %s/%s: key %s is not base64; ignored", namespace, name, key)
        return data

    async def review_token(self, token: str, audiences: list[str]) -> Review:
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
            error=status.error or "",
        )

    async def ping(self) -> None:
        await self._call(self._version.get_code)

    async def _object(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = await self._call(fn, *args, **kwargs)
        if not isinstance(result, dict):
            raise Unavailable(f"the Kubernetes API answered with a {type(result).__name__}, not an object")
        return result

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(fn, *args, _request_timeout=self._timeout, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except ApiException as err:
            raise translate(err) from None
        except (Urllib3Error, OSError) as err:
            raise Unavailable(f"the Kubernetes API is unreachable: {type(err).__name__}") from None


def translate(err: ApiException) -> ClusterError:
    """The :class:`ClusterError` for an error answer of the API server."""
    status = _status_body(err)
    message = str(status.get("message") or err.reason or "")
    code = err.status or 0
    if code == 404:
        return NotFound(message)
    if code == 409:
        return AlreadyExists(message)
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


def _status_body(err: ApiException) -> dict[str, Any]:
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}
