"""``-i key=value`` arguments into a model input, and the request into a validated MediaGeneration spec."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from mediagen.api.input_limits import input_violation
from mediagen.api.types import MediaGenerationSpec
from mediagen.userctl.errors import UsageError


def parse_value(text: str) -> Any:
    """``768`` → 768, ``0.5`` → 0.5, ``true`` → True, ``[1, 2]`` → a list, anything else stays a string.

    Only JSON numbers, booleans and lists are converted: a prompt such as ``null`` or ``"quoted"`` is text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool | int | float | list):
        return value
    return text


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """``["prompt=a cat", "width=768"]`` → ``{"prompt": "a cat", "width": 768}``; a repeated key is an error."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-i expects key=value, got {pair!r}")
        if key in result:
            raise UsageError(f"input {key!r} is given twice")
        result[key] = parse_value(raw)
    return result


def _explain(error: Any) -> str:
    """One pydantic error for people: a reference that is not ``owner/name`` says so instead of quoting a regex."""
    field = ".".join(str(part) for part in error["loc"]) or "spec"
    if error["type"] == "string_pattern_mismatch" and field in ("model", "deployment"):
        shape = "owner/name or owner/name:version" if field == "model" else "owner/name"
        return f"{field} {error['input']!r} is not {shape}"
    return f"{field}: {error['msg']}"


def build_spec(
    model: str | None, deployment: str | None, inputs: dict[str, Any], timeout_seconds: int | None
) -> dict[str, Any]:
    """The spec to create, checked by the same models and limits as the API server's (clear errors up front)."""
    if (model is None) == (deployment is None):
        raise UsageError("give a MODEL (owner/name[:version]) or --deployment owner/name, not both")
    raw: dict[str, Any] = {"input": inputs}
    if model is not None:
        raw["model"] = model
    if deployment is not None:
        raw["deployment"] = deployment
    if timeout_seconds is not None:
        raw["timeoutSeconds"] = timeout_seconds
    try:
        spec = MediaGenerationSpec.model_validate(raw)
    except ValidationError as err:
        raise UsageError(f"invalid request: {'; '.join(_explain(e) for e in err.errors())}") from err
    violation = input_violation(spec.input)
    if violation:
        raise UsageError(f"invalid input: {violation}")
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    wire["input"] = spec.input  # always sent, even when empty
    return wire
