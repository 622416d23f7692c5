"""Generate the MediaGeneration CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema: every node typed, no
``$ref``/``anyOf``/``title``, no ``additionalProperties`` beside ``properties``. This module converts one
into the other and adds what JSON Schema cannot say: CEL rules, list-map keys, printer columns.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from mediagen.api import types
from mediagen.api.conditions import initial_status

CRD_NAME = f"{types.PLURAL}.{types.GROUP}"
CRD_FILENAME = f"{types.GROUP}_{types.PLURAL}.yaml"


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline every ``$ref`` and turn JSON Schema idioms into structural-schema ones, recursively."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        target.update(node)  # siblings of $ref (description, default) win over the definition's
        node = target
    if "anyOf" in node:
        # Optional[X] comes out as anyOf [X, null]: Kubernetes expresses "optional" by absence instead.
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {options}")
        merged = dict(options[0])
        merged.update(node)
        return _resolve(merged, defs)
    for drop in ("title", "additionalProperties"):
        node.pop(drop, None)
    if node.get("default") is None:
        node.pop("default", None)
    if node.get("format") == "date-time":
        node["type"] = "string"
    return {k: _resolve(v, defs) for k, v in node.items()}


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.pop("$defs", {})
    resolved: dict[str, Any] = _resolve(raw, defs)
    return resolved


def _spec_schema() -> dict[str, Any]:
    spec = _schema_of(types.MediaGenerationSpec)
    props = spec["properties"]
    # Nested objects need a default of their own or the API server never fills their fields in; the full
    # object (not {}) because CEL rules on the object are checked against the default as written.
    props["output"]["default"] = types.OutputSpec().to_wire()
    props["retry"]["default"] = types.RetrySpec().to_wire()
    props["input"]["type"] = "object"
    # CEL cannot look inside a preserve-unknown-fields object; the value limits live in the admission
    # policy (mediagen.api.admission_policy), which sees the raw object.
    props["input"]["x-kubernetes-preserve-unknown-fields"] = True
    props["input"]["maxProperties"] = types.MAX_INPUT_PROPERTIES
    props["input"].pop("maxLength", None)
    props["retry"]["x-kubernetes-validations"] = [
        {
            "rule": "self.maxBackoffSeconds >= self.backoffSeconds",
            "message": "spec.retry.maxBackoffSeconds must be at least spec.retry.backoffSeconds",
        }
    ]
    rules: list[dict[str, Any]] = [
        {
            "rule": "has(self.model) != has(self.deployment)",
            "message": "exactly one of spec.model or spec.deployment must be set",
        },
    ]
    # No field is immutable: an edit of the request starts a new generation of the resource, and spec.cancel holds
    # for the generation it was set in (mediagen.reconcile.generation), so a GitOps apply of an edited manifest
    # is never refused.
    spec["x-kubernetes-validations"] = rules
    return spec


def _status_schema() -> dict[str, Any]:
    status = _schema_of(types.MediaGenerationStatus)
    conditions = status["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    conditions["items"]["required"] = ["type", "status"]
    # Read into every object that has no status yet (the API server applies defaults on each read, and writes
    # nothing): a new generation shows as Pending and Reconciling before the operator's first write.
    status["default"] = initial_status()
    return status


def openapi_schema() -> dict[str, Any]:
    """The structural schema of the whole MediaGeneration object."""
    return {
        "type": "object",
        "description": types.MediaGeneration.__doc__,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": _spec_schema(),
            "status": _status_schema(),
        },
        "x-kubernetes-validations": [
            {
                # Names end up in object keys, labels and event messages; 63 keeps them label-sized.
                "rule": "size(self.metadata.name) <= 63",
                "message": "metadata.name must be at most 63 characters",
            }
        ],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition as a dict, ready to dump as YAML or send to the API server."""
    columns = [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Where it is."},
        {"name": "Model", "type": "string", "jsonPath": ".spec.model", "description": "Replicate model."},
        {
            "name": "Deployment",
            "type": "string",
            "jsonPath": ".spec.deployment",
            "priority": 1,
            "description": "Replicate deployment.",
        },
        {"name": "Progress", "type": "integer", "jsonPath": ".status.progress", "description": "Percent."},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
        # Only in -o wide: an output's URL is over 100 characters even when public (its key holds the namespace,
        # name, uid and prediction id) and about 480 when presigned; the default line stays within 120 columns.
        {
            "name": "URL",
            "type": "string",
            "jsonPath": ".status.url",
            "priority": 1,
            "description": "First output's URL.",
        },
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": types.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": types.KIND,
                "listKind": f"{types.KIND}List",
                "plural": types.PLURAL,
                "singular": types.SINGULAR,
                "shortNames": ["mg", "mgen"],
                "categories": ["mediagen"],
            },
            "versions": [
                {
                    "name": types.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    # `kubectl get mg --field-selector status.phase=Running`; the gateway counts a tenant's
                    # unfinished generations this way without reading them (Kubernetes >= 1.31).
                    "selectableFields": [{"jsonPath": ".status.phase"}],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as YAML text, exactly as committed under crds/."""
    header = "# Generated by `mediagen crd` from operator/mediagen/api/types.py. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


def write_crd(directory: Path) -> Path:
    """Write the CRD YAML into ``directory`` and return its path."""
    path = directory / CRD_FILENAME
    path.write_text(crd_yaml())
    return path
