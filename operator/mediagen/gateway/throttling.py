"""Limits that keep one caller from crowding out the others: a request rate per token, and a quota of generations
in flight per tenant. Both answer 429 with ``Retry-After`` (see :func:`throttled`).

**Rate** (:class:`RateLimiter`): a token bucket per credential (an API token or a ServiceAccount), ``rate``
requests a second with bursts of up to ``burst``. Checked after authentication, so made-up tokens cannot drain a
real one's bucket (they are slowed down by the token store instead). Buckets live in memory, per gateway replica:
with N replicas behind a Service a caller gets up to N times the rate, which is fine for a guard against floods.

**In flight** (:class:`InflightQuota`): the number of the tenant's MediaGenerations that have not reached a final
phase, counted at most once per ``cache_seconds`` per tenant and only when it creates something. The API server
does the filtering: the listing asks for unfinished generations only (``status.phase`` is a selectable field of
the CRD) and for their metadata only, and stops once the quota is reached. So finished generations cost nothing
to count, however many there are, and none can hide the unfinished ones (counting used to read whole objects and
stop after the first 5,000 by name: decoys named to sort first made the quota blind). Between two listings the
gateway adds what it created itself and what is being created right now (a reservation taken before the create),
so concurrent requests to one replica cannot overshoot the quota; replicas do not share reservations, so with N
replicas the overshoot is bounded by what the others create within one cache period.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mediagen.gateway.cluster import BadRequest, Cluster
from mediagen.gateway.problems import ProblemError
from mediagen.gateway.resources import UNFINISHED_SELECTOR

_LIST_PAGE = 100
log = logging.getLogger(__name__)


def throttled(kind: str, detail: str, retry_after: float) -> ProblemError:
    """The 429 problem, with ``Retry-After`` in whole seconds (at least 1)."""
    seconds = max(1, math.ceil(retry_after))
    return ProblemError(429, kind, detail, headers={"Retry-After": str(seconds)})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key; see the module docstring. Not thread-safe: use it from the event loop."""

    def __init__(
        self, rate: float, burst: float, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float | None:
        """Take one token for ``key``: None when allowed, else the seconds until a token is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            # Bounded memory: the least recently seen key goes first. A key dropped while it was throttled
            # starts again with a full bucket; max_keys is far above the number of live credentials.
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate

    def check(self, key: str) -> None:
        """Raise the 429 problem unless ``key`` may make a request now."""
        wait = self.take(key)
        if wait is not None:
            raise throttled(
                "rate-limited",
                f"too many requests with this token: at most {self.rate:g} a second (bursts of {self.burst:g})",
                wait,
            )


@dataclass
class _Count:
    listed: int = 0
    listed_at: float | None = None
    created: deque[float] = field(default_factory=deque)
    """When each create of this replica since the last listing finished."""
    reserved: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InflightQuota:
    """At most ``limit`` unfinished generations per tenant namespace; see the module docstring."""

    def __init__(
        self,
        cluster: Cluster,
        limit: int,
        *,
        cache_seconds: float = 2.0,
        retry_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._cluster = cluster
        self.limit = limit
        self._cache_seconds = cache_seconds
        self._retry_after = retry_after
        self._clock = clock
        self._counts: dict[str, _Count] = {}
        self.listings = 0
        """How many times a namespace was listed (for tests)."""

    async def in_flight(self, namespace: str) -> int:
        """The tenant's unfinished generations as this replica knows them (listing again if stale)."""
        count = self._counts.setdefault(namespace, _Count())
        await self._refresh(namespace, count)
        return count.listed + len(count.created) + count.reserved

    @asynccontextmanager
    async def slot(self, namespace: str) -> AsyncIterator[Callable[[], None]]:
        """Reserve one slot for a create, or raise the 429 problem when the tenant is at its quota.

        Call the yielded function once the generation was created; a reservation not confirmed that way (the
        create failed, or found an existing generation) is given back when the block exits."""
        count = self._counts.setdefault(namespace, _Count())
        await self._refresh(namespace, count)
        if count.listed + len(count.created) + count.reserved >= self.limit:
            raise throttled(
                "quota-exceeded",
                f"this tenant has {self.limit} generations in flight, its quota; wait for some to finish",
                self._retry_after,
            )
        count.reserved += 1
        confirmed = False

        def created() -> None:
            nonlocal confirmed
            confirmed = True

        try:
            yield created
        finally:
            count.reserved -= 1
            if confirmed:
                count.created.append(self._clock())

    async def _refresh(self, namespace: str, count: _Count) -> None:
        if count.listed_at is not None and self._clock() - count.listed_at < self._cache_seconds:
            return
        async with count.lock:
            if count.listed_at is not None and self._clock() - count.listed_at < self._cache_seconds:
                return  # another request listed while this one waited
            started = self._clock()
            listed = await self._count_unfinished(namespace)
            # Creates that finished before the listing began are in it; later ones may not be: keep those.
            while count.created and count.created[0] < started:
                count.created.popleft()
            count.listed, count.listed_at = listed, self._clock()

    async def _count_unfinished(self, namespace: str) -> int:
        self.listings += 1
        unfinished, token = 0, ""
        while True:
            try:
                page = await self._cluster.list_metadata(
                    namespace,
                    limit=min(_LIST_PAGE, self.limit),
                    continue_token=token,
                    field_selector=UNFINISHED_SELECTOR,
                )
            except BadRequest as err:
                # Kubernetes before 1.31 (or a CRD applied without selectableFields) refuses the selector.
                log.error("cannot count generations in flight by status.phase: %s", err)
                raise ProblemError(
                    503,
                    "quota-unavailable",
                    "the gateway cannot count this tenant's generations in flight: the API server refuses a field "
                    "selector on status.phase (Kubernetes >= 1.31 and the current CRD are needed)",
                    headers={"Retry-After": "60"},
                ) from None
            # Being deleted: the operator is only cleaning up, it no longer takes a slot.
            unfinished += sum(1 for item in page.items if not (item.get("metadata") or {}).get("deletionTimestamp"))
            token = page.continue_token
            if not token or unfinished >= self.limit:
                return unfinished  # enough to know the answer
