"""The Kubernetes adapter's own HTTP on the real kube-apiserver: the kubeconfig's client certificate and CA, a server
certificate from another CA refused, and a ServiceAccount token read again from its file as the kubelet rotates it
(the official in-cluster loader over files of the test's own)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.config.incluster_config import (
    SERVICE_HOST_ENV_NAME,
    SERVICE_PORT_ENV_NAME,
    InClusterConfigLoader,
)

from mediagen.api.types import API_VERSION, KIND
from mediagen.kube.client import KubeClient
from mediagen.kube.errors import Forbidden, NotFound, Unavailable
from mediagen.kube.transport import AUTH_REFRESH_SECONDS, AiohttpTransport, load_configuration
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.certs import CertificateAuthority


def manifest(name: str) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"model": "owner/model", "input": {"prompt": "a lighthouse"}},
    }


async def test_client_certificate_and_ca_from_the_kubeconfig(
    control_plane: ControlPlane, api: None, namespace: str
) -> None:
    kube = KubeClient(load_configuration(str(control_plane.kubeconfig)), field_manager="mediagen-test")
    try:
        created = await kube.create(namespace, manifest("tls"))
        assert created["metadata"]["managedFields"][0]["manager"] == "mediagen-test"
        patched = await kube.patch_status(namespace, "tls", {"status": {"phase": "Pending"}})
        assert patched["status"]["phase"] == "Pending"
        page = await kube.list_page(namespace, limit=10)
        assert [item["metadata"]["name"] for item in page.items] == ["tls"]
        await kube.event(created, "Normal", "Tested", "an event on the real API server")
        await kube.delete(namespace, "tls", created["metadata"]["uid"])
        with pytest.raises(NotFound):
            await kube.get(namespace, "tls")
    finally:
        await kube.aclose()


async def test_a_server_certificate_from_another_ca_is_refused(control_plane: ControlPlane, tmp_path: Path) -> None:
    configuration = load_configuration(str(control_plane.kubeconfig))
    other = tmp_path / "other-ca.pem"
    other.write_bytes(CertificateAuthority.create("someone-else").cert_pem)
    configuration.ssl_ca_cert = str(other)
    kube = KubeClient(configuration)
    try:
        with pytest.raises(Unavailable, match="unreachable"):
            await kube.ping()
    finally:
        await kube.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_rotated_token_is_read_again_from_its_file(
    control_plane: ControlPlane, api: None, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = control_plane.service_account_kubeconfig(namespace, "rotating", path=tmp_path / "sa-kubeconfig")
    token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
    token_file = tmp_path / "token"
    token_file.write_text(token)
    server = urlsplit(control_plane.server)
    loader = InClusterConfigLoader(
        token_filename=str(token_file),
        cert_filename=str(control_plane.ca_file),
        environ={SERVICE_HOST_ENV_NAME: str(server.hostname), SERVICE_PORT_ENV_NAME: str(server.port)},
    )
    configuration = k8s.Configuration()
    loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    clock = Clock()
    kube = KubeClient(AiohttpTransport(configuration, clock=clock))

    def rotate(content: str) -> None:
        token_file.write_text(content)
        loader.token_expires_at = dt.datetime.now()  # the loader's minute is up: its hook reads the file again

    try:
        # Authenticated as the ServiceAccount, which RBAC grants nothing: 403, not 401.
        with pytest.raises(Forbidden):
            await kube.get(namespace, "anything")
        rotate("not-a-token")
        with pytest.raises(Forbidden):  # within the refresh period the token in hand is used
            await kube.get(namespace, "anything")
        clock.now += AUTH_REFRESH_SECONDS + 1
        with pytest.raises(Unavailable, match="401"):
            await kube.get(namespace, "anything")
        rotate(token)
        # No time passes: the 401 alone makes the next call ask for the current token.
        with pytest.raises(Forbidden):
            await kube.get(namespace, "anything")
    finally:
        await kube.aclose()
