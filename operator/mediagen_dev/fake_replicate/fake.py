"""The fake Replicate API as one ASGI app plus the state tests script and inspect.

The dispatcher does what every Replicate endpoint shares: routing, auth, scripted faults, rate limits, the
``ratelimit-*`` headers and bookkeeping; :mod:`.routes` holds the endpoint bodies.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mediagen_dev.fake_replicate import problems, routes
from mediagen_dev.fake_replicate.clock import Clock, wall_clock
from mediagen_dev.fake_replicate.config import FakeConfig
from mediagen_dev.fake_replicate.faults import Fault, FaultQueue, RateLimits, TokenBucket
from mediagen_dev.fake_replicate.prediction import FakePrediction
from mediagen_dev.fake_replicate.problems import Canned
from mediagen_dev.fake_replicate.script import ModelScript

if TYPE_CHECKING:
    from mediagen_dev.fake_replicate.webhooks import WebhookSender


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised inside the app to cut a response short.

    Over real HTTP, uvicorn closes the socket mid-response and the client sees its own
    ``httpx.RemoteProtocolError``; in-process through ``httpx.ASGITransport`` this exception itself reaches
    the client, so both paths surface as an ``httpx.TransportError``."""

    def __init__(self) -> None:
        super().__init__("fake replicate dropped the connection after accepting the request")


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path template, and a short name used by faults and counters."""

    method: str
    template: str
    name: str
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/predictions", "create"),
    Route("GET", "/v1/predictions", "list"),
    Route("POST", "/v1/models/{owner}/{name}/predictions", "create"),
    Route("POST", "/v1/deployments/{owner}/{name}/predictions", "create"),
    Route("GET", "/v1/predictions/{id}", "get"),
    Route("POST", "/v1/predictions/{id}/cancel", "cancel"),
    Route("GET", "/v1/webhooks/default/secret", "secret"),
    Route("GET", "/v1/models/{owner}/{name}/versions/{version}", "version"),
    Route("GET", "/files/{token}/{filename}", "file"),
)
UNMATCHED = "<unmatched>"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, for assertions (headers lower-cased)."""

    method: str
    path: str
    query: str
    template: str
    name: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    dropped: bool = False


@dataclass
class _Exchange:
    recorded: bool = False
    dropping: bool = False


class FakeReplicate:
    """A scriptable, in-memory Replicate API. Call it as an ASGI app, or serve it with
    :class:`~mediagen_dev.fake_replicate.server.FakeReplicateServer`.

    ``models`` maps ``owner/name`` to a :class:`ModelScript`; ``deployments`` maps ``owner/name`` of a
    deployment to a model name. With ``auto_models`` every unknown ``owner/name`` is an official model with
    the default script instead of a 404. All public methods are thread-safe (the server runs in a thread).
    """

    def __init__(
        self,
        *,
        models: Mapping[str, ModelScript] | None = None,
        deployments: Mapping[str, str] | None = None,
        clock: Clock = wall_clock,
        config: FakeConfig | None = None,
        rate_limits: RateLimits | None = None,
        auto_models: bool = False,
        webhook_secret: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._initial = (
            dict(models or {}),
            dict(deployments or {}),
            config or FakeConfig(),
            rate_limits,
        )
        self.auto_models = auto_models
        self._rng = random.Random(seed)
        self.webhook_secret = webhook_secret or "whsec_" + base64.b64encode(self._rng.randbytes(24)).decode()
        self.base_url: str | None = None
        """Set by the server once listening; used for webhook bodies, which have no request to copy."""
        self.webhooks: WebhookSender | None = None
        """The attached webhook sender, if any (it registers itself); reset along with the fake."""
        self.reset()

    # -- scripting ---------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget predictions, counters, faults and deliveries; restore the constructor's models and limits."""
        models, deployments, config, limits = self._initial
        with self.lock:
            self.models: dict[str, ModelScript] = dict(models)
            self.deployments: dict[str, str] = dict(deployments)
            self.config = FakeConfig(**vars(config))
            self.faults = FaultQueue()
            self.predictions: dict[str, FakePrediction] = {}
            self.by_file_token: dict[str, str] = {}
            self.requests: Counter[tuple[str, str, int]] = Counter()
            self.request_log: list[RecordedRequest] = []
            # in_flight is a live gauge: requests still running across a reset must not drive it negative.
            self.in_flight: int = getattr(self, "in_flight", 0)
            self.max_in_flight = self.in_flight
            self._limits = limits
            self._buckets: dict[bool, TokenBucket | None] = {}
            self.set_rate_limits(limits)
        if self.webhooks is not None:
            self.webhooks.reset()

    def add_model(self, name: str, script: ModelScript | None = None) -> ModelScript:
        """Register (or replace) ``owner/name`` with ``script`` (default: :class:`ModelScript()`)."""
        with self.lock:
            self.models[name] = script or ModelScript()
            return self.models[name]

    def add_deployment(self, name: str, model: str) -> None:
        """Register deployment ``owner/name`` running the registered ``model``."""
        with self.lock:
            self.deployments[name] = model

    def inject(self, *faults: Fault) -> None:
        """Arm faults for upcoming requests (see :class:`Fault`)."""
        with self.lock:
            for fault in faults:
                self.faults.add(fault)

    def set_rate_limits(self, limits: RateLimits | None) -> None:
        """Enforce token buckets from now on (``None``: unlimited, headers report 599/2999)."""
        with self.lock:
            now = self.clock()
            self._limits = limits
            self._buckets = {} if limits is None else {c: limits.bucket(c, now) for c in (True, False)}

    def cancel(self, prediction_id: str) -> None:
        """Cancel as if ``POST /cancel`` was called (no effect on a finished prediction)."""
        with self.lock:
            prediction = self.predictions[prediction_id]
            now = self.clock()
            if not prediction.is_terminal(now, self.config):
                prediction.canceled_at = now

    # -- observation -------------------------------------------------------------------------------------

    def snapshot(self, prediction_id: str) -> dict[str, Any]:
        """The prediction's JSON right now, as ``GET`` would return it."""
        with self.lock:
            return self.predictions[prediction_id].to_json(self.clock(), self._public_base(), self.config)

    def all_predictions(self) -> list[dict[str, Any]]:
        """Every prediction's JSON, oldest first."""
        with self.lock:
            return [self.snapshot(pid) for pid in self.predictions]

    @property
    def creates_by_webhook(self) -> Counter[str]:
        """Predictions created per full ``webhook`` URL (``""`` for none): more than one means a duplicate."""
        with self.lock:
            return Counter(p.webhook or "" for p in self.predictions.values())

    def creates_by(self, param: str) -> Counter[str]:
        """Predictions created per value of query parameter ``param`` of their webhook URL."""
        with self.lock:
            counts: Counter[str] = Counter()
            for p in self.predictions.values():
                values = parse_qs(urlsplit(p.webhook or "").query).get(param, [""])
                counts[values[0]] += 1
            return counts

    @property
    def creates_by_marker(self) -> Counter[str]:
        """:meth:`creates_by` for ``config.correlation_param`` (default ``mg``)."""
        return self.creates_by(self.config.correlation_param)

    def requests_to(self, name: str) -> list[RecordedRequest]:
        """Recorded requests for one route name (``create``, ``get``…) or template."""
        with self.lock:
            return [r for r in self.request_log if name in (r.name, r.template)]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block (real time) until no request is in flight, e.g. after a client gave up on a slow answer.

        Only for the threaded server: in-process the requests run on the caller's own event loop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight == 0:
                    return True
            time.sleep(0.002)
        return False

    # -- helpers for routes ------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A 26-character ``[a-z0-9]`` id like Replicate's."""
        return "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26))

    def new_token(self) -> str:
        """An unguessable path segment for output file URLs."""
        return self._rng.randbytes(16).hex()

    def _public_base(self) -> str:
        return self.base_url or "http://127.0.0.1"

    # -- ASGI --------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        route, params = _match(request.method, request.url.path)
        body = await request.body()
        exchange = _Exchange()

        async def recording_send(message: Message) -> None:
            # Book-keep before the client can see the response, so a test that has its answer also
            # sees the request in the counters.
            if message["type"] == "http.response.start":
                self._record(request, route, body, message["status"], exchange.dropping)
                exchange.recorded = True
            await send(message)

        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self._dispatch(request, route, params, recording_send, exchange)
        finally:
            with self.lock:
                self.in_flight -= 1
            if not exchange.recorded:
                self._record(request, route, body, 0, exchange.dropping)

    def _record(self, request: Request, route: Route | None, body: bytes, status: int, dropped: bool) -> None:
        template = route.template if route else UNMATCHED
        with self.lock:
            self.requests[(request.method, template, status)] += 1
            self.request_log.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query,
                    template=template,
                    name=route.name if route else UNMATCHED,
                    status=status,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    dropped=dropped,
                )
            )

    async def _dispatch(
        self, request: Request, route: Route | None, params: dict[str, str], send: Send, exchange: _Exchange
    ) -> None:
        scope, receive = request.scope, request.receive
        if route is None:
            known_path = any(r.pattern.match(request.url.path) for r in ROUTES)
            canned = problems.problem(405, "Method not allowed.") if known_path else problems.not_found_resource()
            await _canned_response(canned, self._ratelimit_headers(False))(scope, receive, send)
            return
        api = route.name != "file"
        creates = route.name == "create"
        extra = self._ratelimit_headers(creates) if api else {}
        if api and (denied := self._authenticate(request)) is not None:
            await _canned_response(denied, extra)(scope, receive, send)
            return
        with self.lock:
            fault = self.faults.take(request.method, route.name, route.template)
        if fault is not None and fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.answer is not None:
            await _canned_response(fault.answer, extra)(scope, receive, send)
            return
        if api and (throttled := self._take_token(creates)) is not None:
            await _canned_response(throttled, self._ratelimit_headers(creates))(scope, receive, send)
            return
        if api:
            extra = self._ratelimit_headers(creates)  # what is left after this one, as Replicate counts down
        response = await routes.handle(self, route.name, request, params)
        if fault is not None and fault.hold > 0:
            await asyncio.sleep(fault.hold)
        for key, value in extra.items():
            response.headers.setdefault(key, value)
        if fault is not None and fault.drop:
            exchange.dropping = True
            await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise DroppedConnection
        await response(scope, receive, send)

    def _authenticate(self, request: Request) -> Canned | None:
        header = request.headers.get("authorization", "").strip()
        scheme, _, token = header.partition(" ")
        if not header:
            return problems.unauthenticated(token_present=False)
        if scheme.lower() not in ("bearer", "token") or token.strip() not in self.config.valid_tokens:
            return problems.unauthenticated(token_present=True)
        return None

    def _take_token(self, creates: bool) -> Canned | None:
        with self.lock:
            bucket = self._buckets.get(creates)
            if bucket is None:
                return None
            wait = bucket.try_take(self.clock())
        return None if wait is None else problems.throttled(wait)

    def _ratelimit_headers(self, creates: bool) -> dict[str, str]:
        if not self.config.ratelimit_headers:
            return {}
        with self.lock:
            bucket = self._buckets.get(creates)
            remaining = (599 if creates else 2999) if bucket is None else bucket.remaining(self.clock())
        return {"ratelimit-remaining": str(remaining), "ratelimit-reset": "1"}


def _match(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        if route.method == method and (found := route.pattern.match(path)):
            return route, found.groupdict()
    return None, {}


def _canned_response(canned: Canned, extra: Mapping[str, str]) -> Response:
    headers = {**extra, **canned.headers}
    return Response(canned.body, status_code=canned.status, media_type=canned.content_type, headers=headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
