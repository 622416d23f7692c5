"""Limits on ``spec.input``, in one place for the admission policy, the gateway and the operator.

The CRD schema cannot bound the values of a free-form object (CEL sees nothing inside a
preserve-unknown-fields object), so the API server enforces these through a ValidatingAdmissionPolicy
(:mod:`mediagen.api.admission_policy`) and the operator checks them again before calling Replicate, for clusters
where the policy was not installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediagen.api.types import MAX_INPUT_LIST_ITEMS, MAX_INPUT_PROPERTIES, MAX_INPUT_STRING_BYTES


def input_violation(value: Mapping[str, Any]) -> str | None:
    """Why ``value`` breaks the input limits (naming the field), or ``None`` when it is within them."""
    if len(value) > MAX_INPUT_PROPERTIES:
        return f"spec.input has {len(value)} keys; at most {MAX_INPUT_PROPERTIES} are allowed"
    for key, item in value.items():
        problem = _value_violation(item, nested=False)
        if problem:
            return f"spec.input.{key} {problem}"
    return None


def _value_violation(item: Any, *, nested: bool) -> str | None:
    if isinstance(item, str):
        if len(item) > MAX_INPUT_STRING_BYTES:
            return f"is {len(item)} characters long; at most {MAX_INPUT_STRING_BYTES} are allowed"
        return None
    if isinstance(item, dict):
        return "must not be an object"
    if isinstance(item, list):
        if nested:
            return "must not be a list of lists"
        if len(item) > MAX_INPUT_LIST_ITEMS:
            return f"has {len(item)} items; at most {MAX_INPUT_LIST_ITEMS} are allowed"
        for element in item:
            problem = _value_violation(element, nested=True)
            if problem:
                return f"has an item that {problem.removeprefix('is ').replace('must not be', 'is')}"
    return None
