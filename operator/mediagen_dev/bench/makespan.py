"""Makespan: ``N`` generations of a 10-second model submitted at once, against the documented Replicate limits.

The fake Replicate enforces 600 creates and 3000 other requests a minute as token buckets, under both readings
of Replicate's "short bursts": ``burst_10`` (one second's allowance: 10 creates, 50 other requests) and
``burst_600`` (a whole minute's: 600 and 3000, what its ``ratelimit-remaining`` header counts down from). The
operator runs with production defaults (polling; no webhook receiver); each reading is run again with the
completion webhooks on (``webhooks``), and once with Replicate's limits off (``unlimited``: what the operator
itself costs for this batch).

* **makespan**: first user create received → last final status write completed (both from the API server's
  audit log).
* **ideal** (the bound the limits set, as in the task): the creates the bucket allows at once go at the start,
  the rest one refill apart (10 a second), each then takes the model's 10 s; plus the operator's own cost of
  one generation (``floor_s``: create received → final status of one instant generation alone, after a
  warm-up).
  So ``ideal = max(0, N - burst) / 10 + 10 + floor``. Creating ``N`` resources takes the API server time
  too (``submitted_in_s``); ``ideal_after_submission_s`` is the same bound with each generation's create
  waiting for its resource to exist.
* **parts** of the makespan, for the generation that finished last: when its prediction was created (the wait
  for the bucket), when the model was done, when the operator learned it (the first poll after, or the
  webhook), and when its final status was written (the output copy and the write).
* **requests**: creates (incl. those answered 429), 429s per kind, gets, duplicates (a second prediction for a
  generation), the most requests ever in flight for one prediction, and the operator's pace and burst
  estimate at the end (its metrics).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter, defaultdict
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mediagen_dev.bench import audit, drive, overhead
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import CompletedSender, FakeService, TimedFake
from mediagen_dev.bench.stats import max_overlap, summary
from mediagen_dev.bench.webhooks import receiver_env
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import ModelScript, RateLimits

READINGS: dict[str, RateLimits] = {
    "burst_10": RateLimits.one_second_bursts(),
    "burst_600": RateLimits.one_minute_bursts(),
}
CREATES_PER_SECOND = 600 / 60
SUBMITTERS = 32
"""Threads creating the batch: the API server takes 200 creates in about a second this way (the operator
cannot start a generation before it exists; ``submitted_in_s`` says how long it took)."""
MODEL = "bench/ten"


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``makespan``: {burst_10: {...}, burst_600: {...}, unlimited: {...}}, each with a ``webhooks`` run."""
    results: dict[str, Any] = {}
    readings: list[tuple[str, RateLimits | None]] = list(READINGS.items())
    if scale.makespan_variants:
        readings.append(("unlimited", None))
    for reading, limits in readings:
        results[reading] = measure(stack, scale, limits, webhooks=False, label=reading)
        if scale.makespan_variants:
            results[reading]["webhooks"] = measure(stack, scale, limits, webhooks=True, label=reading)
    return {"makespan": results}


def measure(stack: Stack, scale: Scale, limits: RateLimits | None, *, webhooks: bool, label: str) -> dict[str, Any]:
    """One batch of ``scale.makespan_count`` generations against ``limits``; its makespan and what explains it."""
    count, seconds = scale.makespan_count, scale.makespan_model_seconds
    namespace = stack.namespace("makespan")
    metrics_port, webhook_port = free_ports(2)
    env = {"MEDIAGEN_METRICS_PORT": str(metrics_port)}
    if webhooks:
        env.update(receiver_env(webhook_port))
    with FakeService(rate_limits=limits) as service:
        fake = service.fake
        fake.add_model(MODEL, ModelScript(queue_seconds=0.0, processing_seconds=seconds, logs=drive.QUIET))
        fake.add_model("bench/instant", drive.INSTANT)
        sender = CompletedSender(fake) if webhooks else contextlib.nullcontext()
        operator_label = f"makespan-{label}{'-webhooks' if webhooks else ''}"
        with sender, stack.operator(namespace, service.base_url, operator_label, env):
            overhead.warm_up(stack, namespace)  # the first generation of a process pays for first-use imports
            alone = [drive.manifest("alone", "bench/instant", labels={"round": "alone"})]
            drive.create_all(stack.custom, namespace, alone)
            drive.wait_for_phases(stack.custom, namespace, 1, selector="round=alone", timeout=60)
            fake.set_rate_limits(limits)  # the batch starts with a full bucket
            warm_requests = len(fake.request_log)
            bodies = [drive.manifest(f"m-{i:03d}", MODEL, labels={"round": "batch"}) for i in range(count)]
            drive.create_all(stack.custom, namespace, bodies, threads=SUBMITTERS)
            phases = drive.wait_for_phases(
                stack.custom, namespace, count, selector="round=batch", timeout=120 + 2 * count
            )
            pacer = pacer_metrics(metrics_port)
        result = analyse(stack, fake, namespace, warm_requests, limits, seconds)
    return {**result, "phases": dict(phases), "pacer": pacer, "generations": count, "model_seconds": seconds}


def ideal_seconds(count: int, burst: float | None, model_seconds: float) -> float:
    """The bucket's bound: ``burst`` creates at once, the rest one refill apart, then the model's time."""
    waiting = 0.0 if burst is None else max(0.0, count - burst) / CREATES_PER_SECOND
    return waiting + model_seconds


def ideal_after_submission(submitted: list[float], burst: float | None, model_seconds: float) -> float:
    """The same bound for generations submitted at ``submitted`` (seconds from the first): each is created at
    the first moment both it exists and the bucket holds a token (first come, first served), then runs."""
    if burst is None:
        return max(submitted) + model_seconds
    tokens, last, finish = burst, 0.0, 0.0
    for at in sorted(submitted):
        moment = max(at, last)
        tokens = min(burst, tokens + (moment - last) * CREATES_PER_SECOND)
        if tokens < 1:
            moment += (1 - tokens) / CREATES_PER_SECOND
            tokens = 1.0
        tokens, last = tokens - 1, moment
        finish = max(finish, moment + model_seconds)
    return finish


def analyse(
    stack: Stack, fake: TimedFake, namespace: str, warm_requests: int, limits: RateLimits | None, seconds: float
) -> dict[str, Any]:
    """Makespan, ideal, parts and request counts of the batch in ``namespace``."""
    written = audit.by_object(audit.writes(stack.plane, namespace))
    batch = {name: w for name, w in written.items() if name.startswith("m-")}
    received = {name: audit.created_at(w) for name, w in batch.items()}
    finished = {name: audit.last_status_write(w) for name, w in batch.items()}
    start = min(t for t in received.values() if t is not None)
    end = max(t for t in finished.values() if t is not None)
    alone = written.get("alone", [])
    alone_created, alone_done = audit.created_at(alone), audit.last_status_write(alone)
    floor = (alone_done - alone_created) if alone_created is not None and alone_done is not None else 0.0
    burst = limits.creates_burst if limits is not None else None
    ideal = ideal_seconds(len(batch), burst, seconds) + floor
    submitted = [t - start for t in received.values() if t is not None]
    ideal_submitted = ideal_after_submission(submitted, burst, seconds) + floor

    items = {i["metadata"]["name"]: i for i in drive.list_raw(stack.custom, namespace, "round=batch")}
    predictions = {name: (items[name].get("status") or {}).get("prediction", {}).get("id") for name in items}
    requests = fake.request_log[warm_requests:]
    creates = [r for r in requests if r.name == "create"]
    polled = _polls(fake)
    parts = _parts(fake, items, predictions, received, finished, start, polled)
    per_uid = Counter(marker.rpartition(".")[0] for marker in fake.creates_by_marker if marker)
    return {
        "makespan_s": round(end - start, 2),
        "ideal_s": round(ideal, 2),
        "ratio_to_ideal": round((end - start) / ideal, 3),
        "ideal_after_submission_s": round(ideal_submitted, 2),
        "ratio_to_ideal_after_submission": round((end - start) / ideal_submitted, 3),
        "floor_s": round(floor, 3),
        "submitted_in_s": round(max(submitted), 2),
        "creates": len(creates),
        "creates_429": sum(1 for r in creates if r.status == 429),
        "others_429": sum(1 for r in requests if r.name not in ("create", "file") and r.status == 429),
        "gets": sum(1 for r in requests if r.name == "get"),
        "failed": sum(1 for i in items.values() if (i.get("status") or {}).get("phase") != "Succeeded"),
        "duplicate_predictions": sum(n - 1 for n in per_uid.values() if n > 1),
        "max_requests_in_flight_per_prediction": max(polled["overlap"].values(), default=0),
        "last_generation": parts["last"],
        "after_model_s": summary(parts["after"], 2),
        "noticed_after_s": summary(parts["noticed"], 2),
        "creates_spread_s": round(parts["creates_spread"], 2),
    }


def _polls(fake: TimedFake) -> dict[str, Any]:
    """Per prediction: the start of every get, and the most gets in flight at once."""
    starts: dict[str, list[float]] = defaultdict(list)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in list(fake.timings):
        if t.name in ("get", "cancel"):
            prediction_id = t.path.rstrip("/").split("/")[3]
            starts[prediction_id].append(t.start)
            spans[prediction_id].append((t.start, t.end))
    return {"starts": starts, "overlap": {pid: max_overlap(s) for pid, s in spans.items()}}


def _parts(
    fake: TimedFake,
    items: dict[str, Any],
    predictions: dict[str, str | None],
    received: dict[str, float | None],
    finished: dict[str, float | None],
    start: float,
    polled: dict[str, Any],
) -> dict[str, Any]:
    """The last generation's timeline (seconds from the start) and, for all, model end → noticed / final write."""
    after, noticed, created_at = [], [], []
    last: dict[str, Any] = {}
    last_end = -math.inf
    for name, prediction_id in predictions.items():
        prediction = fake.predictions.get(prediction_id or "")
        done = finished.get(name)
        if prediction is None or done is None:
            continue
        ended = prediction.timeline(math.inf, fake.config).ended or prediction.created
        created_at.append(prediction.created)
        after.append(done - ended)
        later = [t for t in polled["starts"].get(prediction.id, []) if t >= ended]
        seen = min(later) if later else None
        if seen is not None:
            noticed.append(seen - ended)
        if done > last_end:
            last_end = done
            last = {
                "name": name,
                "submitted_s": round((received.get(name) or start) - start, 2),
                "prediction_created_s": round(prediction.created - start, 2),
                "model_done_s": round(ended - start, 2),
                "first_poll_after_s": round(seen - start, 2) if seen is not None else None,
                "final_write_s": round(done - start, 2),
            }
    spread = (max(created_at) - min(created_at)) if created_at else 0.0
    return {"last": last, "after": after, "noticed": noticed, "creates_spread": spread}


def pacer_metrics(port: int) -> dict[str, Any]:
    """The operator's pace and burst estimate per kind, and its count of 429s, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).raise_for_status().text
    found: dict[str, Any] = {"pace_per_s": {}, "burst": {}, "answered_429": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "mediagen_replicate_pace_per_second":
                found["pace_per_s"][sample.labels["kind"]] = round(sample.value, 2)
            elif sample.name == "mediagen_replicate_burst_estimate":
                found["burst"][sample.labels["kind"]] = round(sample.value, 1)
            elif sample.name == "mediagen_replicate_requests_total" and sample.labels.get("code") == "429":
                found["answered_429"][sample.labels["endpoint"]] = int(sample.value)
    return found
