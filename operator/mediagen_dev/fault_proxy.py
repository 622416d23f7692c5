"""A reverse proxy on loopback that can misbehave on cue: for injecting faults into S3 (or any HTTP) traffic.

The operator talks to the proxy as if it were the store; the proxy forwards to the real server (moto),
except when a scripted fault says otherwise: answer 500 for the next N matching requests, or be "down"
(every request refused with 503) until told otherwise. Streams both ways, so large uploads stay cheap.
:class:`Rule` scripts subtler faults by method, path and chance (409s and failed GETs in front of kube-apiserver).
"""

from __future__ import annotations

import random
import re
import ssl
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


@dataclass
class Rule:
    """Answer requests of ``method`` whose path matches ``path`` (and whose query has none of ``unless_query``)
    with ``status`` and ``body``, with probability ``chance``."""

    method: str
    path: re.Pattern[str]
    status: int
    body: bytes
    chance: float = 1.0
    content_type: str = "application/json"
    unless_query: tuple[str, ...] = ()
    hits: int = 0


class FaultProxy:
    """Forward to ``upstream``; misbehave as scripted. Thread-safe scripting from tests."""

    def __init__(
        self,
        upstream: str,
        *,
        verify: ssl.SSLContext | bool = True,
        drop_headers: frozenset[str] = frozenset(),
        seed: int = 0,
    ) -> None:
        """``verify``: how to trust (and authenticate to) an https upstream; ``drop_headers``: request headers not
        forwarded (the proxy's own client credentials stand in for the caller's)."""
        self.upstream = upstream.rstrip("/")
        self._verify = verify
        self._drop = _HOP_BY_HOP | {h.lower() for h in drop_headers}
        self._faults: list[_Fault] = []
        self.rules: list[Rule] = []
        self._rng = random.Random(seed)
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

    def add_rule(self, rule: Rule) -> Rule:
        """Start answering matching requests as ``rule`` says (until :meth:`clear_rules`)."""
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        """Forward everything again."""
        with self._lock:
            self.rules.clear()

    def _take_fault(self, method: str) -> bool:
        with self._lock:
            if self.down:
                return True
            for fault in self._faults:
                if fault.times > 0 and fault.method in (None, method):
                    fault.times -= 1
                    return True
            return False

    def _take_rule(self, method: str, path: str, query: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method != method or not rule.path.search(path):
                    continue
                if any(word in query for word in rule.unless_query):
                    continue
                if self._rng.random() < rule.chance:
                    rule.hits += 1
                    return rule
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        rule = self._take_rule(request.method, request.url.path, request.url.query)
        if rule is not None:
            self.failed += 1
            async for _ in request.stream():
                pass
            await Response(rule.body, status_code=rule.status, media_type=rule.content_type)(scope, receive, send)
            return
        if self._take_fault(request.method):
            self.failed += 1
            async for _ in request.stream():  # drain, or the unread body poisons the kept-alive connection
                pass
            status = 503 if self.down else 500
            await Response(_S3_ERROR, status_code=status, media_type="application/xml")(scope, receive, send)
            return
        url = self.upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in self._drop]
        # Watches stay quiet for minutes: no read timeout for them.
        timeout = httpx.Timeout(120.0, read=None if "watch=" in request.url.query else 120.0)
        # A client per request: the proxy serves tests, where simplicity beats connection reuse.
        async with httpx.AsyncClient(timeout=timeout, verify=self._verify) as client:
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
