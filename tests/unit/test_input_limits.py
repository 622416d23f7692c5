"""The bound on ``spec.input`` as a whole: how it is measured, and who enforces it (the gateway's models, the
operator's decision; the API server's policy in tests/integration/test_input_limits.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from mediagen.api.input_limits import input_size, input_violation
from mediagen.api.types import MAX_INPUT_TOTAL_BYTES, Phase
from mediagen.reconcile.decide import decide
from mediagen.reconcile.state import Finish, Memory, View


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({}, 0),
        ({"p": "x"}, 1 + 4 + 1 + 3),
        ({"p": "é"}, 1 + 4 + 2 + 3),  # UTF-8 bytes, not characters
        ({"p": "\U0001f600"}, 1 + 4 + 4 + 3),
        ({"p": "\ud800"}, 1 + 4 + 3 + 3),  # a lone surrogate: the API server decodes it as U+FFFD
        ({"n": 1, "b": True, "z": None, "f": 1.5e300}, 4 * (1 + 4 + 24)),
        ({"l": []}, 1 + 4 + 2),
        ({"l": ["ab", 7, False]}, 1 + 4 + 2 + (2 + 3) + 24 + 24),
        ({"l": [[1, 2]]}, 1 + 4 + 2 + 24),  # a list in a list (refused anyway) counts as one scalar, as in CEL
    ],
)
def test_the_size_counts_utf8_bytes_and_a_fixed_charge_per_scalar(value: dict[str, Any], size: int) -> None:
    assert input_size(value) == size


def test_64_keys_of_16_kib_no_longer_fit_though_each_value_does() -> None:
    value = {f"k{i:02d}": "x" * 16384 for i in range(64)}
    assert input_size(value) > 16 * MAX_INPUT_TOTAL_BYTES - 1024  # the ~1 MiB object of issue 13
    assert input_violation(value) == f"spec.input is {input_size(value)} bytes; at most 65536 are allowed in all"


def test_the_per_value_rules_are_reported_before_the_total() -> None:
    value = {"a": {"nested": 1}} | {f"k{i}": "x" * 16000 for i in range(5)}
    assert input_violation(value) == "spec.input.a must not be an object"


def test_exactly_at_the_bound_is_allowed() -> None:
    value = {f"k{i}": "x" * 13000 for i in range(5)}
    value["k0"] += "x" * (MAX_INPUT_TOTAL_BYTES - input_size(value))
    assert input_size(value) == MAX_INPUT_TOTAL_BYTES and input_violation(value) is None
    value["k0"] += "x"
    assert input_violation(value) is not None


def test_the_operator_fails_an_oversized_input_before_calling_replicate_without_the_policy() -> None:
    body = {
        "metadata": {"name": "big", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"model": "a/b", "input": {f"k{i}": "x" * 16384 for i in range(5)}},
        "status": {},
    }
    step = decide(View.from_body(body), Memory(), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert step == Finish(Phase.FAILED, "InvalidInput", input_violation(body["spec"]["input"]) or "")
    assert "spec.input is 81965 bytes" in step.message
