"""Throughput: generations a second, sustained over a backlog of instant predictions.

``N`` resources are created first (with no operator running), then the operator starts and drains them;
nothing else competes for the two cores but the API server, etcd, the fake Replicate and the S3 server.
*Sustained* is the rate between the 10th and the 90th percentile of completion (the final status write in the
audit log), which leaves out the start-up (kopf's initial listing) and the tail. Replicate rate limits are
taken out of the way (the fake enforces none, the operator's allowances are raised to 1000/s): at Replicate's
10 creates/s the limit, not the operator, would be measured.
CPU use of every process over the drain says who the bottleneck is; the machine's total says whether
something outside the benchmark competed. The drain repeats (three times at full scale) and the median counts.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

from mediagen_dev.bench import audit, drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import UNLIMITED_ENV, FakeService
from mediagen_dev.bench.proc import CpuMeter
from mediagen_dev.bench.stats import percentile

UNLIMITED = UNLIMITED_ENV


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``throughput_per_s``: the median of ``scale.throughput_runs`` drains, each with its details.

    The machine is shared: every drain records how busy the whole machine was and how much of that was work
    outside the benchmark, so a slow run can be told from a slow operator."""
    runs = [drain(stack, scale.throughput_count) for _ in range(scale.throughput_runs)]
    ranked = sorted(runs, key=lambda r: float(r["sustained_per_s"]))
    median = ranked[len(ranked) // 2]
    return {
        "throughput_per_s": median["sustained_per_s"],
        "throughput": {
            **median,
            "runs_per_s": [r["sustained_per_s"] for r in runs],
            "runs_cpu_cores_outside_benchmark": [r["cpu_cores_outside_benchmark"] for r in runs],
        },
    }


def per_second(times: list[float], start: float) -> list[int]:
    """How many of ``times`` fall in each second from ``start`` (the drain's rate over time, for the plot)."""
    counts = [0] * (int(max(times) - start) + 1 if times else 0)
    for t in times:
        counts[max(0, int(t - start))] += 1
    return counts


def drain(stack: Stack, count: int) -> dict[str, Any]:
    """Create ``count`` instant generations, then start an operator and measure how fast it drains them."""
    namespace = stack.namespace("throughput")
    bodies = [drive.manifest(f"t-{i:04d}", "bench/instant") for i in range(count)]
    create_seconds = drive.create_all(stack.custom, namespace, bodies)
    with FakeService() as service:
        service.fake.add_model("bench/instant", drive.INSTANT)
        began = time.time()
        with stack.operator(namespace, service.base_url, "throughput", UNLIMITED) as operator:
            assert operator.pid is not None
            pids = {"operator": operator.pid, "bench (fake Replicate)": os.getpid(), **stack.plane.pids}
            if stack.s3.pid is not None:
                pids["s3 (moto)"] = stack.s3.pid
            meter = CpuMeter(pids).start()
            seen = drive.wait_for_phases(stack.custom, namespace, count, timeout=max(120.0, count))
            cores = meter.stop()
            time.sleep(1.0)  # late writes, if any, land now
        requests = Counter(t.name for t in list(service.fake.timings))
        fake_ms = service.fake.service_ms()
    written = audit.writes(stack.plane, namespace)
    per_object = audit.by_object(written)
    done = sorted(t for t in (audit.last_status_write(w) for w in per_object.values()) if t is not None)
    first_write = min(w.received for w in written if w.verb == "patch")
    writes_per_object = Counter(sum(1 for w in ws if w.verb != "create") for ws in per_object.values())
    low, high = percentile(done, 10), percentile(done, 90)
    middle = sum(1 for t in done if low <= t <= high)
    sustained = (middle - 1) / (high - low) if high > low else 0.0
    overall = len(done) / (done[-1] - first_write) if done else 0.0
    return {
        "generations": count,
        "phases": dict(seen),
        "sustained_per_s": round(sustained, 1),
        "overall_per_s": round(overall, 1),
        "operator_start_to_first_write_s": round(first_write - began, 2),
        "drain_seconds": round(done[-1] - first_write, 2) if done else None,
        "completed_per_second": per_second(done, first_write),
        "backlog_create_seconds": round(create_seconds, 2),
        "cpu_cores": cores,
        "cpu_cores_machine": meter.machine_cores,
        "cpu_cores_outside_benchmark": meter.others_cores,
        "operator_cpu_ms_per_generation": round(cores.get("operator", 0.0) / sustained * 1000, 1)
        if sustained
        else None,
        "writes_per_generation": dict(sorted(Counter(w.kind for w in written if w.verb != "create").items())),
        "generations_by_write_count": {str(k): v for k, v in sorted(writes_per_object.items())},
        "replicate_requests": dict(sorted(requests.items())),
        "fake_replicate_answer_ms": fake_ms,
        "operator_env": UNLIMITED,
    }
