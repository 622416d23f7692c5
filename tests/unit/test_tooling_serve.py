"""The tooling server of make e2e: the fake's stats endpoint and the HTTPS webhook relay's forwarding."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from mediagen_dev.e2e.serve import STATS_PATH, StatsApp, WebhookRelay, e2e_models
from mediagen_dev.fake_replicate import FAKE_TOKEN, FakeReplicate, png_bytes


async def test_stats_count_creates_per_marker_and_gets_per_prediction() -> None:
    fake = FakeReplicate(models=e2e_models(), auto_models=True)
    transport = httpx.ASGITransport(app=StatsApp(fake))
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        auth = {"Authorization": f"Bearer {FAKE_TOKEN}"}
        created = await client.post(
            "/v1/models/e2e/slow/predictions",
            headers=auth,
            json={"input": {"prompt": "x"}, "webhook": "https://h.example/hook?mg=uid-1.1"},
        )
        assert created.status_code == 201
        prediction = created.json()["id"]
        await client.get(f"/v1/predictions/{prediction}", headers=auth)
        stats = (await client.get(STATS_PATH)).json()
    assert stats["creates_by_marker"] == {"uid-1.1": 1}
    assert stats["gets_by_prediction"] == {prediction: 1}
    assert stats["predictions_by_status"] == {"starting": 1}
    assert stats["png_sha256"] == hashlib.sha256(png_bytes()).hexdigest()


async def test_relay_forwards_path_query_headers_and_body() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    relay = WebhookRelay(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=relay), base_url="https://relay") as client:
        answer = await client.post(
            "/team-a/op-webhooks/8082/replicate-webhook?mg=u.1", content=b'{"id":"p"}', headers={"webhook-id": "msg_1"}
        )
    assert answer.status_code == 204
    (request,) = seen
    assert str(request.url) == "http://op-webhooks.team-a.svc:8082/replicate-webhook?mg=u.1"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.content == b'{"id":"p"}'


@pytest.mark.parametrize(("method", "path"), [("GET", "/a/b/1/hook"), ("POST", "/a/b/hook"), ("POST", "/a/b/x/hook")])
async def test_relay_refuses_what_it_cannot_route(method: str, path: str) -> None:
    relay = WebhookRelay(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=relay), base_url="https://relay") as client:
        assert (await client.request(method, path)).status_code == 404


async def test_relay_answers_502_when_the_receiver_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    relay = WebhookRelay(httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=relay), base_url="https://relay") as client:
        assert (await client.post("/a/b/1/hook", content=b"{}")).status_code == 502
