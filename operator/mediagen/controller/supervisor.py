"""Keeps one :class:`~mediagen.controller.worker.Worker` task per MediaGeneration that has work to do.

kopf delivers watch events; the supervisor routes each to its resource's worker, starting one when none
runs. A worker ends itself when its resource needs nothing more (a final phase without TTL), so finished
resources cost no task. A worker whose task dies (a bug: workers do not raise) is restarted by the watchdog
without waiting for a watch event, which may never come: kopf resumes its watch where it left off.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from mediagen.controller.watch_versions import Versions
from mediagen.controller.worker import Worker, backoff_seconds
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import Prediction

log = logging.getLogger(__name__)

RECENTLY_DELETED = 10_000
WorkerFactory = Callable[..., Worker]
"""``factory(body, deps, refresh=...)``: how workers are made (tests inject failing ones)."""


class Supervisor:
    """Routes watch events to per-resource workers, and restarts workers that die."""

    def __init__(self, deps: WorkerDeps, *, worker_factory: WorkerFactory = Worker) -> None:
        self.deps = deps
        self._factory = worker_factory
        self._workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        # The versions each ended worker last held: watch events lag behind our own writes, and an event older
        # than that must not start a new worker on an outdated body (it would redo finished work).
        self._ended: dict[str, Versions] = {}
        # Deleted lately: a late webhook for one of them is answered as done with, not as unknown (bounded).
        self._deleted: OrderedDict[str, None] = OrderedDict()
        self._deaths: dict[str, int] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self.restarted = 0
        """How many dead workers the watchdog restarted."""

    @property
    def active(self) -> int:
        """How many workers are running."""
        return len(self._workers)

    def observe(self, event_type: str | None, body: dict[str, Any]) -> None:
        """Handle one watch event (``ADDED``, ``MODIFIED``, ``DELETED``, or None for the initial listing)."""
        uid = body.get("metadata", {}).get("uid")
        if not uid:
            return
        entry = self._workers.get(uid)
        if event_type == "DELETED":
            self._ended.pop(uid, None)
            self._deaths.pop(uid, None)
            self._deleted[uid] = None
            if len(self._deleted) > RECENTLY_DELETED:
                self._deleted.popitem(last=False)
            if entry is not None:
                entry[1].cancel()
            return
        if entry is not None and not entry[1].done():
            entry[0].update(body)
            return
        if entry is not None:
            self._forget(uid, entry[1])  # it ended and its done-callback has not run yet
        ended = self._ended.get(uid)
        if ended is not None and not ended.is_news(body):
            return  # not newer than what the last worker held when it ended: nothing new to do
        self._ended.pop(uid, None)
        self._start(uid, body)

    def offer(self, uid: str, attempt: int, prediction: Prediction) -> bool | None:
        """Hand a webhook-delivered prediction to the worker of resource ``uid``.

        True: used. False: not needed (a repeat, or the resource's work here has ended). None: this process has
        never seen the resource (a standby replica, or the initial listing is still under way)."""
        entry = self._workers.get(uid)
        if entry is None or entry[1].done():
            return False if uid in self._ended or uid in self._deleted else None
        return entry[0].offer(attempt, prediction)

    def _start(self, uid: str, body: dict[str, Any], *, refresh: bool = False) -> None:
        worker = self._factory(body, self.deps, refresh=refresh)
        task = asyncio.create_task(worker.run(), name=f"mediagen-worker-{worker.label}")
        self._workers[uid] = (worker, task)
        task.add_done_callback(functools.partial(self._forget, uid))

    def _forget(self, uid: str, task: asyncio.Task[None]) -> None:
        entry = self._workers.get(uid)
        if entry is None or entry[1] is not task:
            return
        del self._workers[uid]
        if task.cancelled():
            return  # deleted (or shutting down): no event will follow, nothing to do
        error = task.exception()
        if error is None:
            self._ended[uid] = entry[0].versions
            self._deaths.pop(uid, None)
            return
        # A worker died without a decision. Restart it from what it last held (re-read first), after a backoff
        # so that a bug that kills every try does not spin.
        deaths = self._deaths[uid] = self._deaths.get(uid, 0) + 1
        delay = backoff_seconds(deaths)
        log.error(
            "worker of %s died (%s: %s); restarting it in %.0fs",
            entry[0].label,
            type(error).__name__,
            error,
            delay,
            exc_info=error,
        )
        restart = asyncio.create_task(self._restart_later(uid, entry[0].body, delay))
        self._restarts.add(restart)
        restart.add_done_callback(self._restarts.discard)

    async def _restart_later(self, uid: str, body: dict[str, Any], delay: float) -> None:
        await self.deps.clock.sleep(delay)
        if uid in self._workers or uid in self._deleted:
            return  # a watch event started one meanwhile, or the resource is gone
        self.restarted += 1
        self._start(uid, body, refresh=True)

    async def shutdown(self) -> None:
        """Stop every worker. Nothing is lost: the next operator resumes from the resources."""
        tasks = [task for _, task in self._workers.values()] + list(self._restarts)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._ended.clear()
