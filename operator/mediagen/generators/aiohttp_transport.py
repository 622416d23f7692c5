"""An httpx transport that sends on aiohttp: the Replicate client keeps httpx's interface (and its tests keep
``httpx.MockTransport``), while the connection pool is aiohttp's.

httpcore's asyncio pool was the costliest part of a Replicate call (about three quarters of it, profiled with
py-spy at 400 creates in flight): on every request and answer it re-checks each pooled connection (a poll and a
``getpeername`` each), which grows with the pool. aiohttp keeps idle connections in a queue and checks none.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with an aiohttp session of its own (opened in the first request's event loop).

    ``connections`` caps the connections open at once; ``ssl_context`` overrides certificate checks (tests)."""

    def __init__(self, *, connections: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._connections = connections
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_for_this_loop()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
            connect=timeouts.get("pool"),  # waiting for a free connection, as httpx's pool timeout
        )
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                str(request.url),
                data=body or None,
                headers=[(key.decode("latin-1"), value.decode("latin-1")) for key, value in request.headers.raw],
                timeout=timeout,
                ssl=self._ssl,
                allow_redirects=False,
            ) as response:
                content = await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            raise httpx.ConnectTimeout(str(err) or type(err).__name__, request=request) from None
        except (aiohttp.ServerTimeoutError, TimeoutError) as err:
            raise httpx.ReadTimeout(str(err) or type(err).__name__, request=request) from None
        except aiohttp.ClientConnectorError as err:
            raise httpx.ConnectError(str(err) or type(err).__name__, request=request) from None
        except (aiohttp.ClientError, OSError) as err:
            raise httpx.ReadError(str(err) or type(err).__name__, request=request) from None
        return httpx.Response(
            status_code=response.status,
            # The body as it came (decompression is httpx's, by Content-Encoding), the headers as they were sent.
            headers=[(key.decode("latin-1"), value.decode("latin-1")) for key, value in response.raw_headers],
            content=content,
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1")},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300),
                auto_decompress=False,
                trust_env=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            )
            self._loop = loop
        return self._session
