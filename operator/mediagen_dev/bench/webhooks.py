"""Overhead with completion webhooks: the operator's receiver on (``MEDIAGEN_WEBHOOK_PORT``), as deployed when
latency matters. These are the headline ``overhead_ms`` figures; :mod:`.overhead` measures polling alone.

The fake signs and delivers each prediction's ``completed`` event to the receiver over loopback HTTP (the
operator fetches the signing secret from the fake, as from Replicate). Its sender pumps every 20 ms, so it
adds about 10 ms on average that a real Replicate adds in its own way. Polling stays on as the safety net
(production defaults: first poll after 15 s, at most every 60 s); one long prediction alongside counts its
requests.
"""

from __future__ import annotations

from typing import Any

from mediagen_dev.bench import drive, overhead
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import CompletedSender, FakeService
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import ModelScript


def receiver_env(port: int) -> dict[str, str]:
    """An operator environment that receives webhooks on loopback ``port``."""
    return {
        "MEDIAGEN_WEBHOOK_PORT": str(port),
        "MEDIAGEN_WEBHOOK_BIND_ADDRESS": "127.0.0.1",
        "MEDIAGEN_WEBHOOK_URL": f"http://127.0.0.1:{port}/replicate-webhook",
    }


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``overhead_ms`` (webhooks) by concurrency, bursts, parts, and the requests of a long prediction."""
    namespace = stack.namespace("webhooks")
    env = {**overhead.UNLIMITED, **receiver_env(free_ports(1)[0])}
    with FakeService() as service:
        fake = service.fake
        long_seconds = scale.long_prediction_seconds
        long_script = ModelScript(queue_seconds=1.0, processing_seconds=long_seconds - 1.0, logs=drive.TQDM)
        fake.add_model("bench/long", long_script)
        with CompletedSender(fake), stack.operator(namespace, service.base_url, "webhooks", env):
            drive.create_all(stack.custom, namespace, [drive.manifest("long", "bench/long", labels={"round": "long"})])
            measured = overhead.measure(stack, fake, namespace, scale)
            drive.wait_for_phases(stack.custom, namespace, 1, selector="round=long", timeout=long_seconds + 60)
        long_item = drive.list_raw(stack.custom, namespace, "round=long")[0]
        requests = fake.requests_for(long_item["status"]["prediction"]["id"], "bench/long")
        deliveries = len(fake.webhooks.deliveries) if fake.webhooks is not None else 0
    return {
        "overhead_ms": measured["overhead_ms"],
        "overhead_ms_burst": measured["burst_ms"],
        "overhead_parts_ms": measured["parts_ms"],
        "overhead_phases": measured["phases"],
        "overhead_config": overhead.config(scale, env),
        "webhooks": {
            "long_prediction": {
                **requests,
                "prediction_seconds": long_seconds,
                "phase": long_item["status"].get("phase"),
            },
            "deliveries": deliveries,
        },
    }
