"""How a worker takes in what it learns about its prediction: answers to its own calls (create, poll, cancel,
recovery) and Replicate's completion webhooks, which may arrive before, during or after any of those calls.

States only move forward: a poll answered before a delivery arrived must not undo the delivery, and a delivery
that beats the create's own response is held until the create returns the same id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from mediagen.controller.worker_telemetry import Telemetry
from mediagen.generators.base import Prediction
from mediagen.reconcile.state import Memory


class Intake:
    """Folds predictions into a worker's :class:`Memory`; wakes the worker for a webhook it can use."""

    def __init__(
        self, memory: Memory, body: Callable[[], dict[str, Any]], telemetry: Telemetry, wake: asyncio.Event
    ) -> None:
        self._memory = memory
        self._body = body
        self._telemetry = telemetry
        self._wake = wake
        self._delivered: Prediction | None = None

    def remember(self, prediction: Prediction, attempt: int) -> None:
        """What a call of ours returned (or a delivery we use): the latest known state of ``attempt``."""
        known, delivered = self._memory.prediction, self._delivered
        if not prediction.terminal:
            if known is not None and known.id == prediction.id and known.terminal:
                return
            if delivered is not None and delivered.id == prediction.id:
                prediction = delivered
        self._delivered = None
        self._memory.prediction, self._memory.prediction_attempt = prediction, attempt
        self._telemetry.prediction_seen(prediction)

    def offer(self, attempt: int, prediction: Prediction) -> bool:
        """A finished prediction delivered by a webhook: act on it now instead of at the next poll.

        Used only when it is the prediction this worker waits for (the id is in the signed body, the attempt
        only in the URL), so a replayed delivery for another resource changes nothing. Returns True if used."""
        known = self._memory.prediction
        if known is None:
            recorded = (self._body().get("status") or {}).get("prediction") or {}
            if recorded.get("id") != prediction.id:
                self._delivered = prediction  # the create has not returned yet (or it is not ours: dropped then)
                return False
            attempt = int(recorded.get("attempt") or attempt)
        elif known.id != prediction.id:
            self._delivered = prediction
            return False
        elif known.terminal:
            return False  # a repeated delivery, or the poll was quicker
        else:
            attempt = self._memory.prediction_attempt or attempt
        self.remember(prediction, attempt)
        self._wake.set()
        return True
