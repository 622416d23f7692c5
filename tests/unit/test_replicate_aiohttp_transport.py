"""The Replicate client on aiohttp's pool (its default transport), over real HTTP on loopback: what it sends, what it
reads back (compressed or not), and network trouble turned into the errors the worker retries."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from mediagen.generators.base import CreateRequest, TransientError
from mediagen.generators.replicate import ReplicateGenerator
from mediagen_dev.fake_replicate import FAKE_TOKEN

HOOK = "https://mediagen.example/hooks/replicate"
PREDICTION = {"id": "p1", "status": "starting", "created_at": "2026-01-01T00:00:00Z"}


class Server:
    """An aiohttp server on loopback answering every request with ``answer``, recording what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.gzip = False
        self.stall = False
        self.stall_gets = False
        self.gets_held = 0
        self.two_gets_held = asyncio.Event()
        self.released = asyncio.Event()
        self.peers: set[Any] = set()
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        if self.stall_gets and request.method == "GET":
            self.gets_held += 1
            if self.gets_held == 2:
                self.two_gets_held.set()
            await self.released.wait()
        if self.stall:
            await self.released.wait()
        body = json.dumps(PREDICTION).encode()
        headers = {"Content-Type": "application/json"}
        if self.gzip:
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        return web.Response(status=201, body=body, headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.base_url = f"http://127.0.0.1:{port}"
    yield state
    state.released.set()
    await runner.cleanup()


def request(**overrides: Any) -> CreateRequest:
    return CreateRequest(input={"prompt": "a lighthouse"}, correlation="c-1", model="owner/model", **overrides)


@pytest.mark.parametrize("compressed", [False, True])
async def test_a_create_sends_the_token_and_body_and_reads_the_answer(server: Server, compressed: bool) -> None:
    server.gzip = compressed
    generator = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK)
    try:
        prediction = await generator.create(request(cancel_after_seconds=90))
    finally:
        await generator.aclose()
    assert prediction.id == "p1" and prediction.status == "starting"
    method, path, headers, body = server.seen[0]
    assert (method, path) == ("POST", "/v1/models/owner/model/predictions")
    assert headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert headers["Cancel-After"] == "90s"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "mediagen-operator"
    sent = json.loads(body)
    assert sent["input"] == {"prompt": "a lighthouse"} and sent["webhook"].startswith(HOOK)


async def test_connections_are_kept_and_reused(server: Server) -> None:
    generator = ReplicateGenerator(FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK)
    try:
        for _ in range(3):
            await generator.create(request())
    finally:
        await generator.aclose()
    assert len(server.seen) == 3
    assert len(server.peers) == 1, server.peers  # one connection, kept alive between the calls


async def test_an_answer_that_never_comes_is_a_transient_timeout(server: Server) -> None:
    server.stall = True
    generator = ReplicateGenerator(
        FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK, timeout=httpx.Timeout(5.0, read=0.2)
    )
    try:
        with pytest.raises(TransientError, match="timed out talking to Replicate during create"):
            await generator.create(request())
    finally:
        await generator.aclose()


async def test_a_refused_connection_is_a_transient_network_error() -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    generator = ReplicateGenerator(FAKE_TOKEN, base_url=f"http://127.0.0.1:{port}", webhook_base_url=HOOK)
    try:
        with pytest.raises(TransientError, match="network error talking to Replicate during create"):
            await generator.create(request())
    finally:
        await generator.aclose()


async def test_a_create_gets_a_connection_while_polls_hold_all_of_theirs(server: Server) -> None:
    # Creates have connections of their own (the request pacer's timing must not queue behind polls): aiohttp's
    # pool once capped the polls' count alone, and a create waited for a poll to finish.
    server.stall_gets = True
    generator = ReplicateGenerator(
        FAKE_TOKEN, base_url=server.base_url, webhook_base_url=HOOK, max_connections=2, create_connections=1
    )
    polls = [asyncio.create_task(generator.get(f"p{i}")) for i in range(2)]
    try:
        await server.two_gets_held.wait()
        async with asyncio.timeout(10):  # a backstop: without a connection of its own the create never starts
            prediction = await generator.create(request())
        assert prediction.id == "p1"
        assert [method for method, *_ in server.seen] == ["GET", "GET", "POST"]
    finally:
        server.released.set()
        await asyncio.gather(*polls, return_exceptions=True)
        await generator.aclose()
