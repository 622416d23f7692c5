"""Prometheus metrics of the operator. Label values are bounded: phases and reasons, never names or ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from mediagen.api.models import Phase


class Metrics:
    """The operator's metrics, on their own registry so tests and several operators in one process don't clash."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.generations = Counter(
            "mediagen_generations_total",
            "MediaGenerations that reached a final phase, by phase and reason.",
            ["phase", "reason"],
            registry=self.registry,
        )
        self.progress_writes = Counter(
            "mediagen_progress_status_writes_total",
            "Rate-limited progress writes to the status (counted apart from the three lifecycle writes).",
            registry=self.registry,
        )

    def finished(self, phase: Phase, reason: str) -> None:
        """Count one generation reaching ``phase``."""
        self.generations.labels(phase=phase.value, reason=reason).inc()

    def progress_write(self) -> None:
        """Count one progress write."""
        self.progress_writes.inc()
