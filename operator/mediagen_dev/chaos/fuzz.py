"""Fuzzing: generated MediaGeneration manifests against the real API server, and the gateway from its OpenAPI.

Manifests come from hypothesis: valid specs, and valid specs with one thing broken (a wrong type, a value out of
range, a malformed reference, both or neither of model and deployment, an unknown field, an input beyond the
limits). The oracle is the pydantic model the CRD is generated from, checked strictly, plus the rules JSON Schema
cannot say (exactly one of model and deployment, ``maxBackoffSeconds >= backoffSeconds``, the input limits).
A case fails when the API server disagrees with the oracle (accepts what it should reject, or the reverse), or
when an accepted manifest does not reach a final phase under the mock-mode operator. Afterwards the operator must
still be the same process, with no crash in its log, and a fresh generation must still succeed (not wedged).

The gateway runs as its own process; every operation of its OpenAPI gets schemathesis-generated requests (valid
and invalid) with a valid token, and any 5xx is a failure. Conformance findings are kept in the details.
"""

from __future__ import annotations

import json
import string
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mediagen.api.input_limits import input_violation
from mediagen.api.types import (
    GROUP,
    MAX_INPUT_LIST_ITEMS,
    MAX_INPUT_PROPERTIES,
    MAX_INPUT_STRING_BYTES,
    PLURAL,
    VERSION,
    MediaGenerationSpec,
)
from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import TERMINAL, Stack, manifest_for, phase_of
from mediagen_dev.chaos.gateway import mint_token, start_gateway
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome

NAME_CHARS = string.ascii_letters + string.digits + "._-"


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    manifests: int
    gateway_examples: int
    """Examples per gateway operation."""
    timeout: float
    """How long accepted manifests may take to reach a final phase."""


SMALL = Params(manifests=40, gateway_examples=8, timeout=60)
FULL = Params(manifests=300, gateway_examples=60, timeout=180)


# -- strategies ------------------------------------------------------------------------------------------------

_segment = st.text(NAME_CHARS, min_size=0, max_size=20).map(lambda s: s.lstrip("._-"))
_ref = st.builds(lambda owner, name: f"{owner or 'o'}/{name or 'n'}", _segment, _segment)
_model_ref = st.one_of(_ref, st.builds(lambda ref, version: f"{ref}:{version or 'v'}", _ref, _segment))
_scalar = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
)
_input_value = st.one_of(_scalar, st.lists(_scalar, max_size=6))
_input = st.dictionaries(st.text(min_size=1, max_size=16), _input_value, max_size=6)


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the API server must accept (and a mock-mode operator bring to a final phase)."""
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["model"] = draw(_model_ref)
    else:
        spec["deployment"] = draw(_ref)
    if draw(st.booleans()):
        spec["input"] = draw(_input)
    if draw(st.booleans()):
        spec["output"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "keyPrefix": st.text(NAME_CHARS + "/", max_size=40),
                    "deletionPolicy": st.sampled_from(["Retain", "Delete"]),
                },
            )
        )
    if draw(st.booleans()):
        backoff = draw(st.integers(1, 3600))
        spec["retry"] = {
            "limit": draw(st.integers(0, 10)),
            "backoffSeconds": backoff,
            "maxBackoffSeconds": draw(st.integers(backoff, 86400)),
        }
    if draw(st.booleans()):
        spec["timeoutSeconds"] = draw(st.integers(10, 86400))
    if draw(st.integers(0, 9)) == 0:
        spec["ttlSecondsAfterFinished"] = draw(st.integers(0, 31536000))
    if draw(st.integers(0, 9)) == 0:
        spec["cancel"] = False  # true only on an existing generation (mutated_specs tries it at creation)
    return spec


_wrong_type = st.one_of(
    st.none(), st.text(max_size=5), st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)
)
_MUTATIONS = (
    "model-and-deployment",
    "neither",
    "bad-model",
    "long-model",
    "wrong-type",
    "out-of-range",
    "backoff-order",
    "unknown-field",
    "bad-policy",
    "bad-prefix",
    "input-too-many-keys",
    "input-long-string",
    "input-object",
    "input-long-list",
    "input-list-of-lists",
    "input-not-object",
    "fractional-integer",
    "created-canceled",
)


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with one thing broken (usually invalid; the oracle decides)."""
    spec = draw(valid_specs())
    mutation = draw(st.sampled_from(_MUTATIONS))
    if mutation == "model-and-deployment":
        spec["model"], spec["deployment"] = draw(_model_ref), draw(_ref)
    elif mutation == "neither":
        spec.pop("model", None)
        spec.pop("deployment", None)
    elif mutation == "bad-model":
        spec.pop("deployment", None)
        spec["model"] = draw(st.text(max_size=30).filter(lambda s: "/" not in s or " " in s or s.startswith("/")))
    elif mutation == "long-model":
        spec.pop("deployment", None)
        spec["model"] = "o/" + "n" * draw(st.integers(255, 400))
    elif mutation == "wrong-type":
        key = draw(st.sampled_from(["model", "timeoutSeconds", "cancel", "retry", "output", "ttlSecondsAfterFinished"]))
        spec[key] = draw(_wrong_type)
    elif mutation == "out-of-range":
        key, low, high = draw(
            st.sampled_from([("timeoutSeconds", 10, 86400), ("ttlSecondsAfterFinished", 0, 31536000)])
        )
        spec[key] = draw(st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)))
    elif mutation == "backoff-order":
        backoff = draw(st.integers(2, 3600))
        spec["retry"] = {"backoffSeconds": backoff, "maxBackoffSeconds": draw(st.integers(1, backoff - 1))}
    elif mutation == "unknown-field":
        spec[draw(st.sampled_from(["modle", "inputs", "retries", "extra"]))] = draw(_scalar)
    elif mutation == "bad-policy":
        spec["output"] = {"deletionPolicy": draw(st.text(max_size=10))}
    elif mutation == "bad-prefix":
        spec["output"] = {"keyPrefix": draw(st.text(max_size=20))}
    elif mutation == "input-too-many-keys":
        spec["input"] = {f"k{i}": i for i in range(MAX_INPUT_PROPERTIES + draw(st.integers(1, 10)))}
    elif mutation == "input-long-string":
        spec["input"] = {"prompt": "x" * (MAX_INPUT_STRING_BYTES + draw(st.integers(1, 100)))}
    elif mutation == "input-object":
        spec["input"] = {"nested": draw(st.dictionaries(st.text(max_size=5), _scalar, max_size=3))}
    elif mutation == "input-long-list":
        spec["input"] = {"list": list(range(MAX_INPUT_LIST_ITEMS + draw(st.integers(1, 10))))}
    elif mutation == "input-list-of-lists":
        spec["input"] = {"list": [[1, 2], [3]]}
    elif mutation == "input-not-object":
        spec["input"] = draw(st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=3), st.integers()))
    elif mutation == "fractional-integer":
        spec["timeoutSeconds"] = draw(st.integers(10, 86400)) + 0.5
    elif mutation == "created-canceled":
        spec["cancel"] = True
    return spec


_INTEGERS = {
    "": ("timeoutSeconds", "ttlSecondsAfterFinished"),
    "retry": ("limit", "backoffSeconds", "maxBackoffSeconds"),
}


def as_decoded(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as the API server validates it: a null in a field that is not nullable means "unset" (it is
    pruned, then defaulted), and a float with no fraction is an integer (``60.0`` passes as ``60``). The free-form
    ``input`` is kept as it is."""
    decoded = {key: value for key, value in spec.items() if value is not None}
    for section in ("retry", "output"):
        if isinstance(decoded.get(section), dict):
            decoded[section] = {key: value for key, value in decoded[section].items() if value is not None}
    for section, fields in _INTEGERS.items():
        target = decoded.get(section) if section else decoded
        if isinstance(target, dict):
            for name in fields:
                value = target.get(name)
                if isinstance(value, float) and value.is_integer():
                    target[name] = int(value)
    return decoded


def expected_valid(spec: dict[str, Any]) -> bool:
    """The oracle: would the CRD, its CEL rules and the admission policy accept this spec?"""
    try:
        model = MediaGenerationSpec.model_validate_json(json.dumps(as_decoded(spec)), strict=True)
    except ValidationError:
        return False
    if (model.model is None) == (model.deployment is None):
        return False
    if model.retry.max_backoff_seconds < model.retry.backoff_seconds:
        return False
    if model.cancel:  # the admission policy refuses a generation created canceled
        return False
    return input_violation(model.input) is None


# -- manifests -------------------------------------------------------------------------------------------------


@dataclass
class ManifestResults:
    """What the manifest fuzzing saw."""

    cases: int = 0
    expected_valid: int = 0
    accepted: int = 0
    failures: list[str] = field(default_factory=list)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Accepted manifests by name: they must reach a final phase."""


def fuzz_manifests(stack: Stack, namespace: str, count: int) -> ManifestResults:
    """Create ``count`` generated manifests (with ``fieldValidation=Strict``, as ``kubectl apply`` does)."""
    results = ManifestResults()

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=st.one_of(valid_specs(), mutated_specs()))
    def one(spec: dict[str, Any]) -> None:
        name = f"fz-{results.cases:04d}"
        results.cases += 1
        valid = expected_valid(spec)
        results.expected_valid += valid
        try:
            stack.api.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, manifest_for(name, spec), field_validation="Strict"
            )
        except ApiException as err:
            if err.status not in (400, 422):
                results.failures.append(f"{name}: HTTP {err.status} (not a rejection) for {_short(spec)}")
            elif valid:
                results.failures.append(f"{name}: valid but rejected ({_reason(err)}): {_short(spec)}")
            return
        results.accepted += 1
        results.pending[name] = spec
        if not valid:
            results.failures.append(f"{name}: invalid but accepted: {_short(spec)}")

    one()
    return results


def _reason(err: ApiException) -> str:
    try:
        return str(json.loads(err.body or "{}").get("message", ""))[:200]
    except ValueError:
        return str(err.reason)


def _short(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, ensure_ascii=True)
    return text if len(text) <= 300 else text[:300] + "…"


# -- the gateway -----------------------------------------------------------------------------------------------


@dataclass
class GatewayResults:
    """What the gateway fuzzing saw."""

    cases: int = 0
    server_errors: list[str] = field(default_factory=list)
    nonconforming: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def fuzz_gateway(base_url: str, token: str, examples: int) -> GatewayResults:
    """schemathesis-generated requests to every operation of the gateway's OpenAPI."""
    import schemathesis
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    results = GatewayResults()
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base_url}/openapi.json", timeout=10, trust_env=False).json())
    headers = {"Authorization": f"Bearer {token}"}
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            results.nonconforming.append(f"an operation of the OpenAPI could not be loaded: {result!r}"[:300])
            continue
        operation = result.ok()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def one(case: Any) -> None:
            results.cases += 1
            response = case.call(base_url=base_url, headers=headers)
            results.statuses[response.status_code] = results.statuses.get(response.status_code, 0) + 1
            label = f"{case.method} {case.path}"
            if response.status_code >= 500:
                results.server_errors.append(f"{label}: {response.status_code} {response.text[:200]}")
            try:
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
            except Exception as err:  # conformance findings: kept, not fatal (the bar is "no 5xx")
                results.nonconforming.append(f"{label} -> {response.status_code}: {str(err).splitlines()[0][:200]}")

        one()
    return results


# -- the scenario ----------------------------------------------------------------------------------------------


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-fuzz")
    operator = stack.operator(f"fuzz-{namespace}", stack.operator_env(namespace, mock=True, via_proxy=False))
    start_and_wait(operator)
    pid = operator.pid

    manifests = fuzz_manifests(stack, namespace, params.manifests)
    deadline = time.monotonic() + params.timeout
    unfinished: list[str] = []
    while time.monotonic() < deadline:
        bodies = stack.generations(namespace)
        unfinished = [
            name
            for name, spec in manifests.pending.items()
            if not (name not in bodies and spec.get("ttlSecondsAfterFinished") is not None)  # removed by its TTL
            and phase_of(bodies.get(name, {})) not in TERMINAL
        ]
        if not unfinished:
            break
        time.sleep(1.0)
    failures = list(manifests.failures)
    failures += [f"{name}: accepted but never final: {_short(manifests.pending[name])}" for name in unfinished]

    gateway = start_gateway(stack, namespace, {"MEDIAGEN_GATEWAY_RATE_LIMIT_PER_SECOND": "1000"})
    try:
        web = fuzz_gateway(gateway.url, mint_token(stack, namespace, "fuzz"), params.gateway_examples)
        gateway_log_errors = [line[:300] for line in gateway.logs().splitlines() if "Traceback" in line]
    finally:
        gateway.stop()
    failures += web.server_errors

    # Not wedged: a fresh generation still succeeds, served by the same process.
    stack.create(namespace, [("fz-sentinel", {"model": "fuzz/sentinel", "input": {"prompt": "still alive?"}})])
    sentinel = stack.wait_terminal(namespace, ["fz-sentinel"], timeout=60).get("fz-sentinel", {})
    operator.stop()
    crashes = checks.operator_crashes(operator.logs())
    notes = [f"manifest/gateway failure: {failure}" for failure in failures[:20]]
    if phase_of(sentinel) != "Succeeded":
        notes.append(f"the operator is wedged: a fresh generation ended {phase_of(sentinel)}")
    if operator.starts != 1 or operator.pid not in (None, pid):
        notes.append("the operator process was restarted")
    if crashes:
        notes.append(f"{len(crashes)} crash lines in the operator log, e.g. {crashes[0]}")
    if web.nonconforming:
        notes.append(f"{len(web.nonconforming)} gateway answers did not conform to its OpenAPI (not 5xx): see details")
    failed = len(failures) + (phase_of(sentinel) != "Succeeded") + len(crashes)
    return Outcome(
        name="fuzzing",
        survived=failed == 0,
        headline={"fuzz_cases": manifests.cases + web.cases, "fuzz_failures": failed},
        details={
            "namespace": namespace,
            "manifests": {
                "cases": manifests.cases,
                "expected_valid": manifests.expected_valid,
                "accepted": manifests.accepted,
                "rejected": manifests.cases - manifests.accepted,
                "final_phases": stack.phases(namespace),
            },
            "gateway": {
                "cases": web.cases,
                "statuses": {str(k): v for k, v in sorted(web.statuses.items())},
                "server_errors": web.server_errors[:10],
                "nonconforming": web.nonconforming[:10],
                "log_tracebacks": gateway_log_errors[:5],
            },
            "failures": failures[:50],
            "operator_crash_lines": len(crashes),
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
