"""Keeps one :class:`~mediagen.controller.worker.Worker` task per MediaGeneration that has work to do.

kopf delivers watch events; the supervisor routes each to its resource's worker, starting one when none
runs. A worker ends itself when its resource needs nothing more (a final phase without TTL), so finished
resources cost no task.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from typing import Any

from mediagen.controller.worker import Worker, resource_version
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import Prediction

log = logging.getLogger(__name__)

RECENTLY_DELETED = 10_000


class Supervisor:
    """Routes watch events to per-resource workers."""

    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps
        self._workers: dict[str, tuple[Worker, asyncio.Task[None]]] = {}
        # The resourceVersion each ended worker last saw: watch events lag behind our own writes, and an event
        # older than that must not start a new worker on an outdated body (it would redo finished work).
        self._ended_at: dict[str, int] = {}
        # Deleted lately: a late webhook for one of them is answered as done with, not as unknown (bounded).
        self._deleted: OrderedDict[str, None] = OrderedDict()

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
            self._ended_at.pop(uid, None)
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
        if 0 <= resource_version(body) <= self._ended_at.get(uid, -1):
            return  # not newer than what the last worker saw when it ended: nothing new to do
        worker = Worker(body, self.deps)
        task = asyncio.create_task(worker.run(), name=f"mediagen-worker-{worker.label}")
        self._workers[uid] = (worker, task)
        task.add_done_callback(functools.partial(self._forget, uid))

    def offer(self, uid: str, attempt: int, prediction: Prediction) -> bool | None:
        """Hand a webhook-delivered prediction to the worker of resource ``uid``.

        True: used. False: not needed (a repeat, or the resource's work here has ended). None: this process has
        never seen the resource (a standby replica, or the initial listing is still under way)."""
        entry = self._workers.get(uid)
        if entry is None or entry[1].done():
            return False if uid in self._ended_at or uid in self._deleted else None
        return entry[0].offer(attempt, prediction)

    def _forget(self, uid: str, task: asyncio.Task[None]) -> None:
        entry = self._workers.get(uid)
        if entry is not None and entry[1] is task:
            del self._workers[uid]
            if not task.cancelled():  # canceled: deleted (or shutting down), so no event will follow
                self._ended_at[uid] = resource_version(entry[0].body)

    async def shutdown(self) -> None:
        """Stop every worker. Nothing is lost: the next operator resumes from the resources."""
        tasks = [task for _, task in self._workers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()
        self._ended_at.clear()
