"""The webhook receiver: signatures, replays, bad bodies, and what reaches the supervisor."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from mediagen.controller.webhook_receiver import (
    MAX_BODY_BYTES,
    PATH,
    InvalidSecret,
    WebhookReceiver,
    check_headers,
    handle,
    signing_key,
    verify,
)
from mediagen.generators.base import Prediction
from mediagen.reconcile.state import parse_correlation
from mediagen_dev.fake_replicate import sign
from tests.support.virtual_clock import until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = signing_key(SECRET)
VECTOR = {"id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "timestamp": 1614265330, "body": b'{"test": 2432232314}'}


def headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None, msg: str = "msg_1") -> dict[str, str]:
    sent = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg, "webhook-timestamp": str(sent), "webhook-signature": sign(secret, msg, sent, body)}


def prediction_json(status: str = "succeeded", prediction_id: str = "p1") -> bytes:
    return json.dumps({"id": prediction_id, "status": status, "output": ["https://replicate.delivery/x.png"]}).encode()


class Offers:
    """Records what reached the supervisor."""

    def __init__(self, result: bool | None = True) -> None:
        self.calls: list[tuple[str, int, Prediction]] = []
        self.result = result

    def __call__(self, uid: str, attempt: int, prediction: Prediction) -> bool | None:
        self.calls.append((uid, attempt, prediction))
        return self.result


def test_the_standard_webhooks_test_vector_verifies() -> None:
    vector_headers = {
        "webhook-id": str(VECTOR["id"]),
        "webhook-timestamp": str(VECTOR["timestamp"]),
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = VECTOR["body"]
    assert isinstance(body, bytes)
    assert verify(KEY, vector_headers, body, now=1614265330) is None
    assert verify(KEY, vector_headers, body + b" ", now=1614265330) == "no valid signature"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"webhook-id": ""}, "missing webhook-id or webhook-timestamp"),
        ({"webhook-timestamp": ""}, "missing webhook-id or webhook-timestamp"),
        ({"webhook-timestamp": "soon"}, "webhook-timestamp is not a number"),
        ({"webhook-signature": ""}, "no valid signature"),
        ({"webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}, "no valid signature"),
        ({"webhook-id": "msg_other"}, "no valid signature"),  # the id is signed too
    ],
)
def test_bad_headers_are_named(change: dict[str, str], problem: str) -> None:
    body = prediction_json()
    assert verify(KEY, {**headers(body), **change}, body, time.time()) == problem


def test_old_and_future_deliveries_are_replays() -> None:
    body, now = prediction_json(), time.time()
    assert verify(KEY, headers(body, timestamp=int(now) - 301), body, now) == "webhook-timestamp is too old or too new"
    assert verify(KEY, headers(body, timestamp=int(now) + 301), body, now) == "webhook-timestamp is too old or too new"
    assert verify(KEY, headers(body, timestamp=int(now) - 290), body, now) is None


def test_any_one_of_several_signatures_is_enough_while_a_secret_rotates() -> None:
    body = prediction_json()
    good = headers(body)
    other = sign("whsec_" + "A" * 32, good["webhook-id"], good["webhook-timestamp"], body)
    assert verify(KEY, {**good, "webhook-signature": f"{other} {good['webhook-signature']}"}, body, time.time()) is None
    assert verify(KEY, {**good, "webhook-signature": other}, body, time.time()) == "no valid signature"


@pytest.mark.parametrize("secret", ["", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!", "wh_abc="])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        signing_key(secret)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("u-1.1", ("u-1", 1)), ("a.b.12", ("a.b", 12)), ("u-1", None), (".3", None), ("u.x", None), ("u.-1", None)],
)
def test_markers(value: str, parsed: tuple[str, int] | None) -> None:
    assert parse_correlation(value) == parsed


def test_a_finished_prediction_reaches_the_supervisor() -> None:
    offers, body = Offers(), prediction_json()
    delivery = handle(KEY, offers, {"mg": "u-1.2"}, headers(body), body)
    assert (delivery.status, delivery.outcome) == (204, "accepted")
    ((uid, attempt, prediction),) = offers.calls
    assert (uid, attempt, prediction.id, prediction.status) == ("u-1", 2, "p1", "succeeded")


def test_what_nobody_waits_for_is_acknowledged_and_dropped() -> None:
    body = prediction_json()
    assert handle(KEY, Offers(result=False), {"mg": "u-1.2"}, headers(body), body).outcome == "ignored"
    offers = Offers()
    running = prediction_json("processing")
    assert handle(KEY, offers, {"mg": "u-1.2"}, headers(running), running).outcome == "ignored"
    assert handle(KEY, offers, {}, headers(body), body).outcome == "ignored"
    assert offers.calls == []


def test_a_resource_nobody_here_knows_is_retried_later() -> None:
    body = prediction_json()
    delivery = handle(KEY, Offers(result=None), {"mg": "u-1.2"}, headers(body), body)
    assert (delivery.status, delivery.outcome) == (503, "unknown")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"status": "succeeded"}', b'"x"'])
def test_a_signed_body_that_is_not_a_prediction_is_a_400(body: bytes) -> None:
    offers = Offers()
    delivery = handle(KEY, offers, {"mg": "u-1.2"}, headers(body), body)
    assert (delivery.status, delivery.outcome) == (400, "rejected") and offers.calls == []


def test_a_forged_delivery_is_a_401_and_reaches_nobody() -> None:
    offers, body = Offers(), prediction_json()
    forged = headers(body, secret="whsec_" + "B" * 32)
    assert handle(KEY, offers, {"mg": "u-1.2"}, forged, body).status == 401
    assert offers.calls == []


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[Any, Any], Offers, list[str]]]:
    offers, outcomes = Offers(), list[str]()
    receiver = WebhookReceiver(SECRET, offers, outcome=outcomes.append)
    async with TestClient(TestServer(receiver.app())) as test_client:
        yield test_client, offers, outcomes


async def test_over_http(client: tuple[TestClient[Any, Any], Offers, list[str]]) -> None:
    http, offers, outcomes = client
    body = prediction_json()
    response = await http.post(PATH + "?mg=u-9.1", data=body, headers=headers(body))
    assert response.status == 204 and offers.calls[0][:2] == ("u-9", 1)
    response = await http.post(PATH + "?mg=u-9.1", data=body, headers={**headers(body), "webhook-signature": "v1,x"})
    assert response.status == 401 and "no valid signature" in await response.text()
    huge = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = await http.post(PATH + "?mg=u-9.1", data=io.BytesIO(huge), headers=headers(huge))
    assert response.status == 413
    assert (await http.get(PATH)).status == 405
    offers.result = None
    response = await http.post(PATH + "?mg=u-8.1", data=body, headers=headers(body))
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert outcomes == ["accepted", "rejected", "rejected", "unknown"]
    assert len(offers.calls) == 2


# --- the receiver's defences: nothing is read before it is worth reading --------------------------------------


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"webhook-id": ""}, 400),
        ({"webhook-timestamp": "soon"}, 400),
        ({"webhook-signature": ""}, 400),
        ({"webhook-timestamp": "1614265330"}, 401),  # years old: a replay
    ],
)
def test_headers_are_checked_before_the_body(change: dict[str, str], status: int) -> None:
    body = prediction_json()
    problem = check_headers({**headers(body), **change}, time.time())
    assert problem is not None and problem.status == status
    assert check_headers(headers(body), time.time()) is None


async def test_an_oversized_declared_body_is_refused_without_reading_it(
    client: tuple[TestClient[Any, Any], Offers, list[str]],
) -> None:
    http, offers, outcomes = client
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = await http.post(PATH + "?mg=u-9.1", data=io.BytesIO(body), headers=headers(b"{}"))
    assert response.status == 413 and offers.calls == [] and outcomes == ["rejected"]


async def _status_before_the_body(port: int, target: str, fields: dict[str, str]) -> int:
    """Send only a request's head (declaring a body that never comes) and read the status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**fields, "Content-Length": "1000"}.items())
    writer.write(f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
    status = int((await asyncio.wait_for(reader.readline(), timeout=5)).split()[1])
    writer.close()
    return status


async def test_a_delivery_without_its_headers_or_marker_is_answered_before_the_body() -> None:
    offers, outcomes = Offers(), list[str]()
    receiver = WebhookReceiver(SECRET, offers, outcome=outcomes.append)
    port = await receiver.start("127.0.0.1", 0)
    try:
        assert await _status_before_the_body(port, PATH + "?mg=u-9.1", {"webhook-id": "msg_1"}) == 400
        assert await _status_before_the_body(port, PATH, headers(b"{}")) == 204
    finally:
        await receiver.stop()
    assert outcomes == ["rejected", "ignored"] and offers.calls == []


async def test_a_slow_body_times_out_and_deliveries_at_once_are_bounded() -> None:
    offers, outcomes = Offers(), list[str]()
    receiver = WebhookReceiver(SECRET, offers, outcome=outcomes.append, max_concurrent=1, read_timeout=0.2)
    async with TestClient(TestServer(receiver.app())) as http:
        stalled = asyncio.Event()

        async def drip() -> AsyncIterator[bytes]:
            yield b"{"
            await stalled.wait()
            yield b"}"

        slow = asyncio.create_task(http.post(PATH + "?mg=u-9.1", data=drip(), headers=headers(b"{}")))
        await until(lambda: receiver.reading == 1)
        body = prediction_json()
        crowded = await http.post(PATH + "?mg=u-9.1", data=body, headers=headers(body))
        assert crowded.status == 429 and crowded.headers["Retry-After"] == "5"
        assert (await slow).status == 408
        stalled.set()
        response = await http.post(PATH + "?mg=u-9.1", data=body, headers=headers(body))
        assert response.status == 204 and len(offers.calls) == 1
        assert outcomes == ["rejected", "rejected", "accepted"]
