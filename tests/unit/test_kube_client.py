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

from mediagen.kube.client import METADATA_LIST, AccessRequest, KubeClient, KubeTimeouts, UserInfo
from mediagen.kube.errors import AlreadyExists, Conflict, NotFound, Unavailable


def api_client(port: int) -> k8s.Configuration:
    configuration = k8s.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    return configuration


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with the status the test scripted, recording what was asked."""

    seen: list[tuple[str, str]]
    accepts: list[str]
    sent: list[Any]
    status = 200
    body: ClassVar[dict[str, Any]] = {"metadata": {"name": "x"}}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        self.seen.append((self.command, self.path))
        self.accepts.append(self.headers.get("Accept") or "")
        self.sent.append(json.loads(data) if data else None)
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
    handler = type("Handler", (Recorder,), {"seen": [], "accepts": [], "sent": []})
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
    await kube.aclose()
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
    await kube.aclose()


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
        await kube.aclose()
    finally:
        silent.close()


async def test_a_metadata_list_asks_for_partial_objects_with_the_field_selector(
    recorder: tuple[int, type[Recorder]],
) -> None:
    port, handler = recorder
    handler.body = {"items": [{"metadata": {"name": "a"}}], "metadata": {"continue": "next"}}
    kube = KubeClient(api_client(port))
    page = await kube.list_page(
        "ns", limit=5, continue_token="c1", field_selector="status.phase=Running", metadata_only=True
    )
    await kube.list_page("ns", limit=5)
    await kube.aclose()
    assert page.items == [{"metadata": {"name": "a"}}] and page.continue_token == "next"
    (_, first), (_, second) = handler.seen
    assert first.startswith("/apis/mediagen.fleek.xyz/v1alpha1/namespaces/ns/mediagenerations?"), first
    assert "limit=5" in first and "continue=c1" in first and "fieldSelector=status.phase%3DRunning" in first
    assert handler.accepts == [METADATA_LIST, "application/json"]
    assert "fieldSelector" not in second and "continue" not in second


async def test_a_subject_access_review_sends_the_whole_identity_and_reads_denied(
    recorder: tuple[int, type[Recorder]],
) -> None:
    port, handler = recorder
    user = UserInfo(username="alice", uid="u1", groups=("g1", "g2"), extra=(("scopes", ("a", "b")),))
    kube = KubeClient(api_client(port))
    handler.body = {"status": {"allowed": True, "reason": "RBAC: allowed"}}
    allowed = await kube.review_access(AccessRequest(user=user, verb="create", namespace="ns"))
    handler.body = {"status": {"allowed": True, "denied": True, "reason": "webhook says no"}}
    denied = await kube.review_access(AccessRequest(user=user, verb="get", namespace="ns", name="x"))
    handler.body = {"kind": "SubjectAccessReview"}
    silent = await kube.review_access(AccessRequest(user=UserInfo(username="bob"), verb="get", namespace="ns"))
    await kube.aclose()
    assert (allowed.allowed, allowed.reason) == (True, "RBAC: allowed")
    assert (denied.allowed, denied.reason) == (False, "webhook says no")
    assert not silent.allowed
    assert handler.seen[0] == ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    assert handler.sent[0]["spec"] == {
        "user": "alice",
        "uid": "u1",
        "groups": ["g1", "g2"],
        "extra": {"scopes": ["a", "b"]},
        "resourceAttributes": {
            "group": "mediagen.fleek.xyz",
            "resource": "mediagenerations",
            "verb": "create",
            "namespace": "ns",
        },
    }
    assert handler.sent[1]["spec"]["resourceAttributes"]["name"] == "x"
    assert handler.sent[2]["spec"] == {
        "user": "bob",
        "resourceAttributes": {
            "group": "mediagen.fleek.xyz",
            "resource": "mediagenerations",
            "verb": "get",
            "namespace": "ns",
        },
    }


async def test_a_token_review_reports_uid_extra_and_audiences(recorder: tuple[int, type[Recorder]]) -> None:
    port, handler = recorder
    handler.body = {
        "status": {
            "authenticated": True,
            "audiences": ["mediagen"],
            "user": {"username": "system:serviceaccount:ns:sa", "uid": "u9", "groups": ["g"], "extra": {"k": None}},
        }
    }
    kube = KubeClient(api_client(port))
    review = await kube.review_token("t", ["mediagen"])
    await kube.aclose()
    assert review.authenticated and review.username == "system:serviceaccount:ns:sa"
    assert (review.uid, review.groups, review.extra, review.audiences) == ("u9", ["g"], {"k": []}, ["mediagen"])
    assert handler.sent[0]["spec"] == {"token": "t", "audiences": ["mediagen"]}


async def test_a_configmap_is_read_as_its_data(recorder: tuple[int, type[Recorder]]) -> None:
    port, handler = recorder
    handler.body = {"kind": "ConfigMap", "data": {"requestheader-allowed-names": '["front-proxy-client"]'}}
    kube = KubeClient(api_client(port))
    data = await kube.read_configmap("kube-system", "extension-apiserver-authentication")
    handler.body = {"kind": "ConfigMap"}
    empty = await kube.read_configmap("kube-system", "other")
    await kube.aclose()
    assert data == {"requestheader-allowed-names": '["front-proxy-client"]'} and empty == {}
    assert handler.seen[0] == ("GET", "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
