"""Scenario 2: the real credentials path. The Replicate token and the S3 keys come from Secrets (`existingSecret`),
Replicate is the fake running as a pod, storage an S3 server as a pod; several generations, a failure and a
cancel among them; outputs verified by sha256 (as stored, and as fetched from inside the cluster)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.fakes import Fakes
from tests.e2e.generations import FINAL, LONG, SLOW, create_many, generation, uid_markers

pytestmark = pytest.mark.e2e

RELEASE = "creds"
FETCH = (
    "import hashlib,sys,httpx;r=httpx.get(sys.argv[1],timeout=30);r.raise_for_status();"
    "print(hashlib.sha256(r.content).hexdigest())"
)


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, fakes: Fakes) -> Iterator[str]:
    """The operator with existingSecrets, watching its own namespace."""
    ns = cluster.create_namespace("e2e-creds", restricted=True)
    try:
        fakes.secrets(ns)
        cluster.helm_install(RELEASE, ns, *fakes.chart_values(), "--set", f"operator.watchNamespace={ns}")
        yield ns
    finally:
        cluster.remove_release(RELEASE, ns)


def test_credentials_come_from_the_secrets(cluster: Cluster, namespace: str) -> None:
    pod = cluster.pods(namespace, "app.kubernetes.io/component=operator")[0]
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for name, secret in (("REPLICATE_API_TOKEN", "replicate"), ("R2_SECRET_ACCESS_KEY", "storage")):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == secret
        assert "value" not in env[name]
    config = cluster.get("configmap", f"{RELEASE}-mediagen-operator", "-n", namespace)["data"]
    assert not any("r8_" in value or "secret" in value.lower() for value in config.values())


def test_generations_succeed_fail_and_cancel_with_verified_outputs(
    cluster: Cluster, namespace: str, fakes: Fakes
) -> None:
    manifests = [
        generation("ok-1", namespace, prompt="a lighthouse fake:data"),
        generation("ok-2", namespace, model=SLOW, prompt="a corgi fake:data"),
        generation("flagged", namespace, prompt="fake:nsfw"),
        generation("slow", namespace, model=LONG),
        # An output URL on a cluster-internal address: the SSRF guard refuses it here as anywhere.
        generation("internal-url", namespace, prompt="a lighthouse"),
    ]
    create_many(cluster, manifests)
    cluster.wait_phase(namespace, "slow", ["Running"], timeout=120)
    cluster.kubectl("patch", "mg", "slow", "-n", namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    final = {m["metadata"]["name"]: cluster.wait_phase(namespace, m["metadata"]["name"], FINAL) for m in manifests}

    outcome = {name: (mg["status"]["phase"], mg["status"].get("reason")) for name, mg in final.items()}
    messages = {name: mg["status"].get("message") for name, mg in final.items()}
    assert outcome == {
        "ok-1": ("Succeeded", "Succeeded"),
        "ok-2": ("Succeeded", "Succeeded"),
        "flagged": ("Failed", "ContentFlagged"),
        "slow": ("Canceled", "Canceled"),
        "internal-url": ("Failed", "OutputURLRejected"),
    }, messages

    stats = fakes.stats()
    expected = stats["png_sha256"]
    for name in ("ok-1", "ok-2"):
        output = final[name]["status"]["outputs"][0]
        assert output["sha256"] == expected
        assert output["url"].startswith(fakes.s3_url)  # presigned against the S3 server's Service
        fetched = cluster.run_pod(namespace, "fetch", ["python", "-c", FETCH, output["url"]]).strip()
        assert fetched == expected

    # One paid prediction per generation, each created with the token from the Secret.
    markers = stats["creates_by_marker"]
    for name, uid in uid_markers(cluster, namespace).items():
        assert markers.get(f"{uid}.1") == 1, (name, markers)
    assert not any(key.startswith("create 401") for key in stats["requests"])
