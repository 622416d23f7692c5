"""The fake Replicate for benchmarks: :class:`FakeReplicate` plus the arrival time of every request.

The fake's own ``request_log`` has no timestamps; the peak request rate and transfer times need them.
One fake per benchmark, served over loopback HTTP from this process (uvicorn in a thread).
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from starlette.types import Message, Receive, Scope, Send

from mediagen_dev.bench.stats import summary
from mediagen_dev.fake_replicate import FakeReplicate, FakeReplicateServer, RateLimits
from mediagen_dev.fake_replicate.fake import ROUTES
from mediagen_dev.fake_replicate.webhooks import Delivery, WebhookSender, _Progress


@dataclass(frozen=True)
class Timed:
    """One request: when it arrived and when its response was fully sent (Unix seconds), route and path, and
    the status it was answered with (0: none)."""

    start: float
    end: float
    name: str
    method: str
    path: str
    status: int = 0

    @property
    def api(self) -> bool:
        """True for Replicate API requests (counted against the rate limit), False for output files."""
        return self.name != "file"


def route_name(method: str, path: str) -> str:
    """The fake's short route name (``create``, ``get``, ``cancel``, ``list``, ``file``...) for a request."""
    for route in ROUTES:
        if route.method == method and route.pattern.match(path):
            return route.name
    return "unmatched"


class TimedFake(FakeReplicate):
    """A :class:`FakeReplicate` that also records each request's arrival and completion time."""

    def reset(self) -> None:
        """Forget timings along with everything else."""
        self.timings: list[Timed] = []
        super().reset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI request and record when it came and went."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        start = time.time()
        status = 0

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, noting_send)
        finally:
            method, path = scope["method"], scope["path"]
            self.timings.append(Timed(start, time.time(), route_name(method, path), method, path, status))

    def service_ms(self, since: float = 0.0) -> dict[str, float | int]:
        """How long the fake took to answer API requests that arrived after ``since`` (ms; p50/p95/p99):
        small numbers mean the fake, running in the benchmark's process, was not the bottleneck."""
        return summary([(t.end - t.start) * 1000 for t in list(self.timings) if t.api and t.start >= since], 2)

    def api_request_times(self) -> list[float]:
        """Arrival times of every API request (not output downloads)."""
        return [t.start for t in list(self.timings) if t.api]

    def requests_for(self, prediction_id: str, model: str) -> dict[str, int]:
        """Requests that concerned one prediction: its create (by model), gets, cancels; lists; file downloads."""
        counts = {"create": 0, "get": 0, "cancel": 0, "list": 0, "file": 0}
        token = self.predictions[prediction_id].file_token
        for t in list(self.timings):
            if t.name == "create" and t.path.endswith(f"/models/{model}/predictions"):
                counts["create"] += 1
            elif t.name in ("get", "cancel") and f"/predictions/{prediction_id}" in t.path:
                counts[t.name] += 1
            elif t.name == "list":
                counts["list"] += 1
            elif t.name == "file" and f"/files/{token}/" in t.path:
                counts["file"] += 1
        return counts


UNLIMITED_ENV = {"MEDIAGEN_REPLICATE_CREATES_PER_MINUTE": "60000", "MEDIAGEN_REPLICATE_REQUESTS_PER_MINUTE": "60000"}
"""Operator settings that take Replicate's allowances out of the way (1000 requests a second of each kind), for
benchmarks that measure the operator, not the quota, against a fake that enforces no limits."""


class FakeService:
    """A :class:`TimedFake` served on loopback; ``with FakeService() as fake:`` then ``fake.base_url``."""

    def __init__(self, rate_limits: RateLimits | None = None) -> None:
        self.fake = TimedFake(auto_models=True, seed=7, rate_limits=rate_limits)
        self._server = FakeReplicateServer(self.fake)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._server.base_url

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()


class CompletedSender(WebhookSender):
    """The fake's webhook sender, cut down to what the operator subscribes to (``completed``) so it scales.

    The stock sender renders every prediction's JSON on every pump and delivers one at a time; with hundreds of
    predictions that would make the fake, not the operator, the bottleneck, and its 20-ms pumps would add 10 ms
    to every delivery. This one keeps a heap of the moments predictions end, so a pump (every 2 ms) costs next
    to nothing until one is due, and delivers from a pool of threads, as a real sender does in parallel. (A
    prediction canceled early is delivered at its natural end: the benchmarks cancel none.)"""

    def __init__(self, fake: FakeReplicate, *, threads: int = 32, interval: float = 0.002) -> None:
        super().__init__(fake, interval=interval)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        self._known = 0
        self._ends: list[tuple[float, str]] = []

    def _discover(self) -> None:
        """Put predictions created since the last pump on the heap (the fake's dict keeps creation order)."""
        fake = self.fake
        for prediction_id in itertools.islice(fake.predictions, self._known, None):
            prediction = fake.predictions[prediction_id]
            if prediction.webhook is not None:
                ended = prediction.timeline(math.inf, fake.config).ended
                heapq.heappush(self._ends, (math.inf if ended is None else ended, prediction_id))
        self._known = len(fake.predictions)

    def _due(self) -> list[tuple[str, str, str, dict[str, Any], int]]:
        fake = self.fake
        due: list[tuple[str, str, str, dict[str, Any], int]] = []
        with fake.lock:
            if len(fake.predictions) < self._known:  # the fake was reset
                self._known, self._ends = 0, []
            if len(fake.predictions) > self._known:
                self._discover()
            now = fake.clock()
            base = fake.base_url or "http://127.0.0.1"
            while self._ends and self._ends[0][0] <= now:
                _, prediction_id = heapq.heappop(self._ends)
                prediction = fake.predictions.get(prediction_id)
                state = self._progress.setdefault(prediction_id, _Progress())
                if prediction is None or prediction.webhook is None or state.completed_done:
                    continue
                ended = prediction.timeline(now, fake.config).ended
                attempt = state.completed_attempts
                if ended is None or attempt >= len(self.retry_offsets):
                    continue
                when = ended + self.retry_offsets[attempt] * self.time_scale
                if now < when:
                    heapq.heappush(self._ends, (when, prediction_id))
                    continue
                state.completed_attempts += 1
                body = prediction.to_json(now, base, fake.config)
                due.append((prediction_id, prediction.webhook, "completed", body, attempt + 1))
        return due

    def pump(self) -> list[Delivery]:
        """Deliver every due ``completed`` webhook, in parallel; failed ones go back on the heap for a retry."""
        with self._pump_lock:
            due = self._due()
            if not due:
                return []
            sent = list(self._pool.map(lambda item: self._send(*item), due))
            for (prediction_id, url, _, body, _), delivery in zip(due, sent, strict=True):
                self._after_completed(prediction_id, url, body, delivery)
                if not self._progress[prediction_id].completed_done:
                    with self.fake.lock:
                        heapq.heappush(self._ends, (self.fake.clock(), prediction_id))
            self.deliveries.extend(sent)
            return sent

    def stop(self) -> None:
        """Stop pumping, then the delivery threads."""
        super().stop()
        self._pool.shutdown(wait=True)
