"""The Replicate backend: five endpoints over our own ``httpx.AsyncClient``.

Why not the ``replicate`` package (docs/replicate.md#statuses): 1.0.7 cannot parse the ``aborted`` status, sends
``Cancel-After`` only as a client-wide header, and its retry transport can sleep for as long as a server's
``Retry-After`` says. Here every call is a single request, errors carry intent (see
:mod:`mediagen.generators.replicate_errors`), and retries are the caller's decision.

Replicate has no idempotency key. Each create sends ``webhook=<webhook_base_url>?mg=<correlation>``, which
Replicate echoes on every read, so :meth:`ReplicateGenerator.find` can recognise a prediction whose create
response was lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from mediagen.generators.aiohttp_transport import AiohttpTransport
from mediagen.generators.base import (
    RESPONSE_NOTES,
    TERMINAL_STATUSES,
    CreateRequest,
    PermanentError,
    Prediction,
    TransientError,
)
from mediagen.generators.replicate_errors import Operation, error_for_response, error_for_transport

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.replicate.com"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=10.0)
CORRELATION_PARAM = "mg"
"""Query parameter of the webhook URL that carries the correlation marker."""
WEBHOOK_EVENTS = ("completed",)
"""Only the final event: webhooks speed things up, polling stays the source of truth."""
MAX_FIND_PAGES = 20
MAX_CONNECTIONS = 32
"""Requests to Replicate in flight at once (and connections kept open); the rest wait their turn. At Replicate's
usual 0.2-1 s per request that is 30-160 requests a second, above the 50 other requests a second its limits allow
once a burst is spent; a burst the request pacer lets go waits here for connections."""
CREATE_CONNECTIONS = 16
"""Creates have connections of their own, on top of :data:`MAX_CONNECTIONS`: a create the request pacer let go
must not wait behind polls, or creates held up together reach Replicate together, faster than its bucket
refills (10 a second), and are answered 429."""

RequestObserver = Callable[[Operation, str, float], None]
"""Told about every request: the endpoint (``create``, ``get``, ``cancel``, ``list``), the HTTP status code as a
string (``"error"`` when no response came back) and the seconds it took. For metrics; never sees ids or URLs."""

_MODEL_REF = re.compile(r"^(?P<owner>[^/\s]+)/(?P<name>[^/:\s]+)(:(?P<version>\S+))?$")
_KNOWN_STATUSES = frozenset({"starting", "processing", *TERMINAL_STATUSES})
_TIMESTAMP = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:[.,](?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?$"
)


class ReplicateGenerator:
    """:class:`~mediagen.generators.base.Generator` for Replicate's HTTP API.

    ``webhook_base_url`` must be an HTTPS URL for the real API (the fake also accepts HTTP); it need not
    receive anything, it carries the correlation marker. ``transport`` is for tests (``httpx.MockTransport``,
    ``httpx.ASGITransport``); production leaves it ``None``. ``observer`` is told about every request (metrics)."""

    name = "replicate"

    def __init__(
        self,
        api_token: str,
        *,
        webhook_base_url: str,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_find_pages: int = MAX_FIND_PAGES,
        observer: RequestObserver | None = None,
        max_connections: int = MAX_CONNECTIONS,
        create_connections: int = CREATE_CONNECTIONS,
    ) -> None:
        if not api_token:
            raise ValueError("a Replicate API token is required")
        if urlsplit(webhook_base_url).scheme not in ("https", "http"):
            raise ValueError("webhook_base_url must be an absolute HTTPS URL")
        self._token = api_token
        self._webhook_base_url = webhook_base_url
        self._max_find_pages = max_find_pages
        self._observer = observer
        self._origin = _origin(base_url)
        connections = max_connections + create_connections
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_token}",
                "User-Agent": "mediagen-operator",
                "Accept": "application/json",
            },
            timeout=timeout,
            # aiohttp's pool under httpx's interface: httpcore's costs more CPU than the rest of a call. Its cap is
            # the slots' sum, so the creates' own connections are never taken by polls.
            transport=transport if transport is not None else AiohttpTransport(connections=connections),
            follow_redirects=False,
            # As many kept alive as may be open: httpx's default closes idle connections beyond 20 of 100.
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        # Requests beyond the pool wait here, not in httpcore's pool: its queue is rescanned against every
        # connection on each request and response, which costs more CPU than the request itself when many wait.
        self._slots = asyncio.Semaphore(max_connections)
        self._create_slots = asyncio.Semaphore(create_connections)

    def webhook_url(self, correlation: str) -> str:
        """The webhook URL a create with ``correlation`` sends (and ``find`` looks for), verbatim."""
        parts = urlsplit(self._webhook_base_url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != CORRELATION_PARAM]
        query.append((CORRELATION_PARAM, correlation))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def create(self, request: CreateRequest) -> Prediction:
        """POST one prediction; never retried here (a lost response is recovered with :meth:`find`)."""
        path, body = _route(request)
        body["input"] = dict(request.input)
        body["webhook"] = self.webhook_url(request.correlation)
        body["webhook_events_filter"] = list(WEBHOOK_EVENTS)
        headers = {"Content-Type": "application/json"}
        if request.cancel_after_seconds is not None:
            headers["Cancel-After"] = f"{max(1, int(request.cancel_after_seconds))}s"
        data = await self._call("POST", path, "create", content=json.dumps(body).encode(), headers=headers)
        return parse_prediction(data)

    async def get(self, prediction_id: str) -> Prediction:
        """GET the prediction's current state."""
        return parse_prediction(await self._call("GET", _prediction_path(prediction_id), "get"))

    async def cancel(self, prediction_id: str) -> Prediction:
        """Cancel; a prediction that already finished comes back unchanged."""
        path = _prediction_path(prediction_id) + "/cancel"
        try:
            return parse_prediction(await self._call("POST", path, "cancel"))
        except PermanentError as exc:
            # Replicate returns a finished prediction unchanged as far as anyone has seen; if it ever
            # rejects the cancel instead, a finished prediction is still the answer we want.
            if exc.reason != "RequestRejected":
                raise
            current = await self.get(prediction_id)
            if current.terminal:
                return current
            raise

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        """The newest prediction created after ``created_after`` whose webhook carries ``correlation``.

        Only the marker is compared, never the rest of the URL: the URL is a setting, and the operator that created
        the prediction may have had another one (turning webhooks on changes it), which must not cost a second
        paid prediction. Pages are newest first; paging stops at ``max_find_pages``, at a page older than
        ``created_after``, or at a ``next`` link to another host (never send the token elsewhere)."""
        since = _aware(created_after)
        url: str | None = "/v1/predictions?" + urlencode({"created_after": _isoformat(since)})
        for _ in range(self._max_find_pages):
            if url is None:
                break
            page = await self._call("GET", url, "list")
            results = page.get("results")
            older_only = True
            for item in results if isinstance(results, list) else []:
                if not isinstance(item, dict):
                    continue
                created = parse_timestamp(item.get("created_at"))
                if created is None or created >= since:
                    older_only = False
                if marker_of(item.get("webhook")) == correlation and (created is None or created >= since):
                    return parse_prediction(item)
            url = self._next_url(page.get("next"))
            if older_only and isinstance(results, list) and results:
                break
        return None

    async def webhook_secret(self) -> str:
        """The account's webhook signing secret (``whsec_...``), which signs every delivery."""
        data = await self._call("GET", "/v1/webhooks/default/secret", "secret")
        key = data.get("key")
        if not isinstance(key, str) or not key.startswith("whsec_"):
            raise TransientError("Replicate sent no webhook signing secret")
        return key

    def _next_url(self, link: Any) -> str | None:
        if not isinstance(link, str) or not link:
            return None
        if link.startswith("/"):
            return link
        if _origin(link) != self._origin:
            log.warning("not following a Replicate pagination link to another origin")
            return None
        return link

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        operation: Operation,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        async with self._create_slots if operation == "create" else self._slots:
            started = time.perf_counter()  # the request's own time, not the wait for a slot
            try:
                response = await self._client.request(method, url, content=content, headers=headers)
            except httpx.RequestError as exc:
                self._observe(operation, "error", started)
                raise self._redacted(error_for_transport(exc, operation)) from None
            self._observe(operation, str(response.status_code), started)
        if (notes := RESPONSE_NOTES.get()) is not None:
            notes.status, notes.remaining = response.status_code, ratelimit_remaining(response.headers)
        if not response.is_success:
            raise self._redacted(error_for_response(response, operation))
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # A 2xx we cannot read: for a create the prediction may exist, so this must stay retryable.
            raise TransientError(f"Replicate sent an unreadable {response.status_code} response to {operation}")
        return data

    def _observe(self, operation: Operation, code: str, started: float) -> None:
        if self._observer is not None:
            self._observer(operation, code, time.perf_counter() - started)

    def _redacted(self, error: Exception) -> Exception:
        """Defence in depth: no message may ever carry the token, whatever a server echoes."""
        for i, arg in enumerate(error.args):
            if isinstance(arg, str) and self._token in arg:
                error.args = (*error.args[:i], arg.replace(self._token, "[REDACTED]"), *error.args[i + 1 :])
        return error


def marker_of(webhook: Any) -> str | None:
    """The correlation marker in a prediction's echoed webhook URL, or None."""
    if not isinstance(webhook, str):
        return None
    values = [v for k, v in parse_qsl(urlsplit(webhook).query, keep_blank_values=True) if k == CORRELATION_PARAM]
    return values[-1] if values else None


def ratelimit_remaining(headers: httpx.Headers) -> int | None:
    """Replicate's ``ratelimit-remaining`` header as a count, or None when absent or not a whole number ≥ 0."""
    value = headers.get("ratelimit-remaining", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _route(request: CreateRequest) -> tuple[str, dict[str, Any]]:
    """Endpoint and base body for a create: deployment, pinned version, or official model."""
    if (request.model is None) == (request.deployment is None):
        raise PermanentError("InvalidModel", "set exactly one of model or deployment")
    if request.deployment is not None:
        match = _MODEL_REF.match(request.deployment)
        if match is None or match.group("version"):
            raise PermanentError("InvalidModel", f"deployment must be owner/name, got {request.deployment!r}")
        return f"/v1/deployments/{_seg(match['owner'])}/{_seg(match['name'])}/predictions", {}
    assert request.model is not None
    match = _MODEL_REF.match(request.model)
    if match is None:
        raise PermanentError("InvalidModel", f"model must be owner/name or owner/name:version, got {request.model!r}")
    if match.group("version"):
        return "/v1/predictions", {"version": match["version"]}
    return f"/v1/models/{_seg(match['owner'])}/{_seg(match['name'])}/predictions", {}


def _seg(value: str) -> str:
    return quote(value, safe="")


def _prediction_path(prediction_id: str) -> str:
    if not prediction_id or "/" in prediction_id:
        raise PermanentError("PredictionNotFound", f"not a Replicate prediction id: {prediction_id!r}")
    return f"/v1/predictions/{_seg(prediction_id)}"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _isoformat(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An aware datetime from Replicate's RFC 3339 strings of any precision; ``None`` if unparsable."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    zone = match["zone"] or "Z"
    zone = "+00:00" if zone in ("Z", "z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        parsed = dt.datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}")
    except ValueError:
        return None
    return parsed.astimezone(dt.UTC)


def parse_prediction(data: Mapping[str, Any]) -> Prediction:
    """A :class:`Prediction` from raw JSON, tolerating missing fields and statuses we do not know."""
    prediction_id = data.get("id")
    if not isinstance(prediction_id, str) or not prediction_id:
        raise TransientError("Replicate sent a prediction without an id")
    status = data.get("status")
    status = status if isinstance(status, str) and status else "unknown"
    if status not in _KNOWN_STATUSES:
        log.warning("Replicate prediction %s has unknown status %r; treating it as in flight", prediction_id, status)
    metrics = data.get("metrics")
    metrics = metrics if isinstance(metrics, dict) else {}
    predict_time = metrics.get("predict_time")
    error = data.get("error")
    logs = data.get("logs")
    return Prediction(
        id=prediction_id,
        status=status,
        output=data.get("output"),
        error=error if isinstance(error, str) and error else None,
        logs=logs if isinstance(logs, str) else None,
        created_at=parse_timestamp(data.get("created_at")),
        started_at=parse_timestamp(data.get("started_at")),
        completed_at=parse_timestamp(data.get("completed_at")),
        predict_time_seconds=float(predict_time)
        if isinstance(predict_time, int | float) and not isinstance(predict_time, bool)
        else None,
        data_removed=data.get("data_removed") is True,
        metrics=metrics,
    )
