"""Request <-> MediaGeneration translation: the spec built from a request, idempotent names and request hashes,
and the status view of stored resources."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from mediagen.api.input_limits import input_size
from mediagen.api.types import MAX_INPUT_TOTAL_BYTES, MediaGeneration, MediaGenerationSpec, Phase
from mediagen.gateway.resources import (
    REQUEST_HASH_ANNOTATION,
    build_resource,
    idempotent_name,
    request_hash,
    stored_hash,
    to_view,
)
from mediagen.gateway.schemas import GenerateRequest

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def request(**fields: Any) -> GenerateRequest:
    return GenerateRequest.model_validate({"model": "owner/model", **fields})


def test_the_request_is_the_spec_plus_a_name() -> None:
    body = {
        "model": "owner/model:v1",
        "input": {"prompt": "a cat", "steps": 4, "tags": ["a", "b"]},
        "output": {"keyPrefix": "campaigns/x", "deletionPolicy": "Delete"},
        "retry": {"limit": 1},
        "timeoutSeconds": 60,
        "ttlSecondsAfterFinished": 300,
        "name": "my-cat",
    }
    parsed = GenerateRequest.model_validate(body)
    spec = parsed.spec()
    assert type(spec) is MediaGenerationSpec
    assert (
        spec.to_wire() == MediaGenerationSpec.model_validate({k: v for k, v in body.items() if k != "name"}).to_wire()
    )
    # Every spec field is accepted by the request, so the two cannot drift apart.
    assert set(MediaGenerationSpec.model_fields) <= set(GenerateRequest.model_fields)


def test_build_resource_names_or_generates_and_records_the_request() -> None:
    req = request(input={"prompt": "x"})
    digest = request_hash(req)
    named = build_resource(req, name="gen-1", digest=digest, subject="token/abc")
    assert named["metadata"]["name"] == "gen-1" and "generateName" not in named["metadata"]
    assert stored_hash(named) == digest and named["metadata"]["annotations"][REQUEST_HASH_ANNOTATION] == digest
    unnamed = build_resource(req, name=None, digest=digest, subject="token/abc")
    assert unnamed["metadata"]["generateName"] == "gen-" and "name" not in unnamed["metadata"]
    # What is created parses as a MediaGeneration: the gateway writes nothing the CRD does not declare.
    assert MediaGeneration.model_validate(named).spec == req.spec()


def test_idempotent_names_are_stable_valid_and_scoped_to_the_tenant() -> None:
    name = idempotent_name("team-a", "order-42")
    assert name == idempotent_name("team-a", "order-42")
    assert DNS_LABEL.match(name) and len(name) <= 63
    assert name != idempotent_name("team-b", "order-42")
    assert name != idempotent_name("team-a", "order-43")
    assert DNS_LABEL.match(idempotent_name("team-a", "\u00fc" * 255))


def test_the_request_hash_is_semantic() -> None:
    plain = request(input={"prompt": "x"})
    explicit = request(input={"prompt": "x"}, retry={"limit": 3}, timeoutSeconds=3600, cancel=False)
    assert request_hash(plain) == request_hash(explicit)  # defaults spelled out: the same request
    assert request_hash(plain) == request_hash(request(input={"prompt": "x"}, timeout_seconds=3600))
    assert request_hash(plain) != request_hash(request(input={"prompt": "y"}))
    assert request_hash(plain) != request_hash(request(input={"prompt": "x"}, name="n"))
    assert request_hash(plain) != request_hash(request(input={"prompt": "x", "seed": 1}))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"input": {}}, ("model",)),
        ({"model": "a/b", "deployment": "c/d"}, ("deployment",)),
        ({"model": "a/b", "input": {"p": "x" * 16385}}, ("input", "p")),
        ({"model": "a/b", "input": {"p": {"nested": 1}}}, ("input", "p")),
        ({"model": "a/b", "input": {"p": [[1]]}}, ("input", "p")),
        ({"model": "a/b", "input": {"p": list(range(65))}}, ("input", "p")),
        ({"model": "a/b", "input": {"p": float("nan")}}, ("input", "p")),
        ({"model": "a/b", "input": {"p": 2**70}}, ("input", "p")),
        ({"model": "a/b", "retry": {"backoffSeconds": 600}}, ("retry", "maxBackoffSeconds")),
        ({"model": "a/b", "input": {f"k{i}": "x" * 16384 for i in range(4)}}, ("input",)),
        ({"model": "a/b", "input": {"p": "x"}, "cancel": True}, ("cancel",)),
    ],
)
def test_rules_beyond_the_json_schema_name_their_field(body: dict[str, Any], path: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        GenerateRequest.model_validate(body)
    (error,) = caught.value.errors()
    assert tuple(error["ctx"]["path"]) == path


def test_input_at_the_limits_is_accepted() -> None:
    value: dict[str, Any] = {f"long{i}": "x" * 16384 for i in range(3)} | {"list": list(range(64))}
    value |= {f"k{i}": "é" for i in range(59)}  # two UTF-8 bytes each
    value["fill"] = "y" * (MAX_INPUT_TOTAL_BYTES - input_size(value) - len("fill") - 4 - 3)
    assert input_size(value) == MAX_INPUT_TOTAL_BYTES and len(value) == 64
    GenerateRequest.model_validate({"model": "a/b", "input": value})
    value["fill"] += "y"
    with pytest.raises(ValidationError, match="input is 65537 bytes; at most 65536"):
        GenerateRequest.model_validate({"model": "a/b", "input": value})


def _stored(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mediagen.fleek.xyz/v1alpha1",
        "kind": "MediaGeneration",
        "metadata": {"name": "gen-1", "namespace": "team-a", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"model": "a/b", "input": {"prompt": "p"}, **spec},
        **({"status": status} if status is not None else {}),
    }


def test_a_new_resource_is_pending() -> None:
    view = to_view(_stored(), "http://gw/status/gen-1")
    assert (view.phase, view.done, view.url, view.error) == (Phase.PENDING, False, None, None)
    assert view.status_url == "http://gw/status/gen-1" and view.input == {"prompt": "p"}


def test_a_succeeded_resource_shows_its_outputs_and_url() -> None:
    output = {"url": "https://media/x/0.png", "key": "k", "contentType": "image/png", "sizeBytes": 3, "sha256": "ab"}
    status = {
        "phase": "Succeeded",
        "reason": "Succeeded",
        "progress": 100,
        "outputs": [output],
        "url": output["url"],
        "prediction": {"id": "p1"},
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}],
    }
    view = to_view(_stored(status), "u")
    assert view.done and view.url == "https://media/x/0.png" and view.prediction_id == "p1"
    wire = view.model_dump(mode="json")
    assert wire["outputs"] == [{"url": output["url"], "contentType": "image/png", "sizeBytes": 3, "sha256": "ab"}]
    assert "key" not in wire["outputs"][0]  # bucket layout is the operator's business
    assert wire["conditions"][0]["status"] == "True"


@pytest.mark.parametrize(("phase", "reason"), [("Failed", "InvalidInput"), ("Canceled", "Canceled")])
def test_failed_and_canceled_resources_carry_the_error(phase: str, reason: str) -> None:
    view = to_view(_stored({"phase": phase, "reason": reason, "message": "why"}, cancel=phase == "Canceled"), "u")
    assert view.done and view.error is not None and (view.error.reason, view.error.message) == (reason, "why")
    assert view.cancel_requested is (phase == "Canceled")


def test_an_unreadable_status_shows_the_phase_rather_than_failing() -> None:
    view = to_view(_stored({"phase": "Running", "progress": "lots", "unknownField": 1}), "u")
    assert view.phase is Phase.RUNNING and view.progress is None
    assert to_view(_stored({"phase": "Exploded"}), "u").phase is Phase.PENDING
