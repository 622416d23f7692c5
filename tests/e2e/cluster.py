"""A real cluster as the end-to-end scenarios see it: kubectl and helm with one kubeconfig, and the images to use.

``make e2e`` (the local kubelet node) and ``hack/kind-e2e.sh`` (kind) both set ``MEDIAGEN_E2E_*`` and run
``pytest tests/e2e``; without ``MEDIAGEN_E2E_KUBECONFIG`` the scenarios are skipped (``make test`` never needs a
node). Everything goes through the real clients users have: ``kubectl`` and ``helm``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "mediagen"
T = TypeVar("T")


class CommandFailed(AssertionError):
    """A kubectl or helm command exited non-zero (the message has its output)."""


@dataclass(frozen=True)
class E2EConfig:
    """What the runner (hack/e2e.sh or hack/kind-e2e.sh) tells the scenarios."""

    kubeconfig: str
    kubectl: str = "kubectl"
    helm: str = "helm"
    image: str = "localhost/mediagen:e2e"
    tooling_image: str = "localhost/mediagen-tooling:e2e"
    scale: str = "smoke"
    platform: str = "local-node"
    figures_path: str | None = None
    node_timings_path: str | None = None
    image_size_bytes: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> E2EConfig | None:
        """The configuration from ``MEDIAGEN_E2E_*``, or None when no kubeconfig is given."""
        env = dict(os.environ) if env is None else env
        kubeconfig = env.get("MEDIAGEN_E2E_KUBECONFIG", "")
        if not kubeconfig:
            return None
        scale = env.get("MEDIAGEN_E2E_SCALE", "smoke")
        if scale not in ("smoke", "full"):
            raise ValueError(f"MEDIAGEN_E2E_SCALE must be smoke or full, not {scale!r}")
        return cls(
            kubeconfig=kubeconfig,
            kubectl=env.get("MEDIAGEN_E2E_KUBECTL", "kubectl"),
            helm=env.get("MEDIAGEN_E2E_HELM", "helm"),
            image=env.get("MEDIAGEN_E2E_IMAGE", cls.image),
            tooling_image=env.get("MEDIAGEN_E2E_TOOLING_IMAGE", cls.tooling_image),
            scale=scale,
            platform=env.get("MEDIAGEN_E2E_PLATFORM", "local-node"),
            figures_path=env.get("MEDIAGEN_E2E_FIGURES") or None,
            node_timings_path=env.get("MEDIAGEN_E2E_NODE_TIMINGS") or None,
            image_size_bytes=int(env.get("MEDIAGEN_E2E_IMAGE_SIZE_BYTES") or 0),
        )

    @property
    def image_repository(self) -> str:
        """The image's name without its tag."""
        return self.image.rsplit(":", 1)[0]

    @property
    def image_tag(self) -> str:
        """The image's tag."""
        return self.image.rsplit(":", 1)[1]


@dataclass
class Cluster:
    """kubectl and helm against the cluster under test."""

    config: E2EConfig
    figures: dict[str, Any] = field(default_factory=dict)

    def run(self, argv: Sequence[str], *, input: str | None = None, timeout: float = 300, check: bool = True) -> str:
        """Run a client command; its stdout, or :class:`CommandFailed` with both streams."""
        result = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False, env=self._env()
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"$ {shlex.join(argv)}\nexit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = self.config.kubeconfig
        env.setdefault("HELM_CACHE_HOME", "/tmp/mediagen-e2e-helm/cache")
        env.setdefault("HELM_CONFIG_HOME", "/tmp/mediagen-e2e-helm/config")
        env.setdefault("HELM_DATA_HOME", "/tmp/mediagen-e2e-helm/data")
        return env

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 300, check: bool = True) -> str:
        """``kubectl ARGS`` (stdout)."""
        return self.run([self.config.kubectl, *args], input=input, timeout=timeout, check=check)

    def helm(self, *args: str, timeout: float = 600) -> str:
        """``helm ARGS`` (stdout)."""
        return self.run([self.config.helm, *args], timeout=timeout)

    def get(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, manifest: dict[str, Any] | list[dict[str, Any]], namespace: str | None = None) -> None:
        """``kubectl apply`` a manifest (a list becomes a v1 List)."""
        document = {"apiVersion": "v1", "kind": "List", "items": manifest} if isinstance(manifest, list) else manifest
        ns = ["-n", namespace] if namespace else []
        self.kubectl("apply", *ns, "-f", "-", input=json.dumps(document))

    def create(self, manifests: list[dict[str, Any]]) -> None:
        """``kubectl create`` a list of objects (one POST each; apply would read each one first)."""
        document = {"apiVersion": "v1", "kind": "List", "items": manifests}
        self.kubectl("create", "-f", "-", input=json.dumps(document))

    def create_namespace(self, prefix: str, *, restricted: bool = True) -> str:
        """A fresh namespace; with ``restricted``, Pod Security ``restricted`` is enforced there."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        labels = (
            {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }
            if restricted
            else {}
        )
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
        wait_until(lambda: self._has_default_sa(name), 60, f"the default ServiceAccount in {name}")
        return name

    def _has_default_sa(self, namespace: str) -> bool:
        return bool(self.kubectl("get", "sa", "default", "-n", namespace, "--ignore-not-found", "-o", "name"))

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace, first letting go of MediaGenerations whose operator may be gone."""
        for item in self.get("mediagenerations", "-n", name)["items"]:
            if item["metadata"].get("finalizers"):
                self.kubectl(
                    "patch", "mg", item["metadata"]["name"], "-n", name, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False,
                )  # fmt: skip
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")

    def helm_install(self, release: str, namespace: str, *values: str, upgrade: bool = False) -> float:
        """``helm install`` (or upgrade) the chart with the images under test; the seconds ``--wait`` took."""
        started = time.monotonic()
        self.helm(
            "upgrade" if upgrade else "install", release, str(CHART), "--namespace", namespace,
            "--set", f"image.repository={self.config.image_repository}",
            "--set", f"image.tag={self.config.image_tag}",
            "--set", "image.pullPolicy=Never",
            *values, "--wait", "--timeout", "300s",
        )  # fmt: skip
        return time.monotonic() - started

    def remove_release(self, release: str, namespace: str, *tenants: str, delete_timeout: float = 300) -> None:
        """Undo a scenario: its MediaGenerations deleted while the operator runs (when the release is still
        installed; each costs the operator a cancel and a write), the release uninstalled whatever happened
        before (its cluster-wide objects would block the next install), its namespaces deleted (which lets go of
        leftover finalizers)."""
        installed = release in self.run([self.config.helm, "list", "-q", "-n", namespace], check=False).split()
        try:
            if installed:
                for ns in (namespace, *tenants):
                    self.kubectl(
                        "delete", "mediagenerations", "--all", "-n", ns, f"--timeout={int(delete_timeout)}s",
                        timeout=delete_timeout + 60, check=False,
                    )  # fmt: skip
        except subprocess.TimeoutExpired:
            pass  # the namespace deletion below lets go of what is left
        finally:
            if installed:
                self.run([self.config.helm, "uninstall", release, "--namespace", namespace, "--wait"], check=False)
            for ns in (*tenants, namespace):
                self.delete_namespace(ns)

    def pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The pods matching a label selector."""
        items: list[dict[str, Any]] = self.get("pods", "-n", namespace, "-l", selector)["items"]
        return items

    def mg(self, namespace: str, name: str) -> dict[str, Any]:
        """One MediaGeneration."""
        obj: dict[str, Any] = self.get("mediagenerations", name, "-n", namespace)
        return obj

    def wait_phase(self, namespace: str, name: str, phases: Sequence[str], timeout: float = 180) -> dict[str, Any]:
        """Wait until the MediaGeneration reaches one of ``phases``; returns it."""
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.mg(namespace, name))
            return found.get("status", {}).get("phase") in phases

        wait_until(reached, timeout, f"{namespace}/{name} to reach {'/'.join(phases)} (last: {found.get('status')})")
        return found

    def run_pod(self, namespace: str, name: str, command: Sequence[str], *, image: str | None = None) -> str:
        """Run ``command`` in a one-off restricted pod to completion; its output (raises on failure)."""
        image = image or self.config.image
        overrides = {
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": name,
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": list(command),
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            }
        }
        return self.kubectl(
            "run", f"{name}-{uuid.uuid4().hex[:5]}", "-n", namespace, "--rm", "--attach", "--restart=Never",
            "--quiet", f"--image={image}", f"--overrides={json.dumps(overrides)}", "--pod-running-timeout=120s",
        )  # fmt: skip

    def service_get(self, namespace: str, service: str, port: int | str, path: str) -> str:
        """GET ``path`` from a Service through the API server's service proxy."""
        return self.kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}")

    def record(self, **figures: Any) -> None:
        """Keep figures for bench/results.json (written at the end of the session)."""
        self.figures.update(figures)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except CommandFailed:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
