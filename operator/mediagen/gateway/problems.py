"""Errors as RFC 9457 ``application/problem+json``, each naming the offending field where there is one (in the
aggregated API, the same errors as Kubernetes ``Status`` objects: :mod:`mediagen.gateway.kube_status`).

Every error path of the gateway ends here: request validation (400 malformed JSON, 422 invalid fields), HTTP
errors (401, 404, 405, 413, 415, ...), the cluster layer's errors (404, 409, 410, 422 from the API server, 503
when it is unreachable or the gateway lacks permission) and, last, anything unexpected (500, with no detail).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mediagen.gateway import kube_status
from mediagen.gateway.apigroup import is_aggregated_path
from mediagen.gateway.auth import AuthError, ReviewsThrottled
from mediagen.gateway.authorization import AccessDenied
from mediagen.gateway.cluster import (
    AlreadyExists,
    BadRequest,
    ClusterError,
    Expired,
    Forbidden,
    Invalid,
    NotFound,
    TooLarge,
    Unavailable,
)
from mediagen.gateway.front_proxy import Unauthenticated

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://mediagen.fleek.xyz/problems/"
RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    """One offending field."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    field: str = Field(description="Dotted path of the field in the body (e.g. input.prompt), or the parameter.")
    location: str = Field(alias="in", description="body, query, path or header.")
    pointer: str = Field(description="JSON Pointer to the field within its location, e.g. /input/prompt.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = ""
    instance: str = Field(default="", description="The request path.")
    errors: list[FieldError] = Field(default_factory=list, description="The offending fields, if any.")


class ProblemError(Exception):
    """Raise to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def pointer(path: Iterable[str | int]) -> str:
    """A JSON Pointer (RFC 6901) for ``path``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def body_field(path: Sequence[str | int], message: str) -> FieldError:
    """A :class:`FieldError` for ``path`` in the request body."""
    return FieldError(field=".".join(map(str, path)) or "body", location="body", pointer=pointer(path), message=message)


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem+json response (a ``Status`` object in the aggregated API)."""
    if is_aggregated_path(request.url.path):
        # kubectl prints each cause as "<field>: <message>": a message that names its field already would do twice.
        causes = [{"field": e.field, "message": e.message.removeprefix(e.field).lstrip(": ")} for e in errors]
        return kube_status.status_response(status, detail, causes=causes, headers=headers)
    problem = Problem(
        type=TYPE_BASE + kind,
        title=_title(status),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=list(errors),
    )
    return JSONResponse(
        problem.model_dump(mode="json"), status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def validation_errors(errors: Sequence[Any]) -> tuple[int, list[FieldError]]:
    """The status (400 for malformed JSON, else 422) and field errors of a RequestValidationError."""
    status = 422
    fields: list[FieldError] = []
    for error in errors:
        loc = tuple(error.get("loc") or ("body",))
        where = str(loc[0]) if loc[0] in ("body", "query", "path", "header", "cookie") else "body"
        path: tuple[str | int, ...] = tuple(loc[1:]) if where == str(loc[0]) else loc
        ctx = error.get("ctx") or {}
        message = str(error.get("msg") or "invalid")
        if error.get("type") == "json_invalid":
            status = 400
            position = f" at character {loc[1]}" if len(loc) > 1 else ""
            fields.append(
                FieldError(
                    field="body",
                    location="body",
                    pointer="",
                    message=f"the body is not valid JSON{position}: {ctx.get('error', 'decode error')}",
                )
            )
            continue
        if isinstance(ctx.get("path"), tuple | list):
            path = tuple(ctx["path"])  # a model-level rule naming its field (mediagen.gateway.schemas.field_error)
        if where == "body" and not path and error.get("type") == "missing":
            message = "a JSON object body is required"
        name = ".".join(str(p) for p in path) or where
        if where == "body" and error.get("type") == "extra_forbidden":
            message = f"unknown field {name!r}"
        fields.append(FieldError(field=name, location=where, pointer=pointer(path), message=message))
    return status, fields


def _summary(fields: Sequence[FieldError]) -> str:
    shown = "; ".join(f.message if f.message.startswith(f.field) else f"{f.field}: {f.message}" for f in fields[:5])
    more = f" (and {len(fields) - 5} more)" if len(fields) > 5 else ""
    return shown + more


def cluster_problem(err: ClusterError) -> ProblemError:
    """The problem for an error of the cluster layer, when the route has no better interpretation."""
    if isinstance(err, NotFound):
        return ProblemError(404, "not-found", "no such generation")
    if isinstance(err, AlreadyExists):
        return ProblemError(409, "conflict", "a generation with this name already exists")
    if isinstance(err, Invalid):
        fields = [
            body_field(tuple(c.field.removeprefix("spec.").split(".")) if c.field else (), c.message)
            for c in err.causes
        ]
        return ProblemError(422, "invalid", f"Kubernetes rejected the generation: {err.message}", errors=fields)
    if isinstance(err, TooLarge):
        return ProblemError(
            413,
            "content-too-large",
            "the generation is too large for Kubernetes to store",
            errors=[FieldError(field="input", location="body", pointer="/input", message="too large to store")],
        )
    if isinstance(err, Expired):
        return ProblemError(410, "continue-expired", "the continue token has expired; list again from the start")
    if isinstance(err, BadRequest):
        return ProblemError(
            400,
            "bad-request",
            "the request was refused by Kubernetes (a malformed continue token?)",
            errors=[FieldError(field="continue", location="query", pointer="", message="not a valid continue token")],
        )
    if isinstance(err, Forbidden):
        log.error("the gateway is not allowed to do this; check its RBAC: %s", err)
        return ProblemError(503, "not-permitted", "the gateway is not permitted to serve this request")
    if isinstance(err, Unavailable):
        log.warning("Kubernetes unavailable: %s", err)
    return ProblemError(
        503,
        "unavailable",
        "the Kubernetes API is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(request, exc.status, exc.kind, exc.detail, errors=exc.errors, headers=exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, fields = validation_errors(exc.errors())
        kind = "malformed-json" if status == 400 else "validation-error"
        return problem_response(request, status, kind, _summary(fields), errors=fields)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _title(exc.status_code)
        kind = _title(exc.status_code).lower().replace(" ", "-")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(request, exc.status_code, kind, detail, headers=headers)

    async def on_auth(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AuthError)
        challenge = 'Bearer realm="mediagen"' + ("" if exc.reason == "missing" else ', error="invalid_token"')
        return problem_response(request, 401, "unauthorized", exc.message, headers={"WWW-Authenticate": challenge})

    async def on_unauthenticated(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Unauthenticated)
        return problem_response(request, 401, "unauthorized", exc.message)

    async def on_denied(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AccessDenied)
        return problem_response(request, 403, "forbidden", exc.message)

    async def on_reviews_throttled(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ReviewsThrottled)
        seconds = str(max(1, math.ceil(exc.retry_after)))
        return problem_response(request, 429, "rate-limited", str(exc), headers={"Retry-After": seconds})

    async def on_cluster(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ClusterError)
        return await on_problem(request, cluster_problem(exc))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(request, 500, "internal", "an unexpected error occurred")

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(AccessDenied, on_denied)
    app.add_exception_handler(Unauthenticated, on_unauthenticated)
    app.add_exception_handler(ReviewsThrottled, on_reviews_throttled)
    app.add_exception_handler(ClusterError, on_cluster)
    app.add_exception_handler(Exception, on_unexpected)
