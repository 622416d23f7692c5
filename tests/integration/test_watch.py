"""The operator's own watch on the real API server: what exists is listed, then every change arrives in order; a
watch from an expired version is answered 410 and lists again; objects larger than a stream buffer arrive whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mediagen.api.types import API_VERSION, KIND
from mediagen.controller.watcher import Watch
from mediagen.kube.client import KubeClient
from mediagen.kube.errors import Expired
from mediagen.kube.transport import load_configuration
from mediagen_dev.controlplane import ControlPlane


def manifest(name: str, prompt: str = "a lighthouse") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"model": "owner/model", "input": {"prompt": prompt}},
    }


class Seen:
    """What a watch reported, (event type, name) in order; :meth:`until` waits for a condition on it."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, str]] = []
        self.bodies: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()

    def __call__(self, kind: str | None, body: dict[str, Any]) -> None:
        self.events.append((kind, body["metadata"]["name"]))
        self.bodies[body["metadata"]["name"]] = body
        self._changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(20):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def kube(control_plane: ControlPlane, api: None) -> AsyncIterator[KubeClient]:
    client = KubeClient(load_configuration(str(control_plane.kubeconfig)))
    yield client
    await client.aclose()


@contextlib.asynccontextmanager
async def watching(kube: KubeClient, namespace: str, version: str = "") -> AsyncIterator[tuple[Watch, Seen]]:
    seen = Seen()
    watch = Watch(kube, namespace, seen)
    watch.version = version
    task = asyncio.create_task(watch.run())
    try:
        yield watch, seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_what_exists_is_listed_then_every_change_arrives(kube: KubeClient, namespace: str) -> None:
    await kube.create(namespace, manifest("before"))
    async with watching(kube, namespace) as (watch, seen):
        await seen.until(lambda: (None, "before") in seen.events)
        created = await kube.create(namespace, manifest("after"))
        await kube.patch_status(namespace, "after", {"status": {"phase": "Pending"}})
        await kube.delete(namespace, "after", created["metadata"]["uid"])
        await seen.until(lambda: ("DELETED", "after") in seen.events)
    assert seen.events == [(None, "before"), ("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]
    assert watch.listings == 1


async def test_an_expired_version_is_refused_and_the_watch_lists_again(kube: KubeClient, namespace: str) -> None:
    for i in range(3):  # versions move on, and then some are compacted away
        await kube.create(namespace, manifest(f"old-{i}"))
    _, version = await kube.list_all(namespace)
    await kube.create(namespace, manifest("new"))
    with pytest.raises(Expired):
        async for _ in kube.watch(namespace, "1"):  # long gone from the API server's watch cache
            pass
    async with watching(kube, namespace, version="1") as (watch, seen):
        await seen.until(lambda: len(seen.events) == 4)
    assert sorted(name for _, name in seen.events) == ["new", "old-0", "old-1", "old-2"]
    assert all(kind is None for kind, _ in seen.events) and watch.listings == 1
    assert int(watch.version) > int(version)


async def test_an_object_larger_than_a_stream_buffer_arrives_whole(kube: KubeClient, namespace: str) -> None:
    note = "x" * 200_000  # three times aiohttp's 64 KiB line limit, in one watch event
    body = manifest("big")
    body["metadata"]["annotations"] = {"example.com/note": note}
    await kube.create(namespace, manifest("marker"))
    async with watching(kube, namespace) as (_, seen):
        await seen.until(lambda: (None, "marker") in seen.events)  # listed: what follows comes by the watch
        await kube.create(namespace, body)
        await seen.until(lambda: ("ADDED", "big") in seen.events)
    assert seen.bodies["big"]["metadata"]["annotations"]["example.com/note"] == note
