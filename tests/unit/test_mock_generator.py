"""The mock backend: Replicate-like predictions with real placeholder PNGs, find/get semantics, latency."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import pytest
from PIL import Image

from mediagen.generators.base import CreateRequest, Generator, PermanentError, Prediction
from mediagen.generators.mock import MockGenerator, prediction_id_for

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
PROGRESS = re.compile(r"^\s*(\d+)%\s*\|.+?\|\s*(\d+)/(\d+)")  # replicate 1.0.7's Prediction.progress


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def request(correlation: str = "uid-1/attempt-1", **input: object) -> CreateRequest:
    return CreateRequest(input={"prompt": "a corgi", "width": 96, "height": 64, **input}, correlation=correlation)


def images(prediction: Prediction) -> list[bytes]:
    assert isinstance(prediction.output, list)
    out = []
    for uri in prediction.output:
        prefix = "data:image/png;base64,"
        assert uri.startswith(prefix)
        out.append(base64.b64decode(uri[len(prefix) :]))
    return out


def last_progress(prediction: Prediction) -> tuple[int, int, int]:
    assert prediction.logs
    matches = [m for line in prediction.logs.splitlines() if (m := PROGRESS.match(line))]
    percent, current, total = matches[-1].groups()
    return int(percent), int(current), int(total)


def test_is_a_generator() -> None:
    generator: Generator = MockGenerator()
    assert generator.name == "mock"


async def test_create_succeeds_at_once_with_a_real_png() -> None:
    prediction = await MockGenerator(clock=FakeClock()).create(request())
    assert prediction.status == "succeeded"
    assert prediction.terminal
    (png,) = images(prediction)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (96, 64))
    assert prediction.id == prediction_id_for("uid-1/attempt-1")
    assert prediction.id.startswith("mock-")
    assert len(prediction.id) == 26
    assert prediction.created_at == T0
    assert prediction.completed_at == T0
    assert last_progress(prediction) == (100, 20, 20)


async def test_outputs_are_deterministic_per_correlation() -> None:
    first = await MockGenerator().create(request())
    again = await MockGenerator().create(request())
    other = await MockGenerator().create(request(correlation="uid-2/attempt-1"))
    assert first.id == again.id
    assert images(first) == images(again)
    assert other.id != first.id
    assert images(other) != images(first)


async def test_a_given_seed_reproduces_the_image_across_predictions() -> None:
    a = await MockGenerator().create(request(correlation="a", seed=7))
    b = await MockGenerator().create(request(correlation="b", seed=7))
    c = await MockGenerator().create(request(correlation="c", seed=8))
    assert images(a) == images(b) != images(c)
    assert a.logs is not None
    assert "Using seed: 7" in a.logs


async def test_num_outputs_gives_distinct_images() -> None:
    prediction = await MockGenerator().create(request(num_outputs=3))
    pngs = images(prediction)
    assert len(pngs) == 3
    assert len(set(pngs)) == 3
    assert all(Image.open(io.BytesIO(p)).size == (96, 64) for p in pngs)


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"prompt": ""}, "input.prompt"),
        ({"prompt": "   "}, "input.prompt"),
        ({"prompt": 5}, "input.prompt"),
        ({"prompt": None}, "input.prompt"),
        ({"width": "512"}, "input.width"),
        ({"height": 51.2}, "input.height"),
        ({"width": True}, "input.width"),
        ({"width": 0}, "input.width"),
        ({"num_outputs": 0}, "input.num_outputs"),
        ({"num_outputs": 5}, "input.num_outputs"),
        ({"seed": "x"}, "input.seed"),
    ],
)
async def test_invalid_input(input: dict[str, object], field: str) -> None:
    generator = MockGenerator()
    with pytest.raises(PermanentError) as info:
        await generator.create(request(**input))
    assert info.value.reason == "InvalidInput"
    assert info.value.field == field
    assert field in str(info.value)
    assert await generator.find("uid-1/attempt-1", T0 - dt.timedelta(days=1)) is None


async def test_missing_prompt_and_extra_fields_are_fine() -> None:
    prediction = await MockGenerator().create(
        CreateRequest(input={"width": 64, "height": 64, "guidance": 3.5}, correlation="c")
    )
    assert prediction.status == "succeeded"


async def test_get_find_and_unknown_ids() -> None:
    clock = FakeClock()
    generator = MockGenerator(clock=clock)
    created = await generator.create(request())

    got = await generator.get(created.id)
    assert (got.id, got.status, got.output) == (created.id, "succeeded", created.output)

    found = await generator.find("uid-1/attempt-1", T0 - dt.timedelta(seconds=1))
    assert found is not None
    assert found.id == created.id
    assert await generator.find("uid-1/attempt-1", T0 + dt.timedelta(seconds=1)) is None
    assert await generator.find("someone-else", T0 - dt.timedelta(days=1)) is None

    for call in (generator.get, generator.cancel):
        with pytest.raises(PermanentError) as info:
            await call("mock-doesnotexist")
        assert info.value.reason == "PredictionNotFound"


async def test_create_is_idempotent_per_correlation() -> None:
    generator = MockGenerator()
    first = await generator.create(request())
    second = await generator.create(request(prompt="something else"))
    assert second.id == first.id
    assert second.output == first.output


async def test_latency_reports_progress_then_succeeds() -> None:
    clock = FakeClock()
    generator = MockGenerator(latency_seconds=10, clock=clock)
    created = await generator.create(request())
    assert (created.status, created.output, created.completed_at) == ("processing", None, None)
    assert created.started_at == T0
    assert last_progress(created) == (0, 0, 20)

    clock.advance(5)
    halfway = await generator.get(created.id)
    assert halfway.status == "processing"
    assert last_progress(halfway) == (50, 10, 20)

    clock.advance(5)
    done = await generator.get(created.id)
    assert done.status == "succeeded"
    assert len(images(done)) == 1
    assert done.completed_at == T0 + dt.timedelta(seconds=10)
    assert done.predict_time_seconds == 10
    assert last_progress(done) == (100, 20, 20)


async def test_cancel_running_then_terminal_is_unchanged() -> None:
    clock = FakeClock()
    generator = MockGenerator(latency_seconds=10, clock=clock)
    running = await generator.create(request())
    clock.advance(3)
    canceled = await generator.cancel(running.id)
    assert canceled.status == "canceled"
    assert canceled.output is None
    assert canceled.completed_at == T0 + dt.timedelta(seconds=3)
    clock.advance(60)
    assert (await generator.get(running.id)).status == "canceled"

    finished = await generator.create(request(correlation="other"))
    clock.advance(10)
    assert (await generator.cancel(finished.id)).status == "succeeded"


async def test_table_is_bounded_and_evicts_the_oldest() -> None:
    generator = MockGenerator(max_predictions=2)
    first = await generator.create(request(correlation="1"))
    await generator.create(request(correlation="2"))
    await generator.create(request(correlation="3"))
    with pytest.raises(PermanentError):
        await generator.get(first.id)
    assert await generator.find("1", T0 - dt.timedelta(days=3650)) is None


async def test_outputs_render_again_identically_after_cache_eviction() -> None:
    generator = MockGenerator(render_cache_size=1)
    a = await generator.create(request(correlation="a"))
    await generator.create(request(correlation="b"))
    assert (await generator.get(a.id)).output == a.output
    await generator.aclose()


def test_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="latency"):
        MockGenerator(latency_seconds=-1)
