"""How a fake model behaves: timing, logs, outcome and output, scripted per model or per request.

A :class:`ModelScript` is registered per ``owner/name``. A single request can override it with an input
marker, so one model serves many scenarios:

* ``"_fake": {...}`` in the prediction input, with any of the keys of :func:`apply_marker`, or
* a word ``fake:<preset>`` anywhere in the ``prompt`` (presets in :data:`PROMPT_PRESETS`, e.g. ``fake:nsfw``).

The marker stays in the echoed input, like any other input field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mediagen_dev.fake_replicate.files import OutputFile
from mediagen_dev.fake_replicate.logs import ONE_BAR, PLAIN_LINES, PRESETS, TWO_BARS, LogScript

OutputShape = Literal["url", "list", "object", "data", "null", "raw"]
"""``url``: one URL string; ``list``: list of URLs; ``object``: ``{file stem: URL}``; ``data``: list of
``data:`` URIs; ``null``: no output; ``raw``: ``ModelScript.raw_output`` verbatim (e.g. LLM tokens)."""

Outcome = Literal["succeeded", "failed", "aborted"]

NSFW = "NSFW content detected. Try running it again, or try a different prompt."
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 39.39 GiB total capacity)"
INTERRUPTED = "Prediction interrupted; please retry (code: PA)"
TIMED_OUT = "Prediction timed out."
BOOT_FAILED = "model container failed to boot and complete setup within 600 seconds"
ERRORS: dict[str, str] = {"nsfw": NSFW, "oom": OOM, "pa": INTERRUPTED, "timeout": TIMED_OUT, "boot": BOOT_FAILED}
"""Real error strings by short name; ``_fake.error`` accepts a short name or any literal text."""


@dataclass(frozen=True)
class ModelScript:
    """The behaviour of one fake model. Times are seconds of the fake's clock.

    ``queue_seconds=None`` keeps predictions ``starting`` forever. A ``processing_seconds`` longer than the
    fake's ``run_timeout`` ends ``failed`` with ``"Prediction timed out."`` at the timeout, like Replicate's
    30-minute limit. ``outcome="aborted"`` ends the prediction at the end of its queue time without starting
    (the status replicate 1.0.7 cannot parse)."""

    queue_seconds: float | None = 1.0
    processing_seconds: float = 3.0
    logs: LogScript = ONE_BAR
    outcome: Outcome = "succeeded"
    error: str = NSFW
    output: OutputShape = "list"
    files: tuple[OutputFile, ...] = (OutputFile(),)
    raw_output: Any = None
    official: bool = True
    """Official models accept ``POST /v1/models/{o}/{n}/predictions``; community ones answer 422 there."""
    version: str | None = None
    """The 64-hex version id; derived from the model name when ``None``."""
    required_inputs: tuple[str, ...] = ()
    input_maxima: Mapping[str, float] = field(default_factory=dict)
    """Upper bounds for numeric inputs; violations are 422 ``number_lte`` like real input validation."""
    cog_version: str = "0.13.6"


def version_for(model: str, script: ModelScript) -> str:
    """The version id a model's predictions report and the versions endpoint serves."""
    return script.version or hashlib.sha256(model.encode()).hexdigest()


PROMPT_PRESETS: dict[str, dict[str, Any]] = {
    "nsfw": {"outcome": "failed", "error": "nsfw"},
    "oom": {"outcome": "failed", "error": "oom"},
    "pa": {"outcome": "failed", "error": "pa"},
    "boot": {"outcome": "failed", "error": "boot", "queue_seconds": 600.0, "processing_seconds": 0.0},
    "timeout": {"processing_seconds": 1e9},
    "stuck": {"queue_seconds": None},
    "aborted": {"outcome": "aborted"},
    "null": {"output": "null"},
    "data": {"output": "data"},
    "url": {"output": "url"},
    "object": {"output": "object"},
}
_PROMPT_WORD = re.compile(r"\bfake:([a-z_]+)\b")


def resolve(script: ModelScript, model_input: Mapping[str, Any]) -> ModelScript:
    """The script for one request: the model's, overridden by prompt presets, then by ``_fake``."""
    prompt = model_input.get("prompt")
    if isinstance(prompt, str):
        for word in _PROMPT_WORD.findall(prompt):
            if word in PROMPT_PRESETS:
                script = apply_marker(script, PROMPT_PRESETS[word])
    marker = model_input.get("_fake")
    if isinstance(marker, Mapping):
        script = apply_marker(script, marker)
    return script


def apply_marker(script: ModelScript, marker: Mapping[str, Any]) -> ModelScript:
    """Override ``script`` with a JSON marker.

    Keys: ``queue_seconds`` (number or null = stuck), ``processing_seconds``, ``outcome``, ``error`` (short
    name from :data:`ERRORS` or literal text), ``output`` (an :data:`OutputShape`), ``raw_output``, ``logs``
    (a name from :data:`mediagen_dev.fake_replicate.logs.PRESETS`), ``files`` (list of
    ``{"name", "content_type", "size", "seed"}``). Unknown keys raise ``ValueError`` (a typo should fail loudly).
    """
    changes: dict[str, Any] = {}
    for key, value in marker.items():
        if key in {"queue_seconds", "processing_seconds", "outcome", "output", "raw_output"}:
            changes[key] = value
        elif key == "error":
            changes["error"] = ERRORS.get(str(value), str(value))
        elif key == "logs":
            changes["logs"] = PRESETS[str(value)]
        elif key == "files":
            changes["files"] = tuple(OutputFile(**dict(item)) for item in value)
        else:
            raise ValueError(f"unknown _fake key {key!r}")
    return dataclasses.replace(script, **changes)


def validate_input(script: ModelScript, model_input: Mapping[str, Any]) -> list[dict[str, str]]:
    """Replicate-style ``invalid_fields`` for ``model_input`` (empty when valid)."""
    problems: list[dict[str, str]] = []
    for name in script.required_inputs:
        if name not in model_input:
            problems.append({"type": "required", "field": "input", "description": f"{name} is required"})
    for name, maximum in script.input_maxima.items():
        value = model_input.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > maximum:
            problems.append(
                {
                    "type": "number_lte",
                    "field": f"input.{name}",
                    "description": f"Must be less than or equal to {maximum:g}",
                }
            )
    return problems


def demo_models() -> dict[str, ModelScript]:
    """A few realistic models for end-to-end runs: an official image model, a community SDXL with two
    bars and a required prompt, and an official video model with a 5 MB single-URL output."""
    return {
        "black-forest-labs/flux-schnell": ModelScript(queue_seconds=1, processing_seconds=2),
        "stability-ai/sdxl": ModelScript(official=False, logs=TWO_BARS, required_inputs=("prompt",)),
        "minimax/video-01": ModelScript(
            queue_seconds=5,
            processing_seconds=20,
            logs=PLAIN_LINES,
            output="url",
            files=(OutputFile("tmpuumvokey.mp4", "video/mp4", size=5 * 1024 * 1024),),
        ),
    }
