"""What the gateway does with MediaGenerations, independent of HTTP: create, read, list, cancel.

Every operation is confined to the tenant's namespace: a name in another namespace is simply not found,
so ids of other tenants neither leak nor can be acted upon.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mediagen.api.types import Phase
from mediagen.gateway.auth import Tenant
from mediagen.gateway.cluster import AlreadyExists, Cluster, NotFound, Page
from mediagen.gateway.metrics import GatewayMetrics
from mediagen.gateway.problems import FieldError, ProblemError
from mediagen.gateway.resources import (
    build_resource,
    idempotent_name,
    is_done,
    phase_selector,
    request_hash,
    stored_hash,
)
from mediagen.gateway.schemas import GenerateRequest
from mediagen.gateway.throttling import InflightQuota

log = logging.getLogger(__name__)

_CREATE_ATTEMPTS = 3
MAX_PAGE = 100
"""The most generations one listing answer holds, whatever ``limit`` asks for (each may be ~64 KiB of input)."""
_RECENT_PAGE = 200
"""Metadata per round trip when looking for the newest generations."""
_RECENT_SCAN = 2000
_RECENT_READS = 8
"""Generations read at once for the gallery (each a GET)."""


@dataclass
class Created:
    """The outcome of :meth:`Generations.create`."""

    body: dict[str, Any]
    replayed: bool
    """True when an earlier identical request had created it (idempotent retry)."""


class Generations:
    """MediaGeneration operations on behalf of tenants."""

    def __init__(
        self, cluster: Cluster, metrics: GatewayMetrics | None = None, *, quota: InflightQuota | None = None
    ) -> None:
        self._cluster = cluster
        self._metrics = metrics or GatewayMetrics()
        self.quota = quota
        """The in-flight quota per tenant; None: unlimited."""

    async def create(self, tenant: Tenant, request: GenerateRequest, idempotency_key: str | None) -> Created:
        """Create the generation, or find the one an identical earlier request created.

        A tenant at its in-flight quota gets 429, except for the replay of a request that created its generation
        already: a client retrying after a lost answer must learn that it succeeded."""
        if request.name and idempotency_key:
            raise ProblemError(
                422,
                "validation-error",
                "use either a name or an Idempotency-Key: a name makes the request idempotent by itself",
                errors=[
                    FieldError(
                        field="Idempotency-Key",
                        location="header",
                        pointer="",
                        message="cannot be combined with a name",
                    )
                ],
            )
        digest = request_hash(request)
        name = request.name or (idempotent_name(tenant.namespace, idempotency_key) if idempotency_key else None)
        body = build_resource(request, name=name, digest=digest, subject=tenant.subject)
        if self.quota is None:
            return await self._create(tenant, body, name, digest, idempotency_key, None)
        try:
            async with self.quota.slot(tenant.namespace) as confirm:
                return await self._create(tenant, body, name, digest, idempotency_key, confirm)
        except ProblemError as err:
            if err.status != 429:
                raise
            replay = await self._replay(tenant, name, digest)
            if replay is None:
                self._metrics.throttled.labels(reason="quota").inc()
                raise
            return replay

    async def _replay(self, tenant: Tenant, name: str | None, digest: str) -> Created | None:
        """The generation an identical earlier request created, if there is one."""
        if name is None:
            return None
        try:
            existing = await self._cluster.get(tenant.namespace, name)
        except NotFound:
            return None
        if stored_hash(existing) != digest:
            return None
        self._metrics.generations.labels(outcome="replayed").inc()
        return Created(existing, replayed=True)

    async def _create(
        self,
        tenant: Tenant,
        body: dict[str, Any],
        name: str | None,
        digest: str,
        idempotency_key: str | None,
        confirm: Callable[[], None] | None,
    ) -> Created:
        for _ in range(_CREATE_ATTEMPTS):
            try:
                created = await self._cluster.create(tenant.namespace, body)
            except AlreadyExists:
                if name is None:
                    continue  # a generateName suffix collided: the API server picks another one next time
                try:
                    existing = await self._cluster.get(tenant.namespace, name)
                except NotFound:
                    continue  # deleted in between: create it again
                if stored_hash(existing) != digest:
                    self._metrics.generations.labels(outcome="conflict").inc()
                    what = "Idempotency-Key" if idempotency_key else "name"
                    raise ProblemError(
                        409,
                        "idempotency-conflict",
                        f"this {what} was already used for a different request",
                        errors=[_conflict_field(idempotency_key)],
                    ) from None
                self._metrics.generations.labels(outcome="replayed").inc()
                return Created(existing, replayed=True)
            except NotFound:
                log.error("tenant namespace %s does not exist (token subject %s)", tenant.namespace, tenant.subject)
                raise ProblemError(503, "tenant-unavailable", "this tenant's namespace does not exist") from None
            if confirm is not None:
                confirm()
            self._metrics.generations.labels(outcome="created").inc()
            return Created(created, replayed=False)
        raise ProblemError(503, "unavailable", "could not create the generation; retry", headers={"Retry-After": "1"})

    async def get(self, tenant: Tenant, name: str) -> dict[str, Any]:
        """One generation of the tenant; NotFound otherwise."""
        return await self._cluster.get(tenant.namespace, name)

    async def list_page(
        self, tenant: Tenant, *, limit: int, continue_token: str = "", phase: Phase | None = None
    ) -> Page:
        """A page of the tenant's generations in name order, optionally only those in ``phase``.

        At most :data:`MAX_PAGE` items, however large ``limit`` is: follow the continue token. The phase filter
        runs in the API server (``status.phase`` is a selectable field), so the continue token stays exact."""
        return await self._cluster.list_page(
            tenant.namespace,
            limit=min(limit, MAX_PAGE),
            continue_token=continue_token,
            field_selector=phase_selector(phase) if phase is not None else "",
        )

    async def recent(self, tenant: Tenant, count: int) -> list[dict[str, Any]]:
        """The tenant's ``count`` newest generations, newest first.

        The newest are found among the first :data:`_RECENT_SCAN` by name from their metadata alone, a page at a
        time; only those ``count`` are then read whole. The gateway so holds at most one page of metadata and
        ``count`` objects, however many (and however large) the tenant's generations are."""
        newest: list[tuple[float, str]] = []  # (-creation time, name) of the newest so far, newest first
        token, scanned = "", 0
        while scanned < _RECENT_SCAN:
            page = await self._cluster.list_metadata(tenant.namespace, limit=_RECENT_PAGE, continue_token=token)
            scanned += len(page.items)
            newest = heapq.nsmallest(count, [*newest, *map(_age_key, page.items)])
            token = page.continue_token
            if not token:
                break
        names = [name for _, name in newest]
        reads = asyncio.Semaphore(_RECENT_READS)

        async def read(name: str) -> dict[str, Any] | None:
            async with reads:
                try:
                    return await self._cluster.get(tenant.namespace, name)
                except NotFound:
                    return None  # deleted since the listing

        found = await asyncio.gather(*(read(name) for name in names))
        return [body for body in found if body is not None]

    async def cancel(self, tenant: Tenant, name: str) -> tuple[dict[str, Any], bool]:
        """Set ``spec.cancel``; returns the resource and whether anything was written.

        A finished generation, or one already being canceled, is left alone: cancel is idempotent."""
        body = await self._cluster.get(tenant.namespace, name)
        if is_done(body) or (body.get("spec") or {}).get("cancel"):
            return body, False
        patched = await self._cluster.patch(tenant.namespace, name, {"spec": {"cancel": True}})
        self._metrics.cancels.inc()
        return patched, True


def _age_key(item: dict[str, Any]) -> tuple[float, str]:
    """Sorts newest first, and generations created in the same second by name."""
    meta = item.get("metadata") or {}
    try:
        created = dt.datetime.fromisoformat(str(meta.get("creationTimestamp"))).timestamp()
    except ValueError:
        created = 0.0
    return -created, str(meta.get("name") or "")


def _conflict_field(idempotency_key: str | None) -> FieldError:
    if idempotency_key:
        return FieldError(
            field="Idempotency-Key", location="header", pointer="", message="already used for a different body"
        )
    return FieldError(field="name", location="body", pointer="/name", message="already used for a different body")
