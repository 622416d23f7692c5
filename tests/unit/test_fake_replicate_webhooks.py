"""The fake's webhook sender: Standard Webhooks signatures, event filters, throttling and retries."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from replicate.webhook import InvalidSignatureError, Webhooks, WebhookSigningSecret

from mediagen_dev.fake_replicate import (
    FAKE_TOKEN,
    FakeReplicate,
    ManualClock,
    ModelScript,
    WebhookSender,
    sign,
)

HOOK = "https://hooks.example/replicate?mg=uid-1"


class Receiver:
    """Captures deliveries; answers with the scripted statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []
        self.arrived = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.arrived.set()
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def events(self) -> list[str]:
        return [json.loads(r.content)["status"] for r in self.requests]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeReplicate:
    return FakeReplicate(clock=clock, models={"acme/flux": ModelScript(queue_seconds=1, processing_seconds=4)})


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def mock_http(receiver: Receiver) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(receiver)) as client:
        yield client


@pytest.fixture
def sender(fake: FakeReplicate, mock_http: httpx.Client) -> WebhookSender:
    return WebhookSender(fake, client=mock_http, time_scale=0.1)


@pytest.fixture
async def http(fake: FakeReplicate) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake),
        base_url="http://fake",
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, events: list[str] | None = None, prompt: str = "x") -> str:
    body: dict[str, object] = {"input": {"prompt": prompt}, "webhook": HOOK}
    if events is not None:
        body["webhook_events_filter"] = events
    response = await http.post("/v1/models/acme/flux/predictions", json=body)
    assert response.status_code == 201
    return str(response.json()["id"])


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


async def test_deliveries_validate_with_the_replicate_client(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock, sender: WebhookSender, receiver: Receiver
) -> None:
    prediction_id = await create(http, ["completed"])
    clock.advance(10)
    (delivery,) = sender.pump()
    (request,) = receiver.requests
    assert str(request.url) == HOOK
    assert request.headers["user-agent"] == "Webhooks/1.66.0 (sender-fake)"
    assert request.headers["webhook-id"].startswith("msg_")
    assert len(request.headers["webhook-id"]) == 31
    secret = WebhookSigningSecret(key=fake.webhook_secret)
    headers = dict(request.headers)
    assert Webhooks.validate(headers=headers, body=request.content.decode(), secret=secret) is None
    with pytest.raises(InvalidSignatureError):
        Webhooks.validate(headers=headers, body=request.content.decode() + " ", secret=secret)
    body = json.loads(request.content)
    assert request.content == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert (body["id"], body["status"], body["webhook"]) == (prediction_id, "succeeded", HOOK)
    assert delivery.ok
    assert delivery.event == "completed"
    assert sender.pump() == []  # delivered once


async def test_event_filter_and_default(
    http: httpx.AsyncClient, clock: ManualClock, sender: WebhookSender, receiver: Receiver
) -> None:
    await create(http, ["start", "completed"])
    await create(http)  # default filter: output + completed
    clock.advance(2)
    assert [d.event for d in sender.pump()] == ["start"]
    clock.advance(10)
    assert [d.event for d in sender.pump()] == ["completed", "output", "completed"]
    assert receiver.events() == ["processing", "succeeded", "succeeded", "succeeded"]


async def test_logs_events_are_throttled(http: httpx.AsyncClient, clock: ManualClock, sender: WebhookSender) -> None:
    await create(http, ["logs"])
    clock.advance(1)
    sent = 0
    for _ in range(20):  # 2 s of processing in 0.1 s steps
        clock.advance(0.1)
        sent += len(sender.pump())
    assert sent == 4


async def test_completed_is_retried_with_the_same_id_until_accepted(
    http: httpx.AsyncClient, clock: ManualClock, sender: WebhookSender, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    await create(http, ["completed"])
    clock.advance(5)  # completes exactly now
    attempts = [len(sender.pump())]
    for _ in range(4):
        clock.advance(0.11)  # retry offsets 0, 1, 3 s scaled by 0.1
        attempts.append(len(sender.pump()))
    assert attempts == [1, 1, 0, 1, 0]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert [d.status for d in sender.deliveries] == [500, 503, 200]
    assert [d.attempt for d in sender.deliveries] == [1, 2, 3]


async def test_unreachable_receiver_gets_every_retry_then_gives_up(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    response = await http.post(
        "/v1/models/acme/flux/predictions",
        json={"input": {}, "webhook": f"http://127.0.0.1:{port}/hook", "webhook_events_filter": ["completed"]},
    )
    assert response.status_code == 201
    sender = WebhookSender(fake, retry_offsets=(0.0, 1.0, 2.0))
    clock.advance(5)
    for _ in range(4):
        sender.pump()
        clock.advance(1)
    sender.stop()
    assert [d.attempt for d in sender.deliveries] == [1, 2, 3]
    assert all(d.status is None and d.error for d in sender.deliveries)


async def test_duplicates_and_rotated_secret(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock, receiver: Receiver, mock_http: httpx.Client
) -> None:
    rotated = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sender = WebhookSender(fake, client=mock_http, duplicate_completed=True, rotated_secret=rotated)
    await create(http, ["completed"])
    clock.advance(10)
    sender.pump()
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    signatures = first.headers["webhook-signature"].split()
    assert len(signatures) == 2
    for key, signature in zip((fake.webhook_secret, rotated), signatures, strict=True):
        expected = sign(key, first.headers["webhook-id"], first.headers["webhook-timestamp"], first.content)
        assert signature == expected


async def test_background_thread_delivers_and_reset_forgets(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock, mock_http: httpx.Client, receiver: Receiver
) -> None:
    with WebhookSender(fake, client=mock_http, interval=0.005) as sender:
        await create(http, ["completed"])
        clock.advance(10)
        assert await asyncio.to_thread(receiver.arrived.wait, 2)
        assert [d.event for d in sender.deliveries] == ["completed"]
        fake.reset()
        assert sender.deliveries == []
        assert fake.predictions == {}
