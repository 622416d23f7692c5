"""The gateway's one ASGI middleware: request body limit, baseline security headers, request metrics (labels bounded:
route templates, known methods, status codes).

The body limit is enforced before anything reads the body: a declared ``Content-Length`` above the limit is
refused without calling the app, and a chunked body is counted as it streams in. Either way the answer is a
413 problem, never a 500 and never an unbounded read.
"""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagen.gateway import kube_status
from mediagen.gateway.apigroup import is_aggregated_path
from mediagen.gateway.metrics import GatewayMetrics
from mediagen.gateway.problems import PROBLEM_JSON, TYPE_BASE

# FastAPI serves its docs outside the router; they are few and fixed, so they may be label values.
_DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Any token is a method to h11, and the method is a label: anything else is "other", or invented methods would
# each make a new series (3,000 requests made 51,019).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body exceeds the limit.

    An HTTPException, so FastAPI's body reading lets it through to the problem handler unchanged."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class GatewayMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: GatewayMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500
        started = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _BASE_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if _declared_length(scope) > self.max_body_bytes:
                await self._too_large(scope, send_with_headers)
                return
            try:
                await self.app(scope, limited_receive, send_with_headers)
            except BodyTooLarge:
                if started:
                    raise
                await self._too_large(scope, send_with_headers)
        finally:
            route = scope.get("route")
            path = scope.get("path", "")
            template = getattr(route, "path", None) or (path if path in _DOCS_PATHS else "unmatched")
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(time.perf_counter() - began)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        detail = f"the request body is larger than {self.max_body_bytes} bytes"
        content_type = PROBLEM_JSON
        if is_aggregated_path(scope.get("path", "")):
            body = json.dumps(kube_status.status_body(413, detail)).encode()
            content_type = "application/json"
        else:
            body = json.dumps(
                {
                    "type": TYPE_BASE + "content-too-large",
                    "title": "Content Too Large",
                    "status": 413,
                    "detail": detail,
                    "instance": scope.get("path", ""),
                    "errors": [{"field": "body", "in": "body", "pointer": "", "message": "too large"}],
                }
            ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
