"""MediaGeneration manifests for the scenarios, scripted for the fake Replicate through their input."""

from __future__ import annotations

from typing import Any

from tests.e2e.cluster import Cluster

API_VERSION = "mediagen.fleek.xyz/v1alpha1"
FINAL = ("Succeeded", "Failed", "Canceled")


FAST = "black-forest-labs/flux-schnell"
"""The fake's flux-schnell: 1 s queued, 2 s processing."""
SLOW = "e2e/slow"
"""20 s processing (the tooling server's e2e models)."""
LONG = "e2e/long"
"""20 minutes processing: in flight for as long as a scenario needs."""


def generation(
    name: str, namespace: str, *, model: str = FAST, prompt: str = "a lighthouse fake:data"
) -> dict[str, Any]:
    """A MediaGeneration for the fake Replicate. Its behaviour is scripted by ``model`` and by ``fake:<preset>``
    words in ``prompt``, since the admission policy allows no ``_fake`` object in the input. ``fake:data`` (the
    default) makes the output a data: URI: an output URL on the fake's cluster address would be refused by the
    operator's SSRF guard, as it must be (scenario 2 shows it); ``fake:nsfw`` fails the prediction."""
    return {
        "apiVersion": API_VERSION,
        "kind": "MediaGeneration",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, "input": {"prompt": prompt}},
    }


def create_many(cluster: Cluster, manifests: list[dict[str, Any]], chunk: int = 200) -> None:
    """Create MediaGenerations in chunks (one kubectl call per chunk)."""
    for start in range(0, len(manifests), chunk):
        cluster.create(manifests[start : start + chunk])


def phases(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Name → phase ("" before the operator wrote one) of every MediaGeneration in ``namespace``."""
    items = cluster.get("mediagenerations", "-n", namespace)["items"]
    return {item["metadata"]["name"]: item.get("status", {}).get("phase", "") for item in items}


def uid_markers(cluster: Cluster, namespace: str) -> dict[str, str]:
    """Name → uid: the operator's webhook URL carries the uid as the crash-recovery marker."""
    items = cluster.get("mediagenerations", "-n", namespace)["items"]
    return {item["metadata"]["name"]: item["metadata"]["uid"] for item in items}
