"""The Argo CD health check as Argo CD runs it: every case of health_test.yaml through Argo CD's own code
(gitops-engine's GetResourceHealth and util/lua of Argo CD v3.5.1, in the argocd-health harness), in each way it can
be installed: bundled in Argo CD (all Lua libraries open), and as the argocd-cm customization the README installs,
with and without ``useOpenLibs`` (only the base library, table and a safe os then).

No API server here: tests/integration/test_gitops_health.py judges live MediaGenerations with the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mediagen.api.types import Phase
from mediagen_dev.checks import Checks, ChecksError
from mediagen_dev.paths import REPO_ROOT

CUSTOMIZATIONS = REPO_ROOT / "observability" / "argocd"
CHECK = CUSTOMIZATIONS / "mediagen.fleek.xyz" / "MediaGeneration"
SNIPPET = CUSTOMIZATIONS / "argocd-cm.yaml"
SCRIPT = (CHECK / "health.lua").read_text()
CASES: list[dict[str, Any]] = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]
HEALTH_KEY = "resource.customizations.health.mediagen.fleek.xyz_MediaGeneration"
OPEN_LIBS_KEY = "resource.customizations.useOpenLibs.mediagen.fleek.xyz_MediaGeneration"
# argocd-cm as Argo CD's install manifest creates it: labelled, since Argo CD selects its ConfigMaps by label.
INSTALLED_ARGOCD_CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    },
}
MODES = ["bundled", "argocd-cm", "argocd-cm-open-libs"]


def case_object(case: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((CHECK / case["inputPath"]).read_text())
    return obj


def patched_argocd_cm(path: Path, patch: dict[str, Any], extra: dict[str, str] | None = None) -> Path:
    """The installed argocd-cm with ``patch`` merged in as `kubectl patch --type merge` does (data keys added)."""
    configmap = {**INSTALLED_ARGOCD_CM, "data": {**patch["data"], **(extra or {})}}
    path.write_text(yaml.safe_dump(configmap))
    return path


def health(checks: Checks, mode: str, tmp_path: Path, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Argo CD's verdict on each object with the health check installed in ``mode``."""
    if mode == "bundled":
        return checks.argocd_bundled(CUSTOMIZATIONS, objects)
    snippet = yaml.safe_load(SNIPPET.read_text())
    extra = {OPEN_LIBS_KEY: "true"} if mode == "argocd-cm-open-libs" else None
    return checks.argocd_configmap(patched_argocd_cm(tmp_path / "argocd-cm.yaml", snippet, extra), objects)


@pytest.mark.parametrize("mode", MODES)
def test_every_case_gets_its_health_from_argo_cds_own_code(checks: Checks, tmp_path: Path, mode: str) -> None:
    answers = health(checks, mode, tmp_path, [case_object(case) for case in CASES])
    wrong = [
        (case["inputPath"], answer)
        for case, answer in zip(CASES, answers, strict=True)
        if {"status": answer["status"], "message": answer["message"]} != case["healthStatus"] or "error" in answer
    ]
    assert wrong == [], wrong


def test_the_harness_sees_which_libraries_argo_cd_opens(checks: Checks, tmp_path: Path) -> None:
    """A script calling string.format works bundled and with useOpenLibs, and fails as a plain argocd-cm entry, as
    the first version of our script did: the harness can tell the installations apart."""
    script = 'return {status = "Healthy", message = string.format("%d%%", 42)}'
    folder = tmp_path / "bundled" / "mediagen.fleek.xyz" / "MediaGeneration"
    folder.mkdir(parents=True)
    (folder / "health.lua").write_text(script)
    obj = case_object(CASES[0])
    assert checks.argocd_bundled(tmp_path / "bundled", [obj])[0]["status"] == "Healthy"
    plain = checks.argocd_configmap(patched_argocd_cm(tmp_path / "plain.yaml", {"data": {HEALTH_KEY: script}}), [obj])
    assert plain[0]["status"] == "Unknown"
    assert "attempt to index a non-table object(nil) with key 'format'" in plain[0]["error"]
    opened = patched_argocd_cm(tmp_path / "open.yaml", {"data": {HEALTH_KEY: script}}, {OPEN_LIBS_KEY: "true"})
    answer = checks.argocd_configmap(opened, [obj])[0]
    assert (answer["status"], answer["message"], answer.get("error")) == ("Healthy", "42%", None)


def test_the_cases_cover_every_phase_every_health_and_the_odd_objects() -> None:
    objects = [case_object(case) for case in CASES]
    statuses = [obj.get("status") for obj in objects]
    assert {phase.value for phase in Phase} <= {status.get("phase") for status in statuses if status}
    assert {c["healthStatus"]["status"] for c in CASES} == {
        "Progressing",
        "Healthy",
        "Degraded",
        "Suspended",
        "Unknown",
    }
    assert None in statuses, "an object with no status"
    assert any(status and "phase" not in status for status in statuses), "a status with no phase"
    in_flight = [s for s in statuses if s and s.get("phase") in ("Pending", "Running", "Uploading")]
    assert any("progress" not in s for s in in_flight) and any("progress" in s for s in in_flight)
    assert any(s and s.get("phase") not in {p.value for p in Phase} for s in statuses if s and "phase" in s)
    assert any(o["spec"].get("cancel") and o["status"]["phase"] == "Running" for o in objects if o.get("status"))


def test_the_configmap_snippet_carries_the_same_script_and_needs_no_open_libs() -> None:
    snippet = yaml.safe_load(SNIPPET.read_text())
    assert snippet["metadata"]["name"] == "argocd-cm"
    assert snippet["data"] == {HEALTH_KEY: SCRIPT}
    # Only the base library: string.*, math.* and the like are nil in an argocd-cm customization.
    code = "\n".join(line.split("--", 1)[0] for line in SCRIPT.splitlines())
    for call in ("string.", "math.", "io.", "os.", ":format(", ":sub(", ":find(", ":gsub(", ":match(", ":rep("):
        assert call not in code, call


def test_a_configmap_argo_cd_would_not_see_is_refused(checks: Checks, tmp_path: Path) -> None:
    unlabelled = tmp_path / "argocd-cm.yaml"
    unlabelled.write_text(SNIPPET.read_text())  # the patch file itself: no labels
    with pytest.raises(ChecksError) as refused:
        checks.argocd_configmap(unlabelled, [case_object(CASES[0])])
    assert "lacks the label app.kubernetes.io/part-of=argocd" in str(refused.value)
