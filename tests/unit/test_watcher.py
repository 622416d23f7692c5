"""The operator's own watch: a listing, then events from the list's version; bookmarks move the version on without
an event; an expired version lists again; a dropped watch resumes where it left off, after a pause."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mediagen.controller.watcher import Watch
from mediagen.kube.client import WatchEvent
from mediagen.kube.errors import Expired, Unavailable


def obj(name: str, version: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": version}}


class ScriptedKube:
    """Answers listings and watches from a script; each watch takes the next entry (events, then an error or the
    server's clean end). When the script runs out the test is over."""

    def __init__(self, listings: list[tuple[list[dict[str, Any]], str]], watches: list[list[Any]]) -> None:
        self.listings = listings
        self.watches = watches
        self.watched_from: list[str] = []

    async def list_all(self, namespace: str | None) -> tuple[list[dict[str, Any]], str]:
        return self.listings.pop(0)

    async def watch(self, namespace: str | None, resource_version: str) -> AsyncIterator[WatchEvent]:
        self.watched_from.append(resource_version)
        if not self.watches:
            raise asyncio.CancelledError  # the end of the test
        for step in self.watches.pop(0):
            if isinstance(step, Exception):
                raise step
            yield step


async def run(kube: ScriptedKube) -> tuple[Watch, list[tuple[str | None, str]], list[float]]:
    seen: list[tuple[str | None, str]] = []
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    watch = Watch(kube, "ns", lambda kind, body: seen.append((kind, body["metadata"]["name"])), sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await watch.run()
    return watch, seen, pauses


async def test_a_listing_then_the_events_after_its_version() -> None:
    kube = ScriptedKube(
        [([obj("a", "5"), obj("b", "6")], "10")],
        [[WatchEvent("ADDED", obj("c", "11")), WatchEvent("MODIFIED", obj("a", "12"))], []],
    )
    watch, seen, pauses = await run(kube)
    assert seen == [(None, "a"), (None, "b"), ("ADDED", "c"), ("MODIFIED", "a")]
    # The server ended the first watch cleanly: the next one resumes at once from the last version seen.
    assert kube.watched_from == ["10", "12", "12"] and pauses == []
    assert watch.listings == 1


async def test_a_bookmark_moves_the_version_on_without_an_event() -> None:
    kube = ScriptedKube([([], "10")], [[WatchEvent("BOOKMARK", obj("", "20"))]])
    _, seen, _ = await run(kube)
    assert seen == [] and kube.watched_from == ["10", "20"]


async def test_an_expired_version_lists_again() -> None:
    kube = ScriptedKube(
        [([obj("a", "5")], "10"), ([obj("a", "30")], "31")],
        [[WatchEvent("MODIFIED", obj("a", "11")), Expired("too old resource version")], []],
    )
    watch, seen, pauses = await run(kube)
    assert seen == [(None, "a"), ("MODIFIED", "a"), (None, "a")]
    assert kube.watched_from == ["10", "31", "31"] and watch.listings == 2 and pauses == []


async def test_a_dropped_watch_resumes_where_it_left_off_after_a_pause() -> None:
    kube = ScriptedKube(
        [([], "10")],
        [
            [WatchEvent("ADDED", obj("a", "11")), Unavailable("connection reset")],
            [WatchEvent("DELETED", obj("a", "12"))],
        ],
    )
    watch, seen, pauses = await run(kube)
    assert seen == [("ADDED", "a"), ("DELETED", "a")]
    assert kube.watched_from == ["10", "11", "12"] and pauses == [1.0] and watch.listings == 1


async def test_a_bug_in_observing_does_not_end_the_watch() -> None:
    kube = ScriptedKube(
        [([], "10")], [[WatchEvent("ADDED", obj("boom", "11"))], [WatchEvent("ADDED", obj("ok", "12"))]]
    )
    seen: list[str] = []
    pauses: list[float] = []

    def observe(kind: str | None, body: dict[str, Any]) -> None:
        if body["metadata"]["name"] == "boom":
            raise RuntimeError("a bug")
        seen.append(body["metadata"]["name"])

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    watch = Watch(kube, "ns", observe, sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await watch.run()
    # The event that met the bug is not delivered again (it would meet it again, for ever): the watch resumes after it.
    assert seen == ["ok"] and pauses == [1.0] and kube.watched_from == ["10", "11", "12"]
