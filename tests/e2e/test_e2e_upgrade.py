"""Scenario 7: `helm upgrade` with a changed value rolls the operator while generations run, and none is lost or
duplicated; `helm uninstall` then leaves the CRD and the MediaGenerations (as the README documents) and nothing
else of the release."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, wait_until
from tests.e2e.fakes import Fakes
from tests.e2e.generations import FINAL, SLOW, create_many, generation, phases, uid_markers

# Full scale runs long on two cores (the module's fixture teardown counts too).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

RELEASE = "upg"
CRD = "mediagenerations.mediagen.fleek.xyz"
# Every kind the chart can render, namespaced and cluster-wide.
KINDS = (
    "deployments,replicasets,pods,services,configmaps,secrets,serviceaccounts,roles,rolebindings,"
    "networkpolicies,clusterroles,clusterrolebindings,validatingadmissionpolicies,"
    "validatingadmissionpolicybindings,customresourcedefinitions"
)


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, quiet_fakes: Fakes) -> Iterator[str]:
    """A single-replica operator (the Recreate strategy), credentials from Secrets, cluster-wide like a default
    install."""
    ns = cluster.create_namespace("e2e-upgrade", restricted=True)
    try:
        quiet_fakes.secrets(ns)
        cluster.helm_install(RELEASE, ns, *quiet_fakes.chart_values())
        yield ns
    finally:
        cluster.remove_release(RELEASE, ns)


def operator_pod(cluster: Cluster, namespace: str) -> str:
    pods = [
        p
        for p in cluster.pods(namespace, "app.kubernetes.io/component=operator")
        if p["status"]["phase"] == "Running" and "deletionTimestamp" not in p["metadata"]
    ]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return str(pods[0]["metadata"]["name"])


def test_upgrade_rolls_the_operator_without_losing_or_duplicating(
    cluster: Cluster, namespace: str, quiet_fakes: Fakes, full_scale: bool
) -> None:
    batch = [generation(f"up-{i}", namespace, model=SLOW) for i in range(40 if full_scale else 8)]
    create_many(cluster, batch)
    wait_until(lambda: all(p == "Running" for p in phases(cluster, namespace).values()), 120, "the batch Running")
    before = operator_pod(cluster, namespace)

    changed = ["--set", "settings.logLevel=DEBUG"]
    cluster.helm_install(RELEASE, namespace, *quiet_fakes.chart_values(), *changed, upgrade=True)
    after = operator_pod(cluster, namespace)
    assert after != before, "the changed value rolled the operator"
    config = cluster.get("configmap", f"{RELEASE}-mediagen-operator", "-n", namespace)["data"]
    assert config["MEDIAGEN_LOG_LEVEL"] == "DEBUG"
    cluster.apply(generation("after-upgrade", namespace))

    names = [m["metadata"]["name"] for m in batch] + ["after-upgrade"]
    final = {name: cluster.wait_phase(namespace, name, FINAL, timeout=300) for name in names}
    assert {name: mg["status"]["phase"] for name, mg in final.items()} == dict.fromkeys(names, "Succeeded")
    markers = quiet_fakes.stats()["creates_by_marker"]
    for name, uid in uid_markers(cluster, namespace).items():
        mine = {marker: count for marker, count in markers.items() if marker.startswith(uid + ".")}
        assert mine == {f"{uid}.1": 1}, (name, mine)


def test_uninstall_leaves_the_crd_and_the_generations_and_nothing_else(cluster: Cluster, namespace: str) -> None:
    generations = set(phases(cluster, namespace))
    assert generations, "the previous test left its generations"
    cluster.helm("uninstall", RELEASE, "--namespace", namespace, "--wait")

    assert cluster.get("crd", CRD)["metadata"]["name"] == CRD
    assert set(phases(cluster, namespace)) == generations
    # The operator's pod may still be terminating right after uninstall; then nothing of the release is left.
    left: list[tuple[str, str]] = []

    def nothing_left() -> bool:
        items = cluster.get(KINDS, "-A", "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
        left[:] = [(item["kind"], item["metadata"]["name"]) for item in items]
        return not left

    wait_until(nothing_left, 120, "nothing of the release left")
    release_secrets = cluster.get("secrets", "-n", namespace, "-l", f"owner=helm,name={RELEASE}")["items"]
    assert release_secrets == []
