"""Fuzzing (the scenario of ``make chaos`` at a small scale): generated manifests against the real API server are
accepted exactly when the API models say so, accepted ones reach a final phase in mock mode, the operator neither
crashes nor wedges; and the gateway answers generated requests to every operation without a 5xx."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from mediagen_dev.chaos import fuzz
from mediagen_dev.chaos.chaos_stack import Stack


@settings(max_examples=200, deadline=None)
@given(spec=fuzz.valid_specs())
def test_the_valid_strategy_only_makes_valid_specs(spec: dict[str, Any]) -> None:
    assert fuzz.expected_valid(spec)


@settings(max_examples=300, deadline=None)
@given(spec=fuzz.mutated_specs())
def test_the_oracle_never_fails_on_a_mutated_spec(spec: dict[str, Any]) -> None:
    fuzz.expected_valid(spec)


def test_the_oracle_knows_the_rules_json_schema_cannot_say() -> None:
    base: dict[str, Any] = {"model": "a/b", "input": {"prompt": "x"}}
    assert fuzz.expected_valid(base)
    assert not fuzz.expected_valid({**base, "deployment": "c/d"})
    assert not fuzz.expected_valid({"input": {}})
    assert not fuzz.expected_valid({**base, "retry": {"backoffSeconds": 10, "maxBackoffSeconds": 5}})
    assert not fuzz.expected_valid({**base, "input": {"nested": {"a": 1}}})
    assert not fuzz.expected_valid({**base, "timeoutSeconds": 60.5})
    assert not fuzz.expected_valid({**base, "extra": 1})
    assert fuzz.expected_valid({**base, "timeoutSeconds": 60})


def test_the_oracle_reads_a_spec_as_the_api_server_decodes_it() -> None:
    # Found by the fuzzer against the real API server: nulls of non-nullable fields are pruned (then defaulted),
    # and integral floats pass as integers.
    base: dict[str, Any] = {"model": "a/b"}
    assert fuzz.expected_valid({**base, "retry": None, "output": None, "cancel": None, "input": None})
    assert fuzz.expected_valid({**base, "timeoutSeconds": 60.0, "retry": {"limit": 2.0, "backoffSeconds": None}})
    assert fuzz.expected_valid({"model": None, "deployment": "a/b"})
    assert not fuzz.expected_valid({**base, "retry": {"limit": 2.5}})
    assert fuzz.expected_valid({**base, "input": {"seed": None, "list": [1, None]}})


def test_fuzzed_manifests_and_gateway_requests(stack: Stack) -> None:
    outcome = fuzz.run(stack, fuzz.Params(manifests=30, gateway_examples=5, timeout=60))
    assert outcome.survived, outcome.notes
    manifests = outcome.details["manifests"]
    assert manifests["cases"] == 30 and 0 < manifests["accepted"] < 30  # both kinds were tried
    assert outcome.details["gateway"]["server_errors"] == []
