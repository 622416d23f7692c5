"""The aggregated API: the JSON API for every identity kube-apiserver authenticates, behind the cluster's endpoint.

Under ``/apis/gateway.mediagen.fleek.xyz/v1alpha1/namespaces/{namespace}/``: ``generate`` (POST: the body,
validation and ``Idempotency-Key`` of the standalone ``POST /generate``), ``generations/{name}/status`` (GET),
``generations`` (GET, paged like the standalone listing), ``generations/{name}`` (GET) and
``generations/{name}/cancel`` (POST). The status is a subresource of the generation, not ``status/{name}`` as in
the standalone API: kube-apiserver reads ``namespaces/<ns>/status`` as the Namespace's own status subresource and
authorizes (and refuses) the request as such before it ever reaches the gateway.

The caller is who kube-apiserver says (:mod:`mediagen.gateway.front_proxy`), and every request is authorized with a
SubjectAccessReview for the matching verb on ``mediagenerations`` in the namespace (create, get, list, patch): the
RBAC that governs ``kubectl`` governs this API. The service layer and the models are the standalone API's; answers
are Kubernetes-style objects (``apiVersion``, ``kind``, ``metadata``) around the same view, and errors are
``Status`` objects.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from mediagen.api.types import Phase
from mediagen.gateway.apigroup import GROUP_VERSION, KIND, LIST_KIND, PREFIX
from mediagen.gateway.auth import Tenant
from mediagen.gateway.cluster import AccessRequest, UserInfo
from mediagen.gateway.deps import DepsDep, require_json
from mediagen.gateway.front_proxy import Unauthenticated
from mediagen.gateway.resources import to_view
from mediagen.gateway.routes.generations import IdempotencyKey
from mediagen.gateway.schemas import MAX_NAME_LENGTH, NAME_PATTERN, GenerateRequest, GenerationView

# Bodies without a Content-Type are JSON here, as kube-apiserver takes them (`kubectl create --raw` sends none).
router = APIRouter(prefix=PREFIX, tags=["generations"], strict_content_type=False)

Namespace = Annotated[str, Path(description="The namespace.", pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)]
Name = Annotated[str, Path(description="The generation's name.", pattern=NAME_PATTERN, max_length=MAX_NAME_LENGTH)]


def get_caller(request: Request, deps: DepsDep) -> UserInfo:
    """Who kube-apiserver says is calling; 401 unless the request came through its proxy."""
    if deps.front_proxy is None:
        raise Unauthenticated("the aggregated API is not served here")
    return deps.front_proxy.authenticate(request.scope, request.scope.get("headers") or [])


CallerDep = Annotated[UserInfo, Depends(get_caller)]


async def _tenant(deps: DepsDep, caller: UserInfo, verb: str, namespace: str, name: str = "") -> Tenant:
    """The caller as a tenant of ``namespace``, once RBAC allowed ``verb`` there (403 naming both otherwise)."""
    await deps.authenticator.authorizer.require(AccessRequest(caller, verb, namespace, name))
    return Tenant(namespace=namespace, subject=f"user/{caller.username}", user=caller)


def _status_path(namespace: str, name: str) -> str:
    return f"{PREFIX}/namespaces/{namespace}/generations/{name}/status"


def as_object(view: GenerationView, namespace: str) -> dict[str, Any]:
    """A view as a Kubernetes-style object of this group (kubectl can print it)."""
    metadata: dict[str, Any] = {"name": view.id, "namespace": namespace}
    if view.created_at is not None:
        metadata["creationTimestamp"] = view.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    view.status_url = _status_path(namespace, view.id)
    return {"apiVersion": GROUP_VERSION, "kind": KIND, "metadata": metadata, **view.model_dump(mode="json")}


def json_unless_unstated(request: Request) -> None:
    """415 unless the body is JSON; no Content-Type means JSON, as kube-apiserver takes it (``kubectl create
    --raw`` sends none)."""
    if request.headers.get("content-type"):
        require_json(request)


@router.post(
    "/namespaces/{namespace}/generate",
    status_code=202,
    summary="Start a generation",
    dependencies=[Depends(json_unless_unstated)],
)
async def generate(
    namespace: Namespace,
    body: GenerateRequest,
    response: Response,
    deps: DepsDep,
    caller: CallerDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Create a MediaGeneration in the namespace (needs `create mediagenerations` there)."""
    tenant = await _tenant(deps, caller, "create", namespace)
    created = await deps.generations.create(tenant, body, idempotency_key)
    answer = as_object(to_view(created.body, ""), namespace)
    response.headers["Location"] = answer["statusUrl"]
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/namespaces/{namespace}/generations/{name}/status", summary="A generation's status")
async def get_status(namespace: Namespace, name: Name, deps: DepsDep, caller: CallerDep) -> dict[str, Any]:
    """Phase, progress, outputs, the error if it failed (needs `get mediagenerations`)."""
    tenant = await _tenant(deps, caller, "get", namespace, name)
    return as_object(to_view(await deps.generations.get(tenant, name), ""), namespace)


@router.get("/namespaces/{namespace}/generations/{name}", summary="A generation (the same as its status)")
async def get_generation(namespace: Namespace, name: Name, deps: DepsDep, caller: CallerDep) -> dict[str, Any]:
    """The same as generations/{name}/status."""
    return await get_status(namespace, name, deps, caller)


@router.get("/namespaces/{namespace}/generations", summary="List generations")
async def list_generations(
    namespace: Namespace,
    deps: DepsDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many (never more than 100).")] = 50,
    continue_: Annotated[str | None, Query(alias="continue", max_length=4096)] = None,
    phase: Annotated[Phase | None, Query(description="Only generations in this phase.")] = None,
) -> dict[str, Any]:
    """The namespace's generations in name order, a page at a time (needs `list mediagenerations`)."""
    tenant = await _tenant(deps, caller, "list", namespace)
    page = await deps.generations.list_page(tenant, limit=limit, continue_token=continue_ or "", phase=phase)
    items = [as_object(to_view(item, ""), namespace) for item in page.items]
    metadata = {"continue": page.continue_token} if page.continue_token else {}
    return {"apiVersion": GROUP_VERSION, "kind": LIST_KIND, "metadata": metadata, "items": items}


@router.post("/namespaces/{namespace}/generations/{name}/cancel", status_code=202, summary="Cancel a generation")
async def cancel(
    namespace: Namespace, name: Name, response: Response, deps: DepsDep, caller: CallerDep
) -> dict[str, Any]:
    """Set `cancel: true` (needs `patch mediagenerations`); 200 when it was finished or canceling already."""
    tenant = await _tenant(deps, caller, "patch", namespace, name)
    body, changed = await deps.generations.cancel(tenant, name)
    response.status_code = 202 if changed else 200
    return as_object(to_view(body, ""), namespace)
