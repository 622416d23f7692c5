"""kopf wiring: thin handlers around the supervisor, for ``mediagen operator`` (:mod:`.run`), which says what to
watch (a bare ``kopf run -m mediagen.controller.kopf_handlers`` would watch nothing).

No handler is registered for MediaGenerations, deliberately: kopf's change-detecting handlers and daemons
write their own bookkeeping (progress annotations, a last-handled-configuration, a finalizer of their own) on
every step, which would triple the API-server writes per generation, and even its event handler cost a quarter
of the operator's CPU. The operator's own :class:`~mediagen.controller.watcher.Watch` feeds the supervisor
(started here, for the namespace ``mediagen operator`` puts in the memo as ``watch_namespace``); kopf runs the
startup and cleanup, the probes and the liveness endpoint. Only for a namespace pattern (``team-*``), whose
matching namespaces kopf finds, does kopf watch, with :func:`on_event` registered by ``mediagen operator``. The
worker writes exactly what it decides to, and nothing of kopf's lands on the resource.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from mediagen.controller.metrics import Metrics
from mediagen.controller.settings import Settings
from mediagen.controller.supervisor import Supervisor
from mediagen.controller.watcher import Watch
from mediagen.controller.webhook_receiver import WebhookReceiver
from mediagen.controller.wiring import Runtime, build_runtime

log = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff-base storage, switched off: only an event handler is registered, which needs no diff.

    kopf still computes an object's "essence" (a deep copy of the whole body, minus system fields) and its
    diff against the stored one on every watch event, for change-detecting handlers and daemons that this
    operator does not have. An empty essence makes that a no-op; nothing is ever stored on the resource."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return {}

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf and build the runtime (clients, limits, supervisor) inside kopf's event loop."""
    # Watches can hang silently on some networks without a server-side timeout; reconnect well before that.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.reconnect_backoff = 1.0
    # The initial list in pages: one unchunked LIST of thousands of 64 KiB objects held them all at once.
    settings.watching.chunk_size = 100
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    # We post our own events with reasons matching the conditions; kopf's log-derived ones would be noise.
    settings.posting.enabled = False
    # Only an event handler: no diffs to compute (kopf would deep-copy every body for them otherwise).
    settings.persistence.diffbase_storage = NoDiffBase()
    # ``mediagen operator`` puts the Metrics it serves on /metrics into the memo; embedded runs may not.
    metrics: Metrics = memo.get("metrics") or Metrics()
    # ``mediagen operator`` loads the settings once and hands them over in the memo; `kopf run` loads them here.
    loaded: Settings = memo.get("settings") or Settings()
    # With leader election, ``mediagen operator`` hands over how to hold creates back when the Lease runs short.
    runtime: Runtime = memo.get("runtime") or await build_runtime(loaded, metrics=metrics, fence=memo.get("fence"))
    memo["runtime"] = runtime
    supervisor = memo["supervisor"] = Supervisor(runtime.deps)
    if runtime.webhooks is not None:
        receiver = WebhookReceiver(runtime.webhooks.secret, supervisor.offer, outcome=runtime.deps.metrics.webhook)
        await receiver.start(runtime.webhooks.host, runtime.webhooks.port)
        memo["webhook_receiver"] = receiver
    if "watch_namespace" in memo:
        watch = Watch(runtime.kube, memo["watch_namespace"], supervisor.observe)
        memo["watch"] = asyncio.create_task(watch.run(), name="mediagen-watch")
    runtime.deps.metrics.started(runtime.deps.generator.name)
    log.info("mediagen operator started (generator=%s)", runtime.deps.generator.name)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop the watch and the workers and close clients; in-flight work resumes from the resources on the next
    start."""
    watch: asyncio.Task[None] | None = memo.get("watch")
    if watch is not None:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    receiver: WebhookReceiver | None = memo.get("webhook_receiver")
    if receiver is not None:
        await receiver.stop()
    supervisor: Supervisor | None = memo.get("supervisor")
    if supervisor is not None:
        await supervisor.shutdown()
    runtime: Runtime | None = memo.get("runtime")
    if runtime is not None:
        await runtime.aclose()


async def on_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Route every watch event of kopf's to the resource's worker (namespace patterns only)."""
    supervisor: Supervisor = memo["supervisor"]
    supervisor.observe(event.get("type"), dict(event["object"]))


@kopf.on.probe(id="workers")
def workers(memo: kopf.Memo, **_: Any) -> int:
    """For the liveness endpoint: how many resources are being worked on."""
    supervisor: Supervisor | None = memo.get("supervisor")
    return supervisor.active if supervisor else 0
