"""The HTTP gateway as the scenarios run it: its own process under its own ServiceAccount, with tenants."""

from __future__ import annotations

from collections.abc import Mapping

from mediagen.gateway import rbac
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.gateway_process import GatewayProcess
from mediagen_dev.paths import REPO_ROOT

RBAC_MANIFEST = REPO_ROOT / "manifests" / "base" / "gateway-rbac.yaml"


def start_gateway(stack: Stack, name: str, env: Mapping[str, str] | None = None) -> GatewayProcess:
    """Start a gateway (RBAC applied, ServiceAccount kubeconfig) and return it; the caller stops it."""
    stack.plane.create_namespace(rbac.DEFAULT_NAMESPACE)
    stack.plane.kubectl("apply", "-f", str(RBAC_MANIFEST))
    kubeconfig = stack.plane.service_account_kubeconfig(rbac.DEFAULT_NAMESPACE, rbac.SERVICE_ACCOUNT)
    settings = {
        "MEDIAGEN_GATEWAY_NAMESPACE": rbac.DEFAULT_NAMESPACE,
        "MEDIAGEN_GATEWAY_TOKEN_CACHE_SECONDS": "1",
        "MEDIAGEN_GATEWAY_TOKEN_REFRESH_SECONDS": "0.2",
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "json",
        **(env or {}),
    }
    log_dir = stack.workdir / f"gateway-{name}"
    log_dir.mkdir(parents=True, exist_ok=True)
    return GatewayProcess(kubeconfig, settings, log_dir / "gateway.log").start()


def mint_token(stack: Stack, tenant_namespace: str, description: str = "chaos") -> str:
    """A new API token for ``tenant_namespace`` (written with the admin's credentials)."""
    stack.plane.create_namespace(rbac.DEFAULT_NAMESPACE)
    admin = TokenAdmin(load_api_client(str(stack.plane.kubeconfig)), rbac.DEFAULT_NAMESPACE)
    token, _record = admin.create(tenant_namespace, description=description)
    return token
