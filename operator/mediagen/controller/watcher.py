"""The operator's watch on MediaGenerations: list, then watch from the list's version, for as long as it runs.

kopf's watch fed every event through its handler machinery (causes, kwargs, loggers, context variables, the
event's JSON parsed into its own wrappers): about a quarter of the operator's CPU per generation, profiled with
py-spy, for an operator that registers a single event handler. This watch parses each line once and hands the
object to the supervisor. It resumes where it left off: after the server ends a watch (every
:data:`~mediagen.kube.client.WATCH_SECONDS`), after a dropped connection (with a backoff), and lists again when
the version it holds has expired (410), as kopf does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mediagen.kube.client import WatchEvent
from mediagen.kube.errors import Expired, KubeError

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
"""The pause before watching again after an error (kopf's ``reconnect_backoff`` here was the same)."""
Observe = Callable[[str | None, dict[str, Any]], None]
"""``observe(event_type, object)``: None for the objects of a listing, else ADDED, MODIFIED or DELETED."""


class Watchable(Protocol):
    """What the watch needs of the Kubernetes adapter."""

    async def list_all(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        """Every object and the list's resourceVersion."""
        ...

    def watch(self, namespace: str | None, resource_version: str) -> Any:
        """An async iterator of :class:`~mediagen.kube.client.WatchEvent` after ``resource_version``."""
        ...


class Watch:
    """Lists and watches MediaGenerations in ``namespace`` (None: all) and reports each to ``observe``."""

    def __init__(
        self,
        kube: Watchable,
        namespace: str | None,
        observe: Observe,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        reconnect_seconds: float = RECONNECT_SECONDS,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self._observe = observe
        self._sleep = sleep
        self._reconnect = reconnect_seconds
        self.version = ""
        """The resourceVersion the watch resumes from ("" before the first listing)."""
        self.listings = 0
        """How many times the objects were listed (1 plus one per expired version)."""

    async def run(self) -> None:
        """Watch until canceled. Never raises otherwise: errors are logged and the watch resumes."""
        while True:
            try:
                if not self.version:
                    await self._list()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info("the watch's resourceVersion %s expired; listing again", self.version)
                self.version = ""
            except KubeError as err:
                kind = type(err).__name__
                log.warning("watching MediaGenerations: %s: %s; again in %g s", kind, err, self._reconnect)
                await self._sleep(self._reconnect)
            except Exception:  # a bug must not end the watch for the rest of the process's life
                log.exception("watching MediaGenerations failed; again in %g s", self._reconnect)
                await self._sleep(self._reconnect)

    async def _list(self) -> None:
        items, version = await self._kube.list_all(self._namespace)
        self.listings += 1
        for item in items:
            self._observe(None, item)
        self.version = version

    async def _watch(self) -> None:
        events = self._kube.watch(self._namespace, self.version)
        async with contextlib.aclosing(events):
            async for event in events:
                self._take(event)

    def _take(self, event: WatchEvent) -> None:
        # The version moves on first: an event that meets a bug is not delivered again (and again, for ever).
        version = (event.object.get("metadata") or {}).get("resourceVersion")
        if version:
            self.version = str(version)
        if event.type != "BOOKMARK":
            self._observe(event.type, event.object)
