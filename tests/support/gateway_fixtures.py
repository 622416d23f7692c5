"""pytest fixtures for the HTTP gateway: its RBAC applied, the gateway as its own process under its own
ServiceAccount (never admin), and tenants with API tokens.

Import them into a conftest.py or a test module (with the stack's fixtures, see :mod:`.stack_fixtures`)::

    from tests.support.gateway_fixtures import gateway, gateway_kubeconfig, mint_tenant, token_admin

The gateway runs as ``python -m mediagen.cli gateway`` on a free loopback port, with a token cache of one second
and a re-read on unknown token ids after 0.2 s (so revocation and fresh-token tests are quick), and with
ServiceAccount tokens accepted (TokenReview) for the audience :data:`AUDIENCE` from any namespace (RBAC decides).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mediagen.gateway import rbac
from mediagen.gateway.apigroup import APISERVICE_NAME
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client
from mediagen_dev.aggregated_api import SERVICE, AggregatedAPI
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.gateway_process import GatewayProcess
from mediagen_dev.paths import MANIFESTS_DIR

RBAC_MANIFEST = MANIFESTS_DIR / "base" / "gateway-rbac.yaml"
GATEWAY_NAMESPACE = rbac.DEFAULT_NAMESPACE
TOKEN_CACHE_SECONDS = 1.0
TOKEN_REFRESH_SECONDS = 0.2
AUDIENCE = "mediagen-gateway"


@dataclass(frozen=True)
class GatewayTenant:
    """A tenant of the gateway in tests: its namespace and a valid API token."""

    namespace: str
    token: str
    token_id: str


@pytest.fixture(scope="session")
def gateway_kubeconfig(control_plane: ControlPlane, api: None) -> Path:
    """The gateway's ServiceAccount kubeconfig, bound by exactly the rules in manifests/base/gateway-rbac.yaml."""
    control_plane.create_namespace(GATEWAY_NAMESPACE)
    control_plane.kubectl("apply", "-f", str(RBAC_MANIFEST))
    return control_plane.service_account_kubeconfig(GATEWAY_NAMESPACE, rbac.SERVICE_ACCOUNT)


@pytest.fixture(scope="session")
def token_admin(control_plane: ControlPlane) -> TokenAdmin:
    """Mints and revokes tokens with the admin's credentials (the gateway may only read the Secret)."""
    control_plane.create_namespace(GATEWAY_NAMESPACE)
    return TokenAdmin(load_api_client(str(control_plane.kubeconfig)), GATEWAY_NAMESPACE)


def _gateway_env() -> dict[str, str]:
    return {
        "MEDIAGEN_GATEWAY_NAMESPACE": GATEWAY_NAMESPACE,
        "MEDIAGEN_GATEWAY_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
        "MEDIAGEN_GATEWAY_TOKEN_REFRESH_SECONDS": str(TOKEN_REFRESH_SECONDS),
        "MEDIAGEN_GATEWAY_TOKEN_REVIEW": "true",
        "MEDIAGEN_GATEWAY_TOKEN_REVIEW_AUDIENCES": f'["{AUDIENCE}"]',
        "MEDIAGEN_GATEWAY_TOKEN_REVIEW_NAMESPACES": '["*"]',
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "text",
    }


@pytest.fixture(scope="session")
def gateway(gateway_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway as its own process, under its ServiceAccount."""
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with GatewayProcess(gateway_kubeconfig, _gateway_env(), log) as process:
        yield process


@pytest.fixture(scope="module")
def aggregated_gateway(
    gateway_kubeconfig: Path, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, AggregatedAPI]]:
    """Another gateway process, under the same ServiceAccount with the aggregated API's RBAC too, serving the
    aggregated API behind the session's kube-apiserver (registered until the module ends: an APIService whose
    server is gone would make every kubectl discovery warn)."""
    workdir = tmp_path_factory.mktemp("aggregated")
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac.aggregated_manifests(GATEWAY_NAMESPACE)))
    api = AggregatedAPI.prepare(workdir, GATEWAY_NAMESPACE)
    with GatewayProcess(gateway_kubeconfig, {**_gateway_env(), **api.gateway_env}, workdir / "gateway.log") as process:
        api.register(control_plane)
        yield process, api
        control_plane.kubectl("delete", "apiservice", APISERVICE_NAME, "--wait=true")
        control_plane.kubectl("delete", "service", SERVICE, "-n", GATEWAY_NAMESPACE)


@pytest.fixture
def mint_tenant(token_admin: TokenAdmin) -> Callable[[str], GatewayTenant]:
    """Make ``namespace`` a tenant: mint an API token for it."""

    def mint(namespace: str) -> GatewayTenant:
        token, record = token_admin.create(namespace, description="pytest")
        return GatewayTenant(namespace=namespace, token=token, token_id=record.id)

    return mint
