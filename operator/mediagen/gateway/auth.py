"""Who is calling: bearer API tokens (hashed in a Secret) and, optionally, ServiceAccount tokens.

Every caller is a :class:`Tenant`: one namespace, the only one it can see. The token Secret is read through a
cache that is at most ``token_cache_seconds`` old, so a revoked token stops working within that time (5 s by
default). An unknown token id re-reads the Secret, but no sooner than ``token_refresh_seconds`` (1 s) after the
last read: the request waits for that read, so a token minted a moment ago works on its first use (after at most
a second), while a flood of made-up tokens costs the API server at most one read per second and is slowed down
itself. When the Secret cannot be read, authentication fails closed (503), never open.

A ServiceAccount token (with ``token_review`` on) is a tenant of its ServiceAccount's namespace only if all of these
hold: it looks like a JWT (anything else is refused without asking the API server), the TokenReview accepts it for
one of the gateway's own audiences (so a pod's automounted token, whose audience is the API server's, is not
enough), its namespace is on the allow-list, and RBAC lets it ``create`` MediaGenerations there (a
SubjectAccessReview, shared with the aggregated API). Reviews not answered from the cache are capped per client
address, so bogus tokens cannot turn into API-server load.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediagen.gateway.authorization import Authorizer
from mediagen.gateway.cluster import AccessRequest, Cluster, NotFound, Review, UserInfo
from mediagen.gateway.sessions import Session, fingerprint
from mediagen.gateway.tokens import PREFIX, TokenFormatError, TokenRecord, token_id

if TYPE_CHECKING:
    from mediagen.gateway.throttling import RateLimiter

log = logging.getLogger(__name__)

_MAX_TOKEN_LENGTH = 8192
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
_SERVICE_ACCOUNT = re.compile(r"^system:serviceaccount:(?P<ns>[a-z0-9][-a-z0-9]*):(?P<name>[a-z0-9][-a-z0-9.]*)$")
_REVIEW_CACHE_SIZE = 4096
# header.payload.signature, each base64url: every ServiceAccount token is a JWS in compact serialization.
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
ANY_NAMESPACE = "*"


@dataclass(frozen=True)
class Tenant:
    """An authenticated caller: the namespace it owns and who it is (for audit annotations and logs)."""

    namespace: str
    subject: str
    token_id: str = ""
    """The API token's id, for tenants of an API token."""
    user: UserInfo | None = None
    """The Kubernetes identity, for tenants of a ServiceAccount token (or of the aggregated API)."""


class AuthError(Exception):
    """Authentication failed: 401. ``reason`` is a bounded label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ReviewsThrottled(Exception):
    """This client sent more unknown tokens than it may have reviewed: 429, retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many unknown tokens from this client; retry later")
        self.retry_after = retry_after


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
        authorizer: Authorizer | None = None,
        token_review: bool = False,
        audiences: list[str] | None = None,
        namespaces: list[str] | None = None,
        review_ttl: float = 5.0,
        review_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token_review and not audiences:
            raise ValueError("ServiceAccount tokens need an audience of the gateway's own (token_review_audiences)")
        if token_review and not namespaces:
            raise ValueError("ServiceAccount tokens need namespaces to be allowed (token_review_namespaces)")
        self._cluster = cluster
        self.tokens = tokens
        self.authorizer = authorizer or Authorizer(cluster, ttl=review_ttl, clock=clock)
        self._token_review = token_review
        self._audiences = list(audiences or [])
        self._namespaces = frozenset(namespaces or [])
        self._review_ttl = review_ttl
        self._review_limiter = review_limiter
        self._clock = clock
        self._reviews: OrderedDict[str, tuple[float, Tenant | str]] = OrderedDict()
        """sha256(token) -> (until, the tenant or why there is none)."""

    async def authenticate(self, authorization: str | None, client: str = "") -> Tenant:
        """The tenant of a ``Bearer`` token. ClusterError propagates when the credentials cannot be checked.

        ``client`` (the peer address) keys the cap on TokenReviews; :class:`ReviewsThrottled` beyond it."""
        token = bearer_token(authorization)
        if token.startswith(PREFIX) or not self._token_review:
            return await self._api_token(token)
        return await self._service_account(token, client)

    async def _api_token(self, token: str) -> Tenant:
        found = token_id(token)
        if found is None:
            raise AuthError("malformed", "the bearer token is malformed: API tokens look like mg_<id>_<secret>")
        record = await self.tokens.lookup(found)
        if record is None or not record.matches(token):
            raise AuthError("invalid", "the bearer token is not valid (unknown or revoked)")
        return Tenant(namespace=record.namespace, subject=f"token/{record.id}", token_id=record.id)

    async def _service_account(self, token: str, client: str) -> Tenant:
        if not _JWT.match(token):
            raise AuthError("malformed", "the bearer token is neither an API token nor a ServiceAccount token")
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._reviews.get(key)
        if cached is not None and cached[0] > now:
            outcome = cached[1]
        else:
            if self._review_limiter is not None:
                wait = self._review_limiter.take(client)
                if wait is not None:
                    raise ReviewsThrottled(wait)
            outcome = await self._reviewed_tenant(await self._cluster.review_token(token, self._audiences))
            # Negative answers are cached too, so replaying a bad token cannot turn into API-server load.
            self._reviews[key] = (now + self._review_ttl, outcome)
            self._reviews.move_to_end(key)
            while len(self._reviews) > _REVIEW_CACHE_SIZE:
                self._reviews.popitem(last=False)
        if isinstance(outcome, str):
            raise AuthError("invalid", outcome)
        return outcome

    async def _reviewed_tenant(self, review: Review) -> Tenant | str:
        """The tenant of a reviewed token, or why it is none."""
        matched = _SERVICE_ACCOUNT.match(review.username) if review.authenticated else None
        if matched is None or not set(review.audiences) & set(self._audiences):
            audiences = ", ".join(self._audiences)
            return (
                "the bearer token is not valid: neither an API token nor a ServiceAccount token for this "
                f"gateway's audience ({audiences})"
            )
        namespace = matched["ns"]
        if namespace not in self._namespaces and ANY_NAMESPACE not in self._namespaces:
            return f"ServiceAccounts of namespace {namespace} are not tenants of this gateway"
        user = UserInfo(
            username=review.username,
            uid=review.uid,
            groups=tuple(review.groups),
            extra=tuple(sorted((k, tuple(v)) for k, v in review.extra.items())),
        )
        tenant = await self.service_account_tenant(user, namespace)
        if tenant is None:
            return f"{review.username} may not create mediagenerations in namespace {namespace} (RBAC)"
        return tenant

    async def service_account_tenant(self, user: UserInfo, namespace: str) -> Tenant | None:
        """``user`` as a tenant of ``namespace`` if RBAC lets it create MediaGenerations there, else None."""
        if not (await self.authorizer.decide(AccessRequest(user, "create", namespace))).allowed:
            return None
        name = user.username.rsplit(":", 1)[-1]
        return Tenant(namespace=namespace, subject=f"serviceaccount/{namespace}/{name}", user=user)

    async def session_for(self, tenant: Tenant, expires: int) -> Session:
        """The gallery session of a tenant that just signed in (see :mod:`mediagen.gateway.sessions`)."""
        if tenant.token_id:
            record = await self.tokens.lookup(tenant.token_id)
            if record is None:
                raise AuthError("invalid", "the bearer token is not valid (unknown or revoked)")
            return Session(
                tenant.namespace, tenant.subject, expires, token_id=record.id, fingerprint=fingerprint(record.sha256)
            )
        if tenant.user is None:
            raise AuthError("invalid", "this identity cannot sign in to the gallery")
        user = tenant.user
        return Session(
            tenant.namespace, tenant.subject, expires, username=user.username, uid=user.uid, groups=user.groups
        )

    async def resume(self, session: Session) -> Tenant:
        """The tenant of a signed, unexpired session, checked again: the token still there, or RBAC still
        allowing the ServiceAccount. :class:`AuthError` otherwise."""
        if session.token_id:
            record = await self.tokens.lookup(session.token_id)
            if (
                record is None
                or record.namespace != session.namespace
                or not hmac.compare_digest(fingerprint(record.sha256), session.fingerprint)
            ):
                raise AuthError("invalid", "the session's API token was revoked")
            return Tenant(record.namespace, f"token/{record.id}", token_id=record.id)
        allowed = self._namespaces if self._token_review else frozenset()
        if not session.username or (session.namespace not in allowed and ANY_NAMESPACE not in allowed):
            raise AuthError("invalid", "the session is no longer valid")
        user = UserInfo(session.username, session.uid, session.groups)
        tenant = await self.service_account_tenant(user, session.namespace)
        if tenant is None:
            raise AuthError("invalid", "the session's ServiceAccount may no longer create generations here")
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
