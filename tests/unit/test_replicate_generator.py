"""ReplicateGenerator against the fake Replicate server over real loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mediagen.generators.base import (
    CreateRequest,
    GeneratorError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from mediagen.generators.replicate import ReplicateGenerator, parse_prediction, parse_timestamp
from mediagen_dev.fake_replicate import (
    FAKE_TOKEN,
    Canned,
    FakeReplicate,
    FakeReplicateServer,
    Fault,
    ManualClock,
    ModelScript,
    version_for,
)
from mediagen_dev.fake_replicate.problems import billing_required, forbidden, problem

HOOK = "https://mediagen.example/hooks/replicate"
CLOCK = ManualClock()
MODELS = {
    "acme/flux": ModelScript(queue_seconds=2, processing_seconds=4),
    "acme/sdxl": ModelScript(official=False, required_inputs=("prompt",)),
    "acme/strict": ModelScript(input_maxima={"num_inference_steps": 4}),
}
SDXL_VERSION = version_for("acme/sdxl", MODELS["acme/sdxl"])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeReplicateServer]:
    fake = FakeReplicate(clock=CLOCK, models=MODELS, deployments={"acme/prod": "acme/flux"})
    with FakeReplicateServer(fake) as running:
        yield running


@pytest.fixture
def fake(server: FakeReplicateServer) -> FakeReplicate:
    server.fake.reset()
    return server.fake


@pytest.fixture
async def gen(server: FakeReplicateServer, fake: FakeReplicate) -> AsyncIterator[ReplicateGenerator]:
    generator = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK)
    yield generator
    await generator.aclose()


def now() -> dt.datetime:
    return dt.datetime.fromtimestamp(CLOCK(), dt.UTC)


def request(model: str | None = "acme/flux", **kwargs: Any) -> CreateRequest:
    kwargs.setdefault("input", {"prompt": "a corgi"})
    kwargs.setdefault("correlation", "uid-1.1")
    return CreateRequest(model=model, **kwargs)


async def test_routes_each_kind_of_reference(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    await gen.create(request("acme/flux"))
    await gen.create(request(f"acme/sdxl:{SDXL_VERSION}"))
    await gen.create(request(None, deployment="acme/prod"))
    creates = fake.requests_to("create")
    assert [r.template for r in creates] == [
        "/v1/models/{owner}/{name}/predictions",
        "/v1/predictions",
        "/v1/deployments/{owner}/{name}/predictions",
    ]
    bodies = [json.loads(r.body) for r in creates]
    assert bodies[1]["version"] == SDXL_VERSION
    assert "version" not in bodies[0]
    for body in bodies:
        assert body["webhook"] == f"{HOOK}?mg=uid-1.1"
        assert body["webhook_events_filter"] == ["completed"]
        assert body["input"] == {"prompt": "a corgi"}
    for recorded in creates:
        assert "prefer" not in recorded.headers
        assert "cancel-after" not in recorded.headers
        assert recorded.headers["authorization"] == f"Bearer {FAKE_TOKEN}"
    assert [p["model"] for p in fake.all_predictions()] == ["acme/flux", "acme/sdxl", "acme/flux"]


async def test_bad_references_are_permanent(gen: ReplicateGenerator) -> None:
    for bad in (request("no-slash"), request(None), request("a/b", deployment="c/d")):
        with pytest.raises(PermanentError) as raised:
            await gen.create(bad)
        assert raised.value.reason == "InvalidModel"


async def test_lifecycle_is_parsed(gen: ReplicateGenerator) -> None:
    created = await gen.create(request())
    assert (created.status, created.terminal, created.started_at) == ("starting", False, None)
    assert created.created_at == now()
    CLOCK.advance(3)
    running = await gen.get(created.id)
    assert running.status == "processing"
    assert running.started_at is not None
    assert running.logs
    assert "| 12/50 [" in running.logs
    CLOCK.advance(3)
    done = await gen.get(created.id)
    assert done.status == "succeeded"
    assert done.terminal
    assert done.predict_time_seconds == 4.0
    assert done.metrics["total_time"] == 6.0
    assert done.completed_at is not None
    assert done.started_at is not None
    assert (done.completed_at - done.started_at).total_seconds() == pytest.approx(4.0, abs=1e-3)
    assert isinstance(done.output, list)
    assert done.output[0].endswith("/out-0.png")


@pytest.mark.parametrize(("seconds", "status"), [(1, "aborted"), (3, "canceled")])
async def test_cancel_after_becomes_aborted_or_canceled(
    gen: ReplicateGenerator, fake: FakeReplicate, seconds: int, status: str
) -> None:
    created = await gen.create(request(cancel_after_seconds=seconds))
    assert fake.requests_to("create")[0].headers["cancel-after"] == f"{seconds}s"
    CLOCK.advance(10)
    done = await gen.get(created.id)
    assert done.status == status
    assert done.terminal
    assert (done.started_at is None) is (status == "aborted")


async def test_cancel_running_and_terminal(gen: ReplicateGenerator) -> None:
    running = await gen.create(request())
    CLOCK.advance(3)
    canceled = await gen.cancel(running.id)
    assert canceled.status == "canceled"
    assert canceled.completed_at is not None
    finished = await gen.create(request())
    CLOCK.advance(10)
    before = await gen.get(finished.id)
    after = await gen.cancel(finished.id)
    assert after == before
    assert after.status == "succeeded"


async def test_scripted_outcomes_parse(gen: ReplicateGenerator) -> None:
    aborted = await gen.create(request(input={"_fake": {"outcome": "aborted"}}))
    failed = await gen.create(request(input={"prompt": "fake:pa"}))
    inline = await gen.create(request(input={"prompt": "fake:data"}))
    CLOCK.advance(10)
    assert (await gen.get(aborted.id)).status == "aborted"
    assert (await gen.get(failed.id)).error == "Prediction interrupted; please retry (code: PA)"
    output = (await gen.get(inline.id)).output
    assert isinstance(output, list)
    assert output[0].startswith("data:image/png;base64,iVBORw0KGgo")


async def test_data_removed_after_retention(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    fake.config.retention_ttl = 30
    created = await gen.create(request())
    CLOCK.advance(31)
    removed = await gen.get(created.id)
    assert removed.data_removed
    assert removed.output is None
    assert removed.status == "succeeded"


async def expect(gen: ReplicateGenerator, kind: type[GeneratorError], op: str = "create") -> GeneratorError:
    """Run one call (a create, or a get/cancel of an unknown id) and return the error it must raise."""
    calls = {
        "create": lambda: gen.create(request()),
        "get": lambda: gen.get("missingmissingmissingmissi"),
        "cancel": lambda: gen.cancel("missingmissingmissingmissi"),
    }
    call = calls[op]()
    with pytest.raises(kind) as raised:
        await call
    return raised.value


async def test_permanent_errors(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    fake.inject(Fault.status(billing_required()), Fault.status(forbidden()), Fault.status(problem(409, "Conflict")))
    reasons = [await expect(gen, PermanentError) for _ in range(3)]
    assert [getattr(e, "reason", None) for e in reasons] == ["BillingRequired", "Forbidden", "RequestRejected"]
    assert str(reasons[0]).startswith("You need to set up billing")
    for op in ("get", "cancel"):
        missing = await expect(gen, PermanentError, op)
        assert getattr(missing, "reason", None) == "PredictionNotFound"


async def test_unknown_model_and_invalid_version(gen: ReplicateGenerator) -> None:
    cases = {
        "acme/nothing": "ModelNotFound",
        "acme/sdxl": "InvalidVersion",  # community model on the official-model endpoint
        f"acme/sdxl:{'0' * 64}": "InvalidVersion",
    }
    for model, reason in cases.items():
        with pytest.raises(PermanentError) as raised:
            await gen.create(request(model))
        assert raised.value.reason == reason
    with pytest.raises(PermanentError) as deployment:
        await gen.create(request(None, deployment="acme/nope"))
    assert deployment.value.reason == "ModelNotFound"


async def test_input_validation_names_the_field(gen: ReplicateGenerator) -> None:
    with pytest.raises(PermanentError) as raised:
        await gen.create(request("acme/strict", input={"num_inference_steps": 50}))
    assert raised.value.reason == "InvalidInput"
    assert raised.value.field == "input.num_inference_steps"
    assert str(raised.value) == "- input.num_inference_steps: Must be less than or equal to 4"


async def test_unauthorized_never_leaks_the_token(server: FakeReplicateServer, fake: FakeReplicate) -> None:
    secret = "r8_very_secret_value_123"
    generator = ReplicateGenerator(secret, base_url=server.base_url, webhook_base_url=HOOK)
    with pytest.raises(PermanentError) as raised:
        await generator.create(request())
    await generator.aclose()
    assert raised.value.reason == "Unauthorized"
    assert "REPLICATE_API_TOKEN" in str(raised.value)
    assert secret not in str(raised.value)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.throttled(7), 7.0),
        (Fault.throttled(7, in_body=False), 7.0),
        (Fault.throttled(7, in_body=False, in_header=False), 7.0),
        (Fault.throttled(7, in_body=False, in_header=False, in_text=False), 10.0),
        (
            Fault.status(Canned(429, b'{"detail":"resets in ~9s","retry_after":2}', headers={"Retry-After": "5"})),
            2.0,
        ),
        (Fault.status(Canned(429, b'{"detail":"Your rate limit resets in ~9s."}', headers={"Retry-After": "5"})), 5.0),
    ],
)
async def test_throttled_retry_after(
    gen: ReplicateGenerator, fake: FakeReplicate, fault: Fault, expected: float
) -> None:
    fake.inject(fault)
    error = await expect(gen, ThrottledError)
    assert getattr(error, "retry_after", None) == expected
    assert fake.predictions == {}


async def test_rate_limiter_throttles_creates(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    from mediagen_dev.fake_replicate import RateLimits

    fake.set_rate_limits(RateLimits.low_credit())
    await gen.create(request())
    error = await expect(gen, ThrottledError)
    assert getattr(error, "retry_after", None) == 10.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_transient(gen: ReplicateGenerator, fake: FakeReplicate, status: int) -> None:
    fake.inject(Fault.server_error(status))
    error = await expect(gen, TransientError)
    assert not isinstance(error, ThrottledError)
    assert f"HTTP {status}" in str(error)
    assert "<html" not in str(error)


async def test_network_errors_are_transient(server: FakeReplicateServer, fake: FakeReplicate) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = ReplicateGenerator(FAKE_TOKEN, base_url=f"http://127.0.0.1:{port}", webhook_base_url=HOOK)
    await expect(refused, TransientError)
    await refused.aclose()
    impatient = ReplicateGenerator(
        FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK, timeout=httpx.Timeout(1.0, read=0.05)
    )
    fake.inject(Fault.slow(0.3).on("get"))
    timed_out = await expect(impatient, TransientError, "get")
    assert "timed out" in str(timed_out)
    assert await asyncio.to_thread(fake.wait_idle)  # let the abandoned request finish before the next test
    await impatient.aclose()


async def test_dropped_create_is_found_again(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    since = now()
    CLOCK.advance(1)
    await gen.create(request(correlation="uid-2.1"))
    fake.inject(Fault.dropped().on("create"))
    await expect(gen, TransientError)  # the prediction exists, but we never saw its id
    (lost_id,) = [p["id"] for p in fake.all_predictions() if p["webhook"].endswith("uid-1.1")]
    found = await gen.find("uid-1.1", since)
    assert found is not None
    assert found.id == lost_id
    assert await gen.find("uid-9.1", since) is None
    assert await gen.find("uid-1.1", now() + dt.timedelta(seconds=1)) is None
    assert fake.creates_by_marker == {"uid-1.1": 1, "uid-2.1": 1}


async def test_find_matches_the_marker_whatever_the_rest_of_the_webhook_url(
    server: FakeReplicateServer, fake: FakeReplicate
) -> None:
    # The create went out while the operator had another MEDIAGEN_WEBHOOK_URL (webhooks turned on since).
    since = now()
    CLOCK.advance(1)
    before = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url="https://old.example/hook")
    created = await before.create(request(correlation="uid-7.1"))
    after = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url="https://new.example/w?x=1")
    found = await after.find("uid-7.1", since)
    assert found is not None and found.id == created.id
    assert await after.find("uid-7.11", since) is None  # a marker is matched whole, not as a prefix
    await before.aclose()
    await after.aclose()


async def test_find_follows_pages_within_a_bound(server: FakeReplicateServer, fake: FakeReplicate) -> None:
    fake.config.page_size = 3
    since = now()
    generator = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK, max_find_pages=2)
    for i in range(9):
        CLOCK.advance(1)
        await generator.create(request(correlation=f"uid-{i}.1"))
    assert (await generator.find("uid-3.1", since)) is not None  # second page
    assert await generator.find("uid-1.1", since) is None  # third page: beyond the bound
    assert len(fake.requests_to("list")) == 4
    await generator.aclose()


async def test_find_never_follows_a_link_to_another_host() -> None:
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return httpx.Response(200, json={"results": [], "next": "https://elsewhere.example/v1/predictions?cursor=x"})

    generator = ReplicateGenerator(
        FAKE_TOKEN, base_url="https://api.replicate.com", webhook_base_url=HOOK, transport=httpx.MockTransport(handler)
    )
    assert await generator.find("uid-1.1", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) is None
    await generator.aclose()
    assert seen == ["https://api.replicate.com/v1/predictions?created_after=2025-01-01T00%3A00%3A00.000000Z"]


async def test_unreadable_success_is_transient_and_closed_client() -> None:
    generator = ReplicateGenerator(
        FAKE_TOKEN,
        webhook_base_url=HOOK,
        transport=httpx.MockTransport(lambda _: httpx.Response(200, text="<html>ok</html>")),
    )
    with pytest.raises(TransientError):
        await generator.get("abc")
    await generator.aclose()
    with pytest.raises(RuntimeError):
        await generator.get("abc")


async def test_concurrent_calls_share_the_client(gen: ReplicateGenerator, fake: FakeReplicate) -> None:
    created = await gen.create(request())
    fake.inject(Fault.slow(0.05).on("get").repeat(5))
    results = await asyncio.gather(*(gen.get(created.id) for _ in range(5)))
    assert {r.id for r in results} == {created.id}
    assert fake.max_in_flight == 5


async def test_cancel_rejected_for_a_finished_prediction_returns_it() -> None:
    finished = {"id": "abc", "status": "succeeded", "output": ["https://replicate.delivery/x/out.png"]}

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/cancel"):
            return httpx.Response(409, json={"title": "Conflict", "detail": "already finished", "status": 409})
        return httpx.Response(200, json=finished)

    generator = ReplicateGenerator(FAKE_TOKEN, webhook_base_url=HOOK, transport=httpx.MockTransport(handler))
    result = await generator.cancel("abc")
    await generator.aclose()
    assert result.status == "succeeded"
    assert result.output == finished["output"]


def test_webhook_url_keeps_existing_query_and_encodes_marker() -> None:
    generator = ReplicateGenerator(FAKE_TOKEN, webhook_base_url="https://h.example/w?team=a&mg=old")
    assert generator.webhook_url("ns/name uid.1") == "https://h.example/w?team=a&mg=ns%2Fname+uid.1"


def test_parse_prediction_is_tolerant() -> None:
    parsed = parse_prediction(
        {
            "id": "abc",
            "status": "queued-somewhere",
            "created_at": "2024-04-22T11:15:16.064900134Z",
            "started_at": "2024-04-22T11:15:17Z",
            "completed_at": "not a time",
            "metrics": {"predict_time": 3},
            "logs": None,
            "error": "",
            "urls": None,
        }
    )
    assert parsed.status == "queued-somewhere"
    assert not parsed.terminal
    assert parsed.created_at == dt.datetime(2024, 4, 22, 11, 15, 16, 64900, tzinfo=dt.UTC)
    assert parsed.started_at == dt.datetime(2024, 4, 22, 11, 15, 17, tzinfo=dt.UTC)
    assert parsed.completed_at is None
    assert parsed.error is None
    assert parsed.predict_time_seconds == 3.0
    assert parse_timestamp("2024-04-22T13:15:00.077+02:00") == dt.datetime(2024, 4, 22, 11, 15, 0, 77000, tzinfo=dt.UTC)
    with pytest.raises(TransientError):
        parse_prediction({"status": "starting"})
