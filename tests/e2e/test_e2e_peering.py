"""Scenario 5: two operator replicas electing a leader on a Lease. The leader's pod is deleted
(`--grace-period=0 --force`) in the middle of a batch; the standby takes over (the time is measured), every resource
gets exactly one prediction, and no finalizer is left behind."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, wait_until
from tests.e2e.fakes import Fakes
from tests.e2e.generations import FINAL, SLOW, create_many, generation, phases, uid_markers

# Full scale runs long on two cores (the module's fixture teardown counts too).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

RELEASE = "peer"


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, quiet_fakes: Fakes) -> Iterator[str]:
    """Two replicas watching their namespace, credentials from Secrets."""
    ns = cluster.create_namespace("e2e-peer", restricted=True)
    try:
        quiet_fakes.secrets(ns)
        values = ["--set", f"operator.watchNamespace={ns}", "--set", "operator.replicas=2"]
        cluster.helm_install(RELEASE, ns, *quiet_fakes.chart_values(), *values)
        yield ns
    finally:
        cluster.remove_release(RELEASE, ns)


def leader_pod(cluster: Cluster, namespace: str) -> str:
    """The pod holding the operator's Lease (holder identity ``<pod name>_<random>``), or "" when nobody does."""
    lease = cluster.get("lease", f"{RELEASE}-mediagen-operator", "-n", namespace)
    holder: str = lease.get("spec", {}).get("holderIdentity") or ""
    return holder.rpartition("_")[0] or holder


def test_standby_takes_over_when_the_active_pod_is_deleted(
    cluster: Cluster, namespace: str, quiet_fakes: Fakes, full_scale: bool
) -> None:
    running = {p["metadata"]["name"] for p in cluster.pods(namespace, "app.kubernetes.io/component=operator")}
    wait_until(lambda: leader_pod(cluster, namespace) in running, 60, "one of the two replicas holding the Lease")
    batch = [generation(f"batch-{i}", namespace, model=SLOW) for i in range(50 if full_scale else 10)]
    create_many(cluster, batch)
    wait_until(lambda: all(p == "Running" for p in phases(cluster, namespace).values()), 120, "the batch Running")
    victim = leader_pod(cluster, namespace)

    deleted = time.monotonic()
    cluster.kubectl("delete", "pod", victim, "-n", namespace, "--grace-period=0", "--force")
    cluster.apply(generation("after-failover", namespace))
    cluster.wait_phase(namespace, "after-failover", ["Running", "Uploading", *FINAL], timeout=300)
    failover_s = time.monotonic() - deleted
    cluster.record(failover_s=round(failover_s, 1))
    assert leader_pod(cluster, namespace) not in ("", victim)

    names = [m["metadata"]["name"] for m in batch] + ["after-failover"]
    final = {name: cluster.wait_phase(namespace, name, FINAL, timeout=300) for name in names}
    assert {name: mg["status"]["phase"] for name, mg in final.items()} == dict.fromkeys(names, "Succeeded")
    markers = quiet_fakes.stats()["creates_by_marker"]
    for name, uid in uid_markers(cluster, namespace).items():
        mine = {marker: count for marker, count in markers.items() if marker.startswith(uid + ".")}
        assert mine == {f"{uid}.1": 1}, (name, mine)

    cluster.kubectl("delete", "mediagenerations", "--all", "-n", namespace, "--wait=false")
    wait_until(lambda: not cluster.get("mediagenerations", "-n", namespace)["items"], 120, "no finalizer left behind")
