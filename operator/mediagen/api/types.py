"""The MediaGeneration API: spec and status as pydantic models.

These models are the single source of truth. The CRD schema (``mediagen crd``), the gateway's request
validation and OpenAPI, and the operator's reads and writes all come from here, so they cannot drift apart.
Every field's description becomes ``kubectl explain`` text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "mediagen.fleek.xyz"
VERSION = "v1alpha1"
KIND = "MediaGeneration"
PLURAL = "mediagenerations"
SINGULAR = "mediageneration"
API_VERSION = f"{GROUP}/{VERSION}"

# owner/name with an optional :version. Replicate names are lowercase in practice; upper case is accepted
# because Replicate itself matches case-insensitively, and a stricter rule here would only reject users.
MODEL_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*)?$"
DEPLOYMENT_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
KEY_PREFIX_PATTERN = r"^[A-Za-z0-9._/-]*$"

MAX_INPUT_PROPERTIES = 64
MAX_INPUT_STRING_BYTES = 16384
MAX_INPUT_LIST_ITEMS = 64
MAX_INPUT_TOTAL_BYTES = 65536
"""The bound on spec.input as a whole, measured by :func:`mediagen.api.input_limits.input_size`: without it 64 keys
of 16 KiB made a 1 MiB object, and every list of such objects (the operator's, the gateway's) paid for it."""
REQUEST_HASH_LENGTH = 16
"""Hex digits of SHA-256 kept in ``status.requestHash``: 64 bits tell one resource's requests apart."""


class _Model(BaseModel):
    """camelCase on the wire (Kubernetes convention), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as Kubernetes stores it: camelCase keys, unset fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class DeletionPolicy(StrEnum):
    """What happens to stored media when the MediaGeneration is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class OutputSpec(_Model):
    """Where and how the generated media is stored."""

    key_prefix: Annotated[
        str,
        Field(
            default="",
            max_length=256,
            pattern=KEY_PREFIX_PATTERN,
            description="Extra prefix for object keys in the bucket, e.g. 'campaigns/summer'. Objects are "
            "stored under <keyPrefix>/<namespace>/<name>/<uid>/<predictionId>/<index>.<ext>. Part of the "
            "request: changing it starts a new generation.",
        ),
    ]
    deletion_policy: Annotated[
        DeletionPolicy,
        Field(
            default=DeletionPolicy.RETAIN,
            description="Retain (default) keeps the stored objects when this MediaGeneration is deleted, and "
            "the outputs of a generation an edit replaced; Delete removes them in both cases. Changing it "
            "changes nothing else.",
        ),
    ]


class RetrySpec(_Model):
    """Automatic retries with exponential backoff for transient failures."""

    limit: Annotated[
        int,
        Field(
            default=3,
            ge=0,
            le=10,
            description="How many times a transient failure (rate limiting, 5xx, network or storage errors, "
            "retryable model failures such as an interrupted prediction) is retried before the generation "
            "fails. 0 disables retries.",
        ),
    ]
    backoff_seconds: Annotated[
        int,
        Field(default=5, ge=1, le=3600, description="Delay before the first retry; doubles on each retry."),
    ]
    max_backoff_seconds: Annotated[
        int,
        Field(default=300, ge=1, le=86400, description="Upper bound of the delay between two retries."),
    ]


REQUEST_FIELDS = ("model", "deployment", "input", "output.keyPrefix")
"""The spec fields that make up the request: changing any of them asks for a new generation (a new prediction).
The rest (retry, timeoutSeconds, ttlSecondsAfterFinished, output.deletionPolicy, cancel) say how the request is
handled and apply to the generation in place."""


class MediaGenerationSpec(_Model):
    """The request: which model to run, with which input, and how to handle the result.

    Editing the request (model, deployment, input, output.keyPrefix) starts a new generation of the resource: the
    prediction in flight is canceled and a new one created; the other fields apply in place."""

    model: Annotated[
        str | None,
        Field(
            default=None,
            max_length=256,
            pattern=MODEL_REF_PATTERN,
            description="The Replicate model to run: 'owner/name' (an official model, latest version) or "
            "'owner/name:version'. Exactly one of model and deployment must be set.",
        ),
    ]
    deployment: Annotated[
        str | None,
        Field(
            default=None,
            max_length=256,
            pattern=DEPLOYMENT_REF_PATTERN,
            description="A Replicate deployment to run, 'owner/name'. Exactly one of model and deployment must be set.",
        ),
    ]
    input: Annotated[
        dict[str, Any],
        Field(
            default_factory=dict,
            max_length=MAX_INPUT_PROPERTIES,
            description="The model's input, passed to Replicate as is (e.g. prompt, width, height). Values "
            f"are strings (at most {MAX_INPUT_STRING_BYTES} characters), numbers, booleans or lists of them "
            f"(at most {MAX_INPUT_LIST_ITEMS} items); at most {MAX_INPUT_PROPERTIES} keys, and at most "
            f"{MAX_INPUT_TOTAL_BYTES} bytes in all, counting each key's UTF-8 bytes plus 4, each string's plus 3, "
            "24 for each number or boolean and 2 for each list (about its size as compact JSON).",
        ),
    ]
    output: Annotated[
        OutputSpec,
        Field(default_factory=OutputSpec, description="Where and how the generated media is stored."),
    ]
    retry: Annotated[
        RetrySpec,
        Field(default_factory=RetrySpec, description="Retries with exponential backoff for transient failures."),
    ]
    timeout_seconds: Annotated[
        int,
        Field(
            default=3600,
            ge=10,
            le=86400,
            description="Deadline for the whole generation, from the start of the first attempt. On expiry the "
            "prediction is canceled and the generation fails with reason DeadlineExceeded. Also sent to "
            "Replicate as Cancel-After.",
        ),
    ]
    ttl_seconds_after_finished: Annotated[
        int | None,
        Field(
            default=None,
            ge=0,
            le=31536000,
            description="Delete this MediaGeneration this many seconds after it finished (succeeded, failed or "
            "canceled), like a Job's ttlSecondsAfterFinished. Unset keeps it forever.",
        ),
    ]
    cancel: Annotated[
        bool,
        Field(
            default=False,
            description="Set to true to cancel the current generation (and its running prediction). It holds "
            "for the request as it is: a later change of the request with cancel false starts a new generation, "
            "while setting it back to false alone changes nothing.",
        ),
    ]


def request_hash(spec: MediaGenerationSpec) -> str:
    """A digest of the request a spec makes (:data:`REQUEST_FIELDS`): equal for specs that ask for the same
    prediction, whatever the key order of the manifest or the fields that only say how to handle it."""
    canonical = {
        "model": spec.model,
        "deployment": spec.deployment,
        "input": spec.input,
        "keyPrefix": spec.output.key_prefix,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:REQUEST_HASH_LENGTH]


class Phase(StrEnum):
    """One word for where a generation is; derived from the Succeeded condition and progress."""

    PENDING = "Pending"
    RUNNING = "Running"
    UPLOADING = "Uploading"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED})


class Condition(_Model):
    """A standard Kubernetes condition."""

    type: Annotated[str, Field(description="Succeeded, Ready, Reconciling or Stalled.")]
    status: Annotated[Literal["True", "False", "Unknown"], Field(description="True, False or Unknown.")]
    reason: Annotated[str, Field(default="", description="One CamelCase word saying why, for machines and alerts.")]
    message: Annotated[str, Field(default="", description="What happened, for people.")]
    last_transition_time: Annotated[
        dt.datetime | None, Field(default=None, description="When the status last changed.")
    ]
    observed_generation: Annotated[
        int | None,
        Field(default=None, description="The metadata.generation this condition was computed from."),
    ]


class PredictionStatus(_Model):
    """The Replicate prediction of the current attempt."""

    id: Annotated[str, Field(description="Replicate's prediction id.")]
    status: Annotated[
        str,
        Field(
            default="",
            description="Replicate's status when last seen: starting, processing, succeeded, failed, "
            "canceled or aborted.",
        ),
    ]
    attempt: Annotated[int, Field(default=1, ge=1, description="Which attempt created this prediction.")]
    created_at: Annotated[dt.datetime | None, Field(default=None, description="When Replicate created it.")]
    started_at: Annotated[dt.datetime | None, Field(default=None, description="When the model started running.")]
    completed_at: Annotated[dt.datetime | None, Field(default=None, description="When it finished.")]
    predict_time_seconds: Annotated[
        float | None, Field(default=None, description="Compute time Replicate billed, in seconds.")
    ]


class StoredOutput(_Model):
    """One generated file, as stored in the bucket."""

    url: Annotated[str, Field(description="Where to fetch it: a public URL or a presigned URL.")]
    key: Annotated[str, Field(description="The object key in the bucket.")]
    content_type: Annotated[str, Field(default="", description="The stored Content-Type.")]
    size_bytes: Annotated[int, Field(default=0, ge=0, description="Size in bytes.")]
    sha256: Annotated[str, Field(default="", description="Hex SHA-256 of the stored bytes.")]


class MediaGenerationStatus(_Model):
    """What the operator observed and did. Written only by the operator; until its first write, the API server
    shows a default: phase Pending, conditions Reconciling=True, Ready=False, Succeeded=Unknown."""

    phase: Annotated[
        Phase | None,
        Field(default=None, description="Pending, Running, Uploading, Succeeded, Failed or Canceled."),
    ]
    reason: Annotated[str, Field(default="", description="Reason of the current phase, as in the condition.")]
    message: Annotated[str, Field(default="", description="Human-readable detail about the current phase.")]
    conditions: Annotated[
        list[Condition],
        Field(
            default_factory=list,
            description="Standard conditions. Succeeded is Unknown while in flight and True or False at the "
            "end: wait with 'kubectl wait --for=condition=Succeeded'. Beside it, the conditions kstatus (Flux, "
            "kpt) reads: in flight Reconciling=True and Ready=False; Succeeded: Ready=True; Failed (or canceled "
            "by anything but spec.cancel): Stalled=True and Ready=False; canceled by spec.cancel: Succeeded=False "
            "alone. Reconciling and Stalled are present only while true.",
        ),
    ]
    observed_generation: Annotated[
        int | None,
        Field(default=None, description="The metadata.generation this status describes."),
    ]
    request_hash: Annotated[
        str | None,
        Field(
            default=None,
            max_length=64,
            description="Digest of the request this status describes (spec.model, deployment, input and "
            "output.keyPrefix): when the spec's differs, the request was edited and a new generation is due.",
        ),
    ]
    first_attempt: Annotated[
        int | None,
        Field(
            default=None,
            ge=1,
            description="The attempt this request started with. Attempts are numbered across the resource's "
            "requests, so every prediction it ever made has a number of its own.",
        ),
    ]
    start_time: Annotated[
        dt.datetime | None, Field(default=None, description="When the first attempt of this request started.")
    ]
    completion_time: Annotated[
        dt.datetime | None, Field(default=None, description="When the generation reached a final phase.")
    ]
    attempts: Annotated[
        int, Field(default=0, ge=0, description="The number of the last attempt: predictions started, all requests.")
    ]
    retries: Annotated[int, Field(default=0, ge=0, description="How much of spec.retry.limit this request has used.")]
    next_retry_time: Annotated[
        dt.datetime | None, Field(default=None, description="When the next retry is due, while waiting.")
    ]
    prediction: Annotated[
        PredictionStatus | None,
        Field(default=None, description="The current attempt's Replicate prediction."),
    ]
    progress: Annotated[
        int | None,
        Field(default=None, ge=0, le=100, description="Best-effort progress in percent, from the model's logs."),
    ]
    outputs: Annotated[
        list[StoredOutput], Field(default_factory=list, description="Every stored output, in model order.")
    ]
    url: Annotated[str, Field(default="", description="URL of the first output; empty until Succeeded.")]
    url_expires_at: Annotated[
        dt.datetime | None,
        Field(default=None, description="When the URLs expire, for presigned URLs; unset for public URLs."),
    ]


class MediaGeneration(_Model):
    """One AI media generation: a Replicate model run whose output is stored in R2."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    api_version: Literal["mediagen.fleek.xyz/v1alpha1"] = "mediagen.fleek.xyz/v1alpha1"
    kind: Literal["MediaGeneration"] = "MediaGeneration"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: MediaGenerationSpec
    status: MediaGenerationStatus = Field(default_factory=MediaGenerationStatus)
