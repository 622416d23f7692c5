"""The Argo CD health check (Lua) gives the right health for every phase, in Lua 5.1 (Argo CD's gopher-lua
speaks 5.1) and in a current Lua; the ConfigMap snippet carries the same script."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediagen.api.types import Phase
from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
CHECK = ROOT / "observability" / "argocd" / "mediagen.fleek.xyz" / "MediaGeneration"
SCRIPT = (CHECK / "health.lua").read_text()
CASES = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]
RUNTIMES = ["lupa.lua51", "lupa.lua54"]


def health(runtime: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run the check the way Argo CD does: the object as the global ``obj``, the chunk returns the health."""
    lua = importlib.import_module(runtime).LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return dict(result.items())


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_of_each_phase(runtime: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK / case["inputPath"]).read_text())
    assert health(runtime, obj) == case["healthStatus"]


def test_every_phase_has_a_case() -> None:
    phases = {yaml.safe_load((CHECK / c["inputPath"]).read_text()).get("status", {}).get("phase") for c in CASES}
    assert {phase.value for phase in Phase} <= phases
    statuses = {c["healthStatus"]["status"] for c in CASES}
    assert statuses == {"Progressing", "Healthy", "Degraded", "Suspended", "Unknown"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_float_numbers_from_json_print_as_integers(runtime: str) -> None:
    """gopher-lua hands JSON numbers over as floats: 42.0 must still read "42%"."""
    obj = {"status": {"phase": "Running", "progress": 42.0, "retries": 2.0, "message": "m"}}
    assert health(runtime, obj) == {"status": "Progressing", "message": "Running 42% (retry 2): m"}


def test_the_configmap_snippet_carries_the_same_script() -> None:
    snippet = yaml.safe_load((ROOT / "observability" / "argocd" / "argocd-cm.yaml").read_text())
    assert snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"] == {"resource.customizations.health.mediagen.fleek.xyz_MediaGeneration": SCRIPT}
