"""The gateway's request and response bodies.

``GenerateRequest`` *is* a :class:`~mediagen.api.types.MediaGenerationSpec` (the spec fields at the top level,
unknown fields refused) plus an optional ``name``, and adds the rules the API server enforces beyond the JSON
schema — exactly one of model and deployment (CEL), the input limits and no ``cancel: true`` at creation (admission
policy, via :mod:`mediagen.api.input_limits`), ``maxBackoffSeconds >= backoffSeconds`` (CEL) — so a bad body is
refused before anything is created, with the offending field named.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from mediagen.api.input_limits import size_violation, value_violation
from mediagen.api.types import (
    MAX_INPUT_LIST_ITEMS,
    MAX_INPUT_PROPERTIES,
    MAX_INPUT_STRING_BYTES,
    MediaGenerationSpec,
    Phase,
)

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_NAME_LENGTH = 63
_INT64 = 2**63

_SCALAR_SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "maxLength": MAX_INPUT_STRING_BYTES},
    {"type": "number"},
    {"type": "integer"},
    {"type": "boolean"},
    # A null passes the CRD's schema and the admission policy (Replicate reads it as "use the default"), so
    # the gateway takes it too, and says so.
    {"type": "null"},
]
_INPUT_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        *_SCALAR_SCHEMAS,
        {"type": "array", "maxItems": MAX_INPUT_LIST_ITEMS, "items": {"anyOf": _SCALAR_SCHEMAS}},
    ],
    "description": "A string, number, boolean, null or a list of them.",
}

InputValue = Annotated[Any, WithJsonSchema(_INPUT_VALUE_SCHEMA)]


def field_error(path: tuple[str, ...], message: str) -> PydanticCustomError:
    """A validation error naming the field at ``path`` in the body (read by :mod:`mediagen.gateway.problems`).

    A model-level rule has no field of its own in pydantic's error location; this carries one."""
    return PydanticCustomError("value_error", "{message}", {"message": message, "path": path})


def _number_problem(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return "must fit in a 64-bit signed integer"
    if isinstance(value, list):
        return next((f"has an item that {p}" for p in map(_number_problem, value) if p), None)
    return None


class GenerateRequest(MediaGenerationSpec):
    """A generation request: the MediaGeneration spec fields, plus an optional name (the id)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a lighthouse at dawn, watercolor"}}
            ],
            # Exactly one of model and deployment, as the CRD's CEL rule says (null counts as unset).
            "oneOf": [
                {"required": ["model"], "properties": {"model": {"type": "string"}}},
                {"required": ["deployment"], "properties": {"deployment": {"type": "string"}}},
            ],
        }
    )

    name: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=MAX_NAME_LENGTH,
            pattern=NAME_PATTERN,
            description="The generation's id (the MediaGeneration's name). Unset: one is generated. "
            "Creating the same name with the same body again returns the existing generation. "
            "Cannot be combined with an Idempotency-Key.",
        ),
    ]
    input: Annotated[  # the same field as the spec's, with its values' types spelled out for OpenAPI
        dict[str, InputValue],
        Field(
            default_factory=dict,
            max_length=MAX_INPUT_PROPERTIES,
            description=MediaGenerationSpec.model_fields["input"].description,
        ),
    ]

    cancel: Annotated[  # the spec's field, which a request may only leave false
        bool,
        Field(
            default=False,
            description="Must be false (or absent): a generation cannot be created canceled. Cancel an existing "
            "one with POST /generations/{id}/cancel.",
        ),
    ]

    @field_validator("input")
    @classmethod
    def _input_within_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            problem = value_violation(item) or _number_problem(item)
            if problem:
                raise field_error(("input", key), f"input.{key} {problem}")
        too_large = size_violation(value)
        if too_large:
            # The limits' messages name the field as kubectl shows it (spec.input); here input is top level.
            raise field_error(("input",), too_large.removeprefix("spec."))
        return value

    @field_validator("cancel")
    @classmethod
    def _not_created_canceled(cls, value: bool) -> bool:
        if value:
            # It would finish without running, outside every quota: a free object to fill a namespace with.
            raise field_error(("cancel",), "a generation cannot be created canceled; cancel it once it exists")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> GenerateRequest:
        if self.model is None and self.deployment is None:
            raise field_error(("model",), "exactly one of model or deployment must be set; neither is")
        if self.model is not None and self.deployment is not None:
            raise field_error(("deployment",), "exactly one of model or deployment must be set; both are")
        if self.retry.max_backoff_seconds < self.retry.backoff_seconds:
            raise field_error(
                ("retry", "maxBackoffSeconds"),
                "spec.retry.maxBackoffSeconds must be at least spec.retry.backoffSeconds",
            )
        return self

    def spec(self) -> MediaGenerationSpec:
        """The MediaGeneration spec this request asks for."""
        return MediaGenerationSpec.model_validate(self.model_dump(exclude={"name"}))


class _Wire(BaseModel):
    """camelCase on the wire, like the resource itself."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class OutputView(_Wire):
    """One stored output."""

    url: str = Field(description="Where to fetch it.")
    content_type: str = Field(default="", description="Its Content-Type.")
    size_bytes: int = Field(default=0, description="Size in bytes.")
    sha256: str = Field(default="", description="Hex SHA-256 of its bytes.")


class ConditionView(_Wire):
    """A condition of the resource (the Succeeded condition is the one that matters)."""

    type: str
    status: str = Field(description="True, False or Unknown.")
    reason: str = ""
    message: str = ""
    last_transition_time: dt.datetime | None = None


class ErrorView(_Wire):
    """Why a generation failed or was canceled."""

    reason: str = Field(description="One CamelCase word, e.g. InvalidInput, DeadlineExceeded, Canceled.")
    message: str = Field(description="What happened.")


class GenerationView(_Wire):
    """A generation as clients see it: the resource's spec and status, flattened."""

    id: str = Field(description="The generation's id (the MediaGeneration's name).")
    phase: Phase = Field(description="Pending, Running, Uploading, Succeeded, Failed or Canceled.")
    done: bool = Field(description="True once the phase is final (Succeeded, Failed or Canceled).")
    model: str | None = None
    deployment: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    progress: int | None = Field(default=None, description="0-100, best effort.")
    url: str | None = Field(default=None, description="The first output's URL, once Succeeded.")
    outputs: list[OutputView] = Field(default_factory=list)
    url_expires_at: dt.datetime | None = Field(default=None, description="When presigned URLs expire.")
    reason: str = ""
    message: str = ""
    error: ErrorView | None = Field(default=None, description="Set when the generation Failed or was Canceled.")
    conditions: list[ConditionView] = Field(default_factory=list)
    attempts: int = 0
    retries: int = 0
    cancel_requested: bool = False
    created_at: dt.datetime | None = None
    start_time: dt.datetime | None = None
    completion_time: dt.datetime | None = None
    prediction_id: str | None = None
    status_url: str = Field(description="Where to poll this generation.")


class GenerationList(_Wire):
    """One page of generations."""

    items: list[GenerationView]
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="Pass as ?continue= for the next page; null on the last page. A page may hold fewer items "
        "than the limit: follow continue until it is null.",
    )


class HealthReport(_Wire):
    """Whether the gateway can do its job."""

    status: str = Field(description="ok or unavailable.")
    kubernetes: str = Field(description="reachable or unreachable.")
    version: str
