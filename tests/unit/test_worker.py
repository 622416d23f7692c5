"""The worker in-process, with the mock generator, an in-memory bucket and an in-memory Kubernetes: fast checks
of the I/O loop around decide() (the integration tests repeat them against the real parts)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mediagen.controller.worker import Worker
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import CreateRequest, Prediction
from mediagen.generators.mock import MockGenerator
from mediagen.kube.client import Conflict
from mediagen.reconcile.decide import Pacing
from mediagen.reconcile.state import FINALIZER, PENDING_ANNOTATION
from mediagen.storage.base import ObjectURL, StoredObject
from mediagen.transfer import Downloader


class MemoryKube:
    """Enough of the API server for one object: merge patches, resourceVersions, conflicts, events."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.conflicts_to_raise = 0
        self.deleted = False

    def _bump(self) -> dict[str, Any]:
        meta = self.body["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return copy.deepcopy(self.body)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.body)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.writes.append("status")
        self.body.setdefault("status", {}).update(patch["status"])
        return self._bump()

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        meta = patch["metadata"]
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            raise Conflict("HTTP 409")
        if meta.get("resourceVersion") not in (None, self.body["metadata"]["resourceVersion"]):
            raise Conflict("HTTP 409")
        self.writes.append("metadata")
        target = self.body["metadata"]
        if "finalizers" in meta:
            target["finalizers"] = meta["finalizers"]
        target.setdefault("annotations", {}).update(meta.get("annotations", {}))
        return self._bump()

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        self.deleted = True

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))


class MemoryStore:
    """An in-memory bucket."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_stream(
        self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
    ) -> StoredObject:
        data = b"".join(chunks)
        self.objects[key] = data
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type)

    def head(self, key: str) -> StoredObject | None:
        return None

    def url_for(self, key: str) -> ObjectURL:
        return ObjectURL(f"https://media.example/{key}")

    def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


def resource(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "gen", "namespace": "ns", "uid": "u-1", "generation": 1, "resourceVersion": "1"},
        "spec": {"model": "a/b", "input": {"prompt": "a fox", "width": 64, "height": 64}, **spec},
    }


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def deps_for(kube: MemoryKube, store: MemoryStore, generator: MockGenerator) -> WorkerDeps:
    downloader = Downloader(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404))))
    return WorkerDeps(
        generator=generator,
        store=store,
        downloader=downloader,
        kube=kube,
        inflight=asyncio.Semaphore(1),
        transfers=asyncio.Semaphore(1),
        pacing=Pacing(poll_initial_seconds=0.01, poll_max_seconds=0.05),
        progress_interval=0.5,
    )


async def test_a_mock_generation_succeeds_in_two_writes(store: MemoryStore) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator())
    worker = Worker(copy.deepcopy(kube.body), deps)
    await asyncio.wait_for(worker.run(), timeout=10)
    status = kube.body["status"]
    assert status["phase"] == "Succeeded" and status["reason"] == "Succeeded"
    # Finalizer + marker, then the final status: an instant prediction needs no separate id write.
    assert kube.writes == ["metadata", "status"]
    assert FINALIZER in kube.body["metadata"]["finalizers"]
    assert '"attempt":1' in kube.body["metadata"]["annotations"][PENDING_ANNOTATION]
    (key,) = store.objects
    assert store.objects[key].startswith(b"\x89PNG") and status["outputs"][0]["key"] == key
    assert kube.events == [("Normal", "Succeeded")]
    assert not deps.inflight.locked()  # the in-flight slot was given back


async def test_cancel_wakes_a_waiting_worker_at_once(store: MemoryStore) -> None:
    kube = MemoryKube(resource())
    generator = MockGenerator(latency_seconds=3600)
    deps = deps_for(kube, store, generator)
    deps.pacing = Pacing(poll_initial_seconds=60, poll_max_seconds=60)  # it would sleep a minute between polls
    worker = Worker(copy.deepcopy(kube.body), deps)
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        if (kube.body.get("status") or {}).get("prediction"):
            break
        await asyncio.sleep(0.01)
    assert kube.body["status"]["phase"] == "Running"
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    began = asyncio.get_running_loop().time()
    worker.update(kube._bump())
    await asyncio.wait_for(task, timeout=5)
    assert asyncio.get_running_loop().time() - began < 2
    assert (kube.body["status"]["phase"], kube.body["status"]["observedGeneration"]) == ("Canceled", 2)
    assert kube.body["status"]["prediction"]["status"] == "canceled"


async def test_a_conflict_rereads_the_object_and_carries_on(store: MemoryStore) -> None:
    kube = MemoryKube(resource())
    kube.conflicts_to_raise = 1
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator()))
    await asyncio.wait_for(worker.run(), timeout=10)
    assert kube.body["status"]["phase"] == "Succeeded"


async def test_stale_watch_events_do_not_roll_the_worker_back(store: MemoryStore) -> None:
    kube = MemoryKube(resource())
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator()))
    newer = kube._bump()
    worker.update(newer)
    worker.update(resource())  # resourceVersion 1: older than what the worker has
    assert worker.body["metadata"]["resourceVersion"] == newer["metadata"]["resourceVersion"]


async def test_deletion_with_policy_delete_removes_objects_and_releases_the_finalizer(store: MemoryStore) -> None:
    kube = MemoryKube(resource(output={"deletionPolicy": "Delete"}))
    deps = deps_for(kube, store, MockGenerator())
    await asyncio.wait_for(Worker(copy.deepcopy(kube.body), deps).run(), timeout=10)
    assert store.objects
    kube.body["metadata"]["deletionTimestamp"] = dt.datetime.now(dt.UTC).isoformat()
    await asyncio.wait_for(Worker(kube._bump(), deps).run(), timeout=10)
    assert store.objects == {}
    assert kube.body["metadata"]["finalizers"] == []


async def test_an_unreachable_api_server_is_waited_out_not_fatal(store: MemoryStore) -> None:
    class FlakyKube(MemoryKube):
        outages = 2

        async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
            if self.outages:
                self.outages -= 1
                raise ConnectionRefusedError("kube-apiserver is restarting")
            return await super().patch_status(namespace, name, patch)

    kube = FlakyKube(resource())
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator()))
    await asyncio.wait_for(worker.run(), timeout=10)  # backs off 1 s, then 2 s
    assert kube.body["status"]["phase"] == "Succeeded"
    assert len(store.objects) == 1  # the retried final write reused the copy already made


# --- webhook deliveries (Worker.offer) -------------------------------------------------------------------------

PNG_URI = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()


def finished(prediction: Prediction) -> Prediction:
    """``prediction`` as its ``completed`` webhook would carry it."""
    return dataclasses.replace(prediction, status="succeeded", output=[PNG_URI])


class SlowMock(MockGenerator):
    """A mock whose predictions run for an hour, counting polls; hooks let a test act mid-call."""

    def __init__(self) -> None:
        super().__init__(latency_seconds=3600)
        self.polls = 0
        self.after_create: Callable[[Prediction], object] | None = None
        self.during_poll: Callable[[Prediction], object] | None = None

    async def create(self, request: CreateRequest) -> Prediction:
        prediction = await super().create(request)
        if self.after_create is not None:
            self.after_create(prediction)
        return prediction

    async def get(self, prediction_id: str) -> Prediction:
        self.polls += 1
        prediction = await super().get(prediction_id)
        if self.during_poll is not None:
            self.during_poll(prediction)
        return prediction


def slow_worker(store: MemoryStore, *, poll_seconds: float) -> tuple[MemoryKube, SlowMock, Worker]:
    """A worker on an hour-long mock prediction, polling every ``poll_seconds`` (60: only a safety net)."""
    kube, generator = MemoryKube(resource()), SlowMock()
    deps = deps_for(kube, store, generator)
    deps.pacing = Pacing(poll_initial_seconds=poll_seconds, poll_max_seconds=poll_seconds)
    return kube, generator, Worker(copy.deepcopy(kube.body), deps)


async def _running(kube: MemoryKube) -> str:
    for _ in range(500):
        recorded = (kube.body.get("status") or {}).get("prediction") or {}
        if recorded.get("id"):
            return str(recorded["id"])
        await asyncio.sleep(0.01)
    raise AssertionError("the prediction was never recorded")


async def test_a_webhook_delivery_finishes_a_waiting_worker_without_another_poll(store: MemoryStore) -> None:
    kube, generator, worker = slow_worker(store, poll_seconds=60)
    task = asyncio.create_task(worker.run())
    prediction_id = await _running(kube)
    polls = generator.polls
    current = await MockGenerator.get(generator, prediction_id)
    assert worker.offer(1, finished(current)) is True
    await asyncio.wait_for(task, timeout=5)
    assert kube.body["status"]["phase"] == "Succeeded"
    assert generator.polls == polls  # the delivery replaced the poll
    assert kube.writes == ["metadata", "status", "status"]
    assert worker.offer(1, finished(current)) is False  # a repeated delivery changes nothing


async def test_a_delivery_for_another_prediction_is_not_used(store: MemoryStore) -> None:
    kube, generator, worker = slow_worker(store, poll_seconds=60)
    task = asyncio.create_task(worker.run())
    prediction_id = await _running(kube)
    current = await MockGenerator.get(generator, prediction_id)
    # A replayed delivery of someone else's prediction: its id is signed, the resource in the URL is not.
    assert worker.offer(1, finished(dataclasses.replace(current, id="someone-elses"))) is False
    await asyncio.sleep(0.2)
    assert kube.body["status"]["phase"] == "Running" and not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_delivery_that_beats_the_create_response_is_held_for_it(store: MemoryStore) -> None:
    kube, generator, worker = slow_worker(store, poll_seconds=60)
    # Replicate's webhook arrives while the create's own (non-terminal) response is still on its way.
    generator.after_create = lambda p: worker.offer(1, finished(p))
    await asyncio.wait_for(worker.run(), timeout=5)
    assert kube.body["status"]["phase"] == "Succeeded" and generator.polls == 0


async def test_a_poll_answered_before_the_delivery_does_not_undo_it(store: MemoryStore) -> None:
    kube, generator, worker = slow_worker(store, poll_seconds=0.05)
    # The delivery lands while a poll is in flight; the poll then returns the older, running state.
    generator.during_poll = lambda p: worker.offer(1, finished(p))
    await asyncio.wait_for(worker.run(), timeout=5)
    assert kube.body["status"]["phase"] == "Succeeded" and generator.polls == 1


async def test_cancel_after_the_end_is_acknowledged_in_one_write_and_changes_nothing(store: MemoryStore) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator())
    await asyncio.wait_for(Worker(copy.deepcopy(kube.body), deps).run(), timeout=10)
    finished = copy.deepcopy(kube.body["status"])
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    kube.writes.clear()
    await asyncio.wait_for(Worker(kube._bump(), deps).run(), timeout=10)
    status = kube.body["status"]
    assert kube.writes == ["status"] and kube.events == [("Normal", "Succeeded")]  # no event of its own
    assert status["observedGeneration"] == 2 and {c["observedGeneration"] for c in status["conditions"]} == {2}
    assert status["conditions"] == [c | {"observedGeneration": 2} for c in finished["conditions"]]
    assert {k: v for k, v in status.items() if k not in ("observedGeneration", "conditions")} == {
        k: v for k, v in finished.items() if k not in ("observedGeneration", "conditions")
    }
