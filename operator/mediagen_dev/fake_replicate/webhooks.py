"""Signed webhook deliveries (docs/replicate.md#webhooks): Standard Webhooks / Svix signatures, event filters, retries.

Off by default. :class:`WebhookSender` turns the fake's state into deliveries whenever :meth:`pump` runs,
either called by a test right after advancing its clock (deterministic) or from a background thread
(``with WebhookSender(fake):``). Retry times for ``completed`` are measured on the fake's clock, so tests
drive the whole retry schedule without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from mediagen_dev.fake_replicate.fake import FakeReplicate

USER_AGENT = "Webhooks/1.66.0 (sender-fake)"
DEFAULT_RETRY_OFFSETS = (0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 60.0)
"""Seconds after completion of each ``completed`` attempt: exponential, the last about a minute later."""


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one delivery with a ``whsec_`` secret (Standard Webhooks)."""
    key = base64.b64decode(secret.split("_", 1)[1])
    raw = body.encode() if isinstance(body, str) else body
    signed = f"{webhook_id}.{timestamp}.".encode() + raw
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Delivery:
    """One attempted delivery: what was sent and how the receiver answered."""

    event: str
    url: str
    prediction_id: str
    webhook_id: str
    attempt: int
    headers: dict[str, str]
    body: bytes
    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class _Progress:
    ids: dict[str, str] = field(default_factory=dict)
    start_sent: bool = False
    output_sent: bool = False
    last_logs: str | None = None
    last_logs_at: float = float("-inf")
    completed_attempts: int = 0
    completed_done: bool = False


class WebhookSender:
    """Delivers webhooks for ``fake``'s predictions that set ``webhook``.

    ``client`` sends the POSTs (inject one with ``httpx.MockTransport`` to capture in-process); redirects are
    never followed. ``time_scale`` shrinks the ``completed`` retry schedule; ``duplicate_completed`` sends a
    successful ``completed`` twice with the same ``webhook-id``; ``rotated_secret`` adds a second signature."""

    def __init__(
        self,
        fake: FakeReplicate,
        *,
        client: httpx.Client | None = None,
        retry_offsets: tuple[float, ...] = DEFAULT_RETRY_OFFSETS,
        time_scale: float = 1.0,
        throttle_seconds: float = 0.5,
        duplicate_completed: bool = False,
        rotated_secret: str | None = None,
        interval: float = 0.02,
    ) -> None:
        self.fake = fake
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=5.0, follow_redirects=False)
        self.retry_offsets = retry_offsets
        self.time_scale = time_scale
        self.throttle_seconds = throttle_seconds
        self.duplicate_completed = duplicate_completed
        self.rotated_secret = rotated_secret
        self.interval = interval
        self.deliveries: list[Delivery] = []
        self._progress: dict[str, _Progress] = {}
        self._pump_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        fake.webhooks = self

    def reset(self) -> None:
        """Forget deliveries and per-prediction progress (called by ``fake.reset()``)."""
        with self._pump_lock:
            self.deliveries.clear()
            self._progress.clear()

    def pump(self) -> list[Delivery]:
        """Send every delivery that is due at the fake's current time; returns them."""
        with self._pump_lock:
            sent: list[Delivery] = []
            for prediction_id, url, event, body, attempt in self._due():
                sent.append(self._send(prediction_id, url, event, body, attempt))
                if event == "completed":
                    self._after_completed(prediction_id, url, body, sent[-1])
            self.deliveries.extend(sent)
            return sent

    def _due(self) -> list[tuple[str, str, str, dict[str, Any], int]]:
        fake = self.fake
        due: list[tuple[str, str, str, dict[str, Any], int]] = []
        with fake.lock:
            now = fake.clock()
            base = fake.base_url or "http://127.0.0.1"
            for prediction in fake.predictions.values():
                if prediction.webhook is None:
                    continue
                events = prediction.webhook_events_filter or list(fake.config.default_webhook_events)
                state = self._progress.setdefault(prediction.id, _Progress())
                body = prediction.to_json(now, base, fake.config)
                url, status = prediction.webhook, body["status"]
                if "start" in events and not state.start_sent and "started_at" in body:
                    state.start_sent = True
                    due.append((prediction.id, url, "start", body, 1))
                if (
                    "logs" in events
                    and status == "processing"
                    and body["logs"] != state.last_logs
                    and now - state.last_logs_at >= self.throttle_seconds
                ):
                    state.last_logs, state.last_logs_at = body["logs"], now
                    due.append((prediction.id, url, "logs", body, 1))
                if "output" in events and not state.output_sent and body["output"] is not None:
                    state.output_sent = True
                    due.append((prediction.id, url, "output", body, 1))
                ended = prediction.timeline(now, fake.config).ended
                if "completed" in events and ended is not None and not state.completed_done:
                    attempt = state.completed_attempts
                    if now >= ended + self.retry_offsets[attempt] * self.time_scale:
                        state.completed_attempts += 1
                        due.append((prediction.id, url, "completed", body, attempt + 1))
        return due

    def _after_completed(self, prediction_id: str, url: str, body: dict[str, Any], delivery: Delivery) -> None:
        state = self._progress[prediction_id]
        redirected = delivery.status is not None and 300 <= delivery.status < 400
        if delivery.ok or redirected or state.completed_attempts >= len(self.retry_offsets):
            state.completed_done = True
        if delivery.ok and self.duplicate_completed:
            self.deliveries.append(self._send(prediction_id, url, "completed", body, delivery.attempt))

    def _send(self, prediction_id: str, url: str, event: str, body: dict[str, Any], attempt: int) -> Delivery:
        state = self._progress[prediction_id]
        webhook_id = state.ids.setdefault(event, "msg_" + "".join(self._rng.choices(_ALPHABET, k=27)))
        raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(self.fake.clock()))
        signatures = [sign(self.fake.webhook_secret, webhook_id, timestamp, raw)]
        if self.rotated_secret is not None:
            signatures.append(sign(self.rotated_secret, webhook_id, timestamp, raw))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": " ".join(signatures),
        }
        try:
            response = self.client.post(url, content=raw, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(event, url, prediction_id, webhook_id, attempt, headers, raw, None, repr(exc))
        return Delivery(event, url, prediction_id, webhook_id, attempt, headers, raw, response.status_code)

    # -- background pumping ------------------------------------------------------------------------------

    def start(self) -> None:
        """Pump every ``interval`` real seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-replicate-webhooks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.pump()

    def stop(self) -> None:
        """Stop the background thread and close an owned HTTP client."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> WebhookSender:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
