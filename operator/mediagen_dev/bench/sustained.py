"""Sustained overload: ``N`` generations (2000: more than three minutes of Replicate's create allowance) submitted
at once, against the documented limits read the strict way (bursts of one second's allowance).

The create pace must hold Replicate's 600 a minute within 5 % — measured where Replicate counts, at the fake:
the busiest 60-s window of accepted creates, and their rate between the first and last 10 s of the run — and
no generation may fail for throttling. Production defaults first (polling, ``MEDIAGEN_MAX_INFLIGHT=200``: a
generation holds one of 200 slots from its pending marker to its final status, so the operator's own speed at
noticing and storing finished predictions bounds the rate too; the parts of that time are recorded), then
again with a slot for every generation (``slots_for_all``), where the create pace alone bounds the rate.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from mediagen_dev.bench import audit, drive, makespan
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import FakeService, TimedFake
from mediagen_dev.bench.stats import busiest_window, max_overlap, summary
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import ModelScript, RateLimits

DOCUMENTED_PER_MINUTE = 600
EDGE_SECONDS = 10.0
"""Left out at both ends of the steady rate: the first burst and the last creates."""


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``sustained``: the create rate per minute as Replicate counted it, 429s, failures and duplicates; with
    production defaults and with a slot for every generation (``slots_for_all``)."""
    defaults = measure(stack, scale, {}, "sustained")
    every = measure(stack, scale, {"MEDIAGEN_MAX_INFLIGHT": str(scale.sustained_count)}, "sustained-slots")
    return {"sustained": {**defaults, "slots_for_all": every}}


def measure(stack: Stack, scale: Scale, env: dict[str, str], label: str) -> dict[str, Any]:
    """One overload of ``scale.sustained_count`` generations with the operator's ``env`` on top of the defaults."""
    count, seconds = scale.sustained_count, scale.makespan_model_seconds
    namespace = stack.namespace(label)
    (metrics_port,) = free_ports(1)
    with FakeService(rate_limits=RateLimits.one_second_bursts()) as service:
        fake = service.fake
        fake.add_model(makespan.MODEL, ModelScript(queue_seconds=0.0, processing_seconds=seconds, logs=drive.QUIET))
        env = {**env, "MEDIAGEN_METRICS_PORT": str(metrics_port)}
        with stack.operator(namespace, service.base_url, label, env):
            bodies = [drive.manifest(f"s-{i:04d}", makespan.MODEL) for i in range(count)]
            drive.create_all(stack.custom, namespace, bodies)
            timeout = 300 + 3 * count / (DOCUMENTED_PER_MINUTE / 60)
            phases = drive.wait_for_phases(stack.custom, namespace, count, timeout=timeout)
            pacer = makespan.pacer_metrics(metrics_port)
        timings = list(fake.timings)
        per_uid = Counter(marker.rpartition(".")[0] for marker in fake.creates_by_marker if marker)
        items = drive.list_raw(stack.custom, namespace)
        spans = _spans(stack, fake, items)
    accepted = sorted(t.start for t in timings if t.name == "create" and 200 <= t.status < 300)
    creates = [t for t in timings if t.name == "create"]
    steady = [t for t in accepted if accepted[0] + EDGE_SECONDS <= t <= accepted[-1] - EDGE_SECONDS]
    steady_rate = (len(steady) - 1) / (steady[-1] - steady[0]) * 60 if len(steady) > 1 else None
    reasons = Counter((i.get("status") or {}).get("reason") for i in items if _phase(i) != "Succeeded")
    return {
        "operator_env": {k: v for k, v in env.items() if k != "MEDIAGEN_METRICS_PORT"},
        "generations": count,
        "model_seconds": seconds,
        "phases": dict(phases),
        "failed": sum(reasons.values()),
        "failed_by_reason": {str(k): v for k, v in reasons.items()},
        "creates": len(creates),
        "creates_accepted": len(accepted),
        "creates_429": sum(1 for t in creates if t.status == 429),
        "others_429": sum(1 for t in timings if t.name not in ("create", "file") and t.status == 429),
        "duplicate_predictions": sum(n - 1 for n in per_uid.values() if n > 1),
        "busiest_60s_creates": busiest_window(accepted, 60.0) if accepted else 0,
        "steady_creates_per_minute": round(steady_rate, 1) if steady_rate is not None else None,
        "steady_ratio_to_documented": round(steady_rate / DOCUMENTED_PER_MINUTE, 3) if steady_rate else None,
        "creates_seconds": round(accepted[-1] - accepted[0], 1) if accepted else 0.0,
        "pacer": pacer,
        **spans,
    }


def _spans(stack: Stack, fake: TimedFake, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a generation's time goes while it holds one of the ``MEDIAGEN_MAX_INFLIGHT`` slots: from its
    pending marker to its prediction's create (waiting for the create pace), from the model's end to the final
    status (noticing it and copying the output), and how many held a slot at once."""
    namespace = items[0]["metadata"]["namespace"] if items else ""
    written = audit.by_object(audit.writes(stack.plane, namespace))
    waits, tails, held = [], [], []
    for item in items:
        writes = written.get(item["metadata"]["name"], [])
        marked = next((w.completed for w in writes if w.kind == "patch" and w.ok), None)
        done = audit.last_status_write(writes)
        if marked is None or done is None:
            continue
        held.append((marked, done))
        prediction = fake.predictions.get(((item.get("status") or {}).get("prediction") or {}).get("id", ""))
        if prediction is not None:
            waits.append(prediction.created - marked)
            ended = prediction.timeline(math.inf, fake.config).ended or prediction.created
            tails.append(done - ended)
    return {
        "create_wait_s": summary(waits, 2),
        "after_model_s": summary(tails, 2),
        "slot_held_s": summary([b - a for a, b in held], 2),
        "max_slots_held": max_overlap(held),
    }


def _phase(item: dict[str, Any]) -> str:
    return str((item.get("status") or {}).get("phase") or "New")
