"""Serve a :class:`FakeReplicate` over real loopback HTTP from a background thread (uvicorn).

Real sockets matter for what ASGI-in-process cannot show: read timeouts, dropped connections, connection
pooling, and clients that only take a URL (``REPLICATE_BASE_URL``)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn

from mediagen.testing.fake_replicate.fake import FakeReplicate


class FakeReplicateServer:
    """``with FakeReplicateServer(fake) as server:`` serves ``fake`` on ``127.0.0.1:<random port>``.

    ``base_url`` has no ``/v1``, like ``replicate.Client(base_url=...)`` expects. Stopping waits for the
    server thread to end, so no thread or port outlives the ``with`` block."""

    def __init__(self, fake: FakeReplicate | None = None, *, startup_timeout: float = 10.0) -> None:
        self.fake = fake or FakeReplicate()
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` while running."""
        if self.port is None:
            raise RuntimeError("the fake Replicate server is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeReplicateServer:
        """Bind a free port and serve until :meth:`stop`; returns once the socket accepts connections."""
        if self._server is not None:
            return self
        config = uvicorn.Config(
            self.fake,
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
        thread = threading.Thread(target=server.run, name="fake-replicate-server", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake Replicate server did not start")
            time.sleep(0.002)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self.fake.base_url = self.base_url
        return self

    def stop(self) -> None:
        """Shut down and join the server thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread, self.port = None, None, None
        self.fake.base_url = None

    def __enter__(self) -> FakeReplicateServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
