"""Health: ``/health-check`` (for people and the old service's callers), ``/livez`` and ``/readyz`` (for
Kubernetes probes), ``/metrics`` (for Prometheus). None of them needs a token; none of them reveals tenant data."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mediagen.gateway.cluster import ClusterError
from mediagen.gateway.deps import DepsDep
from mediagen.gateway.schemas import HealthReport

router = APIRouter(tags=["health"])


@router.get(
    "/health-check",
    summary="Whether the gateway can reach Kubernetes",
    responses={503: {"model": HealthReport, "description": "The Kubernetes API is unreachable."}},
)
async def health_check(deps: DepsDep) -> JSONResponse:
    """200 with status ok when the Kubernetes API server answers, 503 with status unavailable when not."""
    reachable = await deps.kubernetes_reachable()
    report = HealthReport(
        status="ok" if reachable else "unavailable",
        kubernetes="reachable" if reachable else "unreachable",
        version=deps.version,
    )
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if reachable else 503)


@router.get("/livez", summary="Liveness probe", response_class=PlainTextResponse)
async def livez() -> str:
    """The process serves requests. Deliberately independent of Kubernetes: a restart would not fix it."""
    return "ok"


@router.get(
    "/readyz",
    summary="Readiness probe",
    response_class=PlainTextResponse,
    responses={503: {"description": "Not ready: Kubernetes unreachable or the token Secret unreadable."}},
)
async def readyz(deps: DepsDep) -> PlainTextResponse:
    """Ready when the API server answers and the token Secret can be read (or is cached)."""
    if not await deps.kubernetes_reachable():
        return PlainTextResponse("kubernetes unreachable", status_code=503)
    try:
        await deps.authenticator.tokens.check()
    except ClusterError as err:
        return PlainTextResponse(f"token secret unreadable: {type(err).__name__}", status_code=503)
    return PlainTextResponse("ok")


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(deps: DepsDep) -> Response:
    """The gateway's metrics in the Prometheus text format."""
    return Response(generate_latest(deps.metrics.registry), media_type=CONTENT_TYPE_LATEST)
