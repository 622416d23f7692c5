"""Everything a worker needs from the outside, injected: clients, limits, the clock, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from mediagen.controller.metrics import Metrics
from mediagen.generators.base import Generator
from mediagen.kube.client import Kube
from mediagen.reconcile.decide import Pacing
from mediagen.storage.base import ObjectStore
from mediagen.transfer import Downloader


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class Clock(Protocol):
    """Time as the workers see it. Production uses :class:`SystemClock`; unit tests a virtual clock, so that a
    minute of polling or a backoff of seconds costs them no real time."""

    def now(self) -> dt.datetime:
        """Wall-clock time (aware, UTC): what decisions compare with timestamps in the resource."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: for durations."""
        ...

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep ``seconds``; return early once ``wake`` is set."""
        ...

    async def wait(self, awaitable: Awaitable[object], seconds: float) -> bool:
        """Wait up to ``seconds`` for ``awaitable`` (a task or future, left running); True when it is done."""
        ...


class SystemClock:
    """:class:`Clock` on the system's clocks and the event loop's timers."""

    def now(self) -> dt.datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        if seconds <= 0:
            return
        if wake is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=seconds)

    async def wait(self, awaitable: Awaitable[object], seconds: float) -> bool:
        future = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({future}, timeout=max(0.0, seconds))
        return bool(done)


@dataclass
class WorkerDeps:
    """The operator's collaborators. Production builds them from Settings (:mod:`.wiring`); tests fake them."""

    generator: Generator
    store: ObjectStore
    downloader: Downloader
    kube: Kube
    inflight: asyncio.Semaphore
    transfers: asyncio.Semaphore
    pacing: Pacing = field(default_factory=Pacing)
    metrics: Metrics = field(default_factory=Metrics)
    clock: Clock = field(default_factory=SystemClock)
