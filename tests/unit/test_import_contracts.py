"""The import contracts in pyproject.toml hold, and they would catch a product module importing the tooling.

`lint-imports` runs in `make lint` and .ci/run; this test shows the contracts are not vacuous: the same check on a
copy of the source tree in which one product module imports the tooling fails, naming the contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from mediagen_dev.paths import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_contracts_hold() -> None:
    result = lint_imports(REPO_ROOT / "operator", REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_product_module_importing_the_tooling_breaks_a_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "operator", tmp_path / "operator", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    victim = tmp_path / "operator" / "mediagen" / "api" / "types.py"
    victim.write_text(victim.read_text() + "\nimport mediagen_dev.paths  # noqa: E402\n")

    result = lint_imports(tmp_path / "operator", tmp_path)

    assert result.returncode != 0
    assert "The product never imports the tooling BROKEN" in result.stdout
    assert "mediagen.api.types -> mediagen_dev.paths" in result.stdout
