"""helm for tests: find (or, on first use, build) the pinned helm binary and render the chart.

helm is built from the Go module proxy by hack/build-helm.sh into ``$MEDIAGEN_CACHE/helm-<version>/helm``,
next to the control-plane binaries; ``MEDIAGEN_HELM`` points at another binary instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mediagen_dev.build_scripts import run_build_script
from mediagen_dev.controlplane.assets import cache_dir
from mediagen_dev.paths import REPO_ROOT

# Must match hack/build-helm.sh; a test checks that they do.
HELM_VERSION = "v3.22.0"

BUILD_SCRIPT = REPO_ROOT / "hack" / "build-helm.sh"
CHART = REPO_ROOT / "charts" / "mediagen"


class HelmError(Exception):
    """helm is missing and cannot be built, or a helm command failed; the message says why."""


def cached_helm() -> Path:
    """Where hack/build-helm.sh puts the binary."""
    return cache_dir() / f"helm-{HELM_VERSION}" / "helm"


def find_helm(build: bool = True) -> Path:
    """Return an executable helm: ``$MEDIAGEN_HELM``, the cached build, or (``build=True``) a fresh build.

    The first build takes about a minute and a half on two cores and needs Go >= 1.26.
    """
    configured = os.environ.get("MEDIAGEN_HELM")
    if configured:
        path = Path(configured).expanduser()
        if not os.access(path, os.X_OK):
            raise HelmError(f"MEDIAGEN_HELM={configured} is not an executable file")
        return path
    cached = cached_helm()
    if os.access(cached, os.X_OK):
        return cached
    if not build:
        raise HelmError(f"helm {HELM_VERSION} is not in {cached}; run hack/build-helm.sh (needs Go >= 1.26)")
    bash = shutil.which("bash")
    if bash is None or not BUILD_SCRIPT.is_file():
        raise HelmError(f"helm {HELM_VERSION} is not cached and {BUILD_SCRIPT} cannot run here")
    code, tail = run_build_script(bash, BUILD_SCRIPT)
    if code != 0 or not os.access(cached, os.X_OK):
        output = "\n".join(tail)
        raise HelmError(f"{BUILD_SCRIPT} exited {code} (exit 3: Go is missing)\n--- build output ---\n{output}")
    return cached


@dataclass(frozen=True)
class Helm:
    """A helm binary with its state (repositories, plugins, cache) kept out of the user's home."""

    binary: Path
    home: Path

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run helm; with ``check``, raise :class:`HelmError` (with its stderr) when it fails."""
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        result = subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def template(
        self,
        release: str = "mediagen",
        namespace: str = "mediagen",
        *,
        values: Sequence[Path] = (),
        set_values: Mapping[str, str] = {},
        show_only: Iterable[str] = (),
        include_crds: bool = False,
        chart: Path = CHART,
    ) -> list[dict[str, Any]]:
        """Render the chart and return its objects."""
        args = ["template", release, str(chart), "--namespace", namespace, *value_args(values, set_values)]
        args += [f"--show-only={name}" for name in show_only]
        if include_crds:
            args.append("--include-crds")
        return load_documents(self.run(*args).stdout)

    def lint(
        self, *, values: Sequence[Path] = (), set_values: Mapping[str, str] = {}, chart: Path = CHART
    ) -> subprocess.CompletedProcess[str]:
        """``helm lint --strict`` (warnings fail too); not checked, the caller reads the result."""
        return self.run("lint", "--strict", str(chart), *value_args(values, set_values), check=False)


def value_args(values: Sequence[Path], set_values: Mapping[str, str]) -> list[str]:
    """``--values``/``--set`` arguments."""
    args = [f"--values={path}" for path in values]
    args += [f"--set={key}={value}" for key, value in set_values.items()]
    return args


def load_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream of ``objects`` (for ``kubectl apply -f -``)."""
    return yaml.safe_dump_all(list(objects), sort_keys=False)
