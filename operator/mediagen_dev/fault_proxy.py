"""A reverse proxy on loopback that can misbehave on cue: for injecting faults into S3 (or any HTTP) traffic.

The operator talks to the proxy as if it were the store; the proxy forwards to the real server (moto),
except when a scripted fault says otherwise: answer 500 for the next N matching requests, or be "down"
(every request refused with 503) until told otherwise. Streams both ways, so large uploads stay cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from mediagen_dev.http_server import ThreadedServer

# host: httpx sets the upstream one; expect: httpx cannot do 100-continue, so the body just follows.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "host",
    "expect",
}
_S3_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


@dataclass
class _Fault:
    method: str | None
    times: int


class FaultProxy:
    """Forward to ``upstream``; misbehave as scripted. Thread-safe scripting from tests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.down = False
        self.failed = 0
        """How many requests the proxy failed on purpose."""
        self.forwarded = 0
        self._server = ThreadedServer(self, name="fault-proxy")

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return self._server.url

    def fail_next(self, times: int, method: str | None = None) -> None:
        """Answer the next ``times`` requests (of ``method``, if given) with an S3-style 500."""
        with self._lock:
            self._faults.append(_Fault(method, times))

    def _take_fault(self, method: str) -> bool:
        with self._lock:
            if self.down:
                return True
            for fault in self._faults:
                if fault.times > 0 and fault.method in (None, method):
                    fault.times -= 1
                    return True
            return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if self._take_fault(request.method):
            self.failed += 1
            async for _ in request.stream():  # drain, or the unread body poisons the kept-alive connection
                pass
            status = 503 if self.down else 500
            await Response(_S3_ERROR, status_code=status, media_type="application/xml")(scope, receive, send)
            return
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        # A client per request: the proxy serves tests, where simplicity beats connection reuse.
        async with httpx.AsyncClient(timeout=httpx.Timeout(120.0)) as client:
            outgoing = client.build_request(request.method, url, headers=headers, content=request.stream())
            upstream = await client.send(outgoing, stream=True)
            self.forwarded += 1
            response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            response = StreamingResponse(upstream.aiter_raw(), upstream.status_code, headers=response_headers)
            try:
                await response(scope, receive, send)
            finally:
                await upstream.aclose()

    def start(self) -> Self:
        """Serve on a free loopback port in a background thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
