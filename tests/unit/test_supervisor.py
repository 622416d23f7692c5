"""The supervisor routes watch events and webhook deliveries to per-resource workers."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

from mediagen.controller.supervisor import Supervisor
from mediagen.generators.base import Prediction
from mediagen.generators.mock import MockGenerator
from tests.unit.test_worker import MemoryKube, MemoryStore, deps_for, resource

DONE = Prediction(id="p-1", status="succeeded", output=["data:,x"])


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_delivery_is_unknown_until_a_worker_has_seen_the_resource() -> None:
    kube = MemoryKube(resource())
    supervisor = Supervisor(deps_for(kube, MemoryStore(), MockGenerator(latency_seconds=3600)))
    assert supervisor.offer("u-1", 1, DONE) is None  # never seen here: Replicate should retry elsewhere
    supervisor.observe("ADDED", copy.deepcopy(kube.body))
    assert supervisor.active == 1
    assert supervisor.offer("u-1", 1, DONE) is False  # seen, but not the prediction it waits for
    await supervisor.shutdown()


async def test_deliveries_after_the_work_ended_or_the_resource_went_are_done_with() -> None:
    kube = MemoryKube(resource())
    supervisor = Supervisor(deps_for(kube, MemoryStore(), MockGenerator()))
    supervisor.observe("ADDED", copy.deepcopy(kube.body))
    await _until(lambda: supervisor.active == 0)  # an instant mock prediction: finished, the worker ended
    assert (kube.body.get("status") or {}).get("phase") == "Succeeded"
    assert supervisor.offer("u-1", 1, DONE) is False
    supervisor.observe("DELETED", copy.deepcopy(kube.body))
    assert supervisor.offer("u-1", 1, DONE) is False
