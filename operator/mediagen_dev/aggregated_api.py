"""The gateway's aggregated API on this machine: its serving certificate and its registration with kube-apiserver.

kube-apiserver proxies ``/apis/gateway.mediagen.fleek.xyz/v1alpha1`` to the Service named by the APIService. Here
that is an ``ExternalName`` Service naming ``localhost``: with ``--enable-aggregator-routing=false`` (the local
control plane's setting) the aggregator resolves a Service to its address, and an ExternalName's address is its
name, at the APIService's port. The obvious alternative, a Service without selector and an EndpointSlice for
127.0.0.1, is refused by validation (endpoint addresses "may not be in the loopback range"). TLS is verified against
the APIService's ``caBundle`` for ``<service>.<namespace>.svc``, which the serving certificate made here names.

Use::

    api = AggregatedAPI.prepare(workdir)
    gateway = GatewayProcess(kubeconfig, {**env, **api.gateway_env}, log)   # serves both listeners
    api.register(plane)                                                     # then kubectl reaches it
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mediagen.gateway import rbac
from mediagen.gateway.apigroup import API_GROUP, API_VERSION, APISERVICE_NAME
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.certs import CertificateAuthority
from mediagen_dev.controlplane.ports import free_ports

SERVICE = "mediagen-gateway-api"
"""The Service the APIService names (as in the Helm chart)."""


@dataclass(frozen=True)
class AggregatedAPI:
    """Serving certificate files and the port of a local gateway's aggregated API."""

    namespace: str
    port: int
    ca_pem: bytes
    cert_file: Path
    key_file: Path

    @classmethod
    def prepare(cls, workdir: Path, namespace: str = rbac.DEFAULT_NAMESPACE, port: int | None = None) -> AggregatedAPI:
        """A serving CA and certificate for ``<SERVICE>.<namespace>.svc`` in ``workdir``; a free port unless
        ``port`` is given."""
        ca = CertificateAuthority.create("mediagen-gateway-api-ca")
        pair = ca.issue_server(SERVICE, [f"{SERVICE}.{namespace}.svc", "localhost"])
        workdir.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = workdir / "gateway-api.crt", workdir / "gateway-api.key"
        cert_file.write_bytes(pair.cert_pem)
        key_file.write_bytes(pair.key_pem)
        key_file.chmod(0o600)
        return cls(namespace, port if port is not None else free_ports(1)[0], ca.cert_pem, cert_file, key_file)

    @property
    def gateway_env(self) -> dict[str, str]:
        """What the gateway process needs to serve the aggregated API too."""
        return {
            "MEDIAGEN_GATEWAY_AGGREGATED_PORT": str(self.port),
            "MEDIAGEN_GATEWAY_AGGREGATED_HOST": "127.0.0.1",
            "MEDIAGEN_GATEWAY_TLS_CERT_FILE": str(self.cert_file),
            "MEDIAGEN_GATEWAY_TLS_KEY_FILE": str(self.key_file),
        }

    def manifests(self) -> list[dict[str, Any]]:
        """The Service (ExternalName: localhost) and the APIService, plus the aggregated API's RBAC."""
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": self.namespace},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        }
        apiservice = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE_NAME},
            "spec": {
                "group": API_GROUP,
                "version": API_VERSION,
                "service": {"namespace": self.namespace, "name": SERVICE, "port": self.port},
                "caBundle": base64.b64encode(self.ca_pem).decode(),
                "groupPriorityMinimum": 1000,
                "versionPriority": 15,
            },
        }
        return [service, apiservice, *rbac.aggregated_manifests(self.namespace)]

    def register(self, plane: ControlPlane, timeout: float = 60.0) -> None:
        """Apply :meth:`manifests` and wait until kube-apiserver reports the APIService Available (the gateway must
        be serving by then: the aggregator checks it)."""
        plane.create_namespace(self.namespace)
        plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(self.manifests()))
        deadline = time.monotonic() + timeout
        while True:
            out = plane.kubectl("get", "apiservice", APISERVICE_NAME, "-o", "json").stdout
            conditions: list[dict[str, Any]] = json.loads(out).get("status", {}).get("conditions", [])
            available: dict[str, Any] = next((c for c in conditions if c.get("type") == "Available"), {})
            if available.get("status") == "True":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"APIService {APISERVICE_NAME} not Available after {timeout:.0f} s: {available}")
            time.sleep(0.2)
