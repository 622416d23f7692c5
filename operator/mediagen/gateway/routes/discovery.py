"""Discovery and OpenAPI v3 of the aggregated API, as kube-apiserver's aggregator reads them.

The aggregator asks ``/apis`` for aggregated discovery first; answered with plain JSON it falls back to the legacy
``/apis/<group>/<version>`` resource list, which is all this serves (kubectl api-resources then lists the resources).
``/openapi/v3`` names one document, for the group version; kube-apiserver merges it into its own ``/openapi/v3``.
Discovery documents are public within the cluster (kube-apiserver's ``system:discovery`` role), so they need the
proxy's certificate but no further authorization.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from mediagen.gateway.apigroup import API_GROUP, API_VERSION, GROUP_VERSION, KIND, PREFIX
from mediagen.gateway.routes import aggregated
from mediagen.gateway.routes.aggregated import CallerDep

router = APIRouter(include_in_schema=False)

_RESOURCES: list[dict[str, Any]] = [
    {"name": "generate", "verbs": ["create"]},
    # No category: `kubectl get mediagen` would list every generation twice, as a MediaGeneration and as this.
    {"name": "generations", "singularName": "generation", "verbs": ["get", "list"]},
    {"name": "generations/status", "verbs": ["get"]},
    {"name": "generations/cancel", "verbs": ["create"]},
]
_OPENAPI_PATH = f"apis/{GROUP_VERSION}"


def _group() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": API_VERSION}
    return {"name": API_GROUP, "versions": [version], "preferredVersion": version}


@router.get("/apis")
async def group_list(_caller: CallerDep) -> dict[str, Any]:
    """The one group served here (legacy discovery: the aggregator falls back to the resource list)."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]}


@router.get(f"/apis/{API_GROUP}")
async def group(_caller: CallerDep) -> dict[str, Any]:
    """The group and its version."""
    return {"kind": "APIGroup", "apiVersion": "v1", **_group()}


@router.get(PREFIX)
async def resources(_caller: CallerDep) -> dict[str, Any]:
    """The resources of the group version, as kubectl api-resources lists them."""
    listed = [{"singularName": "", "namespaced": True, "kind": KIND, **resource} for resource in _RESOURCES]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": listed}


@cache
def openapi_document() -> str:
    """The OpenAPI v3 document of the aggregated routes (the models and descriptions of the standalone API)."""
    spec = get_openapi(
        title="mediagen aggregated API",
        version=API_VERSION,
        openapi_version="3.0.0",
        description="MediaGenerations through kube-apiserver: the gateway's JSON API for every cluster identity.",
        routes=aggregated.router.routes,
    )
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


@router.get("/openapi/v3")
async def openapi_paths(_caller: CallerDep) -> dict[str, Any]:
    """Where the group version's document is; the hash changes with its content, as kube-apiserver expects."""
    digest = hashlib.sha256(openapi_document().encode()).hexdigest()[:32].upper()
    return {"paths": {_OPENAPI_PATH: {"serverRelativeURL": f"/openapi/v3/{_OPENAPI_PATH}?hash={digest}"}}}


@router.get(f"/openapi/v3/{_OPENAPI_PATH}")
async def openapi_spec(request: Request, _caller: CallerDep) -> JSONResponse:
    """The group version's OpenAPI v3 document."""
    headers = {"Cache-Control": "no-cache, private"}
    if request.query_params.get("hash"):
        headers["Cache-Control"] = "public, immutable"
    return JSONResponse(json.loads(openapi_document()), headers=headers)
