"""API-server writes to MediaGenerations, from the API server's own audit log (``ControlPlane(audit=True)``).

The audit policy logs every create/update/patch/delete of ``mediagenerations`` and ``mediagenerations/status``
at Metadata level: verb, object, subresource, response code and the server's own timestamps (microseconds).
Only the ``ResponseComplete`` stage is counted, so each request counts once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mediagen_dev.controlplane import ControlPlane


@dataclass(frozen=True)
class Write:
    """One write request as the API server audited it. Times are Unix seconds of the API server's clock."""

    verb: str
    subresource: str
    namespace: str
    name: str
    code: int
    received: float
    completed: float
    user_agent: str

    @property
    def kind(self) -> str:
        """``create``, ``patch``, ``patch status``, ``delete``..."""
        return f"{self.verb} {self.subresource}".strip()

    @property
    def ok(self) -> bool:
        """True for a 2xx response."""
        return 200 <= self.code < 300


def _time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def parse(event: dict[str, Any]) -> Write | None:
    """A :class:`Write` from one audit event, or None for stages other than ``ResponseComplete``."""
    if event.get("stage") != "ResponseComplete":
        return None
    ref = event.get("objectRef") or {}
    return Write(
        verb=str(event.get("verb", "")),
        subresource=str(ref.get("subresource") or ""),
        namespace=str(ref.get("namespace") or ""),
        name=str(ref.get("name") or ""),
        code=int((event.get("responseStatus") or {}).get("code") or 0),
        received=_time(event["requestReceivedTimestamp"]),
        completed=_time(event["stageTimestamp"]),
        user_agent=str(event.get("userAgent", "")),
    )


def writes(plane: ControlPlane, namespace: str) -> list[Write]:
    """Every audited write to MediaGenerations in ``namespace``, in log order."""
    found = (parse(event) for event in plane.audit_events())
    return [w for w in found if w is not None and w.namespace == namespace]


def by_object(found: Iterable[Write]) -> dict[str, list[Write]]:
    """Writes grouped by object name (creates by generateName land under the name the server gave)."""
    grouped: dict[str, list[Write]] = defaultdict(list)
    for write in found:
        grouped[write.name].append(write)
    return dict(grouped)


def kinds(found: Iterable[Write]) -> Counter[str]:
    """How many writes of each kind (``patch status`` etc.)."""
    return Counter(w.kind for w in found)


def created_at(found: Iterable[Write]) -> float | None:
    """When the API server received the (successful) create of the object, or None."""
    return next((w.received for w in found if w.verb == "create" and w.ok), None)


def last_status_write(found: Iterable[Write]) -> float | None:
    """When the last successful status write of the object completed (the final status, once it is final)."""
    times = [w.completed for w in found if w.kind == "patch status" and w.ok]
    return max(times) if times else None
