"""kubectl-based helpers of :class:`ControlPlane`: namespaces, manifests, CRDs, ServiceAccount identities."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mediagen_dev.controlplane.errors import ControlPlaneError
from mediagen_dev.controlplane.kubeconfig import write_kubeconfig


class KubectlError(ControlPlaneError):
    """A kubectl command failed; ``result`` holds its exit status and output."""

    def __init__(self, message: str, result: subprocess.CompletedProcess[str]) -> None:
        """Keep the failed command's result for callers that want to inspect it."""
        super().__init__(message)
        self.result = result


class KubectlMixin:
    """Helpers that drive the built kubectl (same minor version as the server) against the plane.

    The system's kubectl may be outside the supported version skew, so it is never used.
    """

    # Provided by ControlPlane.
    @property
    def assets(self) -> Path:
        """The folder holding kubectl."""
        raise NotImplementedError

    @property
    def workdir(self) -> Path:
        """The plane's work dir."""
        raise NotImplementedError

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""
        raise NotImplementedError

    @property
    def server(self) -> str:
        """The apiserver URL."""
        raise NotImplementedError

    @property
    def ca_file(self) -> Path:
        """The apiserver's CA bundle."""
        raise NotImplementedError

    @property
    def kubectl_path(self) -> Path:
        """The kubectl binary matching the server's version."""
        return self.assets / "kubectl"

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        kubeconfig: Path | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl with the admin kubeconfig (or ``kubeconfig``); capture text output.

        Raises:
            KubectlError: with ``check`` (the default), when kubectl exits non-zero; the message
                holds the command line and its stderr.
        """
        argv = [
            str(self.kubectl_path),
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            # A private discovery cache: another plane may have used the same port before.
            f"--cache-dir={self.workdir / 'kube-cache'}",
            *args,
        ]
        try:
            result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ControlPlaneError(f"kubectl {' '.join(args)} timed out after {timeout} s") from exc
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}", result)
        return result

    def _create_if_missing(self, *args: str, input: str | None = None) -> None:
        result = self.kubectl("create", *args, input=input, check=False)
        if result.returncode != 0 and "AlreadyExists" not in result.stderr:
            raise KubectlError(f"kubectl create {' '.join(args)} failed: {result.stderr.strip()}", result)

    def create_namespace(self, name: str) -> None:
        """Create namespace ``name`` unless it exists."""
        self._create_if_missing("namespace", name)

    def apply_file(self, path: Path) -> None:
        """Apply a manifest file (server-side, so large CRDs do not hit the annotation size limit)."""
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=mediagen-controlplane",
            f"--filename={path}",
        )

    def wait_crd_established(self, name: str, timeout: float = 30) -> None:
        """Wait until CustomResourceDefinition ``name`` is Established (its API is served)."""
        self.kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={timeout}s",
            f"customresourcedefinition/{name}",
            timeout=timeout + 15,
        )

    def service_account_kubeconfig(
        self,
        namespace: str,
        name: str,
        path: Path | None = None,
        expiration_seconds: int = 86400,
    ) -> Path:
        """Write a kubeconfig for ServiceAccount ``namespace/name`` and return its path.

        Creates the namespace and the ServiceAccount if missing and gets a token through the
        TokenRequest API, so the identity is ``system:serviceaccount:<namespace>:<name>`` with
        no permissions beyond the bootstrap discovery roles until RBAC grants them. The default
        path is ``<workdir>/kubeconfigs/<namespace>.<name>``.
        """
        self.create_namespace(namespace)
        manifest = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
        self._create_if_missing("--namespace", namespace, "--filename=-", input=json.dumps(manifest))
        token = self.kubectl(
            "create", "token", name, "--namespace", namespace, f"--duration={expiration_seconds}s"
        ).stdout.strip()
        return write_kubeconfig(
            path or self.workdir / "kubeconfigs" / f"{namespace}.{name}",
            server=self.server,
            ca_pem=self.ca_file.read_bytes(),
            user=f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )
