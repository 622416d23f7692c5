"""Prometheus metrics of the gateway. Label values are bounded: route templates, methods (unknown ones are
``other``), status codes, reasons."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class GatewayMetrics:
    """The gateway's metrics, on their own registry (several apps in one process don't clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "mediagen_gateway_requests_total",
            "HTTP requests, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mediagen_gateway_request_duration_seconds",
            "HTTP request latency, by method and route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.generations = Counter(
            "mediagen_gateway_generations_total",
            "POST /generate outcomes: created, replayed (idempotent retry) or conflict.",
            ["outcome"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "mediagen_gateway_auth_failures_total",
            "Rejected credentials, by reason (missing, malformed, invalid).",
            ["reason"],
            registry=self.registry,
        )
        self.throttled = Counter(
            "mediagen_gateway_throttled_total",
            "Requests refused with 429, by reason: rate (per-token request rate) or quota (tenant's generations in "
            "flight).",
            ["reason"],
            registry=self.registry,
        )
        self.cancels = Counter(
            "mediagen_gateway_cancels_total", "Cancel requests that set spec.cancel.", registry=self.registry
        )
