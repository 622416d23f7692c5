"""Run the operator in this process (``mediagen operator``): alone, or as one of several replicas of which the
one holding the Lease acts (``--leader-election``; see :mod:`mediagen.controller.election` for why that is safe)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen.controller.metrics import Metrics
from mediagen.controller.settings import Settings
from mediagen.generators.base import Generator
from mediagen.logging_setup import configure_logging

log = logging.getLogger(__name__)

_PATTERN_CHARS = frozenset("*?[],!")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def is_namespace_pattern(namespace: str) -> bool:
    """True for a kopf namespace pattern (glob, list, negation), False for one exact namespace name."""
    return any(char in _PATTERN_CHARS for char in namespace)


def lease_namespace(
    settings: Settings, watched: str | None, pod_namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE
) -> str:
    """Where the Lease lives: as configured, else the one watched namespace, else the pod's own, else default."""
    if settings.lease_namespace:
        return settings.lease_namespace
    if watched and not is_namespace_pattern(watched):
        return watched
    try:
        return pod_namespace_file.read_text().strip() or "default"
    except OSError:
        return "default"


def run_operator(
    *,
    namespace: str | None = None,
    liveness: str | None = None,
    verbose: bool = False,
    leader_election: bool = False,
) -> int:
    """Run kopf with mediagen's handlers until SIGINT/SIGTERM.

    With ``leader_election`` (or ``MEDIAGEN_LEADER_ELECTION``) the process first stands by until it holds the
    Lease, acts only while it holds it, exits when it loses it, and releases it when it stops cleanly."""
    from mediagen.controller import kopf_handlers  # registers the handlers before any waiting

    settings = Settings()
    namespace = namespace or settings.namespace
    configure_logging(
        log_format=settings.log_format,
        level=settings.log_level,
        verbose=verbose,
        secrets=[
            secret.get_secret_value() if secret else None
            for secret in (settings.replicate_api_token, settings.r2_secret_access_key, settings.webhook_secret)
        ],
    )
    # One registry for the whole process: the HTTP endpoint serves it, the handlers' startup wires it in.
    metrics = Metrics(process_metrics=True)
    if settings.metrics_port:
        port = metrics.serve(settings.metrics_port)
        log.info("serving Prometheus metrics on port %d at /metrics", port)
    kopf_settings = kopf.OperatorSettings()
    # The operator watches MediaGenerations itself (kopf_handlers.startup), so kopf need not list namespaces nor
    # watch CRDs: for one namespace a Role in it is all the operator needs. (Denied, kopf would retry each for
    # about a minute before starting.) A namespace pattern is kopf's to resolve: kopf watches, on_event routes.
    pattern = namespace is not None and is_namespace_pattern(namespace)
    kopf_settings.scanning.disabled = not pattern
    if pattern:
        kopf.on.event(GROUP, VERSION, PLURAL)(kopf_handlers.on_event)
    watched: dict[str, Any] = {} if pattern else {"watch_namespace": namespace}

    def run_kopf(loop: asyncio.AbstractEventLoop | None = None, **memo: Any) -> None:
        kopf.run(
            loop=loop,
            settings=kopf_settings,
            standalone=True,  # the Lease decides who acts, not kopf's peering
            clusterwide=namespace is None,
            namespaces=[namespace] if namespace else [],
            liveness_endpoint=liveness,
            memo=kopf.Memo(metrics=metrics, settings=settings, **watched, **memo),
        )

    if not (leader_election or settings.leader_election):
        run_kopf()
        return 0
    return _run_elected(settings, lease_namespace(settings, namespace), liveness, metrics, run_kopf)


def _run_elected(
    settings: Settings, namespace: str, liveness: str | None, metrics: Metrics, run_kopf: Callable[..., None]
) -> int:
    """Stand by until the Lease is won, run the operator while it is held, release it after a clean stop."""
    from mediagen.controller.create_fence import FencedGenerator
    from mediagen.controller.election import new_identity
    from mediagen.controller.elector import LeaderElector, Leadership
    from mediagen.controller.standby import StandbyServer, liveness_endpoint
    from mediagen.kube.client import load_api_client
    from mediagen.kube.lease import KubernetesLeaseStore

    timing = settings.lease_timing()
    identity = new_identity(settings.pod_name)
    # A slow answer is still worth having while there is slack before the deadline; the watchdog keeps that.
    timeout = timing.renew_deadline - timing.retry_period
    store = KubernetesLeaseStore(load_api_client(), namespace, settings.lease_name, timeout=timeout)
    elector = LeaderElector(store, identity, timing)
    log.info(
        "leader election on the Lease %s as %s (lease %d s, renew deadline %g s, retry %g s)",
        store.describe(),
        identity,
        timing.lease_duration,
        timing.renew_deadline,
        timing.retry_period,
    )

    def fence(generator: Generator) -> Generator:
        return FencedGenerator(generator, elector.remaining, timing.create_margin)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def standby_status() -> dict[str, str]:
        return {"role": "standby", "identity": identity, "leader": elector.leader}

    webhook_port = settings.webhook_port if not settings.use_mock else 0
    endpoint = liveness_endpoint(liveness) if liveness else None
    standby = StandbyServer(endpoint, webhook_port, settings.webhook_bind_address, standby_status).start()
    try:
        memo = _prepare(settings, metrics, loop, fence)
        if not elector.acquire():
            return 0
    finally:
        standby.stop()
    leadership = Leadership(elector)
    leadership.start()
    exit_status = 0
    try:
        run_kopf(loop=loop, **memo)
    except Exception:
        log.exception("the operator stopped with an error")
        exit_status = 1
    # kopf returned (SIGTERM/SIGINT, or an error): its workers are stopped. Release, then end at once: threads still
    # finishing a call (an upload, a status write) must not outlive the leadership into the next leader's time.
    leadership.finish()
    logging.shutdown()
    os._exit(exit_status)


def _prepare(
    settings: Settings, metrics: Metrics, loop: asyncio.AbstractEventLoop, fence: Callable[[Generator], Generator]
) -> dict[str, Any]:
    """What the operator's startup will use, built while standing by: everything that does not act.

    Importing and building the clients was most of a start (5.4 s of 5.7 s, measured on a busy machine), which
    every failover would add. Should it fail (say, Replicate unreachable for the webhook secret), the startup builds
    it once this replica leads, and retries as it always does."""
    from mediagen.controller.wiring import build_runtime

    try:
        return {"runtime": loop.run_until_complete(build_runtime(settings, metrics=metrics, fence=fence))}
    except Exception as err:
        log.warning("could not prepare the operator while standing by (it will once it leads): %s", err)
        return {"fence": fence}
