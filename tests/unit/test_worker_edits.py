"""The worker when the spec is edited, in virtual time: one new prediction per edit of the request, the old one
canceled, the writes of the new generation counted, and a crash between the edit and the new create."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from typing import Any

import pytest

from mediagen.controller.worker import Worker
from mediagen.generators.base import CreateRequest, Prediction, TransientError
from mediagen.generators.mock import MockGenerator, prediction_id_for
from mediagen.reconcile.decide import Pacing
from tests.support.virtual_clock import VirtualClock, until
from tests.support.worker_fixtures import MemoryKube, MemoryStore, deps_for, resource
from tests.unit.test_worker import finished


class CountingMock(MockGenerator):
    """The mock, counting creates per correlation marker and cancels; ``before_create`` / ``after_create`` let a
    test act around a create (kill the worker there)."""

    def __init__(self, clock: VirtualClock, latency: float = 0.0) -> None:
        super().__init__(latency_seconds=latency, clock=clock.now)
        self.creates: Counter[str] = Counter()
        self.canceled: list[str] = []
        self.inputs: dict[str, Any] = {}
        self.failures: list[Exception] = []
        self.before_create: Any = None
        self.after_create: Any = None

    async def create(self, request: CreateRequest) -> Prediction:
        if self.before_create is not None:
            await self.before_create(request)
        if self.failures:
            raise self.failures.pop(0)
        self.creates[request.correlation] += 1
        prediction = await super().create(request)
        self.inputs[prediction.id] = dict(request.input)
        if self.after_create is not None:
            await self.after_create(prediction)
        return prediction

    async def cancel(self, prediction_id: str) -> Prediction:
        self.canceled.append(prediction_id)
        return await super().cancel(prediction_id)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def edit(kube: MemoryKube, **spec: Any) -> dict[str, Any]:
    """The user applies an edited spec: the API server bumps metadata.generation. Returns the new body."""
    kube.body["spec"] = {**kube.body["spec"], **spec}
    kube.body["metadata"]["generation"] += 1
    return kube._bump()


def status(kube: MemoryKube) -> dict[str, Any]:
    return dict(kube.body.get("status") or {})


async def succeeded_once(kube: MemoryKube, generator: CountingMock, store: MemoryStore, clock: VirtualClock) -> None:
    await Worker(copy.deepcopy(kube.body), deps_for(kube, store, generator, clock)).run()
    assert status(kube)["phase"] == "Succeeded"
    kube.writes.clear()
    kube.events.clear()


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
async def test_an_edited_prompt_makes_one_new_prediction_and_new_outputs(
    store: MemoryStore, clock: VirtualClock, policy: str
) -> None:
    kube = MemoryKube(resource(output={"deletionPolicy": policy}))
    generator = CountingMock(clock)
    await succeeded_once(kube, generator, store, clock)
    (old_key,) = store.objects
    old_url = status(kube)["url"]

    await Worker(
        edit(kube, input={"prompt": "a dog", "width": 64, "height": 64}), deps_for(kube, store, generator, clock)
    ).run()

    after = status(kube)
    new_id = prediction_id_for("u-1.2")
    assert generator.creates == Counter({"u-1.1": 1, "u-1.2": 1})  # one prediction per generation
    assert generator.inputs[new_id]["prompt"] == "a dog"
    assert (after["phase"], after["observedGeneration"], after["attempts"], after["firstAttempt"]) == (
        "Succeeded",
        2,
        2,
        2,
    )
    assert after["prediction"]["id"] == new_id and new_id in after["url"] and after["url"] != old_url
    assert {c["observedGeneration"] for c in after["conditions"]} == {2}
    # An instant model: the marker and the final status, as for a first generation.
    assert kube.writes == ["metadata", "status"]
    assert ("Normal", "RequestChanged") in kube.events
    new_key = after["outputs"][0]["key"]
    assert set(store.objects) == ({new_key} if policy == "Delete" else {old_key, new_key})


async def test_an_edit_during_a_running_prediction_cancels_it_and_the_new_generation_costs_three_writes(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource())
    generator = CountingMock(clock, latency=3600)
    deps = deps_for(kube, store, generator, clock)
    deps.pacing = Pacing(poll_initial_seconds=60, poll_max_seconds=60)  # the webhook finishes it, not a poll
    worker = Worker(copy.deepcopy(kube.body), deps)
    task = asyncio.create_task(worker.run())
    await until(lambda: status(kube).get("phase") == "Running")
    old_id = status(kube)["prediction"]["id"]
    kube.writes.clear()
    began = clock.elapsed

    worker.update(edit(kube, input={"prompt": "a dog"}))
    await until(lambda: status(kube).get("observedGeneration") == 2)

    assert clock.elapsed - began < 60  # woken by the edit, not at the next poll
    assert generator.canceled == [old_id]
    assert (await MockGenerator.get(generator, old_id)).status == "canceled"
    running = status(kube)
    new_id = prediction_id_for("u-1.2")
    assert (running["phase"], running["prediction"]["id"], running["attempts"]) == ("Running", new_id, 2)
    assert "completionTime" not in running and running["retries"] == 0
    assert kube.writes == ["metadata", "status"]  # the marker, then the record (which resets the status)

    current = await MockGenerator.get(generator, new_id)
    assert worker.offer(2, finished(current)) is True
    await task
    assert status(kube)["phase"] == "Succeeded" and status(kube)["prediction"]["id"] == new_id
    assert kube.writes == ["metadata", "status", "status"]  # three writes for the new generation
    assert generator.creates == Counter({"u-1.1": 1, "u-1.2": 1})
    assert ("Normal", "Canceling") in kube.events


@pytest.mark.parametrize("when", ["before the create", "after the create, before recording it"])
async def test_a_crash_between_the_edit_and_the_new_record_still_makes_one_prediction(
    store: MemoryStore, clock: VirtualClock, when: str
) -> None:
    kube = MemoryKube(resource())
    generator = CountingMock(clock)
    await succeeded_once(kube, generator, store, clock)
    worker = Worker(edit(kube, input={"prompt": "a dog"}), deps_for(kube, store, generator, clock))
    task = asyncio.create_task(worker.run())

    async def die(_: object) -> None:  # what kill -9 does to the worker: it stops between two awaits
        generator.before_create = generator.after_create = None
        task.cancel()
        await asyncio.sleep(0)

    if when == "before the create":
        generator.before_create = die
    else:
        generator.after_create = die
    with pytest.raises(asyncio.CancelledError):
        await task
    assert '"attempt":2' in kube.body["metadata"]["annotations"]["mediagen.fleek.xyz/pending-create"]
    assert status(kube)["observedGeneration"] == 1  # the status still tells generation 1's result...
    assert status(kube)["phase"] == "Succeeded"  # ...which kubectl wait and kstatus read as of an older generation

    await Worker(copy.deepcopy(kube.body), deps_for(kube, store, generator, clock)).run()  # the restarted operator
    assert generator.creates["u-1.2"] == 1
    assert (status(kube)["phase"], status(kube)["observedGeneration"], status(kube)["attempts"]) == ("Succeeded", 2, 2)


async def test_an_edit_while_a_retry_waits_starts_the_new_generation_at_once(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource(retry={"limit": 3, "backoffSeconds": 600, "maxBackoffSeconds": 600}))
    generator = CountingMock(clock)
    generator.failures = [TransientError("Replicate is down (HTTP 503)")]
    worker = Worker(copy.deepcopy(kube.body), deps_for(kube, store, generator, clock))
    task = asyncio.create_task(worker.run())
    await until(lambda: status(kube).get("retries") == 1)
    worker.update(edit(kube, input={"prompt": "a dog"}))
    await task
    after = status(kube)
    assert (after["phase"], after["retries"], after["attempts"], after["observedGeneration"]) == ("Succeeded", 0, 2, 2)
    assert clock.elapsed < 600  # the old generation's retry was not waited for
    assert generator.creates == Counter({"u-1.2": 1})  # the failed create of attempt 1 never reached the model


async def test_edits_that_are_not_of_the_request_cost_one_write_at_most_and_labels_none(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource())
    generator = CountingMock(clock)
    await succeeded_once(kube, generator, store, clock)
    done = copy.deepcopy(status(kube))
    kube.body["metadata"]["labels"] = {"team": "art"}  # no new generation
    await Worker(kube._bump(), deps_for(kube, store, generator, clock)).run()
    assert kube.writes == []
    await Worker(edit(kube, retry={"limit": 0}, timeoutSeconds=60), deps_for(kube, store, generator, clock)).run()
    assert kube.writes == ["status"] and status(kube)["observedGeneration"] == 2
    assert {k: v for k, v in status(kube).items() if k not in ("observedGeneration", "conditions")} == {
        k: v for k, v in done.items() if k not in ("observedGeneration", "conditions")
    }
    assert generator.creates == Counter({"u-1.1": 1})


async def test_an_edit_during_the_copy_lets_it_finish_then_deletes_it_under_delete(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource(output={"deletionPolicy": "Delete"}))
    generator = CountingMock(clock)
    deps = deps_for(kube, store, generator, clock)
    worker = Worker(copy.deepcopy(kube.body), deps)
    copied = asyncio.Event()
    real_put = store.put_stream

    def put_and_edit(key: str, chunks: Any, **kw: Any) -> Any:
        stored = real_put(key, chunks, **kw)
        if not copied.is_set():
            copied.set()
            worker.body = edit(kube, input={"prompt": "a dog"})  # arrives while the copy runs (in its thread)
            worker.versions.took(worker.body)
        return stored

    store.put_stream = put_and_edit  # type: ignore[method-assign]
    await worker.run()
    after = status(kube)
    assert (after["phase"], after["observedGeneration"], after["prediction"]["id"]) == (
        "Succeeded",
        2,
        prediction_id_for("u-1.2"),
    )
    assert list(store.objects) == [after["outputs"][0]["key"]]  # the first generation's copy was deleted
    assert generator.creates == Counter({"u-1.1": 1, "u-1.2": 1})
    assert kube.writes == ["metadata", "metadata", "status"]  # generation 1 never wrote its result


async def test_a_failed_delete_of_the_old_outputs_is_reported_and_does_not_hold_the_new_generation(
    store: MemoryStore, clock: VirtualClock
) -> None:
    kube = MemoryKube(resource(output={"deletionPolicy": "Delete"}))
    generator = CountingMock(clock)
    await succeeded_once(kube, generator, store, clock)

    def broken(prefix: str) -> int:
        raise OSError("S3 is down")

    store.delete_prefix = broken  # type: ignore[method-assign]
    await Worker(edit(kube, input={"prompt": "a dog"}), deps_for(kube, store, generator, clock)).run()
    assert status(kube)["phase"] == "Succeeded" and status(kube)["observedGeneration"] == 2
    assert ("Warning", "CleanupIncomplete") in kube.events
