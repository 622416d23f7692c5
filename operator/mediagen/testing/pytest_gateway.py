"""pytest fixtures for the HTTP gateway: its RBAC applied, the gateway as its own process under its own
ServiceAccount (never admin), and tenants with API tokens.

Import them into a conftest.py or a test module (with the stack's fixtures, see :mod:`.pytest_stack`)::

    from mediagen.testing.pytest_gateway import gateway, gateway_kubeconfig, mint_tenant, token_admin

The gateway runs as ``python -m mediagen.cli gateway`` on a free loopback port, with a token cache of one second
and a re-read on unknown token ids after 0.2 s (so revocation and fresh-token tests are quick), and with
ServiceAccount tokens accepted (TokenReview).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

from mediagen.controlplane import ControlPlane
from mediagen.gateway import rbac
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client

REPO_ROOT = Path(__file__).resolve().parents[3]
RBAC_MANIFEST = REPO_ROOT / "manifests" / "base" / "gateway-rbac.yaml"
GATEWAY_NAMESPACE = rbac.DEFAULT_NAMESPACE
TOKEN_CACHE_SECONDS = 1.0
TOKEN_REFRESH_SECONDS = 0.2
_LISTENING = re.compile(r"mediagen gateway listening on (http://[0-9.]+:\d+)")


class GatewayProcess:
    """``python -m mediagen.cli gateway`` on 127.0.0.1 with a free port; logs go to ``log_path``."""

    def __init__(self, kubeconfig: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.kubeconfig = kubeconfig
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self.argv = [sys.executable, "-m", "mediagen.cli", "gateway"]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._url is None:
            raise RuntimeError("the gateway has not started")
        return self._url

    def start(self, timeout: float = 30.0) -> Self:
        """Start the gateway and wait until it answers /livez."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [*self.argv, "--kubeconfig", str(self.kubeconfig), "--host", "127.0.0.1", "--port", "0"],
                env=self.env,
                # Not the repository: a developer's .env must not configure the gateway under test.
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.logs())
            if found:
                self._url = found.group(1)
                try:
                    if httpx.get(f"{self._url}/livez", timeout=2, trust_env=False).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self._process.returncode}:\n{self.logs()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"the gateway did not start within {timeout}s:\n{self.logs()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def logs(self) -> str:
        """Everything the gateway printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the gateway, with ``token`` as bearer if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


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


@pytest.fixture(scope="session")
def gateway(gateway_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway as its own process, under its ServiceAccount."""
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {
        "MEDIAGEN_GATEWAY_NAMESPACE": GATEWAY_NAMESPACE,
        "MEDIAGEN_GATEWAY_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
        "MEDIAGEN_GATEWAY_TOKEN_REFRESH_SECONDS": str(TOKEN_REFRESH_SECONDS),
        "MEDIAGEN_GATEWAY_TOKEN_REVIEW": "true",
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "text",
    }
    with GatewayProcess(gateway_kubeconfig, env, log) as process:
        yield process


@pytest.fixture
def mint_tenant(token_admin: TokenAdmin) -> Callable[[str], GatewayTenant]:
    """Make ``namespace`` a tenant: mint an API token for it."""

    def mint(namespace: str) -> GatewayTenant:
        token, record = token_admin.create(namespace, description="pytest")
        return GatewayTenant(namespace=namespace, token=token, token_id=record.id)

    return mint
