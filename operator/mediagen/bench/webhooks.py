"""The overhead-latency proposal, measured: completion webhooks instead of polling (a prototype).

The operator already sends every prediction's ``webhook`` URL (it carries the crash-recovery marker) asking
for the ``completed`` event only; nothing listens. :mod:`.proto_operator` adds a receiver on loopback that
verifies the signature and hands the prediction to the resource's worker, which wakes and uploads at once.
Polling stays as the safety net, made sparse (first poll after 15 s, at most every 60 s).

Measured exactly as :mod:`.overhead` measures the operator as it is (same 0.5-2.5 s predictions, same rounds,
same raised rate limits), plus one long prediction alongside to count its polls. The fake's sender pumps every
20 ms, so it adds about 10 ms on average that a real Replicate adds in its own way.
"""

from __future__ import annotations

from typing import Any

from mediagen.bench import drive, overhead
from mediagen.bench.config import Scale
from mediagen.bench.fake import CompletedSender, FakeService
from mediagen.bench.stack import Stack
from mediagen.controlplane.ports import free_ports
from mediagen.testing.fake_replicate import ModelScript

SAFETY_NET_POLLS = {"MEDIAGEN_POLL_INITIAL_SECONDS": "15", "MEDIAGEN_POLL_MAX_SECONDS": "60"}


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``proposal_webhooks``: overhead by concurrency and the requests of a long prediction, with webhooks."""
    namespace = stack.namespace("webhooks")
    port = free_ports(1)[0]
    with FakeService() as service:
        fake = service.fake
        overhead.register_models(fake)
        long_seconds = scale.long_prediction_seconds
        long_script = ModelScript(queue_seconds=1.0, processing_seconds=long_seconds - 1.0, logs=drive.TQDM)
        fake.add_model("bench/long", long_script)
        env = {
            **overhead.UNLIMITED,
            **SAFETY_NET_POLLS,
            "MEDIAGEN_WEBHOOK_URL": f"http://127.0.0.1:{port}/replicate-webhook",
            "MEDIAGEN_PROTO_WEBHOOK_PORT": str(port),
            "MEDIAGEN_PROTO_WEBHOOK_SECRET": fake.webhook_secret,
        }
        with (
            CompletedSender(fake),
            stack.operator(namespace, service.base_url, "webhooks", env, module="mediagen.bench.proto_operator"),
        ):
            drive.create_all(stack.custom, namespace, [drive.manifest("long", "bench/long", labels={"round": "long"})])
            measured = overhead.run_rounds(stack, fake, namespace, "polled", scale.webhook_rounds)
            drive.wait_for_phases(stack.custom, namespace, 1, selector="round=long", timeout=long_seconds + 60)
        long_item = drive.list_raw(stack.custom, namespace, "round=long")[0]
        prediction_id = long_item["status"]["prediction"]["id"]
        requests = fake.requests_for(prediction_id, "bench/long")
        deliveries = len(fake.webhooks.deliveries) if fake.webhooks is not None else 0
    return {
        "proposal_webhooks": {
            "overhead_ms": measured["overhead_ms"],
            "parts_ms": {"before": measured["before_ms"], "after": measured["after_ms"]},
            "phases": measured["phases"],
            "long_prediction": {
                **requests,
                "prediction_seconds": long_seconds,
                "phase": long_item["status"].get("phase"),
            },
            "webhook_deliveries": deliveries,
            "operator_env": {k: v for k, v in env.items() if "SECRET" not in k},
        }
    }
