"""The transfer cap holds while workers are canceled: a slot is given back only once its copy really stopped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx

from mediagen.controller.outputs import store_outputs
from mediagen.generators.base import Prediction
from mediagen.generators.mock import MockGenerator
from mediagen.reconcile.state import View
from mediagen.storage.base import StoredObject
from mediagen.transfer import Downloader
from tests.support.virtual_clock import until
from tests.support.worker_fixtures import MemoryKube, MemoryStore, deps_for, resource

CHUNK = b"\0" * 65536


class GatedBody(httpx.SyncByteStream):
    """An endless download that sends a chunk each time the test opens the gate."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.gate.wait()
            yield CHUNK


class CountingStore(MemoryStore):
    """Counts the copies streaming into it at once, and the most there ever were."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.active = self.most = self.started = 0

    def put_stream(
        self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
    ) -> StoredObject:
        with self.lock:
            self.active += 1
            self.started += 1
            self.most = max(self.most, self.active)
        try:
            for _ in chunks:
                pass
            raise AssertionError("an endless download ended")
        finally:
            with self.lock:
                self.active -= 1


async def test_a_canceled_copy_keeps_its_slot_until_its_thread_stops() -> None:
    gate = threading.Event()

    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=GatedBody(gate), headers={"Content-Type": "video/mp4"})

    store = CountingStore()
    deps = deps_for(MemoryKube(resource()), store, MockGenerator())
    deps.downloader = Downloader(
        httpx.Client(transport=httpx.MockTransport(route)), resolver=lambda host, port: ["93.184.215.14"]
    )
    deps.transfers = asyncio.Semaphore(1)
    view = View.from_body(resource())
    prediction = Prediction(id="p1", status="succeeded", output=["https://replicate.delivery/a.mp4"])

    first = asyncio.create_task(store_outputs(deps, view, prediction))
    await until(lambda: store.active == 1)
    second = asyncio.create_task(store_outputs(deps, view, prediction))
    first.cancel()  # the resource was deleted (or the operator stops) in the middle of the copy
    for _ in range(100):
        await asyncio.sleep(0)  # the second copy gets every chance to start early
    assert store.started == 1  # it did not: the first copy still runs, and holds the only slot
    gate.set()  # chunks flow: the first copy sees its cancel at the next one and stops
    await until(lambda: first.done() and store.started == 2)
    assert store.most == 1
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    assert store.active == 0
