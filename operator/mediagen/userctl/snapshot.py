"""One generation as the CLI shows it, read from a MediaGeneration or from the gateway's JSON."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

# Plain strings, not mediagen.api.types: `get` and `watch` need no pydantic (a second of start-up).
PENDING = "Pending"
SUCCEEDED = "Succeeded"
TERMINAL_PHASES = frozenset({SUCCEEDED, "Failed", "Canceled"})


@dataclass(frozen=True)
class Output:
    """One stored output: where to fetch it and its type."""

    url: str
    content_type: str = ""


@dataclass(frozen=True)
class Snapshot:
    """What the CLI knows of one generation at one moment."""

    name: str
    phase: str = PENDING
    model: str = ""
    progress: int | None = None
    reason: str = ""
    message: str = ""
    outputs: tuple[Output, ...] = field(default_factory=tuple)
    created: dt.datetime | None = None
    finished: dt.datetime | None = None

    @property
    def done(self) -> bool:
        """Whether the phase is final: Succeeded, Failed or Canceled."""
        return self.phase in TERMINAL_PHASES

    @property
    def succeeded(self) -> bool:
        """Whether it Succeeded."""
        return self.phase == SUCCEEDED

    @property
    def url(self) -> str:
        """The first output's URL, or ''."""
        return self.outputs[0].url if self.outputs else ""

    def elapsed(self, now: dt.datetime) -> float | None:
        """Seconds from creation to the end (or to ``now`` while in flight); None when the creation is unknown."""
        if self.created is None:
            return None
        end = self.finished if self.done and self.finished else now
        return max(0.0, (end - self.created).total_seconds())


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _model(model: Any, deployment: Any) -> str:
    if model:
        return str(model)
    return f"deployment {deployment}" if deployment else ""


def _outputs(raw: Any) -> tuple[Output, ...]:
    items = raw if isinstance(raw, list) else []
    return tuple(
        Output(str(item["url"]), str(item.get("contentType") or ""))
        for item in items
        if isinstance(item, dict) and item.get("url")
    )


def from_resource(body: dict[str, Any]) -> Snapshot:
    """A MediaGeneration as the Kubernetes API returns it."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    outputs = _outputs(status.get("outputs"))
    if not outputs and status.get("url"):
        outputs = (Output(str(status["url"])),)
    return Snapshot(
        name=str(meta.get("name", "")),
        phase=str(status.get("phase") or PENDING),
        model=_model(spec.get("model"), spec.get("deployment")),
        progress=status.get("progress"),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        outputs=outputs,
        created=_time(meta.get("creationTimestamp")),
        finished=_time(status.get("completionTime")),
    )


def from_gateway(view: dict[str, Any]) -> Snapshot:
    """A generation as the gateway's ``GET /status/{id}`` returns it."""
    outputs = _outputs(view.get("outputs"))
    if not outputs and view.get("url"):
        outputs = (Output(str(view["url"])),)
    return Snapshot(
        name=str(view.get("id", "")),
        phase=str(view.get("phase") or PENDING),
        model=_model(view.get("model"), view.get("deployment")),
        progress=view.get("progress"),
        reason=str(view.get("reason") or ""),
        message=str(view.get("message") or ""),
        outputs=outputs,
        created=_time(view.get("createdAt")),
        finished=_time(view.get("completionTime")),
    )
