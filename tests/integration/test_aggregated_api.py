"""The aggregated API (issue 16) behind the real kube-apiserver, kubectl as the client: the gateway's JSON API for
every identity the cluster authenticates, governed by the cluster's RBAC on ``mediagenerations``."""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client as k8s

from mediagen.gateway.apigroup import API_GROUP, PREFIX
from mediagen_dev.aggregated_api import AggregatedAPI
from mediagen_dev.controlplane import ControlPlane
from tests.support.gateway_fixtures import (
    GatewayProcess,
    aggregated_gateway,
    gateway_kubeconfig,
)

__all__ = ["aggregated_gateway", "gateway_kubeconfig"]

GROUP, VERSION, PLURAL = "mediagen.fleek.xyz", "v1alpha1", "mediagenerations"
Served = tuple[GatewayProcess, AggregatedAPI]


@dataclass(frozen=True)
class User:
    """A user of the cluster: a client certificate of the cluster's CA, and RBAC as the test grants it."""

    name: str
    kubeconfig: Path
    cert_file: Path
    key_file: Path


@pytest.fixture
def user_factory(control_plane: ControlPlane, tmp_path: Path) -> Any:
    def make(verbs_by_namespace: dict[str, str]) -> User:
        name = f"user-{uuid.uuid4().hex[:6]}"
        kubeconfig = control_plane.user_kubeconfig(name)
        credentials = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
        cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
        cert.write_bytes(base64.b64decode(credentials["client-certificate-data"]))
        key.write_bytes(base64.b64decode(credentials["client-key-data"]))
        for namespace, verbs in verbs_by_namespace.items():
            role = f"mg-{name}"
            control_plane.kubectl(
                "create", "role", role, "-n", namespace, f"--verb={verbs}", f"--resource={PLURAL}.{GROUP}"
            )
            control_plane.kubectl("create", "rolebinding", role, "-n", namespace, f"--role={role}", f"--user={name}")
        return User(name, kubeconfig, cert, key)

    return make


def raw(plane: ControlPlane, who: User, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """``kubectl create --raw`` (with ``body``) or ``kubectl get --raw`` as ``who``."""
    if verb == "create":
        return plane.kubectl(
            "create", "--raw", path, "-f", "-", input=json.dumps(body or {}), kubeconfig=who.kubeconfig, check=False
        )
    return plane.kubectl("get", "--raw", path, kubeconfig=who.kubeconfig, check=False)


def through_apiserver(plane: ControlPlane, who: User) -> httpx.Client:
    """An HTTP client for kube-apiserver as ``who`` (kubectl cannot send an Idempotency-Key)."""
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(who.cert_file, who.key_file)
    return httpx.Client(base_url=plane.server, verify=context, timeout=30, trust_env=False)


def wait_phase(plane: ControlPlane, who: User, namespace: str, name: str, phase: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        result = raw(plane, who, "get", f"{PREFIX}/namespaces/{namespace}/generations/{name}/status")
        assert result.returncode == 0, result.stderr
        status: dict[str, Any] = json.loads(result.stdout)
        if status["phase"] == phase or time.monotonic() > deadline:
            assert status["phase"] == phase, status
            return status
        time.sleep(0.2)


def test_a_user_allowed_by_rbac_creates_with_kubectl_and_the_operator_finishes_it(
    control_plane: ControlPlane,
    aggregated_gateway: Served,
    mock_namespace: str,
    custom_api: k8s.CustomObjectsApi,
    user_factory: Any,
) -> None:
    alice = user_factory({mock_namespace: "create,get,list,patch"})
    created = raw(
        control_plane, alice, "create", f"{PREFIX}/namespaces/{mock_namespace}/generate",
        {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a lighthouse"}},
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    generation = json.loads(created.stdout)
    name = generation["metadata"]["name"]
    assert generation["kind"] == "Generation" and generation["phase"] == "Pending"
    stored: Any = custom_api.get_namespaced_custom_object(GROUP, VERSION, mock_namespace, PLURAL, name)
    assert stored["spec"]["input"] == {"prompt": "a lighthouse"}
    assert stored["metadata"]["annotations"]["gateway.mediagen.fleek.xyz/created-by"] == f"user/{alice.name}"
    done = wait_phase(control_plane, alice, mock_namespace, name, "Succeeded")
    assert done["url"] and done["done"]
    listing = json.loads(raw(control_plane, alice, "get", f"{PREFIX}/namespaces/{mock_namespace}/generations").stdout)
    assert [item["metadata"]["name"] for item in listing["items"]] == [name]
    # The API server's audit log names the user as the requester of the aggregated request.
    audited = [
        event
        for event in control_plane.audit_events()
        if (event.get("objectRef") or {}).get("apiGroup") == API_GROUP
        and event["objectRef"].get("resource") == "generate"
        and event["objectRef"].get("namespace") == mock_namespace
        and event.get("stage") == "ResponseComplete"
    ]
    assert [(e["user"]["username"], e["verb"], e["responseStatus"]["code"]) for e in audited] == [
        (alice.name, "create", 202)
    ]


def test_without_rbac_the_shim_answers_403_naming_the_verb_and_the_namespace(
    control_plane: ControlPlane, aggregated_gateway: Served, namespace: str, user_factory: Any
) -> None:
    bob = user_factory({})
    refused = raw(control_plane, bob, "create", f"{PREFIX}/namespaces/{namespace}/generate", {"model": "a/b"})
    assert refused.returncode != 0
    assert "Error from server (Forbidden)" in refused.stderr
    assert f'User "{bob.name}" cannot create resource "mediagenerations"' in refused.stderr
    assert f'in the namespace "{namespace}"' in refused.stderr
    assert control_plane.kubectl("get", "mg", "-n", namespace, "-o", "name").stdout == ""


def test_another_namespaces_generation_is_403_and_a_missing_one_404(
    control_plane: ControlPlane, aggregated_gateway: Served, namespace: str, user_factory: Any
) -> None:
    other = f"other-{uuid.uuid4().hex[:6]}"
    control_plane.create_namespace(other)
    carol = user_factory({namespace: "create,get,list,patch"})
    owner = user_factory({other: "create,get"})
    theirs = raw(control_plane, owner, "create", f"{PREFIX}/namespaces/{other}/generate", {"model": "a/b"})
    name = json.loads(theirs.stdout)["metadata"]["name"]
    forbidden = raw(control_plane, carol, "get", f"{PREFIX}/namespaces/{other}/generations/{name}/status")
    assert "Error from server (Forbidden)" in forbidden.stderr and f'in the namespace "{other}"' in forbidden.stderr
    missing = raw(control_plane, carol, "get", f"{PREFIX}/namespaces/{namespace}/generations/{name}/status")
    assert "Error from server (NotFound)" in missing.stderr


def test_the_shim_refuses_anyone_but_kube_apiservers_proxy(
    control_plane: ControlPlane, aggregated_gateway: Served
) -> None:
    gateway, api = aggregated_gateway
    serving = ssl.create_default_context(cadata=api.ca_pem.decode())
    forged = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
    with httpx.Client(base_url=gateway.aggregated_url, verify=serving, timeout=10, trust_env=False) as direct:
        answer = direct.post(f"{PREFIX}/namespaces/default/generate", json={"model": "a/b"}, headers=forged)
        assert answer.status_code == 401 and answer.json()["reason"] == "Unauthorized"
        assert direct.get(PREFIX, headers=forged).status_code == 401
    # A client certificate of another CA (the cluster's admin!) does not even complete the handshake.
    admin = yaml.safe_load(control_plane.kubeconfig.read_text())["users"][0]["user"]
    cert, key = Path(api.cert_file.parent / "admin.crt"), Path(api.cert_file.parent / "admin.key")
    cert.write_bytes(base64.b64decode(admin["client-certificate-data"]))
    key.write_bytes(base64.b64decode(admin["client-key-data"]))
    serving.load_cert_chain(cert, key)
    impostor = httpx.Client(base_url=gateway.aggregated_url, verify=serving, timeout=10, trust_env=False)
    with impostor, pytest.raises(httpx.HTTPError):
        impostor.get(PREFIX, headers=forged).raise_for_status()
    # And the standalone listener does not serve the aggregated API at all.
    with httpx.Client(base_url=gateway.url, timeout=10, trust_env=False) as plain:
        assert plain.get(PREFIX, headers=forged).status_code == 401


def test_idempotency_key_replays_and_conflicts_through_kube_apiserver(
    control_plane: ControlPlane, aggregated_gateway: Served, namespace: str, user_factory: Any
) -> None:
    dave = user_factory({namespace: "create,get"})
    url = f"{PREFIX}/namespaces/{namespace}/generate"
    body = {"model": "a/b", "input": {"prompt": "once"}}
    with through_apiserver(control_plane, dave) as client:
        first = client.post(url, json=body, headers={"Idempotency-Key": "order-1"})
        again = client.post(url, json=body, headers={"Idempotency-Key": "order-1"})
        assert (first.status_code, again.status_code) == (202, 202), first.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert first.json()["metadata"]["name"] == again.json()["metadata"]["name"]
        conflict = client.post(url, json={**body, "input": {"prompt": "twice"}}, headers={"Idempotency-Key": "order-1"})
        assert conflict.status_code == 409 and conflict.json()["kind"] == "Status"
        assert conflict.json()["details"]["causes"][0]["field"] == "Idempotency-Key"
    assert len(control_plane.kubectl("get", "mg", "-n", namespace, "-o", "name").stdout.split()) == 1


def test_bad_bodies_get_a_status_422_naming_the_field(
    control_plane: ControlPlane, aggregated_gateway: Served, namespace: str, user_factory: Any
) -> None:
    erin = user_factory({namespace: "create"})
    url = f"{PREFIX}/namespaces/{namespace}/generate"
    printed = raw(control_plane, erin, "create", url, {"model": "a/b", "input": {"prompt": "x" * 20000}})
    assert "The request is invalid: input.prompt: is 20000 characters long" in printed.stderr
    with through_apiserver(control_plane, erin) as client:
        answer = client.post(url, json={"model": "a/b", "input": {"p": "x"}, "cancel": True})
    assert answer.status_code == 422
    status = answer.json()
    assert (status["kind"], status["reason"]) == ("Status", "Invalid")
    assert [cause["field"] for cause in status["details"]["causes"]] == ["cancel"]
    assert control_plane.kubectl("get", "mg", "-n", namespace, "-o", "name").stdout == ""


def test_cancel_through_kubectl(
    control_plane: ControlPlane, aggregated_gateway: Served, namespace: str, user_factory: Any
) -> None:
    frank = user_factory({namespace: "create,patch"})
    created = raw(control_plane, frank, "create", f"{PREFIX}/namespaces/{namespace}/generate", {"model": "a/b"})
    name = json.loads(created.stdout)["metadata"]["name"]
    canceled = raw(control_plane, frank, "create", f"{PREFIX}/namespaces/{namespace}/generations/{name}/cancel")
    assert canceled.returncode == 0 and json.loads(canceled.stdout)["cancelRequested"] is True
    spec = json.loads(control_plane.kubectl("get", "mg", name, "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["cancel"] is True


def test_kubectl_lists_the_resources_and_the_aggregated_openapi_includes_them(
    control_plane: ControlPlane, aggregated_gateway: Served
) -> None:
    listed = control_plane.kubectl("api-resources", f"--api-group={API_GROUP}", "-o", "name").stdout.split()
    assert sorted(listed) == sorted(f"{name}.{API_GROUP}" for name in ("generate", "generations"))
    deadline = time.monotonic() + 60  # the aggregator downloads OpenAPI v3 on its own schedule
    while f"apis/{API_GROUP}/v1alpha1" not in control_plane.kubectl("get", "--raw", "/openapi/v3").stdout:
        assert time.monotonic() < deadline, "the aggregated OpenAPI v3 never listed the group"
        time.sleep(0.5)
    spec = json.loads(control_plane.kubectl("get", "--raw", f"/openapi/v3/apis/{API_GROUP}/v1alpha1").stdout)
    assert f"{PREFIX}/namespaces/{{namespace}}/generate" in spec["paths"]
