"""Closed-loop load: hold ``N`` generations in flight, creating a new one the moment one finishes.

This is what "at 200 concurrent generations" means in a steady state: 200 users each waiting for their
generation and asking for the next as soon as it is done. (A *burst* of 200 created in the same instant is the
other reading, measured by :mod:`.overhead`'s rounds: it measures how fast a backlog drains, i.e. throughput.)

Predictions last 5-15 s at full scale (uniform, seeded: image models of the heavier kind), so that 200 in flight ask for
about 20 generations a second, within what the operator and the API server sustain on two cores; with the
0.5-2.5 s predictions of the rounds, 200 in flight would ask for 130 a second, a saturated system whose queue
is all one would measure. A watch on the namespace sees each final phase and creates the replacement; only
generations created after the warm-up count, and the loop ends after ``seconds``.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import watch

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen_dev.bench import drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.fake import TimedFake
from mediagen_dev.fake_replicate import ModelScript

QUEUE_SECONDS = 0.5
STEP = 0.5


def model(seconds: float) -> str:
    """The model name of a quiet prediction lasting ``seconds``."""
    return f"bench/h{round(seconds * 10):03d}"


def durations(bounds: tuple[float, float]) -> tuple[float, ...]:
    """Prediction durations (queue included) from ``bounds[0]`` to ``bounds[1]`` seconds, half a second apart."""
    low, high = bounds
    return tuple(low + STEP * i for i in range(round((high - low) / STEP) + 1))


def register_models(fake: TimedFake, bounds: tuple[float, float]) -> None:
    """One quiet model per duration."""
    for seconds in durations(bounds):
        script = ModelScript(queue_seconds=QUEUE_SECONDS, processing_seconds=seconds - QUEUE_SECONDS, logs=drive.QUIET)
        fake.add_model(model(seconds), script)


def run(
    stack: Stack,
    namespace: str,
    concurrency: int,
    *,
    bounds: tuple[float, float],
    warmup: float,
    seconds: float,
    seed: int = 7,
) -> dict[str, float]:
    """Hold ``concurrency`` in flight for ``warmup + seconds``; the planned durations of the ones that count."""
    rng, choices = random.Random(seed), durations(bounds)
    label = f"held{concurrency}"
    planned: dict[str, float] = {}
    lock = threading.Lock()
    counter = iter(range(10**9))
    began = time.monotonic()
    stop_at, count_from = began + warmup + seconds, began + warmup
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="held")

    def create_one() -> None:
        with lock:
            name, duration = f"{label}-{next(counter)}", rng.choice(choices)
            if time.monotonic() >= count_from:
                planned[name] = duration
        drive.create_all(stack.custom, namespace, [drive.manifest(name, model(duration), labels={"round": label})])

    for _ in range(concurrency):
        pool.submit(create_one)
    finished: set[str] = set()
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        stack.custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        label_selector=f"round={label}",
        timeout_seconds=int(warmup + seconds + 60),
    )
    for event in stream:
        item: dict[str, Any] = event["object"]
        name = item["metadata"]["name"]
        if (item.get("status") or {}).get("phase") in drive.FINAL and name not in finished:
            finished.add(name)
            if time.monotonic() < stop_at:
                pool.submit(create_one)
        if time.monotonic() >= stop_at:
            stream.close()
            break
    pool.shutdown(wait=True)
    created = next(counter)
    drive.wait_for_phases(stack.custom, namespace, created, selector=f"round={label}", timeout=120)
    return planned
