"""Everything a worker needs from the outside, injected: clients, limits, clocks, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mediagen.controller.metrics import Metrics
from mediagen.generators.base import Generator
from mediagen.kube.client import Kube
from mediagen.reconcile.decide import Pacing
from mediagen.storage.base import ObjectStore
from mediagen.transfer import Downloader


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


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
    progress_interval: float = 5.0
    delete_timeout: float = 60.0
    metrics: Metrics = field(default_factory=Metrics)
    now: Callable[[], dt.datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
