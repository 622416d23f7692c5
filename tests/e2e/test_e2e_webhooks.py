"""Scenario 4: webhooks in the cluster. The fake Replicate (a pod) delivers signed `completed` webhooks to the
operator's webhook Service; generations finish on the delivery, and polling drops to the safety net."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.fakes import Fakes
from tests.e2e.generations import FINAL, create_many, generation

pytestmark = pytest.mark.e2e

RELEASE = "hooks"


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, fakes: Fakes) -> Iterator[str]:
    """The operator receiving webhooks behind its Service (the signing secret from a Secret, the https URL through
    the relay), polling at the chart's webhook defaults (first poll after 15 s)."""
    ns = cluster.create_namespace("e2e-hooks", restricted=True)
    try:
        fakes.secrets(ns)
        url = fakes.webhook_url(ns, f"{RELEASE}-mediagen-operator-webhooks", 8082)
        cluster.helm_install(
            RELEASE, ns, *fakes.chart_values(),
            "--set", f"operator.watchNamespace={ns}",
            "--set", "operator.webhooks.enabled=true",
            "--set", "operator.webhooks.existingSecret=webhook",
            "--set", f"replicate.webhookUrl={url}",
        )  # fmt: skip
        yield ns
    finally:
        cluster.remove_release(RELEASE, ns)


def test_completions_arrive_as_webhooks_and_polls_drop(cluster: Cluster, namespace: str, fakes: Fakes) -> None:
    names = [f"hook-{i}" for i in range(5)]
    before = fakes.stats()["deliveries"].get("completed ok", 0)
    create_many(cluster, [generation(name, namespace, prompt=f"a corgi {i} fake:data") for i, name in enumerate(names)])
    final = {name: cluster.wait_phase(namespace, name, FINAL, timeout=120) for name in names}
    assert {mg["status"]["phase"] for mg in final.values()} == {"Succeeded"}

    stats = fakes.stats()
    assert stats["deliveries"].get("completed ok", 0) - before >= len(names), stats["deliveries"]
    # Each prediction ran 3 s; the first poll of a webhook-receiving operator is due after 15 s, so the delivery,
    # not a poll, ended each one (a polling operator at the same pace polls several times: scenario 2).
    polls = {name: stats["gets_by_prediction"].get(mg["status"]["prediction"]["id"], 0) for name, mg in final.items()}
    assert max(polls.values()) <= 1, polls
    cluster.record(webhook_polls_per_generation=round(sum(polls.values()) / len(polls), 2))
