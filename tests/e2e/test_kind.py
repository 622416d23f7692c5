"""End to end on a real cluster: hack/kind-e2e.sh (kind cluster, image built and loaded, the chart in mock mode,
an example to Succeeded). Needs a Docker engine, kind and kubectl; skipped, with the reason, without them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
SCRIPT = ROOT / "hack" / "kind-e2e.sh"


def missing_prerequisite() -> str | None:
    """Why the kind e2e cannot run here, or None when it can."""
    if os.environ.get("MEDIAGEN_E2E_KUBECONFIG"):
        return "already inside an e2e run (its scenarios are these tests' siblings)"
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` timed out: no reachable Docker engine"
    if info.returncode != 0:
        lines = [line for line in (info.stderr or info.stdout).strip().splitlines() if line.strip()]
        return f"no Docker engine: `docker info` failed: {lines[-1] if lines else f'exit {info.returncode}'}"
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH (Docker is available)"
    return None


@pytest.mark.timeout(2400)
def test_kind_end_to_end() -> None:
    reason = missing_prerequisite()
    if reason is not None:
        pytest.skip(reason)
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, check=False, timeout=2300)
    assert result.returncode == 0, f"{SCRIPT.name} failed (its output is above)"
