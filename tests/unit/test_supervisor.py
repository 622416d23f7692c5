"""The supervisor routes watch events and webhook deliveries to per-resource workers, and restarts dead ones."""

from __future__ import annotations

import copy
from typing import Any

from mediagen.controller.supervisor import Supervisor
from mediagen.controller.worker import Worker
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import Prediction
from mediagen.generators.mock import MockGenerator
from tests.support.virtual_clock import VirtualClock, until
from tests.support.worker_fixtures import MemoryKube, MemoryStore, deps_for, resource

DONE = Prediction(id="p-1", status="succeeded", output=["data:,x"])


async def test_a_delivery_is_unknown_until_a_worker_has_seen_the_resource() -> None:
    clock = VirtualClock()
    kube = MemoryKube(resource())
    supervisor = Supervisor(deps_for(kube, MemoryStore(), MockGenerator(latency_seconds=3600, clock=clock.now), clock))
    assert supervisor.offer("u-1", 1, DONE) is None  # never seen here: Replicate should retry elsewhere
    supervisor.observe("ADDED", copy.deepcopy(kube.body))
    assert supervisor.active == 1
    assert supervisor.offer("u-1", 1, DONE) is False  # seen, but not the prediction it waits for
    await supervisor.shutdown()


async def test_deliveries_after_the_work_ended_or_the_resource_went_are_done_with() -> None:
    clock = VirtualClock()
    kube = MemoryKube(resource())
    supervisor = Supervisor(deps_for(kube, MemoryStore(), MockGenerator(clock=clock.now), clock))
    supervisor.observe("ADDED", copy.deepcopy(kube.body))
    await until(lambda: supervisor.active == 0)  # an instant mock prediction: finished, the worker ended
    assert (kube.body.get("status") or {}).get("phase") == "Succeeded"
    assert supervisor.offer("u-1", 1, DONE) is False
    supervisor.observe("DELETED", copy.deepcopy(kube.body))
    assert supervisor.offer("u-1", 1, DONE) is False


async def test_events_older_than_what_an_ended_worker_held_start_nothing() -> None:
    # resourceVersions are opaque strings: "9" is older than "10" here, which no comparison of strings or
    # numbers can be trusted to say. What tells is that the watch had not delivered the worker's last write yet.
    clock = VirtualClock()
    kube = MemoryKube(resource())
    supervisor = Supervisor(deps_for(kube, MemoryStore(), MockGenerator(clock=clock.now), clock))
    first = copy.deepcopy(kube.body)
    first["metadata"]["resourceVersion"] = "v-first"
    supervisor.observe("ADDED", first)
    await until(lambda: supervisor.active == 0)
    writes = len(kube.writes)
    stale = copy.deepcopy(first)
    stale["metadata"]["resourceVersion"] = "v-stale"  # the echo of the marker's write, still on its way
    supervisor.observe("MODIFIED", stale)
    assert supervisor.active == 0 and len(kube.writes) == writes
    supervisor.observe("MODIFIED", copy.deepcopy(kube.body))  # the echo of the final write: caught up
    edited = copy.deepcopy(kube.body)
    edited["metadata"]["resourceVersion"] = "v-label"  # a later change: a worker looks (and finds nothing to do)
    supervisor.observe("MODIFIED", edited)
    assert supervisor.active == 1
    await until(lambda: supervisor.active == 0)
    assert len(kube.writes) == writes


class DiesOnce(Worker):
    """A worker whose first run dies of a bug (workers never raise; the watchdog is for when one does)."""

    deaths = 0

    async def run(self) -> None:
        if DiesOnce.deaths == 0:
            DiesOnce.deaths += 1
            raise RuntimeError("a bug")
        await super().run()


async def test_the_watchdog_restarts_a_worker_that_died_without_a_watch_event() -> None:
    clock = VirtualClock()
    kube = MemoryKube(resource())
    deps: WorkerDeps = deps_for(kube, MemoryStore(), MockGenerator(clock=clock.now), clock)

    def factory(body: dict[str, Any], deps: WorkerDeps, *, refresh: bool = False) -> Worker:
        return DiesOnce(body, deps, refresh=refresh)

    supervisor = Supervisor(deps, worker_factory=factory)
    supervisor.observe("ADDED", copy.deepcopy(kube.body))
    await until(lambda: (kube.body.get("status") or {}).get("phase") == "Succeeded")  # no further event came
    assert supervisor.restarted == 1 and DiesOnce.deaths == 1
    await until(lambda: supervisor.active == 0)
    await supervisor.shutdown()
