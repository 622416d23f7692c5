"""Fixtures of the end-to-end scenarios (``-m e2e``): a real cluster, given by the runner, or a skip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, E2EConfig
from tests.e2e.fakes import Fakes, deploy_fakes

SKIP_REASON = "needs a cluster: run `make e2e` (local kubelet node) or `make kind-e2e` (kind)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without MEDIAGEN_E2E_KUBECONFIG every scenario is skipped: `make test` never needs a node."""
    if E2EConfig.from_env() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def e2e_config() -> E2EConfig:
    """The runner's configuration."""
    config = E2EConfig.from_env()
    if config is None:
        pytest.skip(SKIP_REASON)
    return config


@pytest.fixture(scope="session")
def cluster(e2e_config: E2EConfig) -> Iterator[Cluster]:
    """kubectl and helm against the cluster; figures recorded by the scenarios are written at the end."""
    cluster = Cluster(e2e_config)
    yield cluster
    if e2e_config.figures_path and cluster.figures:
        path = Path(e2e_config.figures_path)
        previous = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**previous, **cluster.figures}, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def full_scale(e2e_config: E2EConfig) -> bool:
    """True for `--scale full` (2,000 generations in flight, a longer failover batch)."""
    return e2e_config.scale == "full"


@pytest.fixture(scope="session")
def fakes(cluster: Cluster) -> Iterator[Fakes]:
    """The fake Replicate (delivering webhooks) and an S3 server as pods, for the whole session."""
    deployed = deploy_fakes(cluster, webhooks=True)
    yield deployed
    cluster.delete_namespace(deployed.namespace)


@pytest.fixture(scope="session")
def quiet_fakes(cluster: Cluster) -> Iterator[Fakes]:
    """Another pair without webhook deliveries: for the scenarios that poll (peering, thousands in flight)."""
    deployed = deploy_fakes(cluster, webhooks=False)
    yield deployed
    cluster.delete_namespace(deployed.namespace)
