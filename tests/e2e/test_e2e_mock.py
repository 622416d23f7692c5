"""Scenario 1: `helm install` in mock mode into a namespace that enforces Pod Security `restricted`; the pods Running
and Ready (their probes pass), the example Succeeded, its output fetched through the demo store's Service from a
pod."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import CHART, ROOT, Cluster

pytestmark = pytest.mark.e2e

EXAMPLE = ROOT / "examples" / "mock-image.yaml"
RELEASE = "mediagen"

# Fetch a URL inside the cluster with the image's own Python; print the body's sha256 and its first bytes.
FETCH = (
    "import hashlib,sys,httpx;r=httpx.get(sys.argv[1],timeout=30);r.raise_for_status();"
    "print(hashlib.sha256(r.content).hexdigest(), r.content[:8].hex())"
)


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Iterator[tuple[str, float]]:
    """The chart in mock mode in a restricted namespace; (namespace, when the install started)."""
    namespace = cluster.create_namespace("e2e-mock", restricted=True)
    started = time.monotonic()
    took = cluster.helm_install(RELEASE, namespace, "--values", str(CHART / "ci" / "mock-values.yaml"))
    cluster.record(helm_install_wait_s=round(took, 1))
    try:
        yield namespace, started
    finally:
        cluster.remove_release(RELEASE, namespace)


def test_pods_are_running_and_ready_under_restricted(cluster: Cluster, installed: tuple[str, float]) -> None:
    namespace, _ = installed
    labels = cluster.get("namespace", namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = cluster.pods(namespace, f"app.kubernetes.io/instance={RELEASE}")
    components = sorted(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods)
    assert components == ["operator", "store"]
    for pod in pods:
        assert pod["status"]["phase"] == "Running", pod["status"]
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True", pod["status"]["conditions"]
        for status in pod["status"]["containerStatuses"]:
            assert status["ready"] and status["restartCount"] == 0, status
        # Probes are what made them Ready: every container has one.
        for container in pod["spec"]["containers"]:
            assert "readinessProbe" in container or "startupProbe" in container, container["name"]


def test_example_succeeds_and_its_output_is_fetched_from_a_pod(cluster: Cluster, installed: tuple[str, float]) -> None:
    namespace, started = installed
    cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    mg = cluster.wait_phase(namespace, "hello-mediagen", ["Succeeded", "Failed", "Canceled"], timeout=180)
    cluster.record(install_to_first_success_s=round(time.monotonic() - started, 1))
    assert mg["status"]["phase"] == "Succeeded", mg["status"]
    conditions = {c["type"]: c["status"] for c in mg["status"]["conditions"]}
    assert conditions["Succeeded"] == "True"
    output = mg["status"]["outputs"][0]
    assert output["contentType"] == "image/png"
    # The URL is presigned against the demo store's Service name: only a pod in the namespace can follow it.
    assert f"{RELEASE}-store" in mg["status"]["url"]
    digest, head = cluster.run_pod(namespace, "fetch", ["python", "-c", FETCH, mg["status"]["url"]]).split()
    assert head == bytes([137, 80, 78, 71, 13, 10, 26, 10]).hex()
    assert digest == output["sha256"]
    assert len(digest) == len(hashlib.sha256().hexdigest())
