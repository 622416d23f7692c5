"""The shared Kubernetes adapter over real HTTP on loopback: timeouts on every call, a field manager on every write,
errors translated with intent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client as k8s

from mediagen.kube.client import KubeClient, KubeTimeouts
from mediagen.kube.errors import AlreadyExists, Conflict, NotFound, Unavailable


def api_client(port: int) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    return k8s.ApiClient(configuration)


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with the status the test scripted, recording what was asked."""

    seen: list[tuple[str, str]]
    status = 200
    body: ClassVar[dict[str, Any]] = {"metadata": {"name": "x"}}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.command, self.path))
        data = json.dumps(self.body).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


async def test_every_write_names_its_field_manager(recorder: tuple[int, type[Recorder]]) -> None:
    port, handler = recorder
    kube = KubeClient(api_client(port), field_manager="mediagen-operator")
    await kube.patch_status("ns", "x", {"status": {"phase": "Running"}})
    await kube.patch_metadata("ns", "x", {"metadata": {"finalizers": []}})
    await kube.create("ns", {"metadata": {"name": "x"}})
    await kube.event({"metadata": {"name": "x", "namespace": "ns"}}, "Normal", "Running", "started")
    await kube.get("ns", "x")
    kube.close()
    writes = [path for method, path in handler.seen if method != "GET"]
    assert len(writes) == 4 and all("fieldManager=mediagen-operator" in path for path in writes), handler.seen


@pytest.mark.parametrize(
    ("status", "reason", "error"),
    [(404, "NotFound", NotFound), (409, "Conflict", Conflict), (409, "AlreadyExists", AlreadyExists)],
)
async def test_errors_carry_intent(
    recorder: tuple[int, type[Recorder]], status: int, reason: str, error: type[Exception]
) -> None:
    port, handler = recorder
    handler.status, handler.body = status, {"kind": "Status", "reason": reason, "message": "m"}
    kube = KubeClient(api_client(port))
    with pytest.raises(error):
        await kube.get("ns", "x")
    handler.status = 503
    with pytest.raises(Unavailable):
        await kube.patch_status("ns", "x", {})
    kube.close()


async def test_a_call_to_a_server_that_never_answers_gives_up() -> None:
    # The operator's calls used to have no timeout at all: a hung API server hung the worker for good.
    silent = socket.create_server(("127.0.0.1", 0))
    silent.listen(16)
    try:
        kube = KubeClient(api_client(silent.getsockname()[1]), timeouts=KubeTimeouts(connect=1.0, read=0.2))
        with pytest.raises(Unavailable):
            await kube.get("ns", "x")
        with pytest.raises(Unavailable):
            await kube.patch_status("ns", "x", {"status": {}})
        kube.close()
    finally:
        silent.close()
