"""What a worker tells the world: events on its resource, log lines that carry the resource and the prediction,
and the metrics of :mod:`mediagen.controller.metrics`. Nothing here decides anything, and none of it is a write to
the MediaGeneration itself (events are objects of their own)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from mediagen.api.types import Phase
from mediagen.controller.metrics import model_label
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import TERMINAL_STATUSES, Prediction

log = logging.getLogger("mediagen.controller.worker")


def _creation_epoch(body: dict[str, Any], fallback: float) -> float:
    """metadata.creationTimestamp as epoch seconds (``fallback`` when missing or unreadable)."""
    try:
        return dt.datetime.fromisoformat(str(body["metadata"]["creationTimestamp"])).timestamp()
    except (KeyError, TypeError, ValueError):
        return fallback


class Telemetry:
    """Events, logs and metrics for one resource. ``body`` returns the worker's current body."""

    def __init__(self, deps: WorkerDeps, body: Callable[[], dict[str, Any]], prediction_id: Callable[[], str | None]):
        self.deps = deps
        self._body = body
        self._prediction_id = prediction_id
        first = body()
        spec = first.get("spec") or {}
        self._model = model_label(spec.get("model"), spec.get("deployment"))
        meta = first.get("metadata", {})
        self._key = str(meta.get("uid") or self.label)
        self.created = _creation_epoch(first, deps.clock.now().timestamp())
        self._tracked_phase: Phase | None = None
        self._tracked_since = self.created
        self._finished_predictions: set[str] = set()
        self._events_in_flight: set[asyncio.Task[None]] = set()

    @property
    def label(self) -> str:
        """``namespace/name``, for log lines."""
        meta = self._body().get("metadata", {})
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def _ref(self) -> dict[str, Any]:
        """The resource's identity for log records (kopf's JSON format shows it as ``object``)."""
        meta = self._body().get("metadata", {})
        return {
            "apiVersion": "mediagen.fleek.xyz/v1alpha1",
            "kind": "MediaGeneration",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }

    def log(self, level: int, message: str, *args: object, exc_info: bool = False) -> None:
        """Log with the resource's identity and the prediction id (where known) attached."""
        prediction = self._prediction_id()
        if prediction is None:
            recorded = (self._body().get("status") or {}).get("prediction") or {}
            prediction = recorded.get("id")
        log.log(
            level,
            f"{self.label}: {message}",
            *args,
            exc_info=exc_info,
            extra={"k8s_ref": self._ref(), "prediction_id": prediction},
        )

    async def event(self, type_: str, reason: str, message: str) -> None:
        """Post an event on the resource (a write of its own, never one to the MediaGeneration)."""
        await self.deps.kube.event(self._body(), type_, reason, message)

    def event_soon(self, type_: str, reason: str, message: str) -> None:
        """Post an event without waiting for it: for events on the way to the user's result (an API round trip
        each; events are best effort anyway). :meth:`close` waits for them."""
        task = asyncio.create_task(self.deps.kube.event(self._body(), type_, reason, message))
        self._events_in_flight.add(task)
        task.add_done_callback(self._events_in_flight.discard)

    def track(self, phase: Phase | None, since: dt.datetime | None = None) -> None:
        """Report this resource to the in-flight gauges (``None``: not in flight any more), in flight ``since``
        (a generation started by an edit gives when it began; otherwise as before, at first the creation)."""
        epoch = since.timestamp() if since is not None else self._tracked_since
        if phase is not self._tracked_phase or (phase is not None and epoch != self._tracked_since):
            self._tracked_phase, self._tracked_since = phase, epoch
            self.deps.metrics.in_flight(self._key, phase, epoch)

    def prediction_seen(self, prediction: Prediction) -> None:
        """Count a prediction once when it is first seen finished (unless an earlier process recorded it so)."""
        if not prediction.terminal or prediction.id in self._finished_predictions:
            return
        self._finished_predictions.add(prediction.id)
        recorded = (self._body().get("status") or {}).get("prediction") or {}
        # Recorded as final already: an earlier process counted it (its time was billed once).
        if not (recorded.get("id") == prediction.id and recorded.get("status") in TERMINAL_STATUSES):
            self.deps.metrics.prediction_finished(self._model, prediction)

    async def close(self) -> None:
        """Not in flight any more; give the events posted in the background a moment to get out."""
        self.track(None)
        if self._events_in_flight:
            await asyncio.wait(self._events_in_flight, timeout=2)
