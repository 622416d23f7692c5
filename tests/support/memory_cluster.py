""":class:`~mediagen.gateway.cluster.Cluster` in memory: what the API server would do, for unit tests.

It keeps objects per namespace, assigns uid, resourceVersion, creationTimestamp and ``generateName``
suffixes, applies JSON merge patches, pages lists in name order with continue tokens, and can be told to
fail (``fail_with``) to exercise the error paths.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mediagen.gateway import rbac
from mediagen.gateway.cluster import (
    AccessRequest,
    AlreadyExists,
    BadRequest,
    ClusterError,
    Decision,
    NotFound,
    Page,
    Review,
)
from mediagen.gateway.tokens import mint

API_SERVER_AUDIENCE = "https://kubernetes.default.svc"
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class MemoryCluster:
    """In-memory objects, Secrets and ServiceAccount tokens."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        """namespace -> name -> object."""
        self.namespaces: set[str] | None = None
        """When set, creating in any other namespace is NotFound (as the API server does)."""
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.service_account_tokens: dict[str, str] = {}
        """token -> username (``system:serviceaccount:<ns>:<name>``)."""
        self.token_audiences: dict[str, tuple[str, ...]] = {}
        """token -> its audiences (default: the API server's own, ``https://kubernetes.default.svc``)."""
        self.grants: set[tuple[str, str, str]] = set()
        """RBAC in brief: (username, verb, namespace) triples that are allowed; "*" matches any verb or namespace."""
        self.access_requests: list[AccessRequest] = []
        """Every SubjectAccessReview asked for, in order."""
        self.configmaps: dict[tuple[str, str], dict[str, str]] = {}
        self.fail_with: ClusterError | None = None
        """Raised by every call while set."""
        self.calls: dict[str, int] = {}
        self.items_listed = 0
        """Objects (or their metadata) returned by every listing so far."""
        self._versions = itertools.count(1)
        self._suffixes = itertools.count()

    def _enter(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.fail_with is not None:
            raise self.fail_with

    def add_api_token(
        self, tenant: str, *, namespace: str = rbac.DEFAULT_NAMESPACE, secret: str = rbac.TOKEN_SECRET
    ) -> str:
        """Mint an API token for namespace ``tenant`` into the token Secret; returns the token."""
        token, record = mint(tenant)
        self.secrets.setdefault((namespace, secret), {})[record.id] = record.encode()
        return token

    def put(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` as is (as if created with kubectl); fills in the server-set metadata."""
        stored = copy.deepcopy(body)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["namespace"] = namespace
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("generation", 1)
        self.objects.setdefault(namespace, {})[meta["name"]] = stored
        return copy.deepcopy(stored)

    async def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._enter("create")
        if self.namespaces is not None and namespace not in self.namespaces:
            raise NotFound(f'namespaces "{namespace}" not found')
        meta = body.get("metadata") or {}
        name = meta.get("name")
        if not name:
            name = f"{meta.get('generateName', '')}{self._suffix()}"
        if name in self.objects.get(namespace, {}):
            raise AlreadyExists(f'mediagenerations "{name}" already exists')
        return self.put(namespace, {**body, "metadata": {**meta, "name": name}})

    def _suffix(self) -> str:
        n = next(self._suffixes)
        digits = []
        for _ in range(5):
            n, digit = divmod(n, len(_SUFFIX_ALPHABET))
            digits.append(_SUFFIX_ALPHABET[digit])
        return "".join(digits)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        self._enter("get")
        try:
            return copy.deepcopy(self.objects[namespace][name])
        except KeyError:
            raise NotFound(f'mediagenerations "{name}" not found') from None

    async def list_page(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        self._enter("list_page")
        return self._page(namespace, limit, continue_token, field_selector, lambda body: copy.deepcopy(body))

    async def list_metadata(
        self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
    ) -> Page:
        self._enter("list_metadata")
        return self._page(
            namespace,
            limit,
            continue_token,
            field_selector,
            lambda body: {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadata",
                "metadata": copy.deepcopy(body["metadata"]),
            },
        )

    def _page(
        self,
        namespace: str,
        limit: int,
        continue_token: str,
        field_selector: str,
        shape: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Page:
        selected = _selector(field_selector)
        objects = self.objects.get(namespace, {})
        names = sorted(name for name, body in objects.items() if selected(body))
        if continue_token:
            if not continue_token.startswith("after:"):
                raise BadRequest("continue key is not valid")
            names = [n for n in names if n > continue_token.removeprefix("after:")]
        page, rest = names[:limit], names[limit:]
        items = [shape(objects[n]) for n in page]
        self.items_listed += len(items)
        return Page(items=items, continue_token=f"after:{page[-1]}" if rest and page else "")

    async def patch(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._enter("patch")
        current = await self.get(namespace, name)
        self.calls["get"] -= 1
        updated = merge_patch(current, patch)
        if updated.get("spec") != current.get("spec"):
            updated["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return self.put(namespace, updated)

    async def read_secret(self, namespace: str, name: str) -> Mapping[str, bytes]:
        self._enter("read_secret")
        try:
            return dict(self.secrets[namespace, name])
        except KeyError:
            raise NotFound(f'secrets "{name}" not found') from None

    async def read_configmap(self, namespace: str, name: str) -> Mapping[str, str]:
        self._enter("read_configmap")
        try:
            return dict(self.configmaps[namespace, name])
        except KeyError:
            raise NotFound(f'configmaps "{name}" not found') from None

    async def review_token(self, token: str, audiences: list[str]) -> Review:
        self._enter("review_token")
        username = self.service_account_tokens.get(token)
        carried = self.token_audiences.get(token, (API_SERVER_AUDIENCE,))
        matching = [a for a in audiences if a in carried] if audiences else list(carried)
        if username is None or not matching:
            return Review(authenticated=False, error="invalid bearer token")
        namespace = username.split(":")[2] if username.startswith("system:serviceaccount:") else ""
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]
        return Review(authenticated=True, username=username, groups=groups, audiences=matching)

    async def review_access(self, request: AccessRequest) -> Decision:
        self._enter("review_access")
        self.access_requests.append(request)
        for user, verb, namespace in self.grants:
            if user == request.user.username and verb in (request.verb, "*") and namespace in (request.namespace, "*"):
                return Decision(allowed=True, reason=f"granted to {user}")
        return Decision(allowed=False)

    async def ping(self) -> None:
        self._enter("ping")


def _selector(field_selector: str) -> Callable[[dict[str, Any]], bool]:
    """The API server's field selector semantics for the one selectable field, ``status.phase`` ("" if unset)."""
    terms: list[tuple[bool, str]] = []
    for term in filter(None, field_selector.split(",")):
        negate = "!=" in term
        name, _, value = term.partition("!=" if negate else "=")
        if name != "status.phase":
            raise BadRequest(f'field label not supported: "{name}"')
        terms.append((negate, value.removeprefix("=")))  # "==" means "=" too

    def selected(body: dict[str, Any]) -> bool:
        phase = str((body.get("status") or {}).get("phase") or "")
        return all((phase != value) if negate else (phase == value) for negate, value in terms)

    return selected
