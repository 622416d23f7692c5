"""The real tools GitOps users and Prometheus judge mediagen with, for tests: kstatus, Argo CD's health code and
promtool.

hack/build-checks.sh builds all three from the Go tools module hack/tools/checks (one ``go build``) into
``$MEDIAGEN_CACHE/checks-<hash>/`` and prints that folder; a cached build needs no Go. ``MEDIAGEN_CHECKS`` points
at another folder holding the three binaries instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediagen_dev.build_scripts import run_build_script
from mediagen_dev.paths import HACK_DIR

BUILD_SCRIPT = HACK_DIR / "build-checks.sh"
BINARIES = ("kstatus", "argocd-health", "promtool")


class ChecksError(Exception):
    """A tool is missing and cannot be built, or it refused its input; the message says why."""


def _missing(folder: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(folder / name, os.X_OK)]


def find_checks() -> Path:
    """The folder holding ``kstatus``, ``argocd-health`` and ``promtool``: ``$MEDIAGEN_CHECKS``, or what
    hack/build-checks.sh prints (it builds them first when they are not cached: minutes, and Go >= 1.26)."""
    configured = os.environ.get("MEDIAGEN_CHECKS")
    if configured:
        folder = Path(configured).expanduser()
        if missing := _missing(folder):
            raise ChecksError(f"MEDIAGEN_CHECKS={configured} lacks executable {', '.join(missing)}")
        return folder
    bash = shutil.which("bash")
    if bash is None or not BUILD_SCRIPT.is_file():
        raise ChecksError(f"{BUILD_SCRIPT} cannot run here (bash or the script is missing)")
    # Run every time (it hashes the module to name the folder), so only a build's progress is worth relaying.
    code, tail = run_build_script(bash, BUILD_SCRIPT, relay=lambda line: not line.startswith("/"))
    output = "\n".join(tail)
    if code != 0:
        raise ChecksError(f"{BUILD_SCRIPT} exited {code} (exit 3: Go is missing)\n--- build output ---\n{output}")
    folder = Path(tail[-1]) if tail else Path()
    if missing := _missing(folder):
        raise ChecksError(f"{BUILD_SCRIPT} succeeded but {folder} lacks {', '.join(missing)}\n{output}")
    return folder


@dataclass(frozen=True)
class Checks:
    """The three tools in ``folder``."""

    folder: Path

    def _judge(self, tool: str, args: Sequence[str], objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        result = subprocess.run(
            [str(self.folder / tool), *args], input=items, capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode not in (0, 1):  # 1: the tool computed an error for some object (reported per object)
            raise ChecksError(f"{tool} {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        answers: list[dict[str, Any]] = json.loads(result.stdout)
        return answers

    def kstatus(self, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """What kstatus computes for each object: ``status`` (InProgress, Current, Failed...) and ``message``."""
        return self._judge("kstatus", [], objects)

    def argocd_bundled(self, folder: Path, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Argo CD's health of each object with ``folder`` as a resource_customizations folder (bundled scripts)."""
        return self._judge("argocd-health", ["--resource-customizations", str(folder)], objects)

    def argocd_configmap(self, argocd_cm: Path, objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Argo CD's health of each object with the customizations of the live ``argocd-cm`` ConfigMap in a file."""
        return self._judge("argocd-health", ["--argocd-cm", str(argocd_cm)], objects)

    def promtool(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run promtool (not checked: the caller reads the result)."""
        return subprocess.run(
            [str(self.folder / "promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
        )
