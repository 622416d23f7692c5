"""The cost of one generation: API-server writes (audit log) and Replicate requests (the fake's log).

Four generations run side by side, each on a model of its own, with every setting at its default:

* ``instant`` — the prediction has finished by the time the create returns;
* ``short`` — 3 s (1 s queued, 2 s processing), no logs;
* ``long`` — 60 s at full scale (1 s queued), printing a tqdm bar, so progress writes happen as in production;
* ``long_quiet`` — as long, without logs: only lifecycle writes.

Writes beyond the user's create are counted by verb and subresource from the API server's audit log (every
request, failed ones too); Events the operator posts are counted from the Events API (one create each).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from kubernetes import client as k8s

from mediagen_dev.bench import audit, drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import FakeService
from mediagen_dev.fake_replicate import ModelScript


def scenarios(scale: Scale) -> dict[str, ModelScript]:
    """The model behind each scenario."""
    long_processing = scale.long_prediction_seconds - 1.0
    return {
        "instant": drive.INSTANT,
        "short": ModelScript(queue_seconds=1.0, processing_seconds=2.0, logs=drive.QUIET),
        "long": ModelScript(queue_seconds=1.0, processing_seconds=long_processing, logs=drive.TQDM),
        "long_quiet": ModelScript(queue_seconds=1.0, processing_seconds=long_processing, logs=drive.QUIET),
    }


def events_by_object(stack: Stack, namespace: str) -> Counter[str]:
    """Events in ``namespace`` per involved object name."""
    core = k8s.CoreV1Api(stack.custom.api_client)
    events = core.list_namespaced_event(namespace).items
    return Counter(str(e.involved_object.name) for e in events)


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``writes_per_generation`` and ``replicate_requests_per_generation``, by scenario."""
    namespace = stack.namespace("writes")
    scripts = scenarios(scale)
    with FakeService() as service:
        for name, script in scripts.items():
            service.fake.add_model(f"bench/{name.replace('_', '-')}", script)
        with stack.operator(namespace, service.base_url, "writes"):
            bodies = [drive.manifest(name.replace("_", "-"), f"bench/{name.replace('_', '-')}") for name in scripts]
            drive.create_all(stack.custom, namespace, bodies)
            timeout = scale.long_prediction_seconds + 60
            seen = drive.wait_for_phases(stack.custom, namespace, len(bodies), timeout=timeout)
            time.sleep(scale.settle_seconds)  # anything late (a stray write, an event) shows up now
        items = {i["metadata"]["name"]: i for i in drive.list_raw(stack.custom, namespace)}
        written = audit.by_object(audit.writes(stack.plane, namespace))
        events = events_by_object(stack, namespace)
        writes: dict[str, Any] = {}
        requests: dict[str, Any] = {}
        for name, script in scripts.items():
            obj = name.replace("_", "-")
            ours = written.get(obj, [])
            kinds = audit.kinds(w for w in ours if w.verb != "create")
            seconds = (script.queue_seconds or 0.0) + script.processing_seconds
            writes[name] = {
                "total": sum(kinds.values()),
                "by_kind": dict(sorted(kinds.items())),
                "failed": sum(1 for w in ours if not w.ok),
                "events": events.get(obj, 0),
                "prediction_seconds": seconds,
                "phase": (items[obj].get("status") or {}).get("phase"),
            }
            prediction_id = ((items[obj].get("status") or {}).get("prediction") or {}).get("id")
            counts = service.fake.requests_for(prediction_id, f"bench/{obj}") if prediction_id else {}
            api_total = sum(n for kind, n in counts.items() if kind != "file")
            requests[name] = {**counts, "api_total": api_total, "prediction_seconds": seconds}
    if seen.get("Succeeded") != len(bodies):
        raise RuntimeError(f"not every generation succeeded: {dict(seen)}")
    return {
        "writes_per_generation": writes,
        "replicate_requests_per_generation": requests,
        "generation_cost": {"namespace": namespace},
    }
