"""Serve an ASGI app over real loopback HTTP from a background thread, for tests and local tools.

Real sockets matter for what ASGI-in-process cannot show: read timeouts, dropped connections, connection
pooling, and clients that only take a URL."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp


class ThreadedServer:
    """``with ThreadedServer(app) as server:`` serves ``app`` on ``127.0.0.1:<random port>``.

    Stopping waits for the server thread to end, so no thread or port outlives the ``with`` block."""

    def __init__(self, app: ASGIApp, *, name: str = "asgi-server", startup_timeout: float = 10.0) -> None:
        self.app = app
        self.name = name
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` while running."""
        if self.port is None:
            raise RuntimeError(f"{self.name} is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Bind a free port and serve until :meth:`stop`; returns once the socket accepts connections."""
        if self._server is not None:
            return self
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            interface="asgi3",
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
            log_config=None,
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=self.name, daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.002)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Shut down and join the server thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread, self.port = None, None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
