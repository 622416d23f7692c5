"""PROTOTYPE, not production code: the operator plus a receiver for Replicate's ``completed`` webhooks.

Run as ``python -m mediagen.bench.proto_operator`` (by :mod:`.webhooks`) with ``MEDIAGEN_WEBHOOK_URL`` pointing
at ``http://127.0.0.1:<MEDIAGEN_PROTO_WEBHOOK_PORT>/replicate-webhook`` and ``MEDIAGEN_PROTO_WEBHOOK_SECRET``
set to the account's ``whsec_`` signing secret. A verified delivery is parsed like a poll's answer and handed
to the resource's worker, which wakes and goes straight to the upload: polling becomes a rare safety net.

It reaches into private parts of the supervisor and the worker (``_workers``, ``_remember``, ``_wake``) to stay
out of the operator's code; the proposal is a public ``Supervisor.offer(uid, prediction)`` doing the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
from typing import Any

import kopf
from aiohttp import web

import mediagen.operator.handlers  # noqa: F401  (registers the operator's handlers first)
from mediagen.generators.replicate import CORRELATION_PARAM, parse_prediction
from mediagen.operator.run import run_operator
from mediagen.operator.supervisor import Supervisor

PATH = "/replicate-webhook"


def verified(secret: str, headers: Any, body: bytes) -> bool:
    """True when one of the ``webhook-signature`` entries is the HMAC of id, timestamp and body (Standard Webhooks)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[-1] for part in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def handler(memo: kopf.Memo, secret: str) -> Any:
    """The aiohttp handler: verify, parse, hand the prediction to the worker of the resource it belongs to."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not verified(secret, request.headers, body):
            return web.Response(status=401)
        prediction = parse_prediction(json.loads(body))
        uid, _, attempt = request.query.get(CORRELATION_PARAM, "").rpartition(".")
        supervisor: Supervisor | None = memo.get("supervisor")
        entry = supervisor._workers.get(uid) if supervisor is not None else None
        if entry is not None and prediction.terminal and attempt.isdigit():
            worker = entry[0]
            known = worker.memory.prediction
            if known is not None and known.id == prediction.id and not known.terminal:
                worker._remember(prediction, int(attempt))
                worker._wake.set()  # a sleeping poll wakes up and decides again: Upload
        return web.Response(status=204)

    return receive


@kopf.on.startup()
async def start_receiver(memo: kopf.Memo, **_: Any) -> None:
    """Listen for webhooks on loopback."""
    app = web.Application()
    app.router.add_post(PATH, handler(memo, os.environ["MEDIAGEN_PROTO_WEBHOOK_SECRET"]))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(os.environ["MEDIAGEN_PROTO_WEBHOOK_PORT"])).start()
    memo["proto_webhook_runner"] = runner


@kopf.on.cleanup()
async def stop_receiver(memo: kopf.Memo, **_: Any) -> None:
    """Stop listening."""
    runner: web.AppRunner | None = memo.get("proto_webhook_runner")
    if runner is not None:
        await runner.cleanup()


if __name__ == "__main__":
    sys.exit(run_operator(namespace=os.environ.get("MEDIAGEN_NAMESPACE")))
