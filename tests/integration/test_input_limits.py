"""The API server enforces what issue 13 asked for, with the project's own policy and CRD: the bound on
``spec.input`` as a whole (computed by CEL exactly as :func:`~mediagen.api.input_limits.input_size` computes it),
no generation created canceled, and ``status.phase`` as a selectable field (what the gateway counts with)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediagen.api.input_limits import input_size, input_violation
from mediagen.api.types import MAX_INPUT_TOTAL_BYTES
from mediagen_dev.controlplane import ControlPlane


def manifest(name: str, spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "mediagen.fleek.xyz/v1alpha1",
            "kind": "MediaGeneration",
            "metadata": {"name": name},
            "spec": {"model": "a/b", **spec},
        }
    )


def create(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> tuple[bool, str]:
    result = plane.kubectl("create", "-n", namespace, "-f", "-", input=manifest(name, spec), check=False)
    return result.returncode == 0, result.stderr


def at_the_bound(filler: str, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` padded to exactly MAX_INPUT_TOTAL_BYTES: up to 8,000 ``filler`` characters, then ASCII."""
    value: dict[str, Any] = {**extra, "pad": "", "rest": ""}
    value["pad"] = filler * min(8000, (MAX_INPUT_TOTAL_BYTES - input_size(value)) // len(filler.encode()))
    value["rest"] = "x" * (MAX_INPUT_TOTAL_BYTES - input_size(value))
    assert input_size(value) == MAX_INPUT_TOTAL_BYTES and input_violation(value) is None
    return value


FILL = {f"s{i}": "x" * 16000 for i in range(3)}
BOUNDARIES: list[tuple[str, str, dict[str, Any]]] = [
    ("ascii", "x", FILL),
    ("two-byte", "é", {"a": "é" * 16000, "b": "é" * 8000}),
    ("four-byte", "\U0001f600", {"b": "\U0001f600" * 4000, "c": "ü" * 16000}),
    (
        "scalars-and-lists",
        "x",
        {**FILL, "n": 1, "f": -2.2250738585072014e-308, "t": True, "z": None, "l": ["ab", 1, False, "ü"] * 16},
    ),
]


@pytest.mark.parametrize(("label", "filler", "extra"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_the_policy_and_the_python_measure_agree_to_the_byte(
    control_plane: ControlPlane, namespace: str, api: None, label: str, filler: str, extra: dict[str, Any]
) -> None:
    value = at_the_bound(filler, extra)
    accepted, stderr = create(control_plane, namespace, f"{label}-at", {"input": value})
    assert accepted, stderr
    value["rest"] += "x"
    assert input_violation(value) is not None
    accepted, stderr = create(control_plane, namespace, f"{label}-over", {"input": value})
    assert not accepted
    assert f"spec.input is {MAX_INPUT_TOTAL_BYTES + 1} bytes; at most {MAX_INPUT_TOTAL_BYTES}" in stderr


def test_the_megabyte_input_of_issue_13_is_refused(control_plane: ControlPlane, namespace: str, api: None) -> None:
    accepted, stderr = create(control_plane, namespace, "decoy", {"input": {f"k{i}": "x" * 16384 for i in range(64)}})
    assert not accepted and "spec.input is" in stderr
    assert control_plane.kubectl("get", "mg", "-n", namespace, "-o", "name").stdout == ""


def test_a_generation_cannot_be_created_canceled_but_can_be_canceled(
    control_plane: ControlPlane, namespace: str, api: None
) -> None:
    accepted, stderr = create(control_plane, namespace, "free", {"input": {"p": "x"}, "cancel": True})
    assert not accepted and "spec.cancel cannot be true when a MediaGeneration is created" in stderr
    accepted, stderr = create(control_plane, namespace, "paid", {"input": {"p": "x"}, "cancel": False})
    assert accepted, stderr
    control_plane.kubectl("patch", "mg", "paid", "-n", namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')


def test_status_phase_is_a_selectable_field_and_unset_means_empty(
    control_plane: ControlPlane, namespace: str, api: None
) -> None:
    for name in ("fresh", "running", "done"):
        assert create(control_plane, namespace, name, {"input": {"p": name}})[0]
    for name, phase in (("running", "Running"), ("done", "Succeeded")):
        patch = json.dumps({"status": {"phase": phase}})
        control_plane.kubectl("patch", "mg", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", patch)

    def names(selector: str) -> list[str]:
        out = control_plane.kubectl("get", "mg", "-n", namespace, "--field-selector", selector, "-o", "name")
        return sorted(line.rsplit("/", 1)[-1] for line in out.stdout.split())

    assert names("status.phase=Running") == ["running"]
    unfinished = "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Canceled"
    assert names(unfinished) == ["fresh", "running"]  # no status yet counts as unfinished
