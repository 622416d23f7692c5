"""The fake against the real replicate 1.0.7 client, over loopback HTTP and in-process ASGI.

If the fake drifted from what 1.0.7 parses (a null where a string is required, a missing field), these
tests fail with the client's own ValidationError.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic.v1 import ValidationError
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.version import Versions

from mediagen_dev.fake_replicate import (
    FAKE_TOKEN,
    FakeReplicate,
    FakeReplicateServer,
    Fault,
    ManualClock,
    ModelScript,
    OutputFile,
    expected_sha256,
    version_for,
)

VIDEO = OutputFile("out.mp4", "video/mp4", size=6 * 1024 * 1024 + 11, seed=5)
MODELS = {
    "acme/flux": ModelScript(queue_seconds=2, processing_seconds=4),
    "acme/sdxl": ModelScript(official=False, queue_seconds=1, processing_seconds=2),
    "acme/video": ModelScript(output="url", files=(VIDEO,)),
}
CLOCK = ManualClock()


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
def client(server: FakeReplicateServer, fake: FakeReplicate) -> Iterator[Client]:
    client = Client(api_token=FAKE_TOKEN, base_url=server.base_url)
    yield client
    client._client.close()


def test_every_non_aborted_status_parses(client: Client) -> None:
    prediction = client.predictions.create(model="acme/flux", input={"prompt": "a corgi"})
    seen = [prediction.status]
    for step in (2.5, 4.0):
        CLOCK.advance(step)
        seen.append(client.predictions.get(prediction.id).status)
    failed = client.predictions.create(model="acme/flux", input={"prompt": "fake:nsfw"})
    canceled = client.predictions.create(model="acme/flux", input={"prompt": "x"})
    client.predictions.cancel(canceled.id)
    CLOCK.advance(10)
    seen += [client.predictions.get(failed.id).status, client.predictions.get(canceled.id).status]
    assert seen == ["starting", "processing", "succeeded", "failed", "canceled"]
    done = client.predictions.get(prediction.id)
    assert done.output
    assert done.output[0].startswith(client._base_url or "")
    assert done.progress is not None
    assert done.progress.percentage == 1.0
    assert done.metrics == {"total_time": 6.0, "predict_time": 4.0}


def test_aborted_breaks_the_1_0_7_client(client: Client, fake: FakeReplicate) -> None:
    # The reason our generator parses raw JSON: this is what replicate 1.0.7 does with "aborted".
    prediction = client.predictions.create(model="acme/flux", input={"_fake": {"outcome": "aborted"}})
    CLOCK.advance(5)
    with pytest.raises(ValidationError):
        client.predictions.get(prediction.id)
    assert fake.snapshot(prediction.id)["status"] == "aborted"


def test_routing_list_secret_and_versions(client: Client, fake: FakeReplicate) -> None:
    version = version_for("acme/sdxl", MODELS["acme/sdxl"])
    by_version = client.predictions.create(version=version, input={"prompt": "x"})
    by_deployment = client.deployments.predictions.create("acme/prod", input={"prompt": "y"})
    by_model = client.models.predictions.create("acme/flux", input={"prompt": "z"})
    assert (by_version.model, by_deployment.model, by_model.model) == ("acme/sdxl", "acme/flux", "acme/flux")
    page = client.predictions.list()
    assert [p.id for p in page.results] == [by_model.id, by_deployment.id, by_version.id]
    filtered = client.predictions.list("/v1/predictions?created_after=2000-01-01T00:00:00Z")
    assert len(filtered.results) == 3
    assert client.webhooks.default.secret().key == fake.webhook_secret
    assert Versions(client, "acme/sdxl").get(version).id == version
    with pytest.raises(ReplicateError) as not_found:
        client.predictions.get("doesnotexist")
    assert not_found.value.status == 404


def test_list_pages_follow_absolute_next(client: Client, fake: FakeReplicate) -> None:
    fake.config.page_size = 2
    ids = {client.predictions.create(model="acme/flux", input={}).id for _ in range(5)}
    page = client.predictions.list()
    seen = [p.id for p in page.results]
    while page.next:
        assert page.next.startswith(fake.base_url or "")
        page = client.predictions.list(page.next)
        seen += [p.id for p in page.results]
    assert set(seen) == ids
    assert len(seen) == 5


def test_client_errors_carry_status(client: Client, fake: FakeReplicate) -> None:
    with pytest.raises(ReplicateError) as community:
        client.models.predictions.create("acme/sdxl", input={})
    assert (community.value.status, community.value.title) == (422, "Invalid version or not permitted")
    fake.inject(Fault.throttled(3).on("create"))
    with pytest.raises(ReplicateError) as throttled:  # 1.0.7 never retries POST
        client.predictions.create(model="acme/flux", input={})
    assert throttled.value.status == 429
    fake.inject(Fault.server_error(502).on("list"))
    with pytest.raises(ReplicateError) as bad_gateway:  # nor a 502 on GET
        client.predictions.list()
    assert (bad_gateway.value.status, bad_gateway.value.detail) == (502, None)
    assert fake.requests[("POST", "/v1/models/{owner}/{name}/predictions", 429)] == 1


def test_dropped_connection_after_create_is_a_transport_error(client: Client, fake: FakeReplicate) -> None:
    fake.inject(Fault.dropped().on("create"))
    with pytest.raises(httpx.TransportError):
        client.predictions.create(model="acme/flux", input={}, webhook="https://h.example/?mg=lost")
    assert fake.creates_by_marker == {"lost": 1}
    assert fake.request_log[-1].dropped


def test_large_file_streams_chunk_by_chunk(client: Client, server: FakeReplicateServer) -> None:
    prediction = client.predictions.create(model="acme/video", input={})
    CLOCK.advance(10)
    url = client.predictions.get(prediction.id).output
    assert isinstance(url, str)
    digest, chunks = hashlib.sha256(), 0
    with httpx.stream("GET", url) as response:
        assert response.headers["content-type"] == "video/mp4"
        for chunk in response.iter_raw():
            digest.update(chunk)
            chunks += 1
    assert chunks > 1
    assert digest.hexdigest() == expected_sha256(VIDEO)


def test_slow_response_hits_the_read_timeout(server: FakeReplicateServer, fake: FakeReplicate) -> None:
    client = Client(api_token=FAKE_TOKEN, base_url=server.base_url, timeout=httpx.Timeout(1.0, read=0.05))
    fake.inject(Fault.slow(0.3).on("secret"))
    with pytest.raises(httpx.ReadTimeout):
        client.webhooks.default.secret()
    assert fake.wait_idle()  # let the abandoned request finish before the next test
    client._client.close()


@pytest.fixture
async def asgi_client(fake: FakeReplicate) -> AsyncIterator[Client]:
    client = Client(api_token=FAKE_TOKEN, base_url="http://fake.local", transport=httpx.ASGITransport(app=fake))
    yield client
    await client._async_client.aclose()


async def test_async_client_in_process(asgi_client: Client, fake: FakeReplicate) -> None:
    created = await asgi_client.predictions.async_create(model="acme/flux", input={"prompt": "x"})
    assert created.urls is not None
    assert created.urls["get"].startswith("http://fake.local/v1/predictions/")
    CLOCK.advance(3)
    assert (await asgi_client.predictions.async_get(created.id)).status == "processing"
    canceled = await asgi_client.predictions.async_cancel(created.id)
    assert canceled.status == "canceled"
    assert canceled.completed_at is not None
    page = await asgi_client.predictions.async_list()
    assert [p.id for p in page.results] == [created.id]
    assert (await asgi_client.webhooks.default.async_secret()).key == fake.webhook_secret
    version = version_for("acme/sdxl", MODELS["acme/sdxl"])
    assert (await Versions(asgi_client, "acme/sdxl").async_get(version)).cog_version
    fake.inject(Fault.dropped().on("create"))
    with pytest.raises(httpx.TransportError):
        await asgi_client.predictions.async_create(model="acme/flux", input={})
    assert len(fake.predictions) == 2


def test_server_leaves_no_thread_or_port_behind() -> None:
    before = set(threading.enumerate())
    with FakeReplicateServer(FakeReplicate()) as server:
        port = server.port
        assert port is not None
        assert httpx.get(f"{server.base_url}/v1/predictions").status_code == 401
    assert set(threading.enumerate()) <= before
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
