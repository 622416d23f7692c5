"""The gateway's FastAPI application, built around injected :class:`~mediagen.gateway.deps.GatewayDeps`."""

from __future__ import annotations

from fastapi import FastAPI

from mediagen.gateway import problems
from mediagen.gateway.deps import GatewayDeps
from mediagen.gateway.middleware import GatewayMiddleware
from mediagen.gateway.routes import aggregated, discovery, gallery, generations, health

DESCRIPTION = """\
HTTP access to **mediagen** for clients that don't speak Kubernetes. `POST /generate` creates a
`MediaGeneration` in your namespace (validated with the same models as the CRD); poll `GET /status/{id}` until
`done` is true, then fetch `url`. Authenticate with `Authorization: Bearer <token>`. Errors are
`application/problem+json`, and `errors[].field` names the offending field.
"""


def create_app(deps: GatewayDeps) -> FastAPI:
    """The gateway application. Everything it talks to comes from ``deps``."""
    app = FastAPI(
        title="mediagen gateway",
        version=deps.version,
        description=DESCRIPTION,
        openapi_tags=[
            {"name": "generations", "description": "Start, follow, list and cancel generations."},
            {"name": "health", "description": "Health, probes and metrics (no token needed)."},
        ],
    )
    app.state.deps = deps
    problems.install(app)
    app.add_middleware(GatewayMiddleware, max_body_bytes=deps.settings.max_body_bytes, metrics=deps.metrics)
    app.include_router(generations.router)
    app.include_router(health.router)
    app.include_router(gallery.router)
    if deps.front_proxy is not None:
        # Served on the TLS listener kube-apiserver proxies to; kept out of the standalone OpenAPI at /docs.
        app.include_router(aggregated.router, include_in_schema=False)
        app.include_router(discovery.router)
    return app
