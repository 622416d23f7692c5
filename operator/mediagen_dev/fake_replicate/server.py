"""Serve a :class:`FakeReplicate` over real loopback HTTP from a background thread (uvicorn)."""

from __future__ import annotations

from types import TracebackType

from mediagen_dev.fake_replicate.fake import FakeReplicate
from mediagen_dev.http_server import ThreadedServer


class FakeReplicateServer:
    """``with FakeReplicateServer(fake) as server:`` serves ``fake`` on ``127.0.0.1:<random port>``.

    ``base_url`` has no ``/v1``, like ``replicate.Client(base_url=...)`` expects. Stopping waits for the
    server thread to end, so no thread or port outlives the ``with`` block."""

    def __init__(self, fake: FakeReplicate | None = None, *, startup_timeout: float = 10.0) -> None:
        self.fake = fake or FakeReplicate()
        self._server = ThreadedServer(self.fake, name="fake-replicate-server", startup_timeout=startup_timeout)

    @property
    def port(self) -> int | None:
        """The bound port while running."""
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` while running."""
        if self._server.port is None:
            raise RuntimeError("the fake Replicate server is not running")
        return self._server.url

    def start(self) -> FakeReplicateServer:
        """Bind a free port and serve until :meth:`stop`; returns once the socket accepts connections."""
        self._server.start()
        self.fake.base_url = self.base_url
        return self

    def stop(self) -> None:
        """Shut down and join the server thread (idempotent)."""
        self._server.stop()
        self.fake.base_url = None

    def __enter__(self) -> FakeReplicateServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
