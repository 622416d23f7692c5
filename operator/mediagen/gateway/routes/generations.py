"""The JSON API: ``POST /generate``, ``GET /status/{id}``, ``GET /generations``, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from mediagen.api.types import Phase
from mediagen.gateway.deps import GenerationsDep, TenantDep, get_tenant, reject_unknown_query, require_json
from mediagen.gateway.problems import PROBLEM_JSON, Problem
from mediagen.gateway.resources import MAX_IDEMPOTENCY_KEY_LENGTH, to_view
from mediagen.gateway.schemas import MAX_NAME_LENGTH, NAME_PATTERN, GenerateRequest, GenerationList, GenerationView

router = APIRouter(tags=["generations"], dependencies=[Depends(reject_unknown_query)])

GenerationId = Annotated[
    str,
    Path(
        description="The generation's id (as returned by POST /generate).",
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes retries safe: the same key with the same body returns the generation the first "
        "request created; with a different body, 409. Keys are remembered as long as the generation exists.",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        pattern=r"^[!-~]([ -~]*[!-~])?$",
    ),
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "Malformed JSON or request parameter.",
        401: "Missing, malformed, unknown or revoked token.",
        404: "No such generation (for this tenant).",
        409: "The Idempotency-Key or name was already used for a different request.",
        410: "The continue token expired.",
        413: "The body is too large.",
        415: "The body is not JSON.",
        422: "A field is invalid; `errors` names it.",
        429: "Too many requests with this token, or (POST /generate) the tenant's generations in flight are at "
        "its quota; retry after the Retry-After header's seconds.",
        503: "Kubernetes is unavailable; retry.",
    }
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": described[code], "content": {PROBLEM_JSON: {}}} for code in codes
    }
    if 429 in responses:
        responses[429]["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return responses


def _status_url(request: Request, name: str) -> str:
    return str(request.url_for("get_status", id=name))


@router.post(
    "/generate",
    status_code=202,
    summary="Start a generation",
    response_description="Accepted; poll the statusUrl (also in the Location header).",
    dependencies=[Depends(get_tenant), Depends(require_json)],
    responses=_problems(400, 401, 409, 413, 415, 422, 429, 503),
)
async def generate(
    request: Request,
    response: Response,
    body: GenerateRequest,
    tenant: TenantDep,
    generations: GenerationsDep,
    idempotency_key: IdempotencyKey = None,
) -> GenerationView:
    """Create a MediaGeneration in the caller's namespace. Retrying with the same Idempotency-Key (or name) and
    body returns the same generation, with the `Idempotent-Replayed: true` header."""
    created = await generations.create(tenant, body, idempotency_key)
    view = to_view(created.body, "")
    view.status_url = _status_url(request, view.id)
    response.headers["Location"] = view.status_url
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return view


@router.get("/status/{id}", summary="A generation's status", responses=_problems(401, 404, 422, 429, 503))
async def get_status(
    request: Request, id: GenerationId, tenant: TenantDep, generations: GenerationsDep
) -> GenerationView:
    """Phase, progress, outputs and their URLs, the error if it failed, and the conditions."""
    return to_view(await generations.get(tenant, id), _status_url(request, id))


@router.get(
    "/generations/{id}", summary="A generation (same as /status/{id})", responses=_problems(401, 404, 422, 429, 503)
)
async def get_generation(
    request: Request, id: GenerationId, tenant: TenantDep, generations: GenerationsDep
) -> GenerationView:
    """The same as GET /status/{id}."""
    return to_view(await generations.get(tenant, id), _status_url(request, id))


@router.get(
    "/generations",
    summary="List generations",
    response_model=GenerationList,
    responses=_problems(400, 401, 410, 422, 429, 503),
)
async def list_generations(
    request: Request,
    tenant: TenantDep,
    generations: GenerationsDep,
    limit: Annotated[
        int, Query(ge=1, le=500, description="At most this many items (and never more than 100 in one page).")
    ] = 50,
    continue_: Annotated[
        str | None, Query(alias="continue", max_length=4096, description="From the previous page's continue.")
    ] = None,
    phase: Annotated[Phase | None, Query(description="Only generations in this phase.")] = None,
) -> Response:
    """The caller's generations in id order, a page at a time: follow `continue` until it is null."""
    page = await generations.list_page(tenant, limit=limit, continue_token=continue_ or "", phase=phase)
    items = [to_view(item, "") for item in page.items]
    for item in items:
        item.status_url = _status_url(request, item.id)
    # Straight to JSON bytes: a page of 100 large inputs dumped to Python objects first cost the gateway as much
    # memory again as the page itself.
    listing = GenerationList(items=items, continue_=page.continue_token or None)
    return Response(listing.model_dump_json(by_alias=True), media_type="application/json")


async def _cancel(
    request: Request, response: Response, id: str, tenant: TenantDep, generations: GenerationsDep
) -> GenerationView:
    body, changed = await generations.cancel(tenant, id)
    # 202: the operator cancels asynchronously; 200: nothing to do (finished, or already canceling).
    response.status_code = 202 if changed else 200
    return to_view(body, _status_url(request, id))


@router.post(
    "/generations/{id}/cancel",
    summary="Cancel a generation",
    status_code=202,
    responses={
        200: {"description": "Already finished or canceling; nothing changed."},
        **_problems(401, 404, 422, 429, 503),
    },
)
async def cancel_generation(
    request: Request, response: Response, id: GenerationId, tenant: TenantDep, generations: GenerationsDep
) -> GenerationView:
    """Set `cancel: true` on the generation; the operator cancels the prediction and ends it Canceled."""
    return await _cancel(request, response, id, tenant, generations)


@router.delete(
    "/generations/{id}",
    summary="Cancel a generation (same as POST /generations/{id}/cancel)",
    status_code=202,
    responses={
        200: {"description": "Already finished or canceling; nothing changed."},
        **_problems(401, 404, 422, 429, 503),
    },
)
async def delete_generation(
    request: Request, response: Response, id: GenerationId, tenant: TenantDep, generations: GenerationsDep
) -> GenerationView:
    """Cancels; the resource and its stored outputs are kept (its ttlSecondsAfterFinished removes it)."""
    return await _cancel(request, response, id, tenant, generations)
