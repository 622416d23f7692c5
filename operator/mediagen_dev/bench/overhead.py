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

Concurrency 1 is a round of one generation at a time, repeated. Higher concurrencies are measured two ways:
*held* (:mod:`.held`: N kept in flight, a new one created as each finishes; the steady state the targets are
about) and *burst* (a round creating N at the same instant and waiting for all: how fast a backlog drains).

Two kinds of rounds: ``polled`` predictions last 0.5-2.5 s (uniform, seeded: image models), so the operator
must learn that they finished; ``instant`` ones have finished when the create returns (the pipeline alone).
This module measures the operator polling (no webhook receiver); :mod:`.webhooks` the same with completion
webhooks. Replicate rate limits are taken out of the way (the fake enforces none, the operator's allowances are
raised to 1000/s): they bound a burst of creates by design (a one-second burst of 10 creates and 10/s after it
queues a burst of 200 for 19 s) and are measured by :mod:`.makespan` and :mod:`.rate` instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from mediagen_dev.bench import audit, drive, held
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import UNLIMITED_ENV, FakeService, TimedFake
from mediagen_dev.bench.stats import summary
from mediagen_dev.fake_replicate import ModelScript

QUEUE_SECONDS = 0.2
DURATIONS = tuple(round(0.5 + 0.1 * i, 1) for i in range(21))
"""Prediction durations of the ``polled`` kind, seconds (queue included)."""
UNLIMITED = UNLIMITED_ENV


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


def warm_up(stack: Stack, namespace: str) -> None:
    """One generation that does not count: the operator logs that it started before kopf's watch is up, and
    the first generation of a process pays for that and for first-use imports (about a second)."""
    drive.create_all(stack.custom, namespace, [drive.manifest("warm-up", "bench/instant", labels={"round": "warm"})])
    drive.wait_for_phases(stack.custom, namespace, 1, selector="round=warm", timeout=60)


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


def measure(stack: Stack, fake: TimedFake, namespace: str, scale: Scale) -> dict[str, Any]:
    """Every overhead measurement with one operator: rounds (1 sequentially; 50 and 200 as bursts) and held loads.

    Returns ``overhead_ms`` (1 from the rounds, higher concurrencies held), ``burst_ms`` and their parts."""
    register_models(fake)
    held.register_models(fake, scale.held_durations)
    warm_up(stack, namespace)
    rounds = run_rounds(stack, fake, namespace, "polled", scale.overhead_rounds)
    planned: dict[int, dict[str, float]] = {}
    for concurrency, seconds in scale.held:
        planned[concurrency] = held.run(
            stack,
            namespace,
            concurrency,
            bounds=scale.held_durations,
            warmup=scale.held_warmup_seconds,
            seconds=seconds,
        )
    steady = _analyse(stack, fake, namespace, planned)
    one = min(rounds["overhead_ms"], key=int)
    bursts = [key for key in rounds["overhead_ms"] if key != one]

    def merged(part: str) -> dict[str, Any]:
        return {one: rounds[part][one], **steady[part]}

    return {
        "overhead_ms": merged("overhead_ms"),
        "burst_ms": {key: rounds["overhead_ms"][key] for key in bursts},
        "parts_ms": {"before": merged("before_ms"), "after": merged("after_ms")},
        "phases": {"rounds": rounds["phases"], "held": steady["phases"]},
    }


def config(scale: Scale, env: dict[str, str]) -> dict[str, Any]:
    """How the overhead was measured, for results.json."""
    return {
        "sequential_prediction_seconds": [DURATIONS[0], DURATIONS[-1]],
        "rounds": {str(c): n for c, n in scale.overhead_rounds},
        "held": {str(c): {"seconds": s, "warmup_seconds": scale.held_warmup_seconds} for c, s in scale.held},
        "held_prediction_seconds": list(scale.held_durations),
        "operator_env": {k: v for k, v in env.items() if "SECRET" not in k},
    }


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """Overhead with polling alone (no webhook receiver): ``overhead_ms_polling`` and ``overhead_ms_instant``."""
    with FakeService() as service:
        namespace = stack.namespace("overhead")
        with stack.operator(namespace, service.base_url, "overhead", UNLIMITED):
            measured = measure(stack, service.fake, namespace, scale)
            instant = run_rounds(stack, service.fake, namespace, "instant", scale.overhead_rounds)
    return {
        "overhead_ms_polling": measured["overhead_ms"],
        "overhead_ms_burst_polling": measured["burst_ms"],
        "overhead_ms_instant": instant["overhead_ms"],
        "overhead_parts_ms_polling": measured["parts_ms"],
        "overhead_parts_ms_instant": {"before": instant["before_ms"], "after": instant["after_ms"]},
        "overhead_phases_polling": {**measured["phases"], "instant": instant["phases"]},
        "overhead_config_polling": config(scale, UNLIMITED),
    }
