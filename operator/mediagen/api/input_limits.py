"""Limits on ``spec.input``, in one place for the admission policy, the gateway and the operator.

The CRD schema cannot bound the values of a free-form object (CEL sees nothing inside a
preserve-unknown-fields object), so the API server enforces these through a ValidatingAdmissionPolicy
(:mod:`mediagen.api.admission_policy`) and the operator checks them again before calling Replicate, for clusters
where the policy was not installed.

Besides the per-value limits, the input as a whole is bounded by :data:`~mediagen.api.types.MAX_INPUT_TOTAL_BYTES`
as measured by :func:`input_size`: a sum the policy's CEL computes the same way (UTF-8 bytes of keys and strings,
a fixed charge for everything else), so the API server, the gateway and the operator agree to the byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediagen.api.types import MAX_INPUT_LIST_ITEMS, MAX_INPUT_PROPERTIES, MAX_INPUT_STRING_BYTES, MAX_INPUT_TOTAL_BYTES

KEY_OVERHEAD = 4
"""Added to each key's UTF-8 bytes: its quotes, the colon and a comma."""
STRING_OVERHEAD = 3
"""Added to each string's UTF-8 bytes: its quotes and a comma."""
LIST_OVERHEAD = 2
"""Each list's brackets."""
SCALAR_BYTES = 24
"""What a number or a boolean counts: the longest JSON form of a float64 (``-2.2250738585072014e-308``)."""


def input_size(value: Mapping[str, Any]) -> int:
    """The size of ``spec.input`` as the limit measures it (about its size as compact JSON).

    Each key counts its UTF-8 bytes plus :data:`KEY_OVERHEAD`; a string its UTF-8 bytes plus
    :data:`STRING_OVERHEAD`; a list :data:`LIST_OVERHEAD` plus its items; anything else (numbers, booleans,
    null) :data:`SCALAR_BYTES`. Items of a list that are lists themselves (refused anyway) count as scalars,
    as in the policy's CEL."""
    return sum(_utf8(key) + KEY_OVERHEAD + _value_size(item, nested=False) for key, item in value.items())


def _utf8(text: str) -> int:
    # A lone surrogate (JSON "\ud800") is 3 bytes here, as the U+FFFD the API server's decoder puts in its place.
    return len(text.encode("utf-8", "surrogatepass"))


def _value_size(item: Any, *, nested: bool) -> int:
    if isinstance(item, str):
        return _utf8(item) + STRING_OVERHEAD
    if isinstance(item, list) and not nested:
        return LIST_OVERHEAD + sum(_value_size(element, nested=True) for element in item)
    return SCALAR_BYTES


def input_violation(value: Mapping[str, Any]) -> str | None:
    """Why ``value`` breaks the input limits (naming the field), or ``None`` when it is within them."""
    if len(value) > MAX_INPUT_PROPERTIES:
        return f"spec.input has {len(value)} keys; at most {MAX_INPUT_PROPERTIES} are allowed"
    for key, item in value.items():
        problem = value_violation(item)
        if problem:
            return f"spec.input.{key} {problem}"
    return size_violation(value)


def value_violation(item: Any) -> str | None:
    """Why one value of ``spec.input`` is not allowed (to follow its field's name), or ``None``."""
    return _value_violation(item, nested=False)


def size_violation(value: Mapping[str, Any]) -> str | None:
    """Why ``spec.input`` as a whole is too large (naming the field), or ``None``."""
    size = input_size(value)
    if size > MAX_INPUT_TOTAL_BYTES:
        return f"spec.input is {size} bytes; at most {MAX_INPUT_TOTAL_BYTES} are allowed in all"
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
