"""Who is calling: bearer API tokens (hashed in a Secret) and, optionally, ServiceAccount tokens.

Every caller is a :class:`Tenant`: one namespace, the only one it can see. The token Secret is read through a
cache that is at most ``token_cache_seconds`` old, so a revoked token stops working within that time (5 s by
default). An unknown token id re-reads the Secret, but no sooner than ``token_refresh_seconds`` (1 s) after the
last read: the request waits for that read, so a token minted a moment ago works on its first use (after at most
a second), while a flood of made-up tokens costs the API server at most one read per second and is slowed down
itself. When the Secret cannot be read, authentication fails closed (503), never open.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mediagen.gateway.cluster import Cluster, NotFound
from mediagen.gateway.tokens import PREFIX, TokenFormatError, TokenRecord, token_id

log = logging.getLogger(__name__)

_MAX_TOKEN_LENGTH = 8192
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
_SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:(?P<ns>[a-z0-9][-a-z0-9]*):(?P<name>[a-z0-9][-a-z0-9.]*)$")
_REVIEW_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Tenant:
    """An authenticated caller: the namespace it owns and who it is (for audit annotations and logs)."""

    namespace: str
    subject: str


class AuthError(Exception):
    """Authentication failed: 401. ``reason`` is a bounded label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TokenStore:
    """The token Secret, cached; see the module docstring for the timing."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        secret: str,
        *,
        ttl: float = 5.0,
        refresh_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._cluster = cluster
        self._sleep = sleep
        self._namespace = namespace
        self._secret = secret
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._records: dict[str, TokenRecord] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self.reads = 0
        """How many times the Secret was read (for tests and metrics)."""

    @property
    def loaded(self) -> bool:
        """Whether the Secret was read successfully at least once."""
        return self._loaded_at is not None

    async def check(self) -> None:
        """Make sure the cached copy is at most ``ttl`` old; raises ClusterError when the Secret is unreadable."""
        await self._refresh(max_age=self._ttl)

    async def lookup(self, token_id: str) -> TokenRecord | None:
        """The record of ``token_id``, or None. Raises ClusterError when the Secret cannot be read."""
        await self._refresh(max_age=self._ttl)
        record = self._records.get(token_id)
        if record is None:
            # Perhaps minted since the last read: read again, but not sooner than refresh_interval after it.
            if self._loaded_at is not None:
                await self._sleep(max(0.0, self._loaded_at + self._refresh_interval - self._clock()))
            await self._refresh(max_age=self._refresh_interval)
            record = self._records.get(token_id)
        return record

    async def _refresh(self, max_age: float) -> None:
        if self._fresh(max_age):
            return
        async with self._lock:
            if self._fresh(max_age):  # another request refreshed while this one waited
                return
            self.reads += 1
            try:
                data = await self._cluster.read_secret(self._namespace, self._secret)
            except NotFound:
                log.warning("token secret %s/%s does not exist: no API token is valid", self._namespace, self._secret)
                data = {}
            records = {}
            for key, value in data.items():
                try:
                    records[key] = TokenRecord.decode(key, value)
                except TokenFormatError as err:
                    log.warning("token secret %s/%s: %s; ignored", self._namespace, self._secret, err)
            self._records = records
            self._loaded_at = self._clock()

    def _fresh(self, max_age: float) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < max_age


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Tenant`, or raises :class:`AuthError`."""

    def __init__(
        self,
        cluster: Cluster,
        tokens: TokenStore,
        *,
        token_review: bool = False,
        audiences: list[str] | None = None,
        review_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cluster = cluster
        self.tokens = tokens
        self._token_review = token_review
        self._audiences = audiences or []
        self._review_ttl = review_ttl
        self._clock = clock
        self._reviews: OrderedDict[str, tuple[float, Tenant | None]] = OrderedDict()

    async def authenticate(self, authorization: str | None) -> Tenant:
        """The tenant of a ``Bearer`` token. ClusterError propagates when the credentials cannot be checked."""
        token = bearer_token(authorization)
        if token.startswith(PREFIX) or not self._token_review:
            return await self._api_token(token)
        return await self._service_account(token)

    async def _api_token(self, token: str) -> Tenant:
        found = token_id(token)
        if found is None:
            raise AuthError("malformed", "the bearer token is malformed: API tokens look like mg_<id>_<secret>")
        record = await self.tokens.lookup(found)
        if record is None or not record.matches(token):
            raise AuthError("invalid", "the bearer token is not valid (unknown or revoked)")
        return Tenant(namespace=record.namespace, subject=f"token/{record.id}")

    async def _service_account(self, token: str) -> Tenant:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._reviews.get(key)
        if cached is not None and cached[0] > now:
            tenant = cached[1]
        else:
            review = await self._cluster.review_token(token, self._audiences)
            tenant = None
            matched = _SERVICE_ACCOUNT.match(review.username) if review.authenticated else None
            if matched:
                tenant = Tenant(namespace=matched["ns"], subject=f"serviceaccount/{matched['ns']}/{matched['name']}")
            # Negative answers are cached too, so replaying a bad token cannot turn into API-server load.
            self._reviews[key] = (now + self._review_ttl, tenant)
            self._reviews.move_to_end(key)
            while len(self._reviews) > _REVIEW_CACHE_SIZE:
                self._reviews.popitem(last=False)
        if tenant is None:
            raise AuthError("invalid", "the bearer token is not valid (not an API token nor a ServiceAccount token)")
        return tenant


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; raises :class:`AuthError`."""
    if not authorization or not authorization.strip():
        raise AuthError("missing", "authentication required: send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("malformed", "the Authorization header must be 'Bearer <token>'")
    if len(token) > _MAX_TOKEN_LENGTH or not _VISIBLE_ASCII.match(token):
        raise AuthError("malformed", "the bearer token is malformed")
    return token
