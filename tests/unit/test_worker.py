"""The worker in-process, with the mock generator, an in-memory bucket, an in-memory Kubernetes and a virtual
clock: fast checks of the I/O loop around decide() that never sleep in real time (the integration tests repeat
them against the real parts)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
from collections.abc import Callable

import pytest

from mediagen.controller.worker import Worker
from mediagen.generators.base import CreateRequest, Prediction, ThrottledError
from mediagen.generators.mock import MockGenerator
from mediagen.reconcile.decide import Pacing
from mediagen.reconcile.state import FINALIZER, PENDING_ANNOTATION, View
from tests.support.virtual_clock import VirtualClock, until
from tests.support.worker_fixtures import MemoryKube, MemoryStore, deps_for, resource


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


async def test_a_mock_generation_succeeds_in_two_writes(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator(clock=clock.now), clock)
    worker = Worker(copy.deepcopy(kube.body), deps)
    await worker.run()
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
    assert clock.elapsed == 0  # nothing waited


async def test_a_slow_prediction_writes_its_progress_at_a_bounded_rate(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator(latency_seconds=60, clock=clock.now), clock)
    await Worker(copy.deepcopy(kube.body), deps).run()
    assert kube.body["status"]["phase"] == "Succeeded" and kube.body["status"]["progress"] == 100
    progress_writes = len(kube.writes) - 3  # marker, record, final
    # A minute at most one write per 5-s interval, fewer as polls thin out; never one per poll.
    assert 1 <= progress_writes <= 60 // 5
    assert clock.elapsed >= 60


async def test_cancel_wakes_a_waiting_worker_at_once(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator(latency_seconds=3600, clock=clock.now), clock)
    deps.pacing = Pacing(poll_initial_seconds=60, poll_max_seconds=60)  # it would sleep a minute between polls
    worker = Worker(copy.deepcopy(kube.body), deps)
    task = asyncio.create_task(worker.run())
    await until(lambda: bool((kube.body.get("status") or {}).get("prediction")))
    assert kube.body["status"]["phase"] == "Running"
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    began = clock.elapsed
    worker.update(kube._bump())
    await task
    assert clock.elapsed - began < 60  # woken, not at the next poll
    assert (kube.body["status"]["phase"], kube.body["status"]["observedGeneration"]) == ("Canceled", 2)
    assert kube.body["status"]["prediction"]["status"] == "canceled"


async def test_a_conflict_rereads_the_object_and_carries_on(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    kube.conflicts_to_raise = 1
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded"


async def test_a_conflict_whose_reread_fails_backs_off_and_carries_on(store: MemoryStore, clock: VirtualClock) -> None:
    # The marker's patch gets a 409 and the re-read after it fails once (an API-server blip): the worker used to
    # die there, and the resource stayed without a status until the operator restarted.
    kube = MemoryKube(resource())
    kube.conflicts_to_raise = 1
    kube.fail("get", ConnectionRefusedError("kube-apiserver is restarting"))
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded"
    assert kube.faults["get"] == []


async def test_deletion_survives_a_conflict_and_a_failed_reread(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator(clock=clock.now), clock)
    await Worker(copy.deepcopy(kube.body), deps).run()
    kube.body["metadata"]["deletionTimestamp"] = clock.now().isoformat()
    kube.conflicts_to_raise = 1  # the finalizer's release conflicts...
    kube.fail("get", TimeoutError("read timed out"))  # ...and the re-read after it fails once
    await Worker(kube._bump(), deps).run()
    assert kube.body["metadata"]["finalizers"] == []


async def test_stale_watch_events_do_not_roll_the_worker_back(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    stale = kube._bump()  # a version the watch has not delivered yet when our own write returns a newer one
    await worker.write_status(View.from_body(worker.body), {"status": {"phase": "Pending"}})
    ours = worker.body["metadata"]["resourceVersion"]
    worker.update(stale)
    assert worker.body["metadata"]["resourceVersion"] == ours


async def test_resource_versions_are_compared_for_equality_only(store: MemoryStore, clock: VirtualClock) -> None:
    # resourceVersions are opaque: one that is not a number (or that a number comparison would misorder) is
    # still told apart from the version a write of ours returned.
    kube = MemoryKube(resource())
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    worker.body["metadata"]["resourceVersion"] = "rv-b"
    worker.versions.took(worker.body)
    stale = resource()
    stale["metadata"]["resourceVersion"] = "rv-a"
    worker.update(stale)
    assert worker.body["metadata"]["resourceVersion"] == "rv-b"
    worker.update(copy.deepcopy(worker.body))  # the watch catches up with our write...
    newer = resource()
    newer["metadata"]["resourceVersion"] = "rv-0"  # ...so the next version is news, whatever its string
    worker.update(newer)
    assert worker.body["metadata"]["resourceVersion"] == "rv-0"


async def test_deletion_with_policy_delete_removes_objects_and_releases_the_finalizer(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource(output={"deletionPolicy": "Delete"}))
    deps = deps_for(kube, store, MockGenerator(clock=clock.now), clock)
    await Worker(copy.deepcopy(kube.body), deps).run()
    assert store.objects
    kube.body["metadata"]["deletionTimestamp"] = clock.now().isoformat()
    await Worker(kube._bump(), deps).run()
    assert store.objects == {}
    assert kube.body["metadata"]["finalizers"] == []


async def test_an_unreachable_api_server_is_waited_out_not_fatal(store: MemoryStore, clock: VirtualClock) -> None:
    kube = MemoryKube(resource())
    kube.fail("patch_status", *[ConnectionRefusedError("kube-apiserver is restarting")] * 2)
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded"
    assert len(store.objects) == 1  # the retried final write reused the copy already made
    assert clock.elapsed == 1 + 2  # backed off 1 s, then 2 s (virtual)


async def test_an_unreadable_status_is_reported_and_picked_up_once_fixed(
    store: MemoryStore, clock: VirtualClock
) -> None:
    # A hand-edited timestamp the API server accepts (it matches kube-openapi's date-time pattern) but the status
    # model cannot read: the worker used to die with a ValidationError and no word to anyone.
    body = resource()
    body["status"] = {"phase": "Pending", "startTime": "2024-01-01T00:00:00x5Z"}
    kube = MemoryKube(body)
    worker = Worker(copy.deepcopy(body), deps_for(kube, store, MockGenerator(clock=clock.now), clock))
    task = asyncio.create_task(worker.run())
    await until(lambda: ("Warning", "InvalidResource") in kube.events)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in kube.body["status"]["conditions"]}
    assert conditions["Succeeded"] == ("Unknown", "InvalidResource") and conditions["Stalled"][0] == "True"
    assert all("status.startTime" in c["message"] for c in kube.body["status"]["conditions"])
    assert not task.done()
    del kube.body["status"]["startTime"]  # someone fixes it
    worker.update(kube._bump())
    await task
    assert kube.body["status"]["phase"] == "Succeeded"
    assert kube.events.count(("Warning", "InvalidResource")) == 1


async def test_a_resource_being_deleted_is_released_even_when_its_status_is_unreadable(
    store: MemoryStore, clock: VirtualClock
) -> None:
    body = resource()
    body["metadata"] |= {"finalizers": [FINALIZER], "deletionTimestamp": clock.now().isoformat()}
    body["status"] = {"phase": "Succeeded", "completionTime": "yesterday"}
    kube = MemoryKube(body)
    await Worker(copy.deepcopy(body), deps_for(kube, store, MockGenerator(clock=clock.now), clock)).run()
    assert kube.body["metadata"]["finalizers"] == []


async def test_an_absurd_retry_after_is_capped_not_a_busy_loop(store: MemoryStore, clock: VirtualClock) -> None:
    # Retry-After: 1e400 parses as infinity; turning it into a time used to raise OverflowError on every round.
    class Throttled(MockGenerator):
        throttles = 1

        async def create(self, request: CreateRequest) -> Prediction:
            if self.throttles:
                self.throttles -= 1
                raise ThrottledError("429", retry_after=float("inf"))
            return await super().create(request)

    kube = MemoryKube(resource(timeoutSeconds=3600))
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, Throttled(clock=clock.now), clock))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded"
    assert clock.elapsed == 600  # the longest a server may make us wait


async def test_a_failed_cancel_is_tried_again_then_let_go(store: MemoryStore, clock: VirtualClock) -> None:
    class Uncancellable(MockGenerator):
        cancels = 0

        async def cancel(self, prediction_id: str) -> Prediction:
            self.cancels += 1
            raise ConnectionResetError("Replicate hung up")

    generator = Uncancellable(latency_seconds=3600, clock=clock.now)
    kube = MemoryKube(resource())
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, generator, clock))
    task = asyncio.create_task(worker.run())
    await until(lambda: bool((kube.body.get("status") or {}).get("prediction")))
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    worker.update(kube._bump())
    await task
    assert kube.body["status"]["phase"] == "Canceled"
    assert generator.cancels == 4
    assert kube.events.count(("Normal", "Canceling")) == 1


# --- webhook deliveries (Worker.offer) -------------------------------------------------------------------------

PNG_URI = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(64)).decode()


def finished(prediction: Prediction) -> Prediction:
    """``prediction`` as its ``completed`` webhook would carry it."""
    return dataclasses.replace(prediction, status="succeeded", output=[PNG_URI])


class SlowMock(MockGenerator):
    """A mock whose predictions run for an hour, counting polls; hooks let a test act mid-call."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(latency_seconds=3600, clock=clock.now)
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


def slow_worker(store: MemoryStore, clock: VirtualClock, *, poll_seconds: float) -> tuple[MemoryKube, SlowMock, Worker]:
    """A worker on an hour-long mock prediction, polling every ``poll_seconds`` (60: only a safety net)."""
    kube, generator = MemoryKube(resource()), SlowMock(clock)
    deps = deps_for(kube, store, generator, clock)
    deps.pacing = Pacing(poll_initial_seconds=poll_seconds, poll_max_seconds=poll_seconds)
    return kube, generator, Worker(copy.deepcopy(kube.body), deps)


async def _running(kube: MemoryKube) -> str:
    await until(lambda: bool(((kube.body.get("status") or {}).get("prediction") or {}).get("id")))
    return str(kube.body["status"]["prediction"]["id"])


async def test_a_webhook_delivery_finishes_a_waiting_worker_without_another_poll(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube, generator, worker = slow_worker(store, clock, poll_seconds=60)
    task = asyncio.create_task(worker.run())
    prediction_id = await _running(kube)
    polls = generator.polls
    current = await MockGenerator.get(generator, prediction_id)
    assert worker.offer(1, finished(current)) is True
    await task
    assert kube.body["status"]["phase"] == "Succeeded"
    assert generator.polls == polls  # the delivery replaced the poll
    assert kube.writes == ["metadata", "status", "status"]
    assert worker.offer(1, finished(current)) is False  # a repeated delivery changes nothing


async def test_a_delivery_for_another_prediction_is_not_used(store: MemoryStore, clock: VirtualClock) -> None:
    kube, generator, worker = slow_worker(store, clock, poll_seconds=60)
    task = asyncio.create_task(worker.run())
    prediction_id = await _running(kube)
    current = await MockGenerator.get(generator, prediction_id)
    # A replayed delivery of someone else's prediction: its id is signed, the resource in the URL is not.
    polls = generator.polls
    assert worker.offer(1, finished(dataclasses.replace(current, id="someone-elses"))) is False
    await until(lambda: generator.polls >= polls + 2)  # the worker went on polling: it was not woken by it
    assert kube.body["status"]["phase"] == "Running" and not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_delivery_that_beats_the_create_response_is_held_for_it(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube, generator, worker = slow_worker(store, clock, poll_seconds=60)
    # Replicate's webhook arrives while the create's own (non-terminal) response is still on its way.
    generator.after_create = lambda p: worker.offer(1, finished(p))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded" and generator.polls == 0


async def test_a_poll_answered_before_the_delivery_does_not_undo_it(store: MemoryStore, clock: VirtualClock) -> None:
    kube, generator, worker = slow_worker(store, clock, poll_seconds=1)
    # The delivery lands while a poll is in flight; the poll then returns the older, running state.
    generator.during_poll = lambda p: worker.offer(1, finished(p))
    await worker.run()
    assert kube.body["status"]["phase"] == "Succeeded" and generator.polls == 1


async def test_cancel_after_the_end_is_acknowledged_in_one_write_and_changes_nothing(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource())
    deps = deps_for(kube, store, MockGenerator(clock=clock.now), clock)
    await Worker(copy.deepcopy(kube.body), deps).run()
    finished = copy.deepcopy(kube.body["status"])
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    kube.writes.clear()
    await Worker(kube._bump(), deps).run()
    status = kube.body["status"]
    assert kube.writes == ["status"] and kube.events == [("Normal", "Succeeded")]  # no event of its own
    assert status["observedGeneration"] == 2 and {c["observedGeneration"] for c in status["conditions"]} == {2}
    assert status["conditions"] == [c | {"observedGeneration": 2} for c in finished["conditions"]]
    assert {k: v for k, v in status.items() if k not in ("observedGeneration", "conditions")} == {
        k: v for k, v in finished.items() if k not in ("observedGeneration", "conditions")
    }
