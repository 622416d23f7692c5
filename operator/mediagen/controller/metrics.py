"""Prometheus metrics of the operator, served on ``/metrics`` when ``MEDIAGEN_METRICS_PORT`` is set.

Names follow Prometheus conventions (``mediagen_`` prefix, base units, ``_total`` for counters). Label values
are bounded: phases, reasons, Replicate endpoints and status codes, never names, uids or prediction ids. The
two labels that come from outside the code (a failure ``reason`` and the ``model``) go through
:class:`BoundedLabel`, which folds anything unexpected or beyond a fixed number of values into ``Other``.

Everything lives on the instance's own registry, so tests and several operators in one process don't clash.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mediagen.api.types import Phase
from mediagen.generators.base import TERMINAL_STATUSES, Prediction

log = logging.getLogger(__name__)

IN_FLIGHT_PHASES = (Phase.PENDING, Phase.RUNNING, Phase.UPLOADING)
OTHER = "Other"
"""The label value for anything a :class:`BoundedLabel` does not let through."""

# Generations take seconds to an hour (spec.timeoutSeconds defaults to 3600); a few buckets beyond.
LONG_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
UPLOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
_MODEL = re.compile(r"^(deployment:)?[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class BoundedLabel:
    """Lets through the first ``limit`` distinct values that match ``pattern``; everything else is ``Other``.

    A label value that users control (a model name) must not be able to create series without bound."""

    def __init__(self, pattern: re.Pattern[str], limit: int) -> None:
        self._pattern = pattern
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value or not self._pattern.match(value):
            return OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return OTHER
            self._seen.add(value)
            return value


def model_label(model: str | None, deployment: str | None) -> str:
    """``owner/name`` of a model (its version dropped: 64-hex ids are not a label), or ``deployment:owner/name``."""
    if deployment:
        return f"deployment:{deployment}"
    return (model or "").split(":", 1)[0]


def _version() -> str:
    try:
        return metadata.version("mediagen")
    except metadata.PackageNotFoundError:  # running from a source tree without the package installed
        return "unknown"


class _InFlight(Collector):
    """Generations this operator is driving that are not final yet: how many per phase, and the oldest one's age.

    Computed at scrape time from what the workers report, so the numbers cannot drift the way inc/dec pairs
    can when a worker dies in between."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def set(self, key: str, phase: Phase | None, since: float) -> None:
        with self._lock:
            if phase is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (phase.value, since)

    def snapshot(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._entries.values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        entries = self.snapshot()
        counts = GaugeMetricFamily(
            "mediagen_generations_in_flight",
            "MediaGenerations this operator is working on that have not reached a final phase, by phase.",
            labels=["phase"],
        )
        for phase in IN_FLIGHT_PHASES:
            counts.add_metric([phase.value], sum(1 for p, _ in entries if p == phase.value))
        yield counts
        now = self._clock()
        yield GaugeMetricFamily(
            "mediagen_generation_oldest_in_flight_seconds",
            "Age (since creation) of the oldest MediaGeneration in flight; 0 when none is.",
            value=max((now - since for _, since in entries), default=0.0),
        )


_WEBHOOK_OUTCOMES = frozenset({"accepted", "ignored", "unknown", "rejected"})

FINAL_REASONS: dict[Phase, tuple[str, ...]] = {
    Phase.SUCCEEDED: ("Succeeded",),
    Phase.CANCELED: ("Canceled", "CanceledRemotely"),
    Phase.FAILED: (
        # decided on the prediction or the deadline
        "InvalidInput", "DeadlineExceeded", "Aborted", "OutputExpired", "UnknownStatus", "NoOutput",
        # the model's own failure, and retries of transient ones used up
        "ContentFlagged", "ModelTimedOut", "ModelFailed", "ModelInterrupted", "ReplicateUnavailable",
        "StorageUnavailable", "StorageError",
        # Replicate refused the request
        "Unauthorized", "BillingRequired", "Forbidden", "ModelNotFound", "PredictionNotFound", "NotFound",
        "InvalidVersion", "InvalidModel", "RequestRejected", "UnexpectedResponse",
        # copying the outputs
        "OutputURLRejected", "OutputTooLarge", "OutputUnauthorized", "DownloadRejected", "DownloadFailed",
        "DownloadStalled", "DownloadTooSlow",
        OTHER,
    ),
}  # fmt: skip
"""Every (phase, reason) a generation can end with. Their series are exported at 0 from the start: a counter
series that appears at 1 is invisible to rate() and increase(), so the first failures after every operator start
or failover would escape the alerts. tests/unit/test_metrics.py keeps this list complete."""


class Metrics:
    """The operator's metrics. Methods are the hooks the worker and the Replicate client call."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        max_models: int = 100,
        process_metrics: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._reason = BoundedLabel(_REASON, 100)
        self._model = BoundedLabel(_MODEL, max_models)
        self.info = Gauge(
            "mediagen_operator_info", "Always 1; the labels say what runs.", ["version", "generator"], registry=r
        )
        self.generations = Counter(
            "mediagen_generations_total",
            "MediaGenerations that reached a final phase, by phase and reason (the Succeeded condition's reason).",
            ["phase", "reason"],
            registry=r,
        )
        self.generation_duration = Histogram(
            "mediagen_generation_duration_seconds",
            "End to end: from the resource's creation to its final status, by final phase.",
            ["phase"],
            buckets=LONG_BUCKETS,
            registry=r,
        )
        self.queue_duration = Histogram(
            "mediagen_prediction_queue_seconds",
            "Time a prediction waited on Replicate before it started (started_at - created_at).",
            buckets=LONG_BUCKETS,
            registry=r,
        )
        self.prediction_duration = Histogram(
            "mediagen_prediction_duration_seconds",
            "Time a prediction ran (Replicate's predict_time, else completed_at - started_at), by final status.",
            ["status"],
            buckets=LONG_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "mediagen_predictions_total",
            "Predictions seen reaching a final status on Replicate (one per attempt), by status.",
            ["status"],
            registry=r,
        )
        self.predict_seconds = Counter(
            "mediagen_replicate_predict_seconds_total",
            "Replicate's billed predict_time, summed per model (owner/name or deployment:owner/name).",
            ["model"],
            registry=r,
        )
        self.replicate_requests = Counter(
            "mediagen_replicate_requests_total",
            "Requests to the Replicate API by endpoint (create, get, cancel, list) and HTTP status code "
            '("error": no response, e.g. a dropped connection or a timeout).',
            ["endpoint", "code"],
            registry=r,
        )
        self.replicate_latency = Histogram(
            "mediagen_replicate_request_duration_seconds",
            "Latency of requests to the Replicate API, by endpoint.",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "mediagen_retries_total",
            "Retries spent from spec.retry.limit, by reason (the condition's reason while retrying).",
            ["reason"],
            registry=r,
        )
        self.recoveries = Counter(
            "mediagen_recoveries_total",
            "Look-ups of a prediction whose create may have been lost (crash, dropped response), by outcome.",
            ["outcome"],
            registry=r,
        )
        self.upload_duration = Histogram(
            "mediagen_upload_duration_seconds",
            "Copying a prediction's outputs into storage, by result (success or failure).",
            ["result"],
            buckets=UPLOAD_BUCKETS,
            registry=r,
        )
        self.upload_bytes = Counter(
            "mediagen_upload_bytes_total", "Bytes of outputs stored (successful copies only).", registry=r
        )
        self.upload_objects = Counter(
            "mediagen_upload_objects_total", "Output objects stored (successful copies only).", registry=r
        )
        self.progress_writes = Counter(
            "mediagen_progress_status_writes_total",
            "Rate-limited progress writes to the status (counted apart from the three lifecycle writes).",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "mediagen_webhook_deliveries_total",
            "Replicate webhook deliveries received: accepted (woke a worker), ignored (nothing waited for it), "
            "unknown (no worker here knows the resource: answered 503 for Replicate to retry) or rejected (bad "
            "signature or body).",
            ["outcome"],
            registry=r,
        )
        for outcome in sorted(_WEBHOOK_OUTCOMES):  # exported at 0 from the start: rate() needs a first sample
            self.webhook_deliveries.labels(outcome=outcome)
        for phase, reasons in FINAL_REASONS.items():
            for reason in reasons:
                self.generations.labels(phase=phase.value, reason=self._reason(reason))
        self.replicate_pace = Gauge(
            "mediagen_replicate_pace_per_second",
            "Requests a second the operator lets go to Replicate once a burst is spent, by kind (create, other): "
            'the documented allowance, less after 429s (see mediagen_replicate_requests_total{code="429"}).',
            ["kind"],
            registry=r,
        )
        self.replicate_burst = Gauge(
            "mediagen_replicate_burst_estimate",
            "Requests the operator believes Replicate accepts at once, by kind: what it lets go after a quiet spell.",
            ["kind"],
            registry=r,
        )
        self._in_flight = _InFlight(clock)  # epoch seconds: the ages of generations in flight
        r.register(self._in_flight)
        if process_metrics:
            ProcessCollector(registry=r)

    # --- hooks --------------------------------------------------------------------------------------------

    def started(self, generator: str) -> None:
        """The operator is up with ``generator`` (``replicate`` or ``mock``)."""
        self.info.labels(version=_version(), generator=generator).set(1)

    def in_flight(self, key: str, phase: Phase | None, since: float) -> None:
        """Resource ``key`` (its uid) is in flight in ``phase`` since ``since`` (epoch seconds); None: no more."""
        self._in_flight.set(key, phase, since)

    def finished(self, phase: Phase, reason: str, duration_seconds: float | None = None) -> None:
        """One generation reached ``phase``; ``duration_seconds`` from its creation, when known."""
        self.generations.labels(phase=phase.value, reason=self._reason(reason)).inc()
        if duration_seconds is not None:
            self.generation_duration.labels(phase=phase.value).observe(max(0.0, duration_seconds))

    def prediction_finished(self, model: str, prediction: Prediction) -> None:
        """A prediction reached a final status on Replicate: queue and run time, and its billed time per model."""
        status = prediction.status if prediction.status in TERMINAL_STATUSES else "unknown"
        self.predictions.labels(status=status).inc()
        created, started, completed = prediction.created_at, prediction.started_at, prediction.completed_at
        if created is not None and started is not None:
            self.queue_duration.observe(max(0.0, (started - created).total_seconds()))
        run = prediction.predict_time_seconds
        if run is None and started is not None and completed is not None:
            run = (completed - started).total_seconds()
        if run is not None:
            self.prediction_duration.labels(status=status).observe(max(0.0, run))
        if prediction.predict_time_seconds is not None:
            self.predict_seconds.labels(model=self._model(model)).inc(max(0.0, prediction.predict_time_seconds))

    def replicate_request(self, endpoint: str, code: str, seconds: float) -> None:
        """One request to Replicate answered ``code`` (or ``error``) after ``seconds``."""
        self.replicate_requests.labels(endpoint=endpoint, code=code).inc()
        self.replicate_latency.labels(endpoint=endpoint).observe(seconds)

    def pace(self, kind: str, per_second: float, burst: float) -> None:
        """The request pacer's current pace and burst estimate for ``kind`` (``create`` or ``other``)."""
        self.replicate_pace.labels(kind=kind).set(per_second)
        self.replicate_burst.labels(kind=kind).set(burst)

    def retry(self, reason: str) -> None:
        """One retry spent."""
        self.retries.labels(reason=self._reason(reason)).inc()

    def recovery(self, found: bool) -> None:
        """A lost create was looked up on Replicate."""
        self.recoveries.labels(outcome="found" if found else "not_found").inc()

    def upload(self, seconds: float, sizes: Sequence[int] | None) -> None:
        """An output copy finished: ``sizes`` of the stored objects, or None when it failed."""
        self.upload_duration.labels(result="failure" if sizes is None else "success").observe(seconds)
        if sizes is not None:
            self.upload_objects.inc(len(sizes))
            self.upload_bytes.inc(sum(sizes))

    def progress_write(self) -> None:
        """Count one progress write."""
        self.progress_writes.inc()

    def webhook(self, outcome: str) -> None:
        """One webhook delivery ended in ``outcome`` (``accepted``, ``ignored``, ``unknown`` or ``rejected``)."""
        self.webhook_deliveries.labels(outcome=outcome if outcome in _WEBHOOK_OUTCOMES else "rejected").inc()

    # --- serving ------------------------------------------------------------------------------------------

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns the bound port."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)

        def handle_error(request: object, client_address: tuple[str, int]) -> None:
            # socketserver would print a bare traceback to stderr: keep every line of the process in the log format.
            log.warning("serving /metrics to %s failed", client_address[0], exc_info=True)

        setattr(server, "handle_error", handle_error)  # noqa: B010 - replacing a method on this one server
        return int(server.server_port)
