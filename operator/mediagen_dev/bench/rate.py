"""The Replicate request rate under load against configured ceilings: ``N`` slow predictions started at once.

The ceilings (``MEDIAGEN_REPLICATE_RPS`` 40, ``MEDIAGEN_REPLICATE_CREATE_RPS`` 8: optional settings, unset by
default) are upper bounds on top of the pace the operator adapts to Replicate's allowance; the fake enforces
Replicate's own limits (600 creates and 3000 other requests a minute, bursts of a minute's worth) and would
answer 429 beyond them. ``MEDIAGEN_MAX_INFLIGHT=N`` gives every prediction a slot. Every API request's arrival
time at the fake is recorded (output downloads are not API requests); the peak is the busiest *sliding* window
anchored at every request: 1 s (the configured unit), 10 s, and 60 s (Replicate's unit). A ratio above 1 means
more requests in some window than the ceiling allows on average.
"""

from __future__ import annotations

import time
from typing import Any

from mediagen_dev.bench import drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import FakeService
from mediagen_dev.bench.stats import busiest_window, percentile
from mediagen_dev.fake_replicate import RateLimits

WINDOWS = (1.0, 10.0, 60.0)
CEILINGS = (40.0, 8.0)
"""All requests, and creates, in any one second."""


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``peak_replicate_rate_ratio`` (1-s window) and the details behind it."""
    count = scale.rate_count
    rps, create_rps = CEILINGS
    namespace = stack.namespace("rate")
    with FakeService(rate_limits=RateLimits()) as service:
        service.fake.add_model("bench/slow", drive.slow_model(600.0))
        env = {
            "MEDIAGEN_MAX_INFLIGHT": str(count),
            "MEDIAGEN_REPLICATE_RPS": f"{rps:g}",
            "MEDIAGEN_REPLICATE_CREATE_RPS": f"{create_rps:g}",
        }
        with stack.operator(namespace, service.base_url, "rate", env):
            began = time.time()
            bodies = [drive.manifest(f"r-{i:04d}", "bench/slow") for i in range(count)]
            drive.create_all(stack.custom, namespace, bodies)
            deadline = time.monotonic() + 60 + 3 * count / create_rps
            while len(service.fake.predictions) < count and time.monotonic() < deadline:
                time.sleep(0.5)
            all_created = time.time()
            time.sleep(scale.rate_tail_seconds)
            ended = time.time()
        timings = [t for t in list(service.fake.timings) if t.api and began <= t.start <= ended]
    times = [t.start for t in timings]
    creates = [t.start for t in timings if t.name == "create"]
    throttled = sum(1 for r in service.fake.request_log if r.status == 429)
    windows = [w for w in WINDOWS if w <= ended - began]  # a window longer than the run says nothing
    peaks = {f"{w:g}s": busiest_window(times, w) for w in windows}
    create_peaks = {f"{w:g}s": busiest_window(creates, w) for w in windows}
    ratios = {f"{w:g}s": round(peaks[f"{w:g}s"] / (rps * w), 3) for w in windows}
    # How evenly they arrived: the limiter spaces requests at least 1 / (0.9 * rps) apart as it lets them go;
    # gaps much shorter than that at the fake are bunching on the way (the event loops of both ends, the network).
    gaps = sorted(b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False))
    spacing = 1.0 / rps
    create_ratios = {f"{w:g}s": round(create_peaks[f"{w:g}s"] / (create_rps * w), 3) for w in windows}
    return {
        "peak_replicate_rate_ratio": ratios["1s"],
        "replicate_rate": {
            "predictions": count,
            "created": len(service.fake.predictions),
            "configured_rps": rps,
            "configured_create_rps": create_rps,
            "seconds_to_create_all": round(all_created - began, 1),
            "measured_seconds": round(ended - began, 1),
            "requests": len(times),
            "mean_rps": round(len(times) / (ended - began), 1),
            "peak_requests": peaks,
            "peak_ratio": ratios,
            "peak_creates": create_peaks,
            "peak_create_ratio": create_ratios,
            "throttled_429": throttled,
            "arrival_gap_ms": {
                "min": round(gaps[0] * 1000, 2) if gaps else None,
                "p1": round(percentile(gaps, 1) * 1000, 2) if gaps else None,
                "p50": round(percentile(gaps, 50) * 1000, 2) if gaps else None,
                "under_half_the_spacing": sum(1 for g in gaps if g < spacing / 2),
            },
        },
    }
