"""The gateway's collaborators (:class:`GatewayDeps`) and the typed ``Annotated[..., Depends()]`` aliases routes use."""

from __future__ import annotations

import email.message
import importlib.metadata
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mediagen.gateway.auth import Authenticator, AuthError, Tenant, TokenStore
from mediagen.gateway.authorization import Authorizer
from mediagen.gateway.cluster import Cluster, ClusterError
from mediagen.gateway.front_proxy import RequestHeaderAuthentication
from mediagen.gateway.metrics import GatewayMetrics
from mediagen.gateway.problems import FieldError, ProblemError
from mediagen.gateway.service import Generations
from mediagen.gateway.sessions import SessionSigner
from mediagen.gateway.settings import GatewaySettings
from mediagen.gateway.throttling import InflightQuota, RateLimiter

_PING_CACHE_SECONDS = 1.0


def _version() -> str:
    try:
        return importlib.metadata.version("mediagen")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


@dataclass
class GatewayDeps:
    """Everything the routes need; :func:`build_deps` wires it from settings, tests build it by hand."""

    settings: GatewaySettings
    cluster: Cluster
    authenticator: Authenticator
    generations: Generations
    metrics: GatewayMetrics
    sessions: SessionSigner
    rate_limiter: RateLimiter | None = None
    """Per-token request rate; None: unlimited."""
    front_proxy: RequestHeaderAuthentication | None = None
    """How kube-apiserver names callers; set when the aggregated API is served."""
    version: str = field(default_factory=_version)
    clock: Callable[[], float] = time.monotonic
    _ping: tuple[float, bool] | None = None

    async def kubernetes_reachable(self) -> bool:
        """Whether the API server answers; cached for a second so probes cannot flood it."""
        now = self.clock()
        if self._ping is not None and now - self._ping[0] < _PING_CACHE_SECONDS:
            return self._ping[1]
        try:
            await self.cluster.ping()
            reachable = True
        except ClusterError:
            reachable = False
        self._ping = (now, reachable)
        return reachable


def build_deps(
    settings: GatewaySettings,
    cluster: Cluster,
    metrics: GatewayMetrics | None = None,
    front_proxy: RequestHeaderAuthentication | None = None,
) -> GatewayDeps:
    """Wire the gateway's collaborators around ``cluster``; ``front_proxy`` turns the aggregated API on."""
    metrics = metrics or GatewayMetrics()
    tokens = TokenStore(
        cluster,
        settings.namespace,
        settings.token_secret,
        ttl=settings.token_cache_seconds,
        refresh_interval=settings.token_refresh_seconds,
    )
    authenticator = Authenticator(
        cluster,
        tokens,
        authorizer=Authorizer(cluster, ttl=settings.token_cache_seconds),
        token_review=settings.token_review,
        audiences=settings.token_review_audiences,
        namespaces=settings.token_review_namespaces,
        review_ttl=settings.token_cache_seconds,
        review_limiter=RateLimiter(settings.token_reviews_per_second, settings.token_reviews_burst),
    )
    quota = None
    if settings.max_inflight_per_tenant:
        quota = InflightQuota(
            cluster,
            settings.max_inflight_per_tenant,
            cache_seconds=settings.inflight_cache_seconds,
            retry_after=settings.quota_retry_after_seconds,
        )
    rate_limiter = None
    if settings.rate_limit_per_second:
        rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    return GatewayDeps(
        settings=settings,
        cluster=cluster,
        authenticator=authenticator,
        generations=Generations(cluster, metrics, quota=quota),
        metrics=metrics,
        sessions=SessionSigner(
            settings.session_key.get_secret_value().encode() if settings.session_key else None,
            settings.session_seconds,
        ),
        rate_limiter=rate_limiter,
        front_proxy=front_proxy,
    )


def get_deps(request: Request) -> GatewayDeps:
    """The app's :class:`GatewayDeps` (set by :func:`mediagen.gateway.app.create_app`)."""
    deps: GatewayDeps = request.app.state.deps
    return deps


DepsDep = Annotated[GatewayDeps, Depends(get_deps)]

# Declares the scheme in OpenAPI (the "Authorize" button of /docs); the header is checked in get_tenant.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiToken",
    description="An API token (mg_<id>_<secret>) or, when enabled, a Kubernetes ServiceAccount token.",
)


async def get_tenant(
    request: Request,
    deps: DepsDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """The authenticated caller; 401 otherwise (503 when credentials cannot be checked, 429 beyond its rate)."""
    try:
        tenant = await deps.authenticator.authenticate(request.headers.get("authorization"), client_of(request))
    except AuthError as err:
        deps.metrics.auth_failures.labels(reason=err.reason).inc()
        raise
    limit_rate(deps, tenant)
    return tenant


def client_of(request: Request) -> str:
    """The peer's address: what caps TokenReviews per client (behind a proxy, the proxy's)."""
    return request.client.host if request.client else ""


def limit_rate(deps: GatewayDeps, tenant: Tenant) -> None:
    """Count one request of ``tenant``'s credential; the 429 problem when it is over its rate."""
    if deps.rate_limiter is None:
        return
    try:
        deps.rate_limiter.check(tenant.subject)
    except ProblemError:
        deps.metrics.throttled.labels(reason="rate").inc()
        raise


TenantDep = Annotated[Tenant, Depends(get_tenant)]


def get_generations(deps: DepsDep) -> Generations:
    """The generations service."""
    return deps.generations


GenerationsDep = Annotated[Generations, Depends(get_generations)]


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (``application/json`` or ``application/*+json``)."""
    content_type = request.headers.get("content-type")
    if content_type:
        parsed = email.message.Message()
        parsed["content-type"] = content_type
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
            return
    raise ProblemError(
        415,
        "unsupported-media-type",
        "the body must be JSON, sent with Content-Type: application/json",
        errors=[
            FieldError(
                field="Content-Type",
                location="header",
                pointer="",
                message=f"must be application/json, not {content_type!r}" if content_type else "missing",
            )
        ],
    )


def reject_unknown_query(request: Request, _tenant: TenantDep) -> None:
    """422 for query parameters the route does not declare: a typo (``?phse=Failed``) must not be ignored.

    Depends on the tenant so that an unauthenticated request is a 401 whatever its parameters."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ProblemError(
            422,
            "validation-error",
            f"unknown query parameter {unknown[0]!r}",
            errors=[
                FieldError(field=name, location="query", pointer=f"/{name}", message="unknown query parameter")
                for name in unknown
            ],
        )


def _query_names(dependant: Any) -> set[str]:
    names = {str(param.alias) for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
