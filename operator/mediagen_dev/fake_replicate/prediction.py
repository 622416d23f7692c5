"""One fake prediction: what was asked for, plus a pure function from "now" to its Replicate JSON.

Nothing ticks: status, logs and output are computed from the clock on every read, so a test moves a
prediction forward by advancing its clock. Only cancel (and the optional ``Cancel-After`` deadline) is
stored, because it changes the future.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from mediagen_dev.fake_replicate.config import FakeConfig
from mediagen_dev.fake_replicate.files import OutputFile
from mediagen_dev.fake_replicate.logs import render_logs
from mediagen_dev.fake_replicate.script import TIMED_OUT, ModelScript
from mediagen_dev.fake_replicate.timefmt import rfc3339

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})


@dataclass(frozen=True)
class Timeline:
    """When a prediction starts and ends, and how it ends, as far as known right now."""

    status: str
    started: float | None
    ended: float | None
    final_status: str
    error: str | None


@dataclass
class FakePrediction:
    """A prediction held by the fake. Mutated only by cancel, under the fake's lock."""

    id: str
    model: str
    version: str
    input: dict[str, Any]
    script: ModelScript
    created: float
    file_token: str
    precision: int = 3
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    deployment: str | None = None
    deadline: float | None = None
    canceled_at: float | None = None
    source: str = "api"
    seq: int = 0
    """Creation order, to break ties between predictions created at the same clock reading."""

    def timeline(self, now: float, config: FakeConfig) -> Timeline:
        """Status at ``now`` plus the start/end times it implies."""
        script = self.script
        natural_start = math.inf if script.queue_seconds is None else self.created + script.queue_seconds
        if script.outcome == "aborted":
            natural_end, natural_status, error = natural_start, "aborted", None
        elif script.processing_seconds > config.run_timeout:
            natural_end, natural_status, error = natural_start + config.run_timeout, "failed", TIMED_OUT
        else:
            natural_end = natural_start + script.processing_seconds
            natural_status = script.outcome
            error = script.error if script.outcome == "failed" else None

        cancel = self.canceled_at if self.canceled_at is not None else math.inf
        deadline = self.deadline if self.deadline is not None else math.inf
        stop = min(cancel, deadline)
        started: float | None = natural_start
        if stop < natural_end or (stop == natural_end and natural_status == "aborted"):
            ended, error = stop, None
            before_start = stop < natural_start or natural_status == "aborted"
            if before_start:
                started = None
            final = "aborted" if deadline <= cancel and before_start else "canceled"
        else:
            ended, final = natural_end, natural_status
            if natural_status == "aborted":
                started = None

        if math.isinf(ended) or now < ended:
            status = "processing" if started is not None and now >= started else "starting"
            return Timeline(status, started if status == "processing" else None, None, final, None)
        return Timeline(final, started, ended, final, error)

    def is_terminal(self, now: float, config: FakeConfig) -> bool:
        """True once the prediction can no longer change."""
        return self.timeline(now, config).status in TERMINAL

    def data_removed(self, now: float, config: FakeConfig) -> bool:
        """True once retention has deleted the inputs, outputs, files and logs."""
        return self.is_terminal(now, config) and now >= self.created + config.retention_ttl

    def file(self, name: str) -> OutputFile | None:
        """The scripted output file called ``name``, if any."""
        return next((f for f in self.script.files if f.name == name), None)

    def to_json(self, now: float, base_url: str, config: FakeConfig) -> dict[str, Any]:
        """The prediction as ``GET /v1/predictions/{id}`` returns it (absent, not null, where Replicate omits)."""
        line = self.timeline(now, config)
        removed = self.data_removed(now, config)
        api = f"{base_url}/v1/predictions/{self.id}"
        body: dict[str, Any] = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "logs": self._logs(now, line),
            "output": self._output(base_url) if line.status == "succeeded" else None,
            "data_removed": removed,
            "error": line.error,
            "status": line.status,
            "created_at": rfc3339(self.created, self.precision),
            "urls": {"cancel": f"{api}/cancel", "get": api, "web": f"https://replicate.com/p/{self.id}"},
            "source": self.source,
        }
        if line.started is not None:
            body["started_at"] = rfc3339(line.started, self.precision)
        if line.ended is not None:
            body["completed_at"] = rfc3339(line.ended, self.precision)
            metrics: dict[str, float] = {"total_time": round(line.ended - self.created, 6)}
            if line.started is not None:
                metrics["predict_time"] = round(line.ended - line.started, 6)
            body["metrics"] = metrics
        if self.deadline is not None:
            body["deadline"] = rfc3339(self.deadline, self.precision)
        if self.deployment is not None:
            body["deployment"] = self.deployment
        if self.webhook is not None:
            body["webhook"] = self.webhook
            body["webhook_events_filter"] = self.webhook_events_filter or list(config.default_webhook_events)
        if removed:
            body["input"] = config.removed_input
            body["logs"] = config.removed_logs
            body["output"] = None
        return body

    def _logs(self, now: float, line: Timeline) -> str:
        if line.started is None:
            return ""
        until = now if line.ended is None else min(now, line.ended)
        duration = self.script.processing_seconds
        fraction = 1.0 if duration <= 0 else (until - line.started) / duration
        return render_logs(self.script.logs, fraction)

    def _output(self, base_url: str) -> Any:
        script = self.script
        urls = [f"{base_url}/files/{self.file_token}/{f.name}" for f in script.files]
        if script.output == "url":
            return urls[0] if urls else None
        if script.output == "list":
            return urls
        if script.output == "object":
            return {f.name.rsplit(".", 1)[0]: url for f, url in zip(script.files, urls, strict=True)}
        if script.output == "data":
            return [f"data:{f.content_type};base64,{base64.b64encode(f.read_all()).decode()}" for f in script.files]
        if script.output == "raw":
            return script.raw_output
        return None
