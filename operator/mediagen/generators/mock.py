"""The mock backend: renders placeholder images locally, behaves like a Replicate image model.

It is the default when no Replicate token is configured. Predictions live in this process only (a bounded
table); ids derive from the correlation marker, so ``create`` is idempotent and ``find`` always works. With
``latency_seconds`` a prediction stays ``processing`` for that long, printing tqdm-style progress to its logs.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mediagen.generators.base import (
    CANCELED,
    PROCESSING,
    SUCCEEDED,
    CreateRequest,
    PermanentError,
    Prediction,
)
from mediagen.generators.placeholder import render_placeholder

DEFAULT_SIZE = 1024
MAX_OUTPUTS = 4
PROGRESS_STEPS = 20
DEFAULT_PROMPT = "(no prompt)"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class MockInput:
    """The validated inputs the mock model understands; anything else in ``input`` is ignored."""

    prompt: str
    width: int
    height: int
    num_outputs: int
    seed: int | None


def _invalid(field: str, message: str) -> PermanentError:
    return PermanentError("InvalidInput", f"input.{field}: {message}", field=f"input.{field}")


def _int_field(values: Mapping[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = values.get(field, default)
    # bool is an int subclass; a model's schema would refuse true/false for an integer field.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"must be an integer (got {type(value).__name__})")
    if not low <= value <= high:
        raise _invalid(field, f"must be between {low} and {high} (got {value})")
    return value


def parse_input(values: Mapping[str, Any]) -> MockInput:
    """Validate ``values`` the way a real model would; raises ``PermanentError("InvalidInput")``.

    Sizes outside 64..2048 are accepted and clamped when rendering, as many models round sizes."""
    prompt = values.get("prompt", DEFAULT_PROMPT)
    if not isinstance(prompt, str) or not prompt.strip():
        raise _invalid("prompt", "must be a non-empty string")
    seed = None if values.get("seed") is None else _int_field(values, "seed", 0, 0, 2**63 - 1)
    return MockInput(
        prompt=prompt,
        width=_int_field(values, "width", DEFAULT_SIZE, 1, 16384),
        height=_int_field(values, "height", DEFAULT_SIZE, 1, 16384),
        num_outputs=_int_field(values, "num_outputs", 1, 1, MAX_OUTPUTS),
        seed=seed,
    )


@dataclass
class _Record:
    id: str
    correlation: str
    params: MockInput
    created_at: dt.datetime
    canceled_at: dt.datetime | None = None


def prediction_id_for(correlation: str) -> str:
    """The id a prediction created with ``correlation`` gets: 26 characters, like Replicate's."""
    return "mock-" + hashlib.sha256(correlation.encode()).hexdigest()[:21]


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def progress_logs(params: MockInput, seed: int, fraction: float, latency: float) -> str:
    """Logs as a diffusion model prints them: a seed line, then one tqdm bar line per step reached."""
    lines = [
        f"Using seed: {seed}",
        f"mock: rendering {params.num_outputs} image(s) at {params.width}x{params.height}",
    ]
    done = min(PROGRESS_STEPS, int(fraction * PROGRESS_STEPS + 1e-9))
    per_step = latency / PROGRESS_STEPS if latency > 0 else 0.0
    rate = f"{1 / per_step:.2f}it/s" if per_step > 0 else "?it/s"
    for step in range(done + 1):
        percent = step * 100 // PROGRESS_STEPS
        bar = ("█" * (step * 10 // PROGRESS_STEPS)).ljust(10)
        elapsed, remaining = step * per_step, (PROGRESS_STEPS - step) * per_step
        lines.append(
            f"{percent:3d}%|{bar}| {step}/{PROGRESS_STEPS} [{_clock_text(elapsed)}<{_clock_text(remaining)}, {rate}]"
        )
    return "\n".join(lines) + "\n"


class MockGenerator:
    """A :class:`~mediagen.generators.base.Generator` that renders placeholder PNGs as ``data:`` URIs."""

    name = "mock"

    def __init__(
        self,
        *,
        latency_seconds: float = 0.0,
        clock: Callable[[], dt.datetime] = _utcnow,
        max_predictions: int = 1024,
        render_cache_size: int = 8,
    ) -> None:
        """``clock`` returns aware UTC datetimes; at most ``max_predictions`` are remembered (oldest go first).

        Rendered outputs are cached for the ``render_cache_size`` most recent predictions only and rendered
        again (identically) when asked for later, so memory stays small however many predictions exist."""
        if latency_seconds < 0:
            raise ValueError("latency_seconds must be >= 0")
        self.latency_seconds = latency_seconds
        self._clock = clock
        self._max_predictions = max(1, max_predictions)
        self._render_cache_size = max(1, render_cache_size)
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._by_correlation: dict[str, str] = {}
        self._rendered: OrderedDict[str, list[str]] = OrderedDict()

    async def create(self, request: CreateRequest) -> Prediction:
        """Validate the input and start (or, with no latency, finish) a prediction; idempotent per correlation."""
        params = parse_input(request.input)
        existing = self._by_correlation.get(request.correlation)
        if existing is not None:
            return await self._snapshot(self._records[existing])
        record = _Record(
            id=prediction_id_for(request.correlation),
            correlation=request.correlation,
            params=params,
            created_at=self._clock(),
        )
        self._remember(record)
        return await self._snapshot(record)

    async def get(self, prediction_id: str) -> Prediction:
        """The prediction's state now; an unknown id is ``PermanentError("PredictionNotFound")``."""
        return await self._snapshot(self._record(prediction_id))

    async def cancel(self, prediction_id: str) -> Prediction:
        """Cancel a running prediction; a finished one comes back unchanged."""
        record = self._record(prediction_id)
        now = self._clock()
        if record.canceled_at is None and not self._finished(record, now):
            record.canceled_at = now
        return await self._snapshot(record)

    async def find(self, correlation: str, created_after: dt.datetime) -> Prediction | None:
        """The prediction created with ``correlation`` at or after ``created_after``, if still remembered."""
        prediction_id = self._by_correlation.get(correlation)
        if prediction_id is None:
            return None
        record = self._records[prediction_id]
        if record.created_at < created_after:
            return None
        return await self._snapshot(record)

    async def aclose(self) -> None:
        """Nothing to release."""

    # -- internals -----------------------------------------------------------------------------------

    def _record(self, prediction_id: str) -> _Record:
        record = self._records.get(prediction_id)
        if record is None:
            raise PermanentError("PredictionNotFound", f"prediction {prediction_id} not found")
        return record

    def _remember(self, record: _Record) -> None:
        self._records[record.id] = record
        self._by_correlation[record.correlation] = record.id
        while len(self._records) > self._max_predictions:
            _, old = self._records.popitem(last=False)
            self._by_correlation.pop(old.correlation, None)
            self._rendered.pop(old.id, None)

    def _finished(self, record: _Record, now: dt.datetime) -> bool:
        return (now - record.created_at).total_seconds() >= self.latency_seconds

    def _seed(self, record: _Record) -> int:
        if record.params.seed is not None:
            return record.params.seed
        return int(hashlib.sha256(record.id.encode()).hexdigest()[:8], 16)

    async def _outputs(self, record: _Record) -> list[str]:
        cached = self._rendered.get(record.id)
        if cached is not None:
            self._rendered.move_to_end(record.id)
            return cached
        p, seed = record.params, self._seed(record)
        # Rendering takes ~0.1 s per megapixel: keep it off the event loop.
        images = await asyncio.to_thread(
            lambda: [render_placeholder(p.prompt, p.width, p.height, f"{seed}/{i}") for i in range(p.num_outputs)]
        )
        outputs = ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in images]
        self._rendered[record.id] = outputs
        while len(self._rendered) > self._render_cache_size:
            self._rendered.popitem(last=False)
        return outputs

    async def _snapshot(self, record: _Record) -> Prediction:
        now = self._clock()
        latency = self.latency_seconds
        seed = self._seed(record)
        if record.canceled_at is not None:
            elapsed = (record.canceled_at - record.created_at).total_seconds()
            fraction = elapsed / latency if latency > 0 else 1.0
            return Prediction(
                id=record.id,
                status=CANCELED,
                logs=progress_logs(record.params, seed, fraction, latency),
                created_at=record.created_at,
                started_at=record.created_at,
                completed_at=record.canceled_at,
                predict_time_seconds=elapsed,
                metrics={"predict_time": elapsed},
            )
        if self._finished(record, now):
            return Prediction(
                id=record.id,
                status=SUCCEEDED,
                output=await self._outputs(record),
                logs=progress_logs(record.params, seed, 1.0, latency),
                created_at=record.created_at,
                started_at=record.created_at,
                completed_at=record.created_at + dt.timedelta(seconds=latency),
                predict_time_seconds=latency,
                metrics={"predict_time": latency},
            )
        fraction = (now - record.created_at).total_seconds() / latency
        return Prediction(
            id=record.id,
            status=PROCESSING,
            logs=progress_logs(record.params, seed, fraction, latency),
            created_at=record.created_at,
            started_at=record.created_at,
        )
