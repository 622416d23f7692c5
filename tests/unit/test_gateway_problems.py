"""Errors as problem+json: pydantic's errors to field paths, the cluster layer's errors to statuses, and the
Kubernetes API's error answers to the cluster layer's errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from mediagen.gateway.cluster import (
    AlreadyExists,
    BadRequest,
    Cause,
    ClusterError,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unavailable,
)
from mediagen.gateway.problems import cluster_problem, pointer, validation_errors
from mediagen.kube.errors import Conflict, KubeError
from mediagen.kube.errors import translate as translate_status


def test_json_pointers_escape_slashes_and_tildes() -> None:
    assert pointer(("input", "a/b~c", 0)) == "/input/a~1b~0c/0"
    assert pointer(()) == ""


def test_malformed_json_is_400_naming_the_body() -> None:
    status, fields = validation_errors(
        [{"type": "json_invalid", "loc": ("body", 7), "msg": "JSON decode error", "ctx": {"error": "Expecting value"}}]
    )
    assert status == 400
    assert fields[0].field == "body" and "character 7" in fields[0].message and "Expecting value" in fields[0].message


def test_field_errors_name_the_path_in_the_body_or_the_parameter() -> None:
    status, fields = validation_errors(
        [
            {"type": "string_pattern_mismatch", "loc": ("body", "model"), "msg": "bad pattern"},
            {"type": "extra_forbidden", "loc": ("body", "colour"), "msg": "Extra inputs are not permitted"},
            {"type": "int_parsing", "loc": ("body", "retry", "limit"), "msg": "not an int"},
            {"type": "value_error", "loc": ("body",), "msg": "x", "ctx": {"path": ("input", "p")}},
            {"type": "missing", "loc": ("body",), "msg": "Field required"},
            {"type": "less_than_equal", "loc": ("query", "limit"), "msg": "too big"},
            {"type": "string_too_long", "loc": ("header", "Idempotency-Key"), "msg": "too long"},
        ]
    )
    assert status == 422
    assert [(f.field, f.location, f.pointer) for f in fields] == [
        ("model", "body", "/model"),
        ("colour", "body", "/colour"),
        ("retry.limit", "body", "/retry/limit"),
        ("input.p", "body", "/input/p"),
        ("body", "body", ""),
        ("limit", "query", "/limit"),
        ("Idempotency-Key", "header", "/Idempotency-Key"),
    ]
    assert fields[1].message == "unknown field 'colour'" and fields[4].message == "a JSON object body is required"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("x"), 404),
        (AlreadyExists("x"), 409),
        (Invalid("x"), 422),
        (Expired("x"), 410),
        (BadRequest("x"), 400),
        (TooLarge("x"), 413),
        (Forbidden("x"), 503),
        (Unavailable("x"), 503),
    ],
)
def test_cluster_errors_map_to_statuses_never_500(error: ClusterError, status: int) -> None:
    assert cluster_problem(error).status == status


def test_unavailable_says_when_to_retry() -> None:
    assert cluster_problem(Unavailable("down")).headers == {"Retry-After": "5"}


def test_api_server_rejections_name_the_field_without_the_spec_prefix() -> None:
    problem = cluster_problem(Invalid("bad", [Cause("spec.retry.limit", "too big"), Cause("metadata.name", "long")]))
    assert [(f.field, f.pointer) for f in problem.errors] == [
        ("retry.limit", "/retry/limit"),
        ("metadata.name", "/metadata/name"),
    ]


def _api_error(status: int, body: dict[str, Any] | str = "") -> ApiException:
    error = ApiException(status=status, reason="reason")
    error.body = body if isinstance(body, str) else json.dumps(body)
    return error


def translate(error: ApiException) -> KubeError:
    """What the shared Kubernetes adapter raises for ``error``."""
    return translate_status(error.status or 0, error.body, error.reason or "")


def test_translate_the_api_servers_answers() -> None:
    assert isinstance(translate(_api_error(404)), NotFound)
    assert isinstance(translate(_api_error(409, {"reason": "AlreadyExists"})), AlreadyExists)
    assert type(translate(_api_error(409, {"reason": "Conflict"}))) is Conflict
    assert isinstance(translate(_api_error(410)), Expired)
    assert isinstance(translate(_api_error(403)), Forbidden)
    assert isinstance(translate(_api_error(400)), BadRequest)
    assert isinstance(translate(_api_error(413)), TooLarge)
    assert isinstance(translate(_api_error(500, {"message": "etcdserver: request is too large"})), TooLarge)
    for status in (500, 503, 429, 0):
        assert isinstance(translate(_api_error(status, "not json")), Unavailable)


def test_translate_keeps_the_causes_of_an_invalid_object() -> None:
    body = {
        "kind": "Status",
        "message": 'MediaGeneration "x" is invalid',
        "details": {"causes": [{"field": "spec.timeoutSeconds", "message": "must be <= 86400"}]},
    }
    error = translate(_api_error(422, body))
    assert isinstance(error, Invalid) and error.causes == [Cause("spec.timeoutSeconds", "must be <= 86400")]


def test_translate_finds_the_field_in_an_admission_policy_message() -> None:
    message = (
        "mediagenerations.mediagen.fleek.xyz \"x\" is forbidden: ValidatingAdmissionPolicy 'p' denied request: "
        "spec.input.prompt is too large or of an unsupported type"
    )
    error = translate(_api_error(422, {"kind": "Status", "message": message}))
    assert isinstance(error, Invalid) and error.causes[0].field == "spec.input.prompt"
