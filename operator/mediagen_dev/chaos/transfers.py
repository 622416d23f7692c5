"""A storm of cancels and deletes in the middle of output copies: the transfer cap must hold throughout.

Outputs are served slowly (a copy takes seconds), ``MEDIAGEN_MAX_TRANSFERS`` is small, and while copies run the
resources are canceled (``spec.cancel``) and deleted with their finalizer removed by hand (so the DELETED event
cancels the worker mid-copy, as kubectl's "remove the finalizer" fix for a stuck resource does). A canceled copy
used to give its slot back while its thread went on copying. The operator logs each copy's start and end (DEBUG),
and ``max_concurrent_transfers`` is the most that ever overlapped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import time
from dataclasses import dataclass

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import ModelScript, OutputFile

MIB = 1024 * 1024


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    generations: int
    max_transfers: int
    output_bytes: int
    bytes_per_second: float
    window: float
    """Cancels and deletes fall at random moments within this many seconds after the creates."""
    timeout: float


SMALL = Params(generations=8, max_transfers=2, output_bytes=4 * MIB, bytes_per_second=2 * MIB, window=6, timeout=90)
FULL = Params(generations=40, max_transfers=2, output_bytes=8 * MIB, bytes_per_second=4 * MIB, window=30, timeout=300)


def most_at_once(log: str) -> tuple[int, int]:
    """The most copies that ran at once, from the operator's JSON log lines, and how many copies started."""
    moments: list[tuple[dt.datetime, int]] = []
    for line in log.splitlines():
        if '"transfer started"' not in line and '"transfer ended"' not in line:
            continue
        with contextlib.suppress(ValueError, KeyError):
            record = json.loads(line)
            when = dt.datetime.fromisoformat(record["timestamp"])
            moments.append((when, 1 if record["message"] == "transfer started" else -1))
    running = most = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # an end before a start at the same instant
        running += change
        most = max(most, running)
    return most, sum(1 for _, change in moments if change > 0)


def run(stack: Stack, params: Params, seed: int = 3) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    rng = random.Random(seed)
    namespace = stack.namespace("chaos-xfer")
    model = f"{namespace}/slow-output"
    clip = OutputFile("clip.mp4", "video/mp4", size=params.output_bytes, bytes_per_second=params.bytes_per_second)
    stack.fake.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=0.3, output="url", files=(clip,)))
    env = stack.operator_env(
        namespace, MEDIAGEN_MAX_TRANSFERS=str(params.max_transfers), MEDIAGEN_LOG_LEVEL="DEBUG", via_proxy=False
    )
    operator = stack.operator(f"transfers-{namespace}", env)
    start_and_wait(operator)
    names = stack.create(
        namespace, [(f"gen-{i:03d}", {"model": model, "input": {"prompt": f"x{i}"}}) for i in range(params.generations)]
    )
    created = time.monotonic()
    doomed = rng.sample(names, params.generations // 2)
    canceled = rng.sample([n for n in names if n not in doomed], params.generations // 4)
    plan = sorted(
        [(rng.uniform(1.0, params.window), "delete", n) for n in doomed]
        + [(rng.uniform(1.0, params.window), "cancel", n) for n in canceled]
    )
    for moment, action, name in plan:
        time.sleep(max(0.0, created + moment - time.monotonic()))
        with contextlib.suppress(Exception):  # it may have finished and gone already
            if action == "cancel":
                stack.api.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, {"spec": {"cancel": True}}
                )
            else:
                stack.api.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                stack.api.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
                )
    survivors = [n for n in names if n not in doomed]
    bodies = stack.wait_terminal(namespace, survivors, params.timeout)
    finished = sum(1 for b in bodies.values() if (b.get("status") or {}).get("phase") in ("Succeeded", "Canceled"))
    stack.delete_all(namespace)
    time.sleep(1.0)
    operator.stop()
    most, copies = most_at_once(operator.logs())
    notes = []
    if most > params.max_transfers:
        notes.append(f"{most} copies ran at once, over MEDIAGEN_MAX_TRANSFERS={params.max_transfers}")
    if finished < len(survivors):
        notes.append(f"{len(survivors) - finished} of the generations not deleted did not finish")
    return Outcome(
        name="transfer_storm",
        survived=most <= params.max_transfers and finished == len(survivors) and copies > 0,
        headline={"max_concurrent_transfers": most},
        details={
            "namespace": namespace,
            "max_transfers_setting": params.max_transfers,
            "copies_started": copies,
            "deleted_mid_flight": len(doomed),
            "canceled": len(canceled),
            "finished": finished,
            "output_bytes": params.output_bytes,
            "bytes_per_second": params.bytes_per_second,
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
