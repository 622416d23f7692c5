"""The gateway's listening socket."""

from __future__ import annotations

import asyncio
import socket

from mediagen.gateway.server import bind, keep_large_buffers_out_of_the_heap


async def test_connections_accepted_on_the_gateways_socket_send_without_delay() -> None:
    # Created without IPPROTO_TCP, the socket's connections were left to Nagle by asyncio, and each answer (headers
    # and body written apart by uvicorn) waited for the client's delayed ACK: ~40 ms a request on Linux.
    sock = bind("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Peek(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("socket")
            accepted.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Peek, sock=sock)  # as uvicorn serves it
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert await asyncio.wait_for(accepted, timeout=5) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_large_buffers_get_mappings_of_their_own_on_glibc() -> None:
    # mallopt answers 1 when glibc took the setting (what keeps a listing's megabytes from staying in the heap).
    assert keep_large_buffers_out_of_the_heap() is True
