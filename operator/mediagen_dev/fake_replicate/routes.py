"""Endpoint bodies of the fake Replicate API (docs/replicate.md#endpoints). The dispatcher in :mod:`.fake` has
already done auth, faults and rate limits; each handler turns a request into a Starlette response."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mediagen_dev.fake_replicate import problems
from mediagen_dev.fake_replicate.prediction import FakePrediction
from mediagen_dev.fake_replicate.problems import Canned
from mediagen_dev.fake_replicate.script import ModelScript, resolve, validate_input, version_for
from mediagen_dev.fake_replicate.timefmt import PRECISIONS, parse_iso, rfc3339

if TYPE_CHECKING:
    from mediagen_dev.fake_replicate.fake import FakeReplicate

Handler = Callable[["FakeReplicate", Request, dict[str, str]], Awaitable[Response]]
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")
_CREATE_FIELDS = frozenset({"input", "webhook", "webhook_completed", "webhook_events_filter", "stream"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_PREFER = re.compile(r"^wait(?:=([1-9]|[1-9][0-9]|60))?$")


class _Reject(Exception):
    def __init__(self, canned: Canned) -> None:
        super().__init__(canned.status)
        self.canned = canned


def _error(canned: Canned) -> Response:
    return Response(canned.body, status_code=canned.status, media_type=canned.content_type, headers=canned.headers)


async def handle(fake: FakeReplicate, name: str, request: Request, params: dict[str, str]) -> Response:
    """Run the handler for route ``name``."""
    try:
        return await _HANDLERS[name](fake, request, params)
    except _Reject as rejected:
        return _error(rejected.canned)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _json(fake: FakeReplicate, request: Request, prediction: FakePrediction, status: int = 200) -> Response:
    with fake.lock:
        body = prediction.to_json(fake.clock(), _base(request), fake.config)
    return JSONResponse(body, status_code=status)


def _invalid(field: str, kind: str, description: str) -> _Reject:
    return _Reject(problems.validation_failed([{"type": kind, "field": field, "description": description}]))


async def _create(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError:
        raise _Reject(problems.problem(400, "Request body is not valid JSON.", "Bad request")) from None
    if not isinstance(payload, dict):
        raise _invalid("", "type", "Invalid type. Expected: object, given: " + type(payload).__name__)
    path = request.url.path
    deployment: str | None = None
    with fake.lock:
        if path.startswith("/v1/models/"):
            model, script = _official_model(fake, f"{params['owner']}/{params['name']}")
            allowed = _CREATE_FIELDS
        elif path.startswith("/v1/deployments/"):
            deployment = f"{params['owner']}/{params['name']}"
            if deployment not in fake.deployments or fake.deployments[deployment] not in fake.models:
                raise _Reject(problems.not_found_resource())
            model = fake.deployments[deployment]
            script = fake.models[model]
            allowed = _CREATE_FIELDS
        else:
            model, script = _by_version(fake, payload)
            allowed = _CREATE_FIELDS | {"version"}
    for key in payload:
        if key not in allowed:
            raise _invalid("", "additional_property_not_allowed", f"Additional property {key} is not allowed")
    model_input = payload.get("input")
    if not isinstance(model_input, dict):
        raise _invalid("", "required", "input is required")
    try:
        resolved = resolve(script, model_input)
    except (ValueError, TypeError, KeyError) as exc:
        raise _invalid("input._fake", "fake_marker", str(exc)) from None
    invalid = validate_input(resolved, model_input)
    if invalid:
        raise _Reject(problems.validation_failed(invalid))
    webhook, events = _webhook_fields(payload)
    cancel_after = _cancel_after(request.headers.get("cancel-after"))

    with fake.lock:
        now = fake.clock()
        seq = len(fake.predictions)
        prediction = FakePrediction(
            id=fake.new_id(),
            model=model,
            version=version_for(model, script),
            input=model_input,
            script=resolved,
            created=now,
            file_token=fake.new_token(),
            precision=PRECISIONS[seq % len(PRECISIONS)],
            webhook=webhook,
            webhook_events_filter=events,
            deployment=deployment,
            deadline=None if cancel_after is None else now + cancel_after,
            seq=seq,
        )
        fake.predictions[prediction.id] = prediction
        fake.by_file_token[prediction.file_token] = prediction.id

    prefer = request.headers.get("prefer")
    if prefer is not None and (wanted := _PREFER.match(prefer.strip())) is not None:
        hold = min(float(wanted.group(1) or 60), fake.config.sync_wait_cap)
        await _hold(fake, prediction, hold)
        response = _json(fake, request, prediction, 201)
        response.headers["Preference-Applied"] = prefer.strip()
        return response
    return _json(fake, request, prediction, 201)


def _official_model(fake: FakeReplicate, model: str) -> tuple[str, ModelScript]:
    if model not in fake.models:
        if not fake.auto_models or ":" in model:
            raise _Reject(problems.not_found_resource())
        fake.models[model] = ModelScript()
    script = fake.models[model]
    if not script.official:
        raise _Reject(problems.invalid_version())
    return model, script


def _by_version(fake: FakeReplicate, payload: dict[str, Any]) -> tuple[str, ModelScript]:
    version = payload.get("version")
    if not isinstance(version, str) or not version:
        raise _invalid("", "required", "version is required")
    if "/" in version:
        name, _, wanted = version.partition(":")
        script = fake.models.get(name)
        if script is None or (wanted and wanted != version_for(name, script)) or (not wanted and not script.official):
            raise _Reject(problems.invalid_version())
        return name, script
    for name, script in fake.models.items():
        if version_for(name, script) == version:
            return name, script
    raise _Reject(problems.invalid_version())


def _webhook_fields(payload: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    webhook = payload.get("webhook", payload.get("webhook_completed"))
    if webhook is not None and (not isinstance(webhook, str) or not webhook.startswith(("https://", "http://"))):
        raise _invalid("webhook", "format", "Does not match format 'uri'")
    events = payload.get("webhook_events_filter")
    if events is not None:
        if not isinstance(events, list) or any(e not in WEBHOOK_EVENTS for e in events):
            raise _invalid("webhook_events_filter.0", "enum", "Must be one of: " + ", ".join(WEBHOOK_EVENTS))
        events = list(events)
    return webhook, events


def _cancel_after(header: str | None) -> float | None:
    """Seconds from a Go-style duration (``30s``, ``1m``, ``1h30m``, ``1500ms``)."""
    if header is None:
        return None
    text = header.strip()
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise _Reject(problems.problem(400, f"Invalid Cancel-After duration: {text!r}", "Bad request"))
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


async def _hold(fake: FakeReplicate, prediction: FakePrediction, seconds: float) -> None:
    """Sync mode: wait (real time) for a terminal state or ``seconds``, whichever first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with fake.lock:
            if prediction.is_terminal(fake.clock(), fake.config):
                return
        await asyncio.sleep(0.01)


def _prediction(fake: FakeReplicate, prediction_id: str) -> FakePrediction:
    with fake.lock:
        found = fake.predictions.get(prediction_id)
    if found is None:
        raise _Reject(problems.not_found_prediction())
    return found


async def _get(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    return _json(fake, request, _prediction(fake, params["id"]))


async def _cancel(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    prediction = _prediction(fake, params["id"])
    fake.cancel(prediction.id)
    return _json(fake, request, prediction)


def _cursor(direction: str, prediction: FakePrediction) -> str:
    raw = json.dumps([direction, prediction.created, prediction.seq]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, tuple[float, int]]:
    try:
        direction, created, seq = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return str(direction), (float(created), int(seq))
    except (ValueError, TypeError):
        raise _Reject(problems.problem(400, "Invalid cursor.", "Bad request")) from None


async def _list(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    query = request.query_params
    bounds: dict[str, float] = {}
    for name in ("created_after", "created_before"):
        if (value := query.get(name)) is not None:
            try:
                bounds[name] = parse_iso(value)
            except ValueError:
                raise _invalid(name, "format", "Does not match format 'date-time'") from None
    source = query.get("source")
    with fake.lock:
        items = [
            p
            for p in fake.predictions.values()
            if p.created > bounds.get("created_after", float("-inf"))
            and p.created < bounds.get("created_before", float("inf"))
            and (source is None or p.source == source)
        ]
    items.sort(key=lambda p: (p.created, p.seq), reverse=True)
    size = fake.config.page_size
    cursor = query.get("cursor")
    if cursor is None:
        page = items[:size]
    else:
        direction, key = _decode_cursor(cursor)
        if direction == "n":
            page = [p for p in items if (p.created, p.seq) < key][:size]
        else:
            page = [p for p in items if (p.created, p.seq) > key][-size:]
    base = f"{_base(request)}{request.url.path}"
    kept = [(k, v) for k, v in query.multi_items() if k != "cursor"]

    def link(direction: str, anchor: FakePrediction) -> str:
        return f"{base}?{urlencode([*kept, ('cursor', _cursor(direction, anchor))])}"

    older = bool(page) and items.index(page[-1]) < len(items) - 1
    newer = bool(page) and items.index(page[0]) > 0
    with fake.lock:
        now = fake.clock()
        results = [p.to_json(now, _base(request), fake.config) for p in page]
    return JSONResponse(
        {
            "next": link("n", page[-1]) if older else None,
            "previous": link("p", page[0]) if newer else None,
            "results": results,
        }
    )


async def _secret(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    return JSONResponse({"key": fake.webhook_secret})


_OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "url": {"type": "string", "format": "uri", "title": "Output"},
    "list": {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"},
    "data": {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"},
    "object": {"type": "object", "title": "Output", "additionalProperties": {"type": "string", "format": "uri"}},
}


async def _version(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    model = f"{params['owner']}/{params['name']}"
    with fake.lock:
        script = fake.models.get(model)
    if script is None or params["version"] != version_for(model, script):
        raise _Reject(problems.not_found_resource())
    inputs = {"type": "object", "title": "Input", "required": list(script.required_inputs), "properties": {}}
    return JSONResponse(
        {
            "id": params["version"],
            "created_at": rfc3339(1_717_000_000.0, 6),
            "cog_version": script.cog_version,
            "openapi_schema": {
                "openapi": "3.0.2",
                "info": {"title": "Cog", "version": "0.1.0"},
                "components": {
                    "schemas": {
                        "Input": inputs,
                        "Output": _OUTPUT_SCHEMAS.get(script.output, {"title": "Output"}),
                    }
                },
            },
        }
    )


async def _file(fake: FakeReplicate, request: Request, params: dict[str, str]) -> Response:
    with fake.lock:
        prediction_id = fake.by_file_token.get(params["token"])
        prediction = fake.predictions.get(prediction_id) if prediction_id else None
        now = fake.clock()
        servable = (
            prediction is not None
            and prediction.timeline(now, fake.config).status == "succeeded"
            and not prediction.data_removed(now, fake.config)
        )
    file = prediction.file(params["filename"]) if prediction is not None and servable else None
    if file is None:
        return Response(b"Not Found", status_code=404, media_type="text/plain")

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in file.iter_chunks():
            yield chunk
            if file.bytes_per_second:
                await asyncio.sleep(len(chunk) / file.bytes_per_second)  # a slow CDN: copies that take a while

    return StreamingResponse(chunks(), media_type=file.content_type, headers={"Content-Length": str(file.length)})


_HANDLERS: dict[str, Handler] = {
    "create": _create,
    "get": _get,
    "cancel": _cancel,
    "list": _list,
    "secret": _secret,
    "version": _version,
    "file": _file,
}
