"""What a replica serves while it stands by: its liveness endpoint, and 503 for Replicate's webhooks.

A standby runs no operator (kopf starts only once the Lease is won), so these small threaded servers answer on the
same ports meanwhile: the kubelet's liveness probe gets 200 with the replica's role and the leader it sees, and a
webhook delivery that the Service routed here gets 503 with ``Retry-After``, so that Replicate tries again (most
likely at the leader). They close the moment the Lease is won, and the operator binds the same ports.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from mediagen.controller.webhook_receiver import PATH as WEBHOOK_PATH
from mediagen.controller.webhook_receiver import RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class Endpoint:
    """Where to listen: host, port and the path that answers."""

    host: str
    port: int
    path: str


def liveness_endpoint(url: str) -> Endpoint:
    """The endpoint of a ``--liveness`` URL such as ``http://0.0.0.0:8080/healthz``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(f"the liveness URL must look like http://HOST:PORT/PATH (got {url!r})")
    return Endpoint(parts.hostname, parts.port, parts.path or "/")


def _handler(endpoint: Endpoint, status: Callable[[], dict[str, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != endpoint.path or endpoint.path == WEBHOOK_PATH:
                self._answer(404, b"not found\n", "text/plain")
                return
            self._answer(200, json.dumps(status()).encode(), "application/json")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != WEBHOOK_PATH:
                self._answer(404, b"not found\n", "text/plain")
                return
            # The body is not read: nothing here can use it, and the connection closes after the answer.
            self.close_connection = True
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            self._answer(503, b"this replica stands by; the leader receives webhooks\n", "text/plain", headers)

        def _answer(self, code: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would flood the log

    return Handler


class StandbyServer:
    """The liveness endpoint (and, with webhooks on, the webhook port) of a standby replica."""

    def __init__(
        self, liveness: Endpoint | None, webhook_port: int, webhook_host: str, status: Callable[[], dict[str, str]]
    ) -> None:
        endpoints = [liveness] if liveness else []
        if webhook_port:
            endpoints.append(Endpoint(webhook_host, webhook_port, WEBHOOK_PATH))
        self._servers = [ThreadingHTTPServer((e.host, e.port), _handler(e, status)) for e in endpoints]
        for server in self._servers:
            server.daemon_threads = True

    @property
    def ports(self) -> list[int]:
        """The bound ports (the liveness one first), e.g. when 0 picked free ones."""
        return [int(server.server_address[1]) for server in self._servers]

    def start(self) -> StandbyServer:
        """Serve on background threads."""
        for server in self._servers:
            threading.Thread(target=server.serve_forever, name="standby-http", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and free the ports for the operator."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
