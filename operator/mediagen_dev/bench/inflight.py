"""Scale: the operator's memory and CPU while ``N`` slow predictions are in flight.

Two operator processes, one after the other, on the same ``N`` resources:

1. *ramp*: an operator with Replicate's limits out of the way (the fake enforces none; 100 creates/s)
   creates all ``N`` predictions (at Replicate's 10 creates/s that alone would take ``N / 10`` seconds); its
   peak RSS is recorded too;
2. *steady*: it is stopped and an operator with production defaults takes over, as after a restart, while the
   fake enforces Replicate's documented limits (3000 requests a minute, bursts of a minute's worth);
   ``MEDIAGEN_MAX_INFLIGHT=N`` so every prediction holds a slot. After a warm-up (it lists the resources and
   polls every prediction once) its RSS and the CPU it uses over a window are measured. The predictions are
   quiet (no logs) and last far longer than the run.

RSS is ``VmRSS`` (sampled each second; the peak ``VmHWM`` too); CPU is (utime + stime) / wall time over the
window, in cores.
"""

from __future__ import annotations

import time
from typing import Any

from mediagen_dev.bench import drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import FakeService
from mediagen_dev.bench.proc import CpuMeter, RssSampler, peak_rss_mib, rss_mib
from mediagen_dev.fake_replicate import RateLimits

RAMP_ENV = {"MEDIAGEN_REPLICATE_CREATES_PER_MINUTE": "6000", "MEDIAGEN_REPLICATE_REQUESTS_PER_MINUTE": "12000"}
"""100 creates and 200 other requests a second: fast, and the fake answers all of them."""


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``rss_mb_inflight_2000`` and ``cpu_cores_inflight_2000`` (named for the full scale) and details."""
    count = scale.inflight_count
    namespace = stack.namespace("inflight")
    slots = {"MEDIAGEN_MAX_INFLIGHT": str(count)}
    with FakeService() as service:
        service.fake.add_model("bench/waiting", drive.slow_model(1700.0))
        began = time.monotonic()
        with stack.operator(namespace, service.base_url, "inflight-ramp", {**RAMP_ENV, **slots}) as ramp:
            assert ramp.pid is not None
            bodies = [drive.manifest(f"w-{i:04d}", "bench/waiting") for i in range(count)]
            drive.create_all(stack.custom, namespace, bodies)
            drive.wait_for_phases(
                stack.custom, namespace, count, wanted=frozenset({"Running"}), timeout=300 + count / 5
            )
            ramp_seconds = time.monotonic() - began
            ramp_rss, ramp_peak = rss_mib(ramp.pid), peak_rss_mib(ramp.pid)
        polled_before = len(service.fake.timings)
        service.fake.set_rate_limits(RateLimits())
        with stack.operator(namespace, service.base_url, "inflight-steady", slots) as steady:
            assert steady.pid is not None
            time.sleep(scale.inflight_warmup_seconds)
            window_start = time.time()
            meter = CpuMeter({"operator": steady.pid}).start()
            with RssSampler(steady.pid, interval=1.0) as sampler:
                time.sleep(scale.inflight_window_seconds)
            cores = meter.stop()["operator"]
            window_end = time.time()
            rss_end, peak = rss_mib(steady.pid), peak_rss_mib(steady.pid)
        timings = list(service.fake.timings)[polled_before:]
        window = [t for t in timings if t.api and window_start <= t.start <= window_end]
        polled = {t.path for t in timings if t.name == "get"}
        fake_ms = service.fake.service_ms(window_start)
    return {
        "rss_mb_inflight_2000": round(max(sampler.peak, rss_end), 1),
        "cpu_cores_inflight_2000": cores,
        "inflight": {
            "predictions": count,
            "created": len(service.fake.predictions),
            "ramp_seconds": round(ramp_seconds, 1),
            "ramp_rss_mb": round(ramp_rss, 1),
            "ramp_peak_rss_mb": round(ramp_peak, 1),
            "steady_rss_mb_end": round(rss_end, 1),
            "steady_rss_mb_window_max": round(sampler.peak, 1),
            "steady_peak_rss_mb": round(peak, 1),
            "steady_cpu_cores": cores,
            "warmup_seconds": scale.inflight_warmup_seconds,
            "window_seconds": round(meter.seconds, 1),
            "window_requests_per_s": round(len(window) / (window_end - window_start), 1),
            "predictions_polled_by_steady_operator": len(polled),
            "fake_replicate_answer_ms": fake_ms,
        },
    }
