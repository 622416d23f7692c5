"""Operator replicas with leader election as processes on loopback, and how to tell which one leads.

The one that leads is the one named by the Lease: ``spec.holderIdentity`` is ``<pod name>_<random>`` (see
:func:`mediagen.controller.election.new_identity`), so the pod is everything before the last ``_``. In a
cluster: ``kubectl -n NS get lease <release>-operator -o jsonpath='{.spec.holderIdentity}'``.
"""

from __future__ import annotations

from pathlib import Path

from mediagen.controller.election import pod_of
from mediagen.kube.client import load_api_client
from mediagen.kube.lease import KubernetesLeaseStore, LeaseError, LeaseRecord

LEASE_NAME = "mediagen-operator"
"""The Lease's name unless MEDIAGEN_LEASE_NAME says otherwise (the chart uses ``<release fullname>-operator``)."""
STANDING_BY = "standing by"
"""In a replica's log once it has seen another replica hold the Lease."""
BECAME_LEADER = "became the leader"
"""In a replica's log once it holds the Lease (kopf starts right after)."""


def elected_env(lease_namespace: str, pod_name: str, **extra: str) -> dict[str, str]:
    """The environment that makes an operator process one replica among several, named ``pod_name``."""
    return {
        "MEDIAGEN_LEADER_ELECTION": "true",
        "MEDIAGEN_LEASE_NAMESPACE": lease_namespace,
        "POD_NAME": pod_name,
        **extra,
    }


class LeaseReader:
    """Reads the Lease as an administrator would (never writes it)."""

    def __init__(self, kubeconfig: Path, namespace: str, name: str = LEASE_NAME) -> None:
        self._store = KubernetesLeaseStore(load_api_client(str(kubeconfig)), namespace, name, timeout=5.0)

    def record(self) -> LeaseRecord | None:
        """The Lease as stored now (None before any replica created it, or when it cannot be read)."""
        try:
            return self._store.get()
        except LeaseError:
            return None

    def holder_pod(self) -> str:
        """The pod (replica) that holds the Lease now; empty when none does."""
        record = self.record()
        return pod_of(record.holder) if record is not None and record.holder else ""
