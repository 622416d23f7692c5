"""How long a remote cancel is tried: shared by every reason to cancel (spec.cancel, the deadline, deletion, an
edit of the request)."""

from __future__ import annotations

from mediagen.reconcile.state import Memory

CANCEL_ATTEMPTS = 4
"""Tries at cancelling a prediction (0.5, 1, 2 s apart) before letting go: a cancel that cannot get through must
not hold a resource forever."""


def cancel_settled(memory: Memory) -> bool:
    """A cancel got through, or failed often enough that holding on would only block the resource."""
    return memory.cancel_requested_remote or memory.cancel_failures >= CANCEL_ATTEMPTS


def cancel_delay(memory: Memory) -> float:
    """0 for the first cancel; 0.5, 1, 2 s before the tries after a failure."""
    return 0.0 if memory.cancel_failures == 0 else min(8.0, 0.5 * 2.0 ** (memory.cancel_failures - 1))
