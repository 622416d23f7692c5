"""The aggregated API in process: who is trusted (only kube-apiserver's proxy certificate, and only the allowed
names), how the caller is read from the headers, the SubjectAccessReview per route, Status errors, discovery.

The TLS listener's part (putting the verified client certificate into the scope) is played by :class:`Proxied`;
the listener itself runs in tests/integration/test_aggregated_api.py, behind a real kube-apiserver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from mediagen.gateway import GatewaySettings, build_deps, create_app
from mediagen.gateway.apigroup import PREFIX
from mediagen.gateway.front_proxy import RequestHeaderAuthentication, parse_authentication_configmap
from mediagen_dev.controlplane.certs import CertificateAuthority
from tests.support.memory_cluster import MemoryCluster

FRONT_PROXY_CA = CertificateAuthority.create("front-proxy-ca")
PROXY_PEM = FRONT_PROXY_CA.issue_client("front-proxy-client").cert_pem.decode()
STRANGER_PEM = FRONT_PROXY_CA.issue_client("someone-else").cert_pem.decode()
CONFIGMAP = {
    "requestheader-client-ca-file": FRONT_PROXY_CA.cert_pem.decode(),
    "requestheader-allowed-names": '["front-proxy-client"]',
    "requestheader-username-headers": '["X-Remote-User"]',
    "requestheader-group-headers": '["X-Remote-Group"]',
    "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
    "requestheader-uid-headers": '["X-Remote-Uid"]',
}


class Proxied:
    """What the TLS listener does: the connection's verified client certificate into the scope."""

    def __init__(self, app: ASGIApp, pem: str | None) -> None:
        self.app, self.pem = app, pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.pem is not None:
            scope = {**scope, "extensions": {"tls": {"client_cert_chain": [self.pem]}}}
        await self.app(scope, receive, send)


@dataclass
class Api:
    cluster: MemoryCluster
    proxy: httpx.AsyncClient
    """Through kube-apiserver's proxy certificate."""
    direct: httpx.AsyncClient
    """Without any client certificate."""
    stranger: httpx.AsyncClient
    """With a certificate of the right CA but a name that is not allowed."""


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    cluster = MemoryCluster()
    cluster.namespaces = {"team-a", "team-b"}
    front_proxy = parse_authentication_configmap(CONFIGMAP)
    app = create_app(build_deps(GatewaySettings(namespace="mediagen-system"), cluster, front_proxy=front_proxy))

    def client(pem: str | None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=Proxied(app, pem), raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="https://gw.test")

    async with client(PROXY_PEM) as proxy, client(None) as direct, client(STRANGER_PEM) as stranger:
        yield Api(cluster, proxy, direct, stranger)


ALICE = {"X-Remote-User": "alice", "X-Remote-Group": "system:authenticated"}
BODY = {"model": "a/b", "input": {"prompt": "a fox"}}


def grant(api: Api, user: str, namespace: str, *verbs: str) -> None:
    for verb in verbs:
        api.cluster.grants.add((user, verb, namespace))


async def test_forged_headers_without_the_proxy_certificate_are_401(api: Api) -> None:
    forged = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
    for client in (api.direct, api.stranger):
        answer = await client.post(f"{PREFIX}/namespaces/team-a/generate", json=BODY, headers=forged)
        assert answer.status_code == 401 and answer.json()["kind"] == "Status"
        assert answer.json()["reason"] == "Unauthorized"
        assert (await client.get(PREFIX, headers=forged)).status_code == 401  # discovery too
    assert "review_access" not in api.cluster.calls and not api.cluster.objects


async def test_a_request_naming_nobody_is_401(api: Api) -> None:
    assert (await api.proxy.get(PREFIX)).status_code == 401


async def test_each_route_is_authorized_for_its_verb_in_its_namespace(api: Api) -> None:
    grant(api, "alice", "team-a", "create", "get", "list", "patch")
    created = await api.proxy.post(f"{PREFIX}/namespaces/team-a/generate", json=BODY, headers=ALICE)
    assert created.status_code == 202, created.text
    name = created.json()["metadata"]["name"]
    assert created.json()["kind"] == "Generation" and created.json()["statusUrl"] == (
        f"{PREFIX}/namespaces/team-a/generations/{name}/status"
    )
    assert created.headers["location"] == created.json()["statusUrl"]
    stored = api.cluster.objects["team-a"][name]
    assert stored["metadata"]["annotations"]["gateway.mediagen.fleek.xyz/created-by"] == "user/alice"
    assert (
        await api.proxy.get(f"{PREFIX}/namespaces/team-a/generations/{name}/status", headers=ALICE)
    ).status_code == 200
    listing = await api.proxy.get(f"{PREFIX}/namespaces/team-a/generations", headers=ALICE)
    assert [item["metadata"]["name"] for item in listing.json()["items"]] == [name]
    canceled = await api.proxy.post(f"{PREFIX}/namespaces/team-a/generations/{name}/cancel", headers=ALICE)
    assert canceled.status_code == 202 and stored["spec"] != api.cluster.objects["team-a"][name]["spec"]
    asked = [(r.verb, r.namespace, r.name) for r in api.cluster.access_requests]
    assert asked == [
        ("create", "team-a", ""),
        ("get", "team-a", name),
        ("list", "team-a", ""),
        ("patch", "team-a", name),
    ]


async def test_without_rbac_the_answer_is_403_naming_the_verb_and_the_namespace(api: Api) -> None:
    grant(api, "alice", "team-a", "get")
    refused = await api.proxy.post(f"{PREFIX}/namespaces/team-a/generate", json=BODY, headers=ALICE)
    assert refused.status_code == 403
    status = refused.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
    assert (
        'User "alice" cannot create resource "mediagenerations" in API group "mediagen.fleek.xyz"' in status["message"]
        and 'in the namespace "team-a"' in status["message"]
    )
    assert not api.cluster.objects.get("team-a")
    other = await api.proxy.get(f"{PREFIX}/namespaces/team-b/generations/x/status", headers=ALICE)
    assert other.status_code == 403 and 'cannot get resource "mediagenerations"' in other.json()["message"]
    missing = await api.proxy.get(f"{PREFIX}/namespaces/team-a/generations/nothing/status", headers=ALICE)
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"


async def test_groups_extra_and_uid_reach_the_subject_access_review(api: Api) -> None:
    headers = httpx.Headers(
        [
            ("X-Remote-User", "ci"),
            ("X-Remote-Uid", "u-1"),
            ("X-Remote-Group", "ci-bots"),
            ("X-Remote-Group", "system:authenticated"),
            ("X-Remote-Extra-Scopes", "a"),
            ("X-Remote-Extra-Scopes", "b"),
            ("X-Remote-Extra-Acme.com%2Fteam", "media"),
        ]
    )
    await api.proxy.get(f"{PREFIX}/namespaces/team-a/generations", headers=headers)
    (request,) = api.cluster.access_requests
    assert request.user.username == "ci" and request.user.uid == "u-1"
    assert request.user.groups == ("ci-bots", "system:authenticated")
    assert dict(request.user.extra) == {"acme.com/team": ("media",), "scopes": ("a", "b")}


async def test_bad_bodies_are_status_422_naming_the_field_and_create_nothing(api: Api) -> None:
    grant(api, "alice", "team-a", "create")
    for body, field in (
        ({"model": "a/b", "input": {"prompt": "x" * 20000}}, "input.prompt"),
        ({"model": "a/b", "input": {"p": "x"}, "cancel": True}, "cancel"),
        ({"model": "a/b", "modle": "typo"}, "modle"),
        ({"input": {}}, "model"),
    ):
        answer = await api.proxy.post(f"{PREFIX}/namespaces/team-a/generate", json=body, headers=ALICE)
        status = answer.json()
        assert answer.status_code == 422 and status["reason"] == "Invalid", status
        assert [c["field"] for c in status["details"]["causes"]] == [field]
    malformed = await api.proxy.post(f"{PREFIX}/namespaces/team-a/generate", content=b"{", headers=ALICE)
    assert malformed.status_code == 400 and malformed.json()["reason"] == "BadRequest"
    assert not api.cluster.objects.get("team-a")


async def test_a_body_without_content_type_is_json_but_another_type_is_415(api: Api) -> None:
    grant(api, "alice", "team-a", "create")
    url = f"{PREFIX}/namespaces/team-a/generate"
    unstated = await api.proxy.post(url, content=b'{"model": "a/b"}', headers=ALICE)  # as kubectl create --raw
    assert unstated.status_code == 202, unstated.text
    text = await api.proxy.post(url, content=b'{"model": "a/b"}', headers={**ALICE, "Content-Type": "text/plain"})
    assert text.status_code == 415 and text.json()["reason"] == "UnsupportedMediaType"


async def test_idempotency_key_replays_and_conflicts_as_in_standalone_mode(api: Api) -> None:
    grant(api, "alice", "team-a", "create")
    keyed = {**ALICE, "Idempotency-Key": "order-7"}
    url = f"{PREFIX}/namespaces/team-a/generate"
    first = await api.proxy.post(url, json=BODY, headers=keyed)
    again = await api.proxy.post(url, json=BODY, headers=keyed)
    assert (first.status_code, again.status_code) == (202, 202) and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["metadata"]["name"] == again.json()["metadata"]["name"]
    other = await api.proxy.post(url, json={**BODY, "input": {"prompt": "other"}}, headers=keyed)
    assert other.status_code == 409 and other.json()["reason"] == "Conflict"
    assert len(api.cluster.objects["team-a"]) == 1


async def test_discovery_lists_the_resources_and_openapi_v3_documents_the_routes(api: Api) -> None:
    found = (await api.proxy.get(PREFIX, headers=ALICE)).json()
    assert found["kind"] == "APIResourceList" and found["groupVersion"] == "gateway.mediagen.fleek.xyz/v1alpha1"
    assert {r["name"] for r in found["resources"]} == {
        "generate",
        "generations",
        "generations/status",
        "generations/cancel",
    }
    groups = (await api.proxy.get("/apis", headers=ALICE)).json()
    assert [g["name"] for g in groups["groups"]] == ["gateway.mediagen.fleek.xyz"]
    paths = (await api.proxy.get("/openapi/v3", headers=ALICE)).json()["paths"]
    (where,) = paths.values()
    spec = (await api.proxy.get(where["serverRelativeURL"], headers=ALICE)).json()
    assert f"{PREFIX}/namespaces/{{namespace}}/generate" in spec["paths"]
    assert "GenerateRequest" in spec["components"]["schemas"]
    standalone = (await api.direct.get("/openapi.json")).json()["paths"]
    assert not any(path.startswith("/apis") for path in standalone)  # the standalone docs stay as they were
    assert "review_access" not in api.cluster.calls  # discovery needs the proxy, not RBAC


def test_without_a_request_header_ca_the_aggregated_api_cannot_start() -> None:
    with pytest.raises(ValueError, match="requestheader-client-ca-file"):
        parse_authentication_configmap({"client-ca-file": "x"})
    assert parse_authentication_configmap(CONFIGMAP) == RequestHeaderAuthentication(
        client_ca_pem=FRONT_PROXY_CA.cert_pem.decode(),
        allowed_names=("front-proxy-client",),
        uid_headers=("X-Remote-Uid",),
    )


async def test_the_aggregated_routes_are_not_served_without_the_request_header_settings() -> None:
    app = create_app(build_deps(GatewaySettings(namespace="x"), MemoryCluster()))
    transport = httpx.ASGITransport(app=Proxied(app, PROXY_PEM))
    async with httpx.AsyncClient(transport=transport, base_url="https://gw.test") as client:
        answer = await client.post(f"{PREFIX}/namespaces/team-a/generate", json=BODY, headers=ALICE)
    assert answer.status_code == 404 and answer.json()["kind"] == "Status"
