"""The HTTP gateway end to end: the real API server, the operator (mock mode, or backed by the fake Replicate),
the gateway as its own process under its own ServiceAccount (never admin), clients over real HTTP."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from PIL import Image

from mediagen.gateway import rbac
from mediagen.gateway.token_admin import TokenAdmin
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript, OutputFile
from tests.support.gateway_fixtures import (
    AUDIENCE,
    GATEWAY_NAMESPACE,
    TOKEN_CACHE_SECONDS,
    GatewayProcess,
    GatewayTenant,
    gateway,
    gateway_kubeconfig,
    mint_tenant,
    token_admin,
)

__all__ = ["gateway", "gateway_kubeconfig", "mint_tenant", "token_admin"]

PROBLEM = "application/problem+json"
MintTenant = Callable[[str], GatewayTenant]


def poll(client: httpx.Client, gid: str, timeout: float = 60.0) -> dict[str, Any]:
    """GET /status/{id} until the generation is done; returns the last status."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/status/{gid}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["done"]:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{gid} not done after {timeout}s: {body}")


def names_in(api: k8s.CustomObjectsApi, namespace: str) -> list[str]:
    """MediaGenerations in ``namespace``, as the admin sees them."""
    listing: Any = api.list_namespaced_custom_object("mediagen.fleek.xyz", "v1alpha1", namespace, "mediagenerations")
    return sorted(item["metadata"]["name"] for item in listing["items"])


def test_submit_poll_succeeded_and_the_url_serves_the_image(
    gateway: GatewayProcess, mint_tenant: MintTenant, mock_namespace: str, custom_api: k8s.CustomObjectsApi
) -> None:
    tenant = mint_tenant(mock_namespace)
    with gateway.client(tenant.token) as client:
        body = {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a fox", "width": 96, "height": 64}}
        accepted = client.post("/generate", json=body)
        assert accepted.status_code == 202, accepted.text
        gid, status_url = accepted.json()["id"], accepted.json()["statusUrl"]
        assert status_url == f"{gateway.url}/status/{gid}" == accepted.headers["location"]
        status = poll(client, gid)
    assert status["phase"] == "Succeeded", status
    assert status["progress"] == 100 and status["error"] is None and len(status["outputs"]) == 1
    assert status["conditions"][0]["type"] == "Succeeded" and status["conditions"][0]["status"] == "True"
    image = httpx.get(status["url"], timeout=10, trust_env=False)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (96, 64)
    assert status["outputs"][0]["sizeBytes"] == len(image.content)
    # It is a MediaGeneration like any other, in the tenant's namespace, and it records who made it.
    stored: Any = custom_api.get_namespaced_custom_object(
        "mediagen.fleek.xyz", "v1alpha1", mock_namespace, "mediagenerations", gid
    )
    assert stored["spec"]["input"] == body["input"]
    assert stored["metadata"]["annotations"]["gateway.mediagen.fleek.xyz/created-by"] == f"token/{tenant.token_id}"


def test_the_same_flow_with_the_fake_replicate(
    gateway: GatewayProcess, mint_tenant: MintTenant, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = f"gw-{uuid.uuid4().hex[:8]}/model"
    fake_replicate.add_model(
        model, ModelScript(queue_seconds=0.2, processing_seconds=0.5, files=(OutputFile(width=32, height=24),))
    )
    tenant = mint_tenant(rep_namespace)
    with gateway.client(tenant.token) as client:
        accepted = client.post("/generate", json={"model": model, "input": {"prompt": "a lighthouse"}})
        assert accepted.status_code == 202, accepted.text
        status = poll(client, accepted.json()["id"])
    assert status["phase"] == "Succeeded", status
    assert status["predictionId"] and status["attempts"] == 1
    image = httpx.get(status["url"], timeout=10, trust_env=False)
    assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (32, 24)


def test_a_failure_reports_reason_and_message(
    gateway: GatewayProcess, mint_tenant: MintTenant, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = f"gw-{uuid.uuid4().hex[:8]}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, outcome="failed"))
    with gateway.client(mint_tenant(rep_namespace).token) as client:
        status = poll(client, client.post("/generate", json={"model": model, "input": {"prompt": "x"}}).json()["id"])
    assert status["phase"] == "Failed" and status["url"] is None
    assert status["error"]["reason"] == "ContentFlagged" and "NSFW" in status["error"]["message"]


def test_cancel_ends_a_running_generation_canceled(
    gateway: GatewayProcess, mint_tenant: MintTenant, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = f"gw-{uuid.uuid4().hex[:8]}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=600))
    with gateway.client(mint_tenant(rep_namespace).token) as client:
        gid = client.post("/generate", json={"model": model, "input": {"prompt": "slow"}}).json()["id"]
        canceled = client.post(f"/generations/{gid}/cancel")
        assert canceled.status_code == 202 and canceled.json()["cancelRequested"] is True
        status = poll(client, gid, timeout=30)
        assert status["phase"] == "Canceled" and status["error"]["reason"] == "Canceled"
        assert client.delete(f"/generations/{gid}").status_code == 200  # finished: nothing more to do


def test_idempotency_key_gives_one_resource_and_409_for_another_body(
    gateway: GatewayProcess, mint_tenant: MintTenant, mock_namespace: str, custom_api: k8s.CustomObjectsApi
) -> None:
    with gateway.client(mint_tenant(mock_namespace).token) as client:
        body = {"model": "a/b", "input": {"prompt": "exactly once"}}
        first = client.post("/generate", json=body, headers={"Idempotency-Key": "order-1"})
        retry = client.post("/generate", json=body, headers={"Idempotency-Key": "order-1"})
        assert first.status_code == retry.status_code == 202
        assert first.json()["id"] == retry.json()["id"] and retry.headers["idempotent-replayed"] == "true"
        other = client.post(
            "/generate", json={**body, "input": {"prompt": "something else"}}, headers={"Idempotency-Key": "order-1"}
        )
        assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
        assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert names_in(custom_api, mock_namespace) == [first.json()["id"]]


def test_missing_malformed_and_revoked_tokens_are_401(
    gateway: GatewayProcess, mint_tenant: MintTenant, token_admin: TokenAdmin, mock_namespace: str
) -> None:
    tenant = mint_tenant(mock_namespace)
    for header in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Token {tenant.token}"},
                   {"Authorization": f"Bearer {tenant.token[:-1]}x"}):  # fmt: skip
        response = httpx.get(f"{gateway.url}/generations", headers=header, trust_env=False)
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM, header
        assert response.headers["www-authenticate"].startswith("Bearer")
    with gateway.client(tenant.token) as client:
        assert client.get("/generations").status_code == 200
        assert token_admin.revoke(tenant.token_id)
        revoked_at = time.monotonic()
        while client.get("/generations").status_code == 200:
            assert time.monotonic() - revoked_at < TOKEN_CACHE_SECONDS + 2, "revocation did not take effect"
            time.sleep(0.1)
        assert client.get("/generations").status_code == 401
        assert client.post("/generate", json={"model": "a/b"}).status_code == 401


def test_tenants_never_see_or_cancel_each_others_generations(
    gateway: GatewayProcess,
    mint_tenant: MintTenant,
    control_plane: ControlPlane,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    custom_api: k8s.CustomObjectsApi,
) -> None:
    model = f"gw-{uuid.uuid4().hex[:8]}/model"
    fake_replicate.add_model(model, ModelScript(queue_seconds=None))  # stays in flight
    other_namespace = f"rep-{uuid.uuid4().hex[:10]}"
    control_plane.create_namespace(other_namespace)
    owner, stranger = mint_tenant(rep_namespace), mint_tenant(other_namespace)
    with gateway.client(owner.token) as mine, gateway.client(stranger.token) as theirs:
        gid = mine.post("/generate", json={"model": model, "input": {"prompt": "private"}}).json()["id"]
        for method, path in [("GET", f"/status/{gid}"), ("GET", f"/generations/{gid}"),
                             ("POST", f"/generations/{gid}/cancel"), ("DELETE", f"/generations/{gid}")]:  # fmt: skip
            response = theirs.request(method, path)
            assert response.status_code == 404 and response.headers["content-type"] == PROBLEM, (method, path)
        assert theirs.get("/generations").json()["items"] == []
        assert gid not in theirs.get("/").text
        stored: Any = custom_api.get_namespaced_custom_object(
            "mediagen.fleek.xyz", "v1alpha1", rep_namespace, "mediagenerations", gid
        )
        assert stored["spec"]["cancel"] is False
        assert mine.get(f"/status/{gid}").json()["phase"] in ("Pending", "Running")
        assert mine.post(f"/generations/{gid}/cancel").status_code == 202  # the owner can


BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    ("missing model", b'{"input": {"prompt": "x"}}', "application/json", 422, "model"),
    ("model and deployment", b'{"model": "a/b", "deployment": "c/d"}', "application/json", 422, "deployment"),
    ("malformed reference", b'{"model": "no slash here"}', "application/json", 422, "model"),
    ("wrong type", b'{"model": "a/b", "timeoutSeconds": "an hour"}', "application/json", 422, "timeoutSeconds"),
    ("wrong nested type", b'{"model": "a/b", "retry": {"limit": "3x"}}', "application/json", 422, "retry.limit"),
    ("input not an object", b'{"model": "a/b", "input": "a fox"}', "application/json", 422, "input"),
    ("oversized input", json.dumps({"model": "a/b", "input": {"prompt": "x" * 20000}}).encode(), "application/json",
     422, "input.prompt"),
    ("unknown field", b'{"model": "a/b", "prompt": "x"}', "application/json", 422, "prompt"),
    ("unknown nested field", b'{"model": "a/b", "retry": {"tries": 2}}', "application/json", 422, "retry.tries"),
    ("invalid json", b'{"model": "a/b"', "application/json", 400, "body"),
    ("wrong content type", b'{"model": "a/b"}', "text/plain", 415, "Content-Type"),
    ("empty body", b"", "application/json", 422, "body"),
    ("too large", json.dumps({"model": "a/b", "input": {f"k{i}": "x" * 16000 for i in range(80)}}).encode(),
     "application/json", 413, "body"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "content_type", "status", "field"), [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])  # fmt: skip
def test_bad_bodies_are_4xx_problems_naming_the_field_and_create_nothing(
    gateway: GatewayProcess,
    mint_tenant: MintTenant,
    namespace: str,
    custom_api: k8s.CustomObjectsApi,
    content: bytes,
    content_type: str,
    status: int,
    field: str,
) -> None:
    with gateway.client(mint_tenant(namespace).token) as client:
        response = client.post("/generate", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert names_in(custom_api, namespace) == []


def test_health_check_probes_and_metrics(gateway: GatewayProcess) -> None:
    health = httpx.get(f"{gateway.url}/health-check", trust_env=False)
    assert health.status_code == 200 and health.json()["kubernetes"] == "reachable"
    assert httpx.get(f"{gateway.url}/readyz", trust_env=False).text == "ok"
    assert httpx.get(f"{gateway.url}/livez", trust_env=False).text == "ok"
    metrics = httpx.get(f"{gateway.url}/metrics", trust_env=False).text
    assert 'mediagen_gateway_requests_total{method="GET",route="/health-check",status="200"}' in metrics
    docs = httpx.get(f"{gateway.url}/docs", trust_env=False)
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_the_gateway_runs_as_its_service_account_with_only_its_rules(
    gateway: GatewayProcess, gateway_kubeconfig: Path, control_plane: ControlPlane, mock_namespace: str
) -> None:
    assert gateway.kubeconfig == gateway_kubeconfig
    who = control_plane.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                                kubeconfig=gateway_kubeconfig).stdout  # fmt: skip
    assert who == f"system:serviceaccount:{GATEWAY_NAMESPACE}:{rbac.SERVICE_ACCOUNT}"

    def can(verb: str, resource: str, *extra: str) -> bool:
        result = control_plane.kubectl("auth", "can-i", verb, resource, *extra, kubeconfig=gateway_kubeconfig,
                                       check=False)  # fmt: skip
        return result.stdout.strip() == "yes"

    tenant = ("-n", mock_namespace)
    for verb in ("create", "get", "list", "patch"):
        assert can(verb, "mediagenerations.mediagen.fleek.xyz", *tenant), verb
    for verb in ("delete", "update", "watch", "deletecollection"):
        assert not can(verb, "mediagenerations.mediagen.fleek.xyz", *tenant), verb
    assert not can("patch", "mediagenerations.mediagen.fleek.xyz", "--subresource=status", *tenant)
    assert can("get", f"secret/{rbac.TOKEN_SECRET}", "-n", GATEWAY_NAMESPACE)
    assert not can("get", "secret/mediagen-r2", "-n", GATEWAY_NAMESPACE)
    assert not can("list", "secrets", "-n", GATEWAY_NAMESPACE)
    assert not can("update", f"secret/{rbac.TOKEN_SECRET}", "-n", GATEWAY_NAMESPACE)
    assert not can("create", "pods", *tenant) and not can("get", "configmaps", *tenant)
    assert can("create", "tokenreviews.authentication.k8s.io")


def test_service_account_tokens_need_the_gateways_audience_and_rbac(
    gateway: GatewayProcess, control_plane: ControlPlane, mock_namespace: str
) -> None:
    control_plane.service_account_kubeconfig(mock_namespace, "ci-bot")  # creates the ServiceAccount

    def token(namespace: str, name: str, *audience: str) -> str:
        argv = ["create", "token", name, "-n", namespace, "--duration=600s", *(f"--audience={a}" for a in audience)]
        return control_plane.kubectl(*argv).stdout.strip()

    body = {"model": "a/b", "input": {"prompt": "from a pod"}}
    jwt = token(mock_namespace, "ci-bot", AUDIENCE)
    with gateway.client(jwt) as client:
        refused = client.post("/generate", json=body)  # a valid token, but no RBAC on mediagenerations
        assert refused.status_code == 401 and "may not create mediagenerations" in refused.json()["detail"]
    control_plane.kubectl(
        "create", "role", "generate", "-n", mock_namespace, "--verb=create,get,list,patch",
        "--resource=mediagenerations.mediagen.fleek.xyz",
    )  # fmt: skip
    control_plane.kubectl(
        "create", "rolebinding", "ci-bot-generates", "-n", mock_namespace, "--role=generate",
        f"--serviceaccount={mock_namespace}:ci-bot",
    )  # fmt: skip
    deadline = time.monotonic() + 30  # refusals are cached for the token cache's lifetime (1 s here)
    with gateway.client(jwt) as client:
        while (accepted := client.post("/generate", json=body)).status_code == 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert accepted.status_code == 202, accepted.text
        assert poll(client, accepted.json()["id"])["phase"] == "Succeeded"
        assert [item["id"] for item in client.get("/generations").json()["items"]] == [accepted.json()["id"]]
    # The same ServiceAccount's token for the API server's audience (what a pod mounts) is not enough.
    with gateway.client(token(mock_namespace, "ci-bot")) as client:
        assert client.get("/generations").status_code == 401
    tampered = jwt[:-4] + ("AAAA" if not jwt.endswith("AAAA") else "BBBB")
    with gateway.client(tampered) as client:
        assert client.get("/generations").status_code == 401


def test_kube_systems_default_service_account_is_no_tenant(
    gateway: GatewayProcess, control_plane: ControlPlane
) -> None:
    # Issue 13 item 10b: a pod's automounted kube-system:default token got 202.
    control_plane.service_account_kubeconfig("kube-system", "default")
    for audience in ((), (f"--audience={AUDIENCE}",)):
        jwt = control_plane.kubectl("create", "token", "default", "-n", "kube-system", *audience).stdout.strip()
        with gateway.client(jwt) as client:
            answer = client.post("/generate", json={"model": "a/b", "input": {"prompt": "x"}})
            assert answer.status_code == 401, answer.text


def test_listing_pages_and_filters_by_phase(
    gateway: GatewayProcess, mint_tenant: MintTenant, mock_namespace: str
) -> None:
    with gateway.client(mint_tenant(mock_namespace).token) as client:
        ids = [
            client.post("/generate", json={"model": "a/b", "name": f"g{i}", "input": {"prompt": f"n{i}"}}).json()["id"]
            for i in range(4)
        ]
        failing = client.post("/generate", json={"model": "a/b", "name": "bad", "input": {"width": "wide"}})
        assert failing.status_code == 202
        for gid in [*ids, "bad"]:
            poll(client, gid)
        seen: list[str] = []
        url = "/generations?limit=2"
        while url:
            page = client.get(url).json()
            seen += [item["id"] for item in page["items"]]
            url = f"/generations?limit=2&continue={page['continue']}" if page["continue"] else ""
        assert seen == sorted([*ids, "bad"])
        failed = client.get("/generations?phase=Failed").json()
        assert [item["id"] for item in failed["items"]] == ["bad"] and failed["continue"] is None
        assert failed["items"][0]["error"]["reason"] == "InvalidInput"
        assert "input.width" in failed["items"][0]["error"]["message"]


def test_the_token_command_mints_lists_and_revokes(
    gateway: GatewayProcess, control_plane: ControlPlane, mock_namespace: str, tmp_path: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "mediagen.cli", "gateway", "--kubeconfig", str(control_plane.kubeconfig)]
        return subprocess.run(
            [*argv, "token", *args], capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
        )

    minted = cli("create", "--namespace", mock_namespace, "--description", "from the CLI")
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert token.startswith("mg_") and "only time it is shown" in minted.stderr and token not in minted.stderr
    token_id = token.split("_")[1]
    listed = cli("list").stdout
    assert f"{token_id}\t{mock_namespace}\t" in listed and "from the CLI" in listed and token not in listed
    with gateway.client(token) as client:
        assert client.get("/generations").status_code == 200
        assert cli("revoke", token_id).returncode == 0
        assert cli("revoke", token_id).returncode == 1
        deadline = time.monotonic() + TOKEN_CACHE_SECONDS + 2
        while client.get("/generations").status_code == 200:
            assert time.monotonic() < deadline, "revocation did not take effect"
            time.sleep(0.1)
