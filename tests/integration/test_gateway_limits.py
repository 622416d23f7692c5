"""Issue 13 items 1 and 2 on the real API server: the gateway counts a tenant's unfinished generations with a
field selector on ``status.phase`` and metadata-only lists, so finished generations (however many, however
named) neither hide the unfinished ones nor cost the gateway anything to skip."""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes import client as k8s

from tests.support.gateway_fixtures import (
    GatewayProcess,
    GatewayTenant,
    gateway,
    gateway_kubeconfig,
    mint_tenant,
    token_admin,
)

__all__ = ["gateway", "gateway_kubeconfig", "mint_tenant", "token_admin"]

GROUP, VERSION, PLURAL = "mediagen.fleek.xyz", "v1alpha1", "mediagenerations"
QUOTA = 100  # the gateway's default max_inflight_per_tenant


def put(api: k8s.CustomObjectsApi, namespace: str, name: str, phase: str | None) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MediaGeneration",
        "metadata": {"name": name},
        "spec": {"model": "a/b", "input": {"prompt": name}},
    }
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    if phase:
        api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": {"phase": phase}})


def test_finished_decoys_named_first_do_not_hide_the_unfinished_from_the_quota(
    gateway: GatewayProcess,
    mint_tenant: Callable[[str], GatewayTenant],
    namespace: str,
    custom_api: k8s.CustomObjectsApi,
) -> None:
    for i in range(150):
        put(custom_api, namespace, f"a-decoy-{i:03d}", "Canceled" if i % 2 else "Succeeded")
    for i in range(QUOTA):  # created with kubectl or by another replica: half not yet seen by any operator
        put(custom_api, namespace, f"z-real-{i:03d}", "Running" if i % 2 else None)
    with gateway.client(mint_tenant(namespace).token) as client:
        refused = client.post("/generate", json={"model": "a/b", "input": {"prompt": "one more"}})
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"].endswith("/quota-exceeded")
        custom_api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, "z-real-001", {"status": {"phase": "Succeeded"}}
        )
        deadline = time.monotonic() + 30  # the count is cached for inflight_cache_seconds (2 s)
        while True:
            answer = client.post("/generate", json={"model": "a/b", "input": {"prompt": "one more"}})
            if answer.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer.status_code == 202, answer.text
