"""The README's two commands on a machine without uv: `make dev` and `make test` install the pinned uv first.

The set-up path runs for real: a PATH holding a fresh virtual environment's python3, make and the system tools
but no uv, an empty cache folder (so hack/uv.sh installs uv from PyPI), and a project environment of its own
(so the checkout's .venv is left alone). Then each command is run with arguments that stop right after its
set-up (`make dev ARGS=--help`, `make test ARGS=--collect-only ...`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mediagen_dev.paths import REPO_ROOT

UV_VERSION = "0.13.8"


def _bare_environment(tmp_path: Path) -> dict[str, str]:
    venv = tmp_path / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    found = shutil.which("uv", path=path)
    assert found is None, f"the bare PATH must have no uv, but {found} is on it"
    assert shutil.which("make", path=path), "make is needed"
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "UV" and not k.startswith(("UV_", "VIRTUAL_ENV", "PYTEST", "MEDIAGEN_"))
    }
    env.update(
        PATH=path,
        MEDIAGEN_CACHE=str(tmp_path / "cache"),
        UV_PROJECT_ENVIRONMENT=str(tmp_path / "project-venv"),
        # The control plane is not started by these set-up paths; keep uv's own package cache (warm is fine:
        # what is checked is that uv itself gets installed).
        UV_CACHE_DIR=os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    )
    return env


def _make(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.timeout(900)
def test_make_dev_and_make_test_install_uv_when_it_is_missing(tmp_path: Path) -> None:
    env = _bare_environment(tmp_path)
    installed = tmp_path / "cache" / f"uv-{UV_VERSION}" / "bin" / "uv"

    dev = _make(env, "dev", "ARGS=--help")
    assert dev.returncode == 0, dev.stdout + dev.stderr
    assert f"uv {UV_VERSION} is not installed: installing it" in dev.stderr
    assert installed.exists()
    assert "usage: python -m mediagen_dev dev" in dev.stdout  # the command itself ran, through that uv

    test = _make(env, "test", "ARGS=--collect-only -q tests/unit/test_input_limits.py")
    assert test.returncode == 0, test.stdout + test.stderr
    assert "is not installed" not in test.stderr, "the second command reuses the uv the first installed"
    assert "tests/unit/test_input_limits.py: " in test.stdout  # pytest ran (-q -q: a count per file)

    version = subprocess.run([str(installed), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith(f"uv {UV_VERSION}")


def test_ci_entry_point_uses_the_same_bootstrap() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    first_uv_use = min(ci.index(word) for word in ("uv sync", "uv run"))
    assert ci.index("hack/uv.sh --which") < first_uv_use
    assert "pip install" not in ci


@pytest.mark.timeout(300)
def test_without_pip_the_wheel_is_fetched_with_the_standard_library(tmp_path: Path) -> None:
    """Debian's python3 without python3-venv has no ensurepip: hack/bootstrap_uv.py is the way then."""
    env = _bare_environment(tmp_path)
    env["MEDIAGEN_UV_BOOTSTRAP"] = "wheel"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "uv.sh"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"uv {UV_VERSION}")
    assert "downloading uv-" in result.stderr
    assert (tmp_path / "cache" / f"uv-{UV_VERSION}" / "bin" / "uvx").exists()
