"""Overhead latency: how much longer than the model a generation takes, at 1, 50 and 200 at once.

Definition, per generation, all times from the API server's audit log except the model's duration::

    overhead = (final status write completed - user's create received) - prediction duration

* *user's create received*: ``requestReceivedTimestamp`` of the create (what ``kubectl create`` sends);
* *final status write completed*: ``stageTimestamp`` of the last status patch, the one that says Succeeded
  (nothing writes after it), i.e. the moment a watcher can see Succeeded;
* *prediction duration*: the fake's scripted queue + processing time, which is exactly ``completed_at -
  created_at`` of the prediction (read from the script: the JSON timestamps are rounded on purpose).

So the overhead is everything the user waits for that is not the model: the operator noticing the resource,
the finalizer/marker write, the create call, the record write, the polling delay after the model finished,
the output copy and the final write. It is split in ``before`` (create received → prediction created at the
fake) and ``after`` (prediction finished → final write).

Two kinds: ``polled`` predictions last 0.5-2.5 s (uniform, seeded: image models), so the operator has to
poll; ``instant`` ones have finished when the create returns (no polling: the pipeline alone). Each round
creates ``concurrency`` resources at once (8 client threads) and waits for all; rounds repeat. Replicate rate
limits are raised out of the way (1000/s): they bound a burst of creates by design (the default 8 creates/s
queues a burst of 200 for 25 s) and are measured by :mod:`.rate` instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from mediagen.bench import audit, drive
from mediagen.bench.config import Scale
from mediagen.bench.fake import FakeService, TimedFake
from mediagen.bench.stack import Stack
from mediagen.bench.stats import summary
from mediagen.testing.fake_replicate import ModelScript

QUEUE_SECONDS = 0.2
DURATIONS = tuple(round(0.5 + 0.1 * i, 1) for i in range(21))
"""Prediction durations of the ``polled`` kind, seconds (queue included)."""
UNLIMITED = {"MEDIAGEN_REPLICATE_RPS": "1000", "MEDIAGEN_REPLICATE_CREATE_RPS": "1000"}


def polled_model(seconds: float) -> str:
    """The model name of a quiet prediction lasting ``seconds``."""
    return f"bench/d{round(seconds * 10):02d}"


def register_models(fake: TimedFake) -> None:
    """The ``polled`` models (one per duration) and the instant one."""
    for seconds in DURATIONS:
        script = ModelScript(queue_seconds=QUEUE_SECONDS, processing_seconds=seconds - QUEUE_SECONDS, logs=drive.QUIET)
        fake.add_model(polled_model(seconds), script)
    fake.add_model("bench/instant", drive.INSTANT)


def _pickers(seed: int) -> dict[str, Callable[[], float]]:
    rng = random.Random(seed)
    return {"polled": lambda: rng.choice(DURATIONS), "instant": lambda: 0.0}


def run_rounds(
    stack: Stack, fake: TimedFake, namespace: str, kind: str, rounds: tuple[tuple[int, int], ...], seed: int = 1
) -> dict[str, Any]:
    """Run ``rounds`` of ``kind`` (``polled`` or ``instant``) generations; overhead and its parts, by concurrency."""
    pick = _pickers(seed)[kind]
    planned: dict[int, dict[str, float]] = {}
    for concurrency, count in rounds:
        planned[concurrency] = {}
        for r in range(count):
            label = f"{kind[0]}{concurrency}-{r}"
            durations = {f"{label}-{i}": pick() for i in range(concurrency)}
            bodies = [
                drive.manifest(name, polled_model(d) if d else "bench/instant", labels={"round": label})
                for name, d in durations.items()
            ]
            drive.create_all(stack.custom, namespace, bodies)
            drive.wait_for_phases(stack.custom, namespace, concurrency, selector=f"round={label}")
            planned[concurrency].update(durations)
            time.sleep(0.3)
    return _analyse(stack, fake, namespace, planned)


def _analyse(stack: Stack, fake: TimedFake, namespace: str, planned: dict[int, dict[str, float]]) -> dict[str, Any]:
    written = audit.by_object(audit.writes(stack.plane, namespace))
    items = {i["metadata"]["name"]: i for i in drive.list_raw(stack.custom, namespace)}
    result: dict[str, Any] = {"overhead_ms": {}, "before_ms": {}, "after_ms": {}, "phases": {}}
    for concurrency, durations in planned.items():
        overhead, before, after = [], [], []
        phases: dict[str, int] = {}
        for name, duration in durations.items():
            status = items[name].get("status") or {}
            phases[status.get("phase", "New")] = phases.get(status.get("phase", "New"), 0) + 1
            created, done = audit.created_at(written[name]), audit.last_status_write(written[name])
            if created is None or done is None or status.get("phase") != "Succeeded":
                continue
            overhead.append((done - created - duration) * 1000)
            prediction = fake.predictions.get((status.get("prediction") or {}).get("id", ""))
            if prediction is not None:
                before.append((prediction.created - created) * 1000)
                after.append((done - prediction.created - duration) * 1000)
        key = str(concurrency)
        result["overhead_ms"][key] = summary(overhead)
        result["before_ms"][key] = summary(before)
        result["after_ms"][key] = summary(after)
        result["phases"][key] = phases
    return result


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``overhead_ms`` (polled predictions) and ``overhead_ms_instant``, by concurrency, with their parts."""
    results: dict[str, Any] = {}
    with FakeService() as service:
        register_models(service.fake)
        namespace = stack.namespace("overhead")
        with stack.operator(namespace, service.base_url, "overhead", UNLIMITED):
            for kind in ("polled", "instant"):
                results[kind] = run_rounds(stack, service.fake, namespace, kind, scale.overhead_rounds)
    polled, instant = results["polled"], results["instant"]
    return {
        "overhead_ms": polled["overhead_ms"],
        "overhead_ms_instant": instant["overhead_ms"],
        "overhead_parts_ms": {
            "polled": {"before": polled["before_ms"], "after": polled["after_ms"]},
            "instant": {"before": instant["before_ms"], "after": instant["after_ms"]},
        },
        "overhead_phases": {"polled": polled["phases"], "instant": instant["phases"]},
        "overhead_config": {
            "polled_prediction_seconds": [DURATIONS[0], DURATIONS[-1]],
            "rounds": {str(c): n for c, n in scale.overhead_rounds},
            "operator_env": UNLIMITED,
        },
    }
