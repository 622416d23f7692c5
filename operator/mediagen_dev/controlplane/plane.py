"""ControlPlane: etcd and kube-apiserver on random loopback ports, with an admin kubeconfig."""

from __future__ import annotations

import atexit
import json
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from mediagen_dev.controlplane.assets import find_assets
from mediagen_dev.controlplane.certs import (
    FRONT_PROXY_CLIENT,
    CertificateAuthority,
    admin_client_cert,
    service_account_signing_key,
)
from mediagen_dev.controlplane.errors import ControlPlaneError
from mediagen_dev.controlplane.kubeconfig import write_kubeconfig
from mediagen_dev.controlplane.kubectl import KubectlMixin
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.controlplane.process import ServerProcess

_POLL_INTERVAL = 0.1  # seconds, as envtest
_START_ATTEMPTS = 3  # a freshly picked port can be taken by someone else before the server binds it


# Writes to MediaGenerations, at Metadata level: who changed which object, through which subresource; and every
# request to the gateway's aggregated API (who asked the shim for what).
_AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete"]
  resources:
  - group: "mediagen.fleek.xyz"
    resources: ["mediagenerations", "mediagenerations/status"]
- level: Metadata
  resources:
  - group: "gateway.mediagen.fleek.xyz"
- level: None
"""


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane."""

    etcd_client: int
    etcd_peer: int
    apiserver: int


class _PortTaken(ControlPlaneError):
    """A server exited at startup because its port was taken in the meantime: retry on new ports."""


class ControlPlane(KubectlMixin):
    """A throw-away etcd + kube-apiserver on 127.0.0.1, for tests and local development.

    ``start()`` picks free ports, writes the PKI into a work dir (a new temp dir unless one is
    given), starts etcd and kube-apiserver (each in its own process group, logging to
    ``<workdir>/logs``), waits for etcd ``/health`` and the apiserver's ``/readyz``, and writes
    an admin kubeconfig (CN=admin, O=system:masters; TLS verified against the apiserver's
    self-signed ``apiserver.crt``). ``stop()`` (also run at interpreter exit) terminates both
    and removes the temp work dir. Use it as a context manager::

        with ControlPlane() as plane:
            plane.kubectl("get", "ns")

    There is no controller-manager: no garbage collection, no default ServiceAccount, and
    deleted namespaces stay Terminating (use a fresh namespace per test).
    """

    def __init__(
        self,
        *,
        workdir: Path | None = None,
        assets: Path | None = None,
        grace_period: float = 10.0,
        keep_workdir: bool = False,
        audit: bool = False,
    ) -> None:
        """Configure the plane; nothing runs until :meth:`start`.

        Args:
            workdir: where certs, etcd data, logs and kubeconfigs go; kept after stop. If None, a
                temp dir is created on start and removed on stop (unless ``keep_workdir``).
            assets: folder with etcd, kube-apiserver and kubectl; default :func:`find_assets`,
                which may build them (minutes, first run only).
            grace_period: seconds between SIGTERM and SIGKILL when stopping a server.
            keep_workdir: keep a temp work dir after stop (to read the logs).
            audit: record every write to MediaGenerations in an audit log (see :meth:`audit_events`):
                how tests and benchmarks count API-server writes per generation.
        """
        self._audit = audit
        self._workdir = workdir
        self._own_workdir = workdir is None
        self._keep_workdir = keep_workdir
        self._assets = assets
        self._grace_period = grace_period
        self._ports: Ports | None = None
        self._etcd: ServerProcess | None = None
        self._apiserver: ServerProcess | None = None
        self._client_ca: CertificateAuthority | None = None
        self.start_seconds: float | None = None
        """Wall time the last :meth:`start` took, including a build of missing binaries."""
        self.stop_seconds: float | None = None
        """Wall time the last :meth:`stop` took."""

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> ControlPlane:
        """Start etcd and kube-apiserver and wait until the apiserver is ready; return self.

        Raises:
            ControlPlaneError: binaries missing, a server exited, or not ready within
                ``timeout`` seconds (a first build of the binaries does not count); the message
                carries the servers' log tails.
        """
        if self.running:
            raise ControlPlaneError("the control plane is already running")
        began = time.monotonic()
        if self._assets is None:
            self._assets = find_assets()
        deadline = time.monotonic() + timeout
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="mediagen-cp-"))
        self._write_pki()
        atexit.register(self.stop)
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._start_servers(deadline)
                    break
                except _PortTaken:
                    self._stop_servers()
                    shutil.rmtree(self._etcd_data_dir, ignore_errors=True)
                    if attempt == _START_ATTEMPTS:
                        raise
            self._write_admin_kubeconfig()
        except BaseException:
            self.stop()  # the error message already carries the log tails
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd; remove the temp work dir. Safe to call twice."""
        began = time.monotonic()
        atexit.unregister(self.stop)
        self._stop_servers()
        if self._own_workdir and not self._keep_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self.stop_seconds = time.monotonic() - began

    def _stop_servers(self) -> None:
        for server in (self._apiserver, self._etcd):
            if server is not None:
                server.stop(self._grace_period)

    def __enter__(self) -> ControlPlane:
        """Start the plane (unless already running)."""
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the plane."""
        self.stop()

    def restart_apiserver(self, timeout: float = 60, downtime: float = 0.0, graceful: bool = True) -> None:
        """Stop kube-apiserver, wait ``downtime`` seconds, start it on the same port, wait for /readyz.

        ``graceful=False`` SIGKILLs it instead, like a crash. etcd data, certificates and
        kubeconfigs stay valid. Call it from the main thread where possible (see ServerProcess).
        """
        apiserver, _ = self._servers()
        self._halt(apiserver, graceful)
        time.sleep(downtime)
        apiserver.start()
        self._wait(self._apiserver_ready, time.monotonic() + timeout, "kube-apiserver /readyz")

    def restart_etcd(self, timeout: float = 60, downtime: float = 0.0, graceful: bool = True) -> None:
        """Stop etcd, wait ``downtime`` seconds, start it again on the same ports and data dir.

        A graceful stop takes etcd ~7 s while the apiserver holds watches open (it drains them);
        ``graceful=False`` SIGKILLs it, like a crash, which loses nothing here: etcd has written
        every acknowledged write to its WAL (only the fsync is skipped). Returns once etcd is
        healthy and the apiserver, which reconnects by itself, is ready again.
        """
        _, etcd = self._servers()
        self._halt(etcd, graceful)
        time.sleep(downtime)
        etcd.start()
        deadline = time.monotonic() + timeout
        self._wait(self._etcd_healthy, deadline, "etcd /health")
        self._wait(self._apiserver_ready, deadline, "kube-apiserver /readyz")

    def _halt(self, server: ServerProcess, graceful: bool) -> None:
        if graceful:
            server.stop(self._grace_period)
        else:
            server.kill()

    # ---- properties ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether both servers are alive."""
        return all(s is not None and s.running for s in (self._etcd, self._apiserver))

    @property
    def workdir(self) -> Path:
        """The work dir (certs, etcd data, logs, kubeconfigs)."""
        if self._workdir is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._workdir

    @property
    def assets(self) -> Path:
        """The folder holding etcd, kube-apiserver and kubectl."""
        if self._assets is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._assets

    @property
    def ports(self) -> Ports:
        """The loopback ports in use."""
        if self._ports is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._ports

    @property
    def pids(self) -> dict[str, int]:
        """Process ids of the servers that were started, by name (``etcd``, ``kube-apiserver``)."""
        return {s.name: s.pid for s in (self._etcd, self._apiserver) if s is not None and s.pid is not None}

    @property
    def server(self) -> str:
        """The apiserver URL, ``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        """etcd's client URL."""
        return f"http://127.0.0.1:{self.ports.etcd_client}"

    @property
    def ca_file(self) -> Path:
        """CA bundle clients verify the apiserver with (its self-signed cert followed by its CA)."""
        return self.workdir / "apiserver-certs" / "apiserver.crt"

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig; it embeds its certificates."""
        return self.workdir / "kubeconfig"

    @property
    def _pki(self) -> Path:
        return self.workdir / "pki"

    @property
    def front_proxy_ca_file(self) -> Path:
        """The CA of kube-apiserver's proxy client certificate (``--requestheader-client-ca-file``): what an
        aggregated API server verifies the proxy with, also published in kube-system's
        ``extension-apiserver-authentication`` ConfigMap."""
        return self._pki / "front-proxy-ca.crt"

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = (), path: Path | None = None) -> Path:
        """Write a kubeconfig for ``user`` (in ``groups``), authenticated by a client certificate, and return its
        path. The user has no permissions beyond the bootstrap discovery roles until RBAC grants them."""
        if self._client_ca is None:
            raise ControlPlaneError("the control plane has not been started")
        pair = self._client_ca.issue_client(user, groups)
        return write_kubeconfig(
            path or self.workdir / "kubeconfigs" / f"user.{user}",
            server=self.server,
            ca_pem=self.ca_file.read_bytes(),
            user=user,
            client_cert_pem=pair.cert_pem,
            client_key_pem=pair.key_pem,
        )

    @property
    def _etcd_data_dir(self) -> Path:
        return self.workdir / "etcd-data"

    @property
    def audit_log(self) -> Path:
        """Where the audit log goes when auditing is on."""
        return self.workdir / "logs" / "audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audited write so far (one dict per request, as the API server logged it)."""
        if not self._audit or not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    def logs_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of each server's log, under a header naming the log file."""
        parts = []
        for server in (self._etcd, self._apiserver):
            if server is not None:
                parts.append(f"----- {server.name} ({server.log_path}) -----\n{server.tail(lines)}")
        return "\n".join(parts) or "(the control plane has not been started)"

    # ---- internals -------------------------------------------------------------------------

    def _servers(self) -> tuple[ServerProcess, ServerProcess]:
        if self._apiserver is None or self._etcd is None:
            raise ControlPlaneError("the control plane has not been started")
        return self._apiserver, self._etcd

    def _write_pki(self) -> None:
        self._pki.mkdir(parents=True, exist_ok=True)
        ca = self._client_ca = CertificateAuthority.create()
        admin = admin_client_cert(ca)
        signer = service_account_signing_key()
        # The aggregation layer: kube-apiserver proxies to aggregated APIs with this client certificate, from a
        # CA of its own (a client certificate of the client CA would let anyone it issued for pose as the proxy).
        front_proxy_ca = CertificateAuthority.create("mediagen-front-proxy-ca")
        front_proxy = front_proxy_ca.issue_client(FRONT_PROXY_CLIENT)
        for name, data in {
            "client-ca.crt": ca.cert_pem,
            "admin.crt": admin.cert_pem,
            "admin.key": admin.key_pem,
            "sa-signer.key": signer.private_pem,
            "sa-signer.pub": signer.public_pem,
            "front-proxy-ca.crt": front_proxy_ca.cert_pem,
            "front-proxy-client.crt": front_proxy.cert_pem,
            "front-proxy-client.key": front_proxy.key_pem,
        }.items():
            path = self._pki / name
            path.write_bytes(data)
            path.chmod(0o600)

    def _start_servers(self, deadline: float) -> None:
        self._ports = Ports(*free_ports(3))
        logs = self.workdir / "logs"
        self._etcd = ServerProcess("etcd", self._etcd_argv(), logs / "etcd.log")
        self._apiserver = ServerProcess("kube-apiserver", self._apiserver_argv(), logs / "kube-apiserver.log")
        self._etcd.start()
        self._wait(self._etcd_healthy, deadline, "etcd /health")
        self._apiserver.start()
        self._wait(self._apiserver_ready, deadline, "kube-apiserver /readyz")

    def _etcd_argv(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports.etcd_client}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            str(self.assets / "etcd"),
            "--name=mediagen",
            f"--data-dir={self._etcd_data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            # Explicit, so side-by-side planes do not all advertise the default localhost:2380.
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=mediagen={peer}",
            # Test data only: skipping fsync makes every apiserver write much faster.
            "--unsafe-no-fsync=true",
        ]

    def _apiserver_argv(self) -> list[str]:
        port = self.ports.apiserver
        return [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            f"--cert-dir={self.ca_file.parent}",
            f"--secure-port={port}",
            # Also becomes the advertise address, so no default route is needed.
            "--bind-address=127.0.0.1",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            # No controller-manager creates `default` ServiceAccounts; the plugin would reject pods.
            "--disable-admission-plugins=ServiceAccount",
            "--authorization-mode=RBAC",
            f"--client-ca-file={self._pki / 'client-ca.crt'}",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={self._pki / 'sa-signer.pub'}",
            f"--service-account-signing-key-file={self._pki / 'sa-signer.key'}",
            # A loopback address is invalid in Endpoints; the reconciler would only log errors.
            "--endpoint-reconciler-type=none",
            *self._aggregation_flags(),
            *self._audit_flags(),
        ]

    def _aggregation_flags(self) -> list[str]:
        """The aggregation layer on: who the proxy is, and the headers that carry the caller to aggregated APIs.

        Aggregated APIs are reached through their Service's address, never its endpoints
        (``--enable-aggregator-routing=false``, the default, spelled out): an ExternalName Service naming
        ``localhost`` is resolved to that name, which is how an aggregated API on this machine is registered."""
        return [
            f"--requestheader-client-ca-file={self.front_proxy_ca_file}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-uid-headers=X-Remote-Uid",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self._pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={self._pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=false",
        ]

    def _audit_flags(self) -> list[str]:
        if not self._audit:
            return []
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(_AUDIT_POLICY)
        return [f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-format=json"]

    def _write_admin_kubeconfig(self) -> None:
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_pem=self.ca_file.read_bytes(),
            user="admin",
            client_cert_pem=(self._pki / "admin.crt").read_bytes(),
            client_key_pem=(self._pki / "admin.key").read_bytes(),
        )

    def _etcd_healthy(self) -> bool:
        response = httpx.get(f"{self.etcd_url}/health", timeout=2, trust_env=False)
        return response.status_code == 200 and response.json().get("health") == "true"

    def _apiserver_ready(self) -> bool:
        if not self.ca_file.exists():
            return False  # kube-apiserver writes its self-signed cert as it starts
        context = ssl.create_default_context(cafile=str(self.ca_file))
        # As admin: anonymous /readyz may be 403 until the RBAC bootstrap roles exist.
        context.load_cert_chain(self._pki / "admin.crt", self._pki / "admin.key")
        response = httpx.get(f"{self.server}/readyz", verify=context, timeout=2, trust_env=False)
        return response.status_code == 200

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        """Poll ``ready`` until it returns True; fail early when a server has exited."""
        last_error = ""
        while True:
            for server in (self._etcd, self._apiserver):
                if server is not None and server.pid is not None and not server.running:
                    log = server.tail(80)
                    error = _PortTaken if "address already in use" in log else ControlPlaneError
                    raise error(
                        f"{server.name} exited with status {server.returncode} while waiting for {what}\n"
                        f"{self.logs_tail()}"
                    )
            try:
                if ready():
                    return
                last_error = ""
            except (httpx.HTTPError, ssl.SSLError, OSError, ValueError) as exc:
                last_error = f" (last error: {exc!r})"
            if time.monotonic() >= deadline:
                raise ControlPlaneError(f"timed out waiting for {what}{last_error}\n{self.logs_tail()}")
            time.sleep(_POLL_INTERVAL)
