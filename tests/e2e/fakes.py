"""The fake Replicate and the S3 server as pods (the tooling image), and the Secrets that point the chart at them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.cluster import Cluster

FAKE_TOKEN = "r8_fake_token"
S3_KEY_ID = "mediagen-e2e"
S3_SECRET = "mediagen-e2e-secret"
WEBHOOK_SECRET = "whsec_" + "ZTJlLXdlYmhvb2stc2lnbmluZy1zZWNyZXQ="
BUCKET = "media"

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _deployment(
    namespace: str, name: str, image: str, args: list[str], port: int, tls_secret: str | None = None
) -> list[dict[str, Any]]:
    labels = {"app": name}
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if tls_secret:
        mounts.append({"name": "tls", "mountPath": "/tls", "readOnly": True})
        volumes.append({"name": "tls", "secret": {"secretName": tls_secret}})
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                        "containers": [
                            {
                                "name": name,
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": args,
                                "env": [{"name": "S3_IGNORE_SUBDOMAIN_BUCKETNAME", "value": "true"}],
                                "ports": [{"name": "http", "containerPort": port}],
                                "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
                                "securityContext": RESTRICTED_CONTAINER,
                                "volumeMounts": mounts,
                            }
                        ],
                        "volumes": volumes,
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": "http"}]},
        },
    ]


@dataclass(frozen=True)
class Fakes:
    """A fake Replicate (``replicate``) and an S3 server (``s3``) running in ``namespace``."""

    cluster: Cluster
    namespace: str
    webhooks: bool

    @property
    def replicate_url(self) -> str:
        """The fake Replicate's base URL inside the cluster."""
        return f"http://replicate.{self.namespace}.svc:8000"

    @property
    def s3_url(self) -> str:
        """The S3 server's endpoint inside the cluster."""
        return f"http://s3.{self.namespace}.svc:9000"

    def webhook_url(self, namespace: str, service: str, port: int) -> str:
        """The HTTPS URL (through the relay, an Ingress stand-in) that reaches a webhook receiver's Service."""
        return f"https://webhook-relay.{self.namespace}.svc:8443/{namespace}/{service}/{port}/replicate-webhook"

    def stats(self) -> dict[str, Any]:
        """What the fake Replicate saw (``GET /_fake/stats`` through the API server's service proxy)."""
        stats: dict[str, Any] = json.loads(self.cluster.service_get(self.namespace, "replicate", 8000, "/_fake/stats"))
        return stats

    def secrets(self, namespace: str) -> None:
        """The Replicate token and S3 keys as the Secrets a user creates (``existingSecret``)."""
        self.cluster.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "replicate", "namespace": namespace},
                    "stringData": {"REPLICATE_API_TOKEN": FAKE_TOKEN},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "storage", "namespace": namespace},
                    "stringData": {"R2_ACCESS_KEY_ID": S3_KEY_ID, "R2_SECRET_ACCESS_KEY": S3_SECRET},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "webhook", "namespace": namespace},
                    "stringData": {"webhook-secret": WEBHOOK_SECRET},
                },
            ]
        )

    def chart_values(self) -> list[str]:
        """helm --set arguments: the operator with existingSecrets pointing at these fakes."""
        return [
            "--set", "replicate.existingSecret=replicate",
            "--set", f"replicate.baseUrl={self.replicate_url}",
            "--set", "r2.existingSecret=storage",
            "--set", f"r2.endpointUrl={self.s3_url}",
            "--set", f"r2.bucket={BUCKET}",
            "--set", "settings.logFormat=text",
            "--set-json", "settings.pollInitialSeconds=0.5",
            "--set", "settings.pollMaxSeconds=2",
        ]  # fmt: skip


def tls_secret(namespace: str, name: str, host: str) -> dict[str, Any]:
    """A Secret with a fresh CA (``ca.crt``) and a serving certificate for ``host`` signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mediagen-e2e-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "stringData": {
            "tls.crt": cert.public_bytes(pem).decode(),
            "tls.key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
            "ca.crt": ca.public_bytes(pem).decode(),
        },
    }


def deploy_fakes(cluster: Cluster, *, webhooks: bool) -> Fakes:
    """Both servers in a fresh restricted namespace, Ready; with ``webhooks`` the fake delivers them, through an
    HTTPS relay (the Ingress stand-in the chart's https-only ``replicate.webhookUrl`` needs)."""
    namespace = cluster.create_namespace("e2e-fakes", restricted=True)
    image = cluster.config.tooling_image
    replicate_args = ["replicate", "--port", "8000", "--public-url", f"http://replicate.{namespace}.svc:8000"]
    manifests: list[dict[str, Any]] = []
    names = ["replicate", "s3"]
    tls = None
    if webhooks:
        tls = "webhook-relay-tls"
        manifests.append(tls_secret(namespace, tls, f"webhook-relay.{namespace}.svc"))
        replicate_args += ["--webhooks", "--webhook-secret", WEBHOOK_SECRET, "--webhook-ca", "/tls/ca.crt"]
        relay_args = ["webhook-relay", "--port", "8443", "--cert", "/tls/tls.crt", "--key", "/tls/tls.key"]
        manifests += _deployment(namespace, "webhook-relay", image, relay_args, 8443, tls)
        names.append("webhook-relay")
    manifests += _deployment(namespace, "replicate", image, replicate_args, 8000, tls)
    manifests += _deployment(namespace, "s3", image, ["s3", "--port", "9000", "--bucket", BUCKET], 9000)
    cluster.apply(manifests)
    for name in names:
        cluster.kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=180s")
    return Fakes(cluster, namespace, webhooks)
