"""The fake Replicate and an S3 server as long-running processes, for end-to-end runs on a real cluster.

``python -m mediagen_dev.e2e.serve replicate --port 8000`` serves :class:`FakeReplicate` (the demo models, any
other ``owner/name`` as an official model) on all interfaces, optionally delivering signed webhooks to the URL
each prediction names; ``GET /_fake/stats`` reports what it saw (creates per resource marker, requests per
endpoint, webhook deliveries) so a test outside the pod can assert on it. ``... s3 --port 9000 --bucket NAME``
serves moto's S3 with that bucket. ``... webhook-relay --port 8443 --cert F --key F`` stands in for the Ingress
that gives the operator's webhook receiver its public HTTPS URL: it terminates TLS and forwards
``POST /<namespace>/<service>/<port>/<path>`` to ``http://<service>.<namespace>.svc:<port>/<path>``. All run until
SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import ssl
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from mediagen_dev.fake_replicate import FakeConfig, FakeReplicate, ModelScript, WebhookSender, demo_models
from mediagen_dev.fake_replicate.files import png_bytes
from mediagen_dev.s3_server import EmbeddedS3

STATS_PATH = "/_fake/stats"


def stats(fake: FakeReplicate) -> dict[str, Any]:
    """What a test asserts on: predictions per marker and status, requests per endpoint (and ``get`` per
    prediction), webhook deliveries per event and outcome."""
    with fake.lock:
        requests = Counter(f"{r.name} {r.status}" for r in fake.request_log)
        gets = Counter(r.path.rsplit("/", 1)[-1] for r in fake.request_log if r.name == "get")
        statuses = Counter(str(p["status"]) for p in fake.all_predictions())
        markers = fake.creates_by_marker
    deliveries: Counter[str] = Counter()
    if fake.webhooks is not None:
        for delivery in list(fake.webhooks.deliveries):
            deliveries[f"{delivery.event} {'ok' if delivery.ok else delivery.status or 'error'}"] += 1
    return {
        "creates_by_marker": dict(markers),
        "predictions_by_status": dict(statuses),
        "requests": dict(requests),
        "gets_by_prediction": dict(gets),
        "deliveries": dict(deliveries),
        "webhook_secret": fake.webhook_secret,
        "png_sha256": hashlib.sha256(png_bytes()).hexdigest(),
    }


class StatsApp:
    """The fake's ASGI app plus ``GET /_fake/stats`` (JSON)."""

    def __init__(self, fake: FakeReplicate) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            await JSONResponse(stats(self.fake))(scope, receive, send)
            return
        await self.fake(scope, receive, send)


def e2e_models() -> dict[str, ModelScript]:
    """The demo models plus two whose only point is their duration (a cluster's admission policy allows no
    ``_fake`` object in the input, so a run is scripted by model name and ``fake:<preset>`` prompt words)."""
    return {
        **demo_models(),
        "e2e/slow": ModelScript(queue_seconds=1, processing_seconds=20),
        "e2e/long": ModelScript(queue_seconds=0.5, processing_seconds=1200),
    }


def serve_replicate(
    port: int, public_url: str | None, webhooks: bool, webhook_secret: str | None, webhook_ca: str | None
) -> None:
    """Serve the fake on ``0.0.0.0:port`` until SIGTERM; with ``webhooks`` deliver them from a thread, trusting
    ``webhook_ca`` (a PEM file) for https receivers."""
    fake = FakeReplicate(models=e2e_models(), auto_models=True, webhook_secret=webhook_secret, config=FakeConfig())
    fake.base_url = public_url
    sender = None
    if webhooks:
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=webhook_ca) if webhook_ca else True
        sender = WebhookSender(fake, client=httpx.Client(timeout=5.0, verify=verify), interval=0.05)
    if sender is not None:
        sender.start()
    try:
        uvicorn.run(StatsApp(fake), host="0.0.0.0", port=port, log_level="warning", access_log=False, lifespan="off")
    finally:
        if sender is not None:
            sender.stop()
            sender.client.close()


class WebhookRelay:
    """``POST /<namespace>/<service>/<port>/<path>`` forwarded to ``http://<service>.<namespace>.svc:<port>/<path>``
    with its query, headers and body; the answer's status and body returned."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        parts = request.url.path.lstrip("/").split("/", 3)
        if request.method != "POST" or len(parts) != 4 or not parts[2].isdigit():
            await Response("expected POST /<namespace>/<service>/<port>/<path>", status_code=404)(scope, receive, send)
            return
        namespace, service, port, path = parts
        url = f"http://{service}.{namespace}.svc:{port}/{path}"
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            body = await request.body()
            answer = await self.client.post(url, params=request.query_params, headers=headers, content=body)
        except httpx.HTTPError as exc:
            await Response(f"upstream {url}: {type(exc).__name__}", status_code=502)(scope, receive, send)
            return
        await Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))(
            scope, receive, send
        )


def serve_webhook_relay(port: int, cert: str, key: str) -> None:
    """The relay over HTTPS on ``0.0.0.0:port`` until SIGTERM."""
    app = WebhookRelay(httpx.AsyncClient(timeout=10.0))
    uvicorn.run(app, host="0.0.0.0", port=port, ssl_certfile=cert, ssl_keyfile=key, log_level="warning", lifespan="off")


def serve_s3(port: int, bucket: str) -> None:
    """moto's S3 on ``0.0.0.0:port`` with ``bucket``, until SIGTERM."""
    store = EmbeddedS3("0.0.0.0", port).start()
    store.ensure_bucket(bucket)
    print(f"s3 ready on port {port}, bucket {bucket}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    store.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """``replicate``, ``s3`` or ``webhook-relay``, with their options."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev.e2e.serve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    replicate = commands.add_parser("replicate", help="the fake Replicate API")
    replicate.add_argument("--port", type=int, default=8000)
    replicate.add_argument("--public-url", help="base URL of this server as clients reach it (webhook bodies)")
    replicate.add_argument("--webhooks", action="store_true", help="deliver signed webhooks")
    replicate.add_argument("--webhook-secret", help="whsec_... signing secret (default: random)")
    replicate.add_argument("--webhook-ca", help="PEM CA bundle to trust for https webhook receivers")
    s3 = commands.add_parser("s3", help="moto's S3 server")
    s3.add_argument("--port", type=int, default=9000)
    s3.add_argument("--bucket", default="mediagen")
    relay = commands.add_parser("webhook-relay", help="HTTPS in front of in-cluster webhook receivers")
    relay.add_argument("--port", type=int, default=8443)
    relay.add_argument("--cert", required=True, help="PEM certificate (chain) to serve")
    relay.add_argument("--key", required=True, help="its PEM private key")
    args = parser.parse_args(argv)
    if args.command == "replicate":
        serve_replicate(args.port, args.public_url, args.webhooks, args.webhook_secret, args.webhook_ca)
    elif args.command == "s3":
        serve_s3(args.port, args.bucket)
    else:
        serve_webhook_relay(args.port, args.cert, args.key)


if __name__ == "__main__":
    main()
