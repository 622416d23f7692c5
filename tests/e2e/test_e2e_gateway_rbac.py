"""Scenario 3: the gateway through its Service (a token made with the CLI, `POST /generate` to Succeeded, another
tenant's id is 404). Scenario 6: RBAC as deployed: the operator's and the gateway's ServiceAccount tokens, projected
by the kubelet, are all they have; `kubectl auth can-i --as=system:serviceaccount:...` as in the README's table."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.fakes import Fakes

pytestmark = pytest.mark.e2e

RELEASE = "gw"
FULLNAME = f"{RELEASE}-mediagen"
TOKEN_SECRET = "mediagen-gateway-tokens"

# Runs in a pod: create a generation as tenant A through the gateway's Service, wait for it, then read it as B.
CLIENT = """
import json, sys, time, httpx
base, token_a, token_b = sys.argv[1:4]
a = {"Authorization": "Bearer " + token_a}
created = httpx.post(base + "/generate", headers={**a, "Idempotency-Key": "e2e-1"}, timeout=30,
                     json={"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a corgi fake:data"}})
view = created.json()
deadline = time.monotonic() + 120
while view.get("phase") not in ("Succeeded", "Failed", "Canceled") and time.monotonic() < deadline:
    time.sleep(0.5)
    view = httpx.get(base + "/status/" + view["id"], headers=a, timeout=30).json()
other = httpx.get(base + "/status/" + view["id"], headers={"Authorization": "Bearer " + token_b}, timeout=30)
print(json.dumps({"created": created.status_code, "view": view, "other": other.status_code,
                  "other_type": other.headers.get("content-type")}))
"""

# Runs inside a component's pod with its projected ServiceAccount token: who am I, and what may I do?
PROBE = """
import json, ssl, sys, urllib.request, urllib.error
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
token = open(sa + "token").read()
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
def call(method, path, body=None):
    request = urllib.request.Request("https://kubernetes.default.svc" + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=20) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None
review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
status, who = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
results = {"whoami": who["status"]["userInfo"]["username"]}
for name, method, path in json.loads(sys.argv[1]):
    results[name] = call(method, path)[0]
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Install:
    namespace: str
    tenant_a: str
    tenant_b: str


@pytest.fixture(scope="module")
def install(cluster: Cluster, fakes: Fakes) -> Iterator[Install]:
    """The chart with the gateway for two tenant namespaces, credentials from Secrets."""
    ns = cluster.create_namespace("e2e-gw", restricted=True)
    tenant_a = cluster.create_namespace("e2e-tenant-a", restricted=True)
    tenant_b = cluster.create_namespace("e2e-tenant-b", restricted=True)
    try:
        fakes.secrets(ns)
        cluster.helm_install(
            RELEASE, ns, *fakes.chart_values(),
            "--set", "gateway.enabled=true",
            "--set-json", f"gateway.namespaces={json.dumps([tenant_a, tenant_b])}",
        )  # fmt: skip
        yield Install(ns, tenant_a, tenant_b)
    finally:
        cluster.remove_release(RELEASE, ns, tenant_a, tenant_b)


def create_token(cluster: Cluster, install: Install, tenant: str) -> str:
    """`mediagen gateway token create` (the CLI users run), against the cluster under test."""
    cli = Path(sys.executable).parent / "mediagen"
    result = subprocess.run(
        [str(cli), "gateway", "token", "--secret-namespace", install.namespace, "create", "--namespace", tenant],
        capture_output=True, text=True, check=False, timeout=60,
        env={**cluster._env(), "MEDIAGEN_LOG_FORMAT": "text"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_gateway_generates_through_its_service(cluster: Cluster, install: Install) -> None:
    token_a = create_token(cluster, install, install.tenant_a)
    token_b = create_token(cluster, install, install.tenant_b)
    base = f"http://{FULLNAME}-gateway.{install.namespace}.svc"
    out = cluster.run_pod(install.namespace, "client", ["python", "-c", CLIENT, base, token_a, token_b])
    result = json.loads(out.strip().splitlines()[-1])
    assert result["created"] == 202, result
    assert result["view"]["phase"] == "Succeeded", result
    assert result["other"] == 404, result  # another tenant's id does not exist for B
    assert result["other_type"].startswith("application/problem+json")
    # The generation is a MediaGeneration in A's namespace, and only there.
    mg = cluster.mg(install.tenant_a, result["view"]["id"])
    assert mg["status"]["phase"] == "Succeeded"
    assert not cluster.get("mediagenerations", "-n", install.tenant_b)["items"]


def probe(cluster: Cluster, namespace: str, component: str, checks: list[tuple[str, str, str]]) -> dict[str, object]:
    pod = cluster.pods(namespace, f"app.kubernetes.io/component={component}")[0]["metadata"]["name"]
    out = cluster.kubectl("exec", "-n", namespace, pod, "--", "python", "-c", PROBE, json.dumps(checks))
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_components_have_only_their_projected_service_account_tokens(cluster: Cluster, install: Install) -> None:
    ns = install.namespace
    for component in ("operator", "gateway"):
        pod = cluster.pods(ns, f"app.kubernetes.io/component={component}")[0]
        assert pod["spec"]["serviceAccountName"] == f"{FULLNAME}-{component}"
        projected = [v for v in pod["spec"]["volumes"] if "projected" in v]
        sources = [s for v in projected for s in v["projected"]["sources"]]
        assert any("serviceAccountToken" in s for s in sources), pod["spec"]["volumes"]
        assert not [v for v in pod["spec"]["volumes"] if "secret" in v], "no Secret volumes"
        for env in pod["spec"]["containers"][0].get("env", []):
            assert "value" not in env or not env["name"].endswith(("TOKEN", "SECRET_ACCESS_KEY")), env

    mg_path = "/apis/mediagen.fleek.xyz/v1alpha1"
    operator = probe(cluster, ns, "operator", [
        ("list_mg_all", "GET", f"{mg_path}/mediagenerations"),
        ("create_mg", "POST", f"{mg_path}/namespaces/{install.tenant_a}/mediagenerations"),
        ("list_secrets", "GET", f"/api/v1/namespaces/{ns}/secrets"),
        ("get_replicate_secret", "GET", f"/api/v1/namespaces/{ns}/secrets/replicate"),
        ("list_pods", "GET", f"/api/v1/namespaces/{ns}/pods"),
    ])  # fmt: skip
    assert operator == {
        "whoami": f"system:serviceaccount:{ns}:{FULLNAME}-operator",
        "list_mg_all": 200,
        "create_mg": 403,
        "list_secrets": 403,
        "get_replicate_secret": 403,
        "list_pods": 403,
    }
    gateway = probe(cluster, ns, "gateway", [
        ("list_mg_tenant", "GET", f"{mg_path}/namespaces/{install.tenant_a}/mediagenerations"),
        ("list_mg_all", "GET", f"{mg_path}/mediagenerations"),
        ("list_mg_elsewhere", "GET", f"{mg_path}/namespaces/{ns}/mediagenerations"),
        ("get_token_secret", "GET", f"/api/v1/namespaces/{ns}/secrets/{TOKEN_SECRET}"),
        ("get_replicate_secret", "GET", f"/api/v1/namespaces/{ns}/secrets/replicate"),
    ])  # fmt: skip
    assert gateway == {
        "whoami": f"system:serviceaccount:{ns}:{FULLNAME}-gateway",
        "list_mg_tenant": 200,
        "list_mg_all": 403,
        "list_mg_elsewhere": 403,
        "get_token_secret": 200,
        "get_replicate_secret": 403,
    }


# (verb, resource, namespace or "" for all, allowed) for the README's RBAC table.
OPERATOR_CAN = [
    ("get", "mediagenerations.mediagen.fleek.xyz", "", True),
    ("watch", "mediagenerations.mediagen.fleek.xyz", "", True),
    ("patch", "mediagenerations.mediagen.fleek.xyz", "", True),
    ("delete", "mediagenerations.mediagen.fleek.xyz", "", True),
    ("patch", "mediagenerations.mediagen.fleek.xyz/status", "", True),
    ("create", "events", "", True),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", "", True),
    ("create", "mediagenerations.mediagen.fleek.xyz", "", False),
    ("update", "mediagenerations.mediagen.fleek.xyz", "", False),
    ("get", "secrets", "", False),
    ("list", "namespaces", "", False),
]


def test_auth_can_i_matches_the_rbac_table(cluster: Cluster, install: Install) -> None:
    ns = install.namespace

    def can(sa: str, verb: str, resource: str, namespace: str) -> bool:
        where = ["-n", namespace] if namespace else ["--all-namespaces"]
        # "kind/status" would read as a resource named "status": subresources go in their own flag.
        sub = ["--subresource=status"] if resource.endswith("/status") else []
        resource = resource.removesuffix("/status")
        out = cluster.kubectl(
            "auth",
            "can-i",
            verb,
            resource,
            *sub,
            *where,
            f"--as=system:serviceaccount:{ns}:{FULLNAME}-{sa}",
            check=False,
        )
        return out.strip() == "yes"

    wrong = [(v, r, n) for v, r, n, allowed in OPERATOR_CAN if can("operator", v, r, n) != allowed]
    gateway_can = [
        ("create", "mediagenerations.mediagen.fleek.xyz", install.tenant_a, True),
        ("get", "mediagenerations.mediagen.fleek.xyz", install.tenant_b, True),
        ("patch", "mediagenerations.mediagen.fleek.xyz", install.tenant_a, True),
        ("delete", "mediagenerations.mediagen.fleek.xyz", install.tenant_a, False),
        ("watch", "mediagenerations.mediagen.fleek.xyz", install.tenant_a, False),
        ("patch", "mediagenerations.mediagen.fleek.xyz/status", install.tenant_a, False),
        ("create", "mediagenerations.mediagen.fleek.xyz", ns, False),
        ("get", f"secrets/{TOKEN_SECRET}", ns, True),
        ("get", "secrets/replicate", ns, False),
        ("list", "secrets", ns, False),
        ("get", "secrets", install.tenant_a, False),
    ]
    wrong += [(v, r, n) for v, r, n, allowed in gateway_can if can("gateway", v, r, n) != allowed]
    assert not wrong, f"kubectl auth can-i disagrees with the RBAC table: {wrong}"
