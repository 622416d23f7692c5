"""The MediaGeneration API on the real API server, driven with kubectl as a user would."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import yaml

from mediagen.api import admission_policy, crd
from mediagen.api.types import Phase, StoredOutput
from mediagen.generators.base import Prediction
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.state import Memory, View
from mediagen_dev import generated
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT


def manifest(name: str, spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mediagen.fleek.xyz/v1alpha1",
        "kind": "MediaGeneration",
        "metadata": {"name": name, **meta},
        "spec": {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a cat"}} if spec is None else spec,
    }


def apply(plane: ControlPlane, ns: str, obj: dict[str, Any], *extra: str) -> Any:
    return plane.kubectl("apply", "-n", ns, *extra, "-f", "-", input=json.dumps(obj), check=False)


def test_every_committed_copy_of_the_crd_and_policy_matches_the_models() -> None:
    assert (ROOT / "crds" / crd.CRD_FILENAME).read_text() == crd.crd_yaml(), "run: make crd"
    assert (ROOT / "crds" / admission_policy.POLICY_FILENAME).read_text() == admission_policy.policy_yaml()
    copies = generated.expected_files()
    assert len(copies) == 6, "crds/, the chart and the kustomize base each hold both"
    assert generated.stale_files() == [], "run: make crd"


def test_examples_apply_and_list_with_printer_columns(control_plane: ControlPlane, namespace: str, api: None) -> None:
    result = control_plane.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples"))
    assert result.stdout.count("created") == len(list((ROOT / "examples").glob("*.yaml")))
    table = control_plane.kubectl("get", "mg", "-n", namespace).stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "MODEL", "PROGRESS", "AGE"]
    assert "black-forest-labs/flux-schnell" in table
    wide = control_plane.kubectl("get", "mgen", "-n", namespace, "-o", "wide").stdout
    assert "DEPLOYMENT" in wide and "acme/brand-sdxl" in wide
    assert wide.split("\n")[0].split()[-2:] == ["REASON", "URL"]
    by_category = control_plane.kubectl("get", "mediagen", "-n", namespace, "-o", "name").stdout
    assert "mediageneration.mediagen.fleek.xyz/surf-video" in by_category


def test_defaults_are_filled_in_by_the_api_server(control_plane: ControlPlane, namespace: str, api: None) -> None:
    apply(control_plane, namespace, manifest("defaults"))
    spec = json.loads(control_plane.kubectl("get", "mg", "defaults", "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["retry"] == {"limit": 3, "backoffSeconds": 5, "maxBackoffSeconds": 300}
    assert spec["output"] == {"keyPrefix": "", "deletionPolicy": "Retain"}
    assert spec["timeoutSeconds"] == 3600 and spec["cancel"] is False


def test_kubectl_explain_reads_the_field_docs(control_plane: ControlPlane, api: None) -> None:
    text = control_plane.kubectl("explain", "mediagenerations.spec.input").stdout
    assert "The model's input, passed to Replicate as is" in text
    assert "ttlSecondsAfterFinished" in control_plane.kubectl("explain", "mg.spec").stdout
    assert "kubectl wait" in control_plane.kubectl("explain", "mg.status.conditions").stdout


BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("no-model", {"input": {"prompt": "x"}}, "exactly one of spec.model or spec.deployment"),
    ("both", {"model": "a/b", "deployment": "c/d"}, "exactly one of spec.model or spec.deployment"),
    ("bad-ref", {"model": "just-a-name"}, "spec.model"),
    ("bad-ref-2", {"model": "owner/name:ver:extra"}, "spec.model"),
    ("bad-deployment", {"deployment": "a/b:v1"}, "spec.deployment"),
    ("negative-retry", {"model": "a/b", "retry": {"limit": -1}}, "spec.retry.limit"),
    ("retry-too-many", {"model": "a/b", "retry": {"limit": 11}}, "spec.retry.limit"),
    ("backoff-order", {"model": "a/b", "retry": {"backoffSeconds": 60, "maxBackoffSeconds": 10}}, "maxBackoffSeconds"),
    ("timeout-low", {"model": "a/b", "timeoutSeconds": 1}, "spec.timeoutSeconds"),
    ("timeout-high", {"model": "a/b", "timeoutSeconds": 100000}, "spec.timeoutSeconds"),
    ("wrong-type", {"model": "a/b", "timeoutSeconds": "soon"}, "spec.timeoutSeconds"),
    ("input-not-object", {"model": "a/b", "input": "prompt=x"}, "spec.input"),
    ("ttl-negative", {"model": "a/b", "ttlSecondsAfterFinished": -5}, "spec.ttlSecondsAfterFinished"),
    ("bad-policy", {"model": "a/b", "output": {"deletionPolicy": "Shred"}}, "spec.output.deletionPolicy"),
    ("bad-prefix", {"model": "a/b", "output": {"keyPrefix": "a b?"}}, "spec.output.keyPrefix"),
    ("oversized-input", {"model": "a/b", "input": {"prompt": "x" * 20000}}, "spec.input.prompt"),
    ("nested-input", {"model": "a/b", "input": {"prompt": "x", "extra": {"a": 1}}}, "spec.input.extra"),
    ("too-many-keys", {"model": "a/b", "input": {f"k{i}": i for i in range(65)}}, "spec.input"),
]


@pytest.mark.parametrize(("name", "spec", "field"), BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_invalid_specs_are_rejected_at_apply_naming_the_field(
    control_plane: ControlPlane, namespace: str, api: None, name: str, spec: dict[str, Any], field: str
) -> None:
    result = apply(control_plane, namespace, manifest(name, spec))
    assert result.returncode != 0, result.stdout
    assert field in result.stderr
    assert control_plane.kubectl("get", "mg", "-n", namespace, "-o", "name").stdout == ""  # nothing was stored


def test_unknown_fields_are_rejected_under_strict_validation(
    control_plane: ControlPlane, namespace: str, api: None
) -> None:
    obj = manifest("unknown", {"model": "a/b", "modle": "typo"})
    result = apply(control_plane, namespace, obj, "--validate=strict")
    assert result.returncode != 0 and 'unknown field "spec.modle"' in result.stderr


@pytest.mark.parametrize("name", ["UpperCase", "x" * 64, "under_score"])
def test_invalid_names_are_rejected(control_plane: ControlPlane, namespace: str, api: None, name: str) -> None:
    result = apply(control_plane, namespace, manifest(name))
    assert result.returncode != 0 and ("metadata.name" in result.stderr or "name" in result.stderr.lower())


EDITS: list[tuple[str, dict[str, Any]]] = [
    ("prompt", {"input": {"prompt": "a dog"}}),
    ("model", {"model": "other/model"}),
    ("model-to-deployment", {"model": None, "deployment": "acme/brand-sdxl"}),
    ("key-prefix", {"output": {"keyPrefix": "campaigns/summer", "deletionPolicy": "Retain"}}),
    ("timeout", {"timeoutSeconds": 60}),
    ("retry", {"retry": {"limit": 1}}),
    ("ttl", {"ttlSecondsAfterFinished": 5}),
    ("cancel-and-back", {"cancel": True}),
]


@pytest.mark.parametrize(("what", "change"), EDITS, ids=[e[0] for e in EDITS])
def test_every_spec_field_may_be_edited_and_each_edit_is_a_new_generation(
    control_plane: ControlPlane, namespace: str, api: None, what: str, change: dict[str, Any]
) -> None:
    """A GitOps apply of an edited manifest is never refused (the operator turns an edit of the request into a new
    generation); the API server still checks the edited spec like a new one."""
    obj = manifest(f"edit-{what}")
    assert apply(control_plane, namespace, obj).returncode == 0
    obj["spec"] = {k: v for k, v in {**obj["spec"], **change}.items() if v is not None}
    result = apply(control_plane, namespace, obj)
    assert result.returncode == 0, result.stderr
    if what == "cancel-and-back":
        obj["spec"]["cancel"] = False  # spec.cancel holds for a generation; it may be taken back
        assert apply(control_plane, namespace, obj).returncode == 0
    body = json.loads(control_plane.kubectl("get", "mg", obj["metadata"]["name"], "-n", namespace, "-o", "json").stdout)
    assert body["metadata"]["generation"] == (3 if what == "cancel-and-back" else 2)
    assert {k: body["spec"][k] for k in obj["spec"] if k not in ("output", "retry")} == {
        k: v for k, v in obj["spec"].items() if k not in ("output", "retry")
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deployment": "acme/brand-sdxl"}, "exactly one of spec.model or spec.deployment"),
        ({"model": None}, "exactly one of spec.model or spec.deployment"),
        ({"retry": {"backoffSeconds": 60, "maxBackoffSeconds": 10}}, "maxBackoffSeconds"),
        ({"input": {"prompt": "x" * 20000}}, "spec.input.prompt"),
    ],
    ids=["both", "neither", "backoff-order", "oversized-input"],
)
def test_an_edit_is_validated_like_a_new_spec_and_a_refused_one_changes_nothing(
    control_plane: ControlPlane, namespace: str, api: None, change: dict[str, Any], field: str
) -> None:
    obj = manifest("checked")
    assert apply(control_plane, namespace, obj).returncode == 0
    edited = {**obj, "spec": {k: v for k, v in {**obj["spec"], **change}.items() if v is not None}}
    result = apply(control_plane, namespace, edited)
    assert result.returncode != 0 and field in result.stderr, result.stderr
    body = json.loads(control_plane.kubectl("get", "mg", "checked", "-n", namespace, "-o", "json").stdout)
    assert body["metadata"]["generation"] == 1 and body["spec"]["input"] == {"prompt": "a cat"}


def _raw_status_patch(plane: ControlPlane, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    out = plane.kubectl(
        "patch", "mg", name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(patch), "-o", "json"
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def test_everything_the_operator_writes_survives_the_schema(
    control_plane: ControlPlane, namespace: str, api: None
) -> None:
    apply(control_plane, namespace, manifest("full-status"))
    body = json.loads(control_plane.kubectl("get", "mg", "full-status", "-n", namespace, "-o", "json").stdout)
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    p = Prediction(
        id="p1", status="succeeded", created_at=now, started_at=now, completed_at=now, predict_time_seconds=1.5
    )
    view = View.from_body(body)
    outputs = [
        StoredOutput(url="https://cdn/x.png", key="k/x.png", content_type="image/png", size_bytes=3, sha256="ab")
    ]
    memory = Memory(prediction=p, prediction_attempt=2, outputs=outputs, url_expires_at=now)
    writes = [
        patches.record_patch(view, p, 2, now),
        patches.progress_patch(view, Phase.UPLOADING, 50, p, now),
        patches.finish_patch(view, memory, Phase.SUCCEEDED, "Succeeded", "stored 1 output", now),
    ]
    for patch in writes:
        stored = _raw_status_patch(control_plane, namespace, "full-status", patch)["status"]
        for key, value in patch["status"].items():
            assert stored[key] == value, key  # pruning would drop undeclared keys silently


def test_status_subresource_persists_status_but_not_spec(
    control_plane: ControlPlane, namespace: str, api: None
) -> None:
    apply(control_plane, namespace, manifest("sub"))
    patch = {"spec": {"model": "evil/change"}, "status": {"phase": "Running", "undeclared": "dropped"}}
    stored = _raw_status_patch(control_plane, namespace, "sub", patch)
    assert stored["status"]["phase"] == "Running"
    assert "undeclared" not in stored["status"]
    assert stored["spec"]["model"] == "black-forest-labs/flux-schnell"
    # ...and a status written through the main resource is ignored.
    control_plane.kubectl("patch", "mg", "sub", "-n", namespace, "--type=merge", "-p", '{"status":{"phase":"Failed"}}')
    phase = control_plane.kubectl("get", "mg", "sub", "-n", namespace, "-o", "jsonpath={.status.phase}").stdout
    assert phase == "Running"


def test_status_rejects_an_unknown_phase(control_plane: ControlPlane, namespace: str, api: None) -> None:
    apply(control_plane, namespace, manifest("phase"))
    result = control_plane.kubectl(
        "patch", "mg", "phase", "-n", namespace, "--subresource=status", "--type=merge", "-p",
        '{"status":{"phase":"Exploded"}}', check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "status.phase" in result.stderr


def test_crd_yaml_is_a_valid_structural_schema_document() -> None:
    doc = yaml.safe_load(crd.crd_yaml())
    schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(node: dict[str, Any], path: str) -> None:
        assert "$ref" not in node and "anyOf" not in node, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return
        assert "type" in node, path
        assert "description" in node or path.endswith("[]"), f"{path} has no description (kubectl explain)"
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(schema["properties"]["spec"], "spec")
    walk(schema["properties"]["status"], "status")
