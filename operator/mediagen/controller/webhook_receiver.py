"""Replicate's completion webhooks: a signed delivery wakes the resource's worker at once.

Without them a worker learns that a prediction finished from its next poll, on average a third of the
prediction's age later (0.5 s for a 1.5-s image model; measured: 557 ms overhead p50 one at a time, against
42 ms for predictions that need no poll). With them the poll schedule becomes a sparse safety net for lost
deliveries, and a finished prediction is copied within milliseconds of Replicate saying so.

Every create already carries ``webhook=<MEDIAGEN_WEBHOOK_URL>?mg=<uid>.<attempt>`` and asks for the
``completed`` event only. This receiver checks the Standard Webhooks signature (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256 with the account's ``whsec_`` secret) and the
timestamp's age, then hands the prediction to :meth:`Supervisor.offer`. A delivery it cannot use (an unknown
attempt, a repeat, a prediction not finished) is acknowledged and dropped: polling covers it. One for a resource
this process does not know at all is answered 503, so that Replicate retries it, likely at the replica that works.

The port faces the internet, so nothing is read before it is known to be worth reading: the headers are checked
first (400 when one is missing or malformed, 401 for a stale timestamp), a declared length over the cap is 413, and
at most :data:`MAX_CONCURRENT_DELIVERIES` bodies are read at once (429 beyond), each within
:data:`READ_TIMEOUT_SECONDS` (408) and :data:`MAX_BODY_BYTES` (413). A refused delivery costs nothing but speed:
Replicate retries the final event for about a minute, and polling finds the prediction anyway.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from mediagen.generators.base import GeneratorError, Prediction
from mediagen.generators.replicate import CORRELATION_PARAM, parse_prediction
from mediagen.reconcile.state import parse_correlation

log = logging.getLogger(__name__)

PATH = "/replicate-webhook"
MAX_BODY_BYTES = 1024 * 1024
"""A prediction's JSON: its input (``spec.input``, far smaller), output references and logs. A larger one is refused
with 413 and its prediction found by polling instead."""
MAX_CONCURRENT_DELIVERIES = 32
"""Bodies read at once; each is read in well under a millisecond when it comes from Replicate, so more at once means
slow (or hostile) senders, whose memory this bounds: at most this many times :data:`MAX_BODY_BYTES`."""
READ_TIMEOUT_SECONDS = 10.0
"""How long a body may take to arrive once its headers passed."""
LINGER_SECONDS = 1.0
"""How long the unread rest of a refused request is drained before its connection closes (aiohttp's default, 10 s,
holds a connection that long for each sender that never finishes its body)."""
TOLERANCE_SECONDS = 300
"""Deliveries signed longer ago (or further ahead) than this are replays, or from a badly wrong clock."""

Offer = Callable[[str, int, Prediction], bool | None]
"""``offer(uid, attempt, prediction)``: give a delivered prediction to the resource's worker. True: used; False:
not needed (a repeat, or the resource is done with it); None: this process does not know the resource at all."""
RETRY_AFTER_SECONDS = 5
"""Asked of Replicate when no worker here knows the resource: a standby replica behind the same Service, or an
operator that restarted and has not listed the resources yet. A retry will likely reach one that knows."""
Outcome = Callable[[str], None]
"""Told the outcome of every delivery (``accepted``, ``ignored``, ``unknown``, ``rejected``), for metrics."""


class InvalidSecret(ValueError):
    """The signing secret is not ``whsec_`` followed by base64."""


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_<base64>``)."""
    prefix, _, encoded = secret.partition("_")
    if prefix != "whsec" or not encoded:
        raise InvalidSecret("a webhook signing secret starts with whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("the webhook signing secret is not base64 after whsec_") from None


@dataclass(frozen=True)
class Delivery:
    """What a request came to, as an HTTP status and the outcome for metrics."""

    status: int
    outcome: str
    detail: str = ""


def check_headers(headers: Mapping[str, str], now: float) -> Delivery | None:
    """Why a delivery is refused before its body is read (400, 401), or None when its headers are worth a read.

    The signature itself needs the body; this only makes a sender show that it speaks Standard Webhooks with a
    current timestamp before it may send one."""
    delivery_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not delivery_id or not timestamp:
        return Delivery(400, "rejected", "missing webhook-id or webhook-timestamp")
    try:
        sent = int(timestamp)
    except ValueError:
        return Delivery(400, "rejected", "webhook-timestamp is not a number")
    if abs(now - sent) > TOLERANCE_SECONDS:
        return Delivery(401, "rejected", "webhook-timestamp is too old or too new")
    if not any(entry.startswith("v1,") for entry in headers.get("webhook-signature", "").split()):
        return Delivery(400, "rejected", "missing webhook-signature (v1,<base64>)")
    return None


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
    """Why the delivery is not authentic, or None when it is.

    The signed content is ``<webhook-id>.<webhook-timestamp>.<body>``; ``webhook-signature`` lists one or more
    ``v1,<base64>`` entries (several while a secret rotates), and any one matching is enough."""
    delivery_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not delivery_id or not timestamp:
        return "missing webhook-id or webhook-timestamp"
    try:
        sent = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not a number"
    if abs(now - sent) > TOLERANCE_SECONDS:
        return "webhook-timestamp is too old or too new"
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in headers.get("webhook-signature", "").split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(expected.encode(), signature.encode()):
            return None
    return "no valid signature"


def handle(key: bytes, offer: Offer, query: Mapping[str, str], headers: Mapping[str, str], body: bytes) -> Delivery:
    """Decide what one delivery means. Pure apart from ``offer``; the HTTP layer is :class:`WebhookReceiver`."""
    problem = verify(key, headers, body, time.time())
    if problem is not None:
        return Delivery(401, "rejected", problem)
    marker = parse_correlation(query.get(CORRELATION_PARAM, ""))
    if marker is None:
        return Delivery(204, "ignored", "no mediagen marker in the URL")
    try:
        data = json.loads(body)
        prediction = parse_prediction(data if isinstance(data, dict) else {})
    except (ValueError, GeneratorError):
        return Delivery(400, "rejected", "the body is not a prediction")
    if not prediction.terminal:
        return Delivery(204, "ignored", "the prediction has not finished")
    uid, attempt = marker
    used = offer(uid, attempt, prediction)
    if used is None:
        return Delivery(503, "unknown", "no worker here knows this resource")
    return Delivery(204, "accepted" if used else "ignored")


class WebhookReceiver:
    """An aiohttp server in the operator's event loop, serving ``POST /replicate-webhook``."""

    def __init__(
        self,
        secret: str,
        offer: Offer,
        *,
        outcome: Outcome | None = None,
        max_concurrent: int = MAX_CONCURRENT_DELIVERIES,
        read_timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self._key = signing_key(secret)
        self._offer = offer
        self._outcome = outcome
        self._max_concurrent = max_concurrent
        self._read_timeout = read_timeout
        self.reading = 0
        """Bodies being read right now."""
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        """The aiohttp application (tests drive it with aiohttp's test client)."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(PATH, self._receive)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the port."""
        self._runner = web.AppRunner(self.app(), access_log=None, lingering_time=LINGER_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("receiving Replicate webhooks on %s:%s%s", host, self.port, PATH)
        return self.port

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        early = check_headers(request.headers, time.time())
        if early is None and parse_correlation(request.query.get(CORRELATION_PARAM, "")) is None:
            early = Delivery(204, "ignored", "no mediagen marker in the URL")
        if early is None and (request.content_length or 0) > MAX_BODY_BYTES:
            early = Delivery(413, "rejected", "body too large")
        if early is None and self.reading >= self._max_concurrent:
            early = Delivery(429, "rejected", "too many deliveries at once")
        if early is not None:
            return self._answer(early, close=True)  # its body is not worth reading, nor is the connection
        self.reading += 1
        try:
            try:
                async with asyncio.timeout(self._read_timeout):
                    body = await _read_capped(request, MAX_BODY_BYTES)
            except TimeoutError:
                return self._answer(Delivery(408, "rejected", "the body took too long"), close=True)
            if body is None:
                return self._answer(Delivery(413, "rejected", "body too large"), close=True)
            return self._answer(handle(self._key, self._offer, request.query, request.headers, body))
        finally:
            self.reading -= 1

    def _answer(self, delivery: Delivery, *, close: bool = False) -> web.Response:
        """The HTTP answer; a refused request's connection is closed (its unread body is not worth reading)."""
        self._report(delivery.outcome)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if delivery.status in (429, 503) else {}
        if delivery.status >= 400:
            if delivery.status != 503:
                log.warning("webhook delivery %s: %s", delivery.outcome, delivery.detail)
            response = web.Response(status=delivery.status, text=delivery.detail + "\n", headers=headers)
        else:
            response = web.Response(status=delivery.status, headers=headers)
        if close:
            response.force_close()
        return response

    def _report(self, outcome: str) -> None:
        if self._outcome is not None:
            self._outcome(outcome)


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (whatever Content-Length said, or without one)."""
    body = bytearray()
    while chunk := await request.content.read(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
