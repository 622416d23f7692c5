"""Build the operator's collaborators (clients, limits, the webhook receiver's configuration) from the settings.

The settings are loaded once, by :func:`mediagen.controller.run.run_operator`, and handed in here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from mediagen.controller.metrics import Metrics
from mediagen.controller.quota import Quota
from mediagen.controller.request_pacing import Kind, RateLimitedGenerator, lanes
from mediagen.controller.settings import DEFAULT_WEBHOOK_URL, Settings
from mediagen.controller.webhook_receiver import InvalidSecret, signing_key
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import Generator
from mediagen.generators.mock import MockGenerator
from mediagen.generators.replicate import ReplicateGenerator
from mediagen.kube.client import KubeClient, KubeTimeouts, load_configuration
from mediagen.reconcile.decide import Pacing
from mediagen.storage.base import ObjectStore
from mediagen.storage.s3 import S3Store, make_s3_client
from mediagen.transfer import Downloader

log = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings cannot work; the message says which variable to set."""


@dataclass(frozen=True)
class WebhookConfig:
    """Where the webhook receiver listens and the secret deliveries are signed with."""

    host: str
    port: int
    secret: str


@dataclass
class Runtime:
    """The operator's live collaborators and how to close them."""

    deps: WorkerDeps
    http: httpx.Client
    kube: KubeClient
    webhooks: WebhookConfig | None = None

    async def aclose(self) -> None:
        """Close network clients."""
        await self.deps.generator.aclose()
        self.http.close()
        await self.kube.aclose()


def build_generator(settings: Settings, metrics: Metrics | None = None) -> Generator:
    """Replicate when a token is set (and mock mode is not forced), else the placeholder renderer.

    ``metrics`` is told about every request to Replicate."""
    if settings.use_mock:
        return MockGenerator(latency_seconds=settings.mock_latency_seconds)
    assert settings.replicate_api_token is not None
    return ReplicateGenerator(
        api_token=settings.replicate_api_token.get_secret_value(),
        base_url=settings.replicate_base_url,
        webhook_base_url=settings.webhook_url,
        observer=metrics.replicate_request if metrics is not None else None,
    )


def build_store(settings: Settings) -> ObjectStore:
    """The bucket outputs go to; R2 (or another S3-compatible endpoint) must be configured."""
    endpoint = settings.storage_endpoint
    if endpoint is None or settings.r2_access_key_id is None or settings.r2_secret_access_key is None:
        raise ConfigurationError(
            "no storage configured: set R2_ACCOUNT_ID (or R2_ENDPOINT_URL), R2_ACCESS_KEY_ID and "
            "R2_SECRET_ACCESS_KEY, or run `mediagen dev`, which starts an embedded S3-compatible store"
        )
    client = make_s3_client(
        endpoint_url=endpoint,
        access_key_id=settings.r2_access_key_id.get_secret_value(),
        secret_access_key=settings.r2_secret_access_key.get_secret_value(),
    )
    return S3Store(
        client,
        bucket=settings.r2_bucket,
        public_base_url=settings.r2_public_base_url,
        presign_ttl_seconds=settings.r2_presign_ttl_seconds,
    )


async def build_runtime(
    settings: Settings,
    *,
    kubeconfig: str | None = None,
    metrics: Metrics | None = None,
    fence: Callable[[Generator], Generator] | None = None,
) -> Runtime:
    """Everything the operator needs, built inside the running event loop (async clients bind to it).

    ``fence`` wraps the backend closest to its calls (inside the rate limits, whose waiting comes first): with
    leader election it holds a create back while the leadership runs short (:mod:`.create_fence`)."""
    metrics = metrics or Metrics()
    configuration = await asyncio.to_thread(load_configuration, kubeconfig)
    backend = build_generator(settings, metrics)
    webhooks = await webhook_config(settings, backend)
    generator = paced_generator(settings, fence(backend) if fence else backend, metrics)
    http = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)
    token = settings.replicate_api_token.get_secret_value() if settings.replicate_api_token else None
    downloader = Downloader(
        http,
        allowed_hosts=settings.output_allowed_hosts,
        allow_insecure_loopback=settings.allow_insecure_outputs,
        max_bytes=settings.max_output_bytes,
        token=token,
    )
    kube = KubeClient(
        configuration,
        field_manager="mediagen-operator",
        timeouts=KubeTimeouts(connect=settings.kube_connect_timeout_seconds, read=settings.kube_timeout_seconds),
    )
    deps = WorkerDeps(
        generator=generator,
        store=build_store(settings),
        downloader=downloader,
        kube=kube,
        inflight=asyncio.Semaphore(settings.max_inflight),
        transfers=asyncio.Semaphore(settings.max_concurrent_transfers),
        pacing=pacing(settings, webhooks_received=webhooks is not None),
        metrics=metrics,
    )
    return Runtime(deps=deps, http=http, kube=kube, webhooks=webhooks)


def paced_generator(settings: Settings, backend: Generator, metrics: Metrics) -> RateLimitedGenerator:
    """``backend`` behind the operator-wide request pacer, its pace and burst estimate reported as metrics."""

    def observe(kind: Kind, quota: Quota) -> None:
        metrics.pace(kind, quota.pace, quota.burst)

    creates, others = lanes(
        creates_per_minute=settings.replicate_creates_per_minute,
        requests_per_minute=settings.replicate_requests_per_minute,
        create_ceiling=settings.replicate_creates_per_second,
        request_ceiling=settings.replicate_requests_per_second,
        observer=observe,
    )
    return RateLimitedGenerator(backend, creates, others)


URL_REFRESH_FRACTION = 0.25
"""Presigned URLs are signed again when a quarter of their lifetime is left (42 h of the default 7 days): at
most one status write per resource every three quarters of a lifetime (5¼ days), and a day and more of slack
for an operator that is down or behind."""


def pacing(settings: Settings, *, webhooks_received: bool) -> Pacing:
    """The decisions' timing: polling (brisk without webhooks, a sparse safety net for lost deliveries with them),
    progress writes, cleanup on deletion, and when presigned URLs are signed again."""
    initial, maximum = settings.poll_initial_seconds, settings.poll_max_seconds
    if webhooks_received:
        initial, maximum = settings.webhook_poll_initial_seconds, settings.webhook_poll_max_seconds
    return Pacing(
        poll_initial_seconds=initial,
        poll_max_seconds=maximum,
        progress_interval_seconds=settings.progress_interval_seconds,
        delete_timeout_seconds=settings.delete_timeout_seconds,
        url_refresh_before_seconds=settings.r2_presign_ttl_seconds * URL_REFRESH_FRACTION,
    )


async def webhook_config(settings: Settings, backend: Generator) -> WebhookConfig | None:
    """The receiver's configuration, or None when webhooks are not received (port 0, or the mock generator).

    Raises :class:`ConfigurationError` when the receiver cannot be reached or its secret cannot be had."""
    if not settings.webhook_port:
        return None
    if not isinstance(backend, ReplicateGenerator):
        log.info("MEDIAGEN_WEBHOOK_PORT is set but the mock generator sends no webhooks; not receiving any")
        return None
    if settings.webhook_url == DEFAULT_WEBHOOK_URL:
        raise ConfigurationError(
            "MEDIAGEN_WEBHOOK_PORT is set: set MEDIAGEN_WEBHOOK_URL to the public HTTPS URL that reaches it "
            "(path /replicate-webhook)"
        )
    if settings.webhook_secret is not None:
        secret = settings.webhook_secret.get_secret_value()
    else:
        secret = await backend.webhook_secret()  # a failure here fails the start; kopf retries it
    try:
        signing_key(secret)
    except InvalidSecret as exc:
        raise ConfigurationError(f"MEDIAGEN_WEBHOOK_SECRET: {exc}") from None
    return WebhookConfig(host=settings.webhook_bind_address, port=settings.webhook_port, secret=secret)
