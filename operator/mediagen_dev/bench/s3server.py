"""moto's S3 server in a child process, so its CPU and memory (a 1 GiB object) stay out of every process
that is measured. ``python -m mediagen_dev.bench.s3server`` prints the endpoint URL and serves until stdin closes.
"""

from __future__ import annotations

import subprocess
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Self

from mediagen.storage.s3 import make_s3_client
from mediagen_dev.s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, EmbeddedS3

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client


class ChildS3:
    """An :class:`~mediagen_dev.s3_server.EmbeddedS3` running in a child process; a context manager."""

    access_key_id = ACCESS_KEY_ID
    secret_access_key = SECRET_ACCESS_KEY

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self.endpoint_url = ""

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def start(self) -> Self:
        """Start the child and wait for its endpoint URL."""
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mediagen_dev.bench.s3server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the S3 server child did not start (said {line!r})")
        self.endpoint_url = line
        return self

    def client(self, max_pool_connections: int = 16) -> S3Client:
        """A boto3 client for the server, configured like the operator's (the caller closes it)."""
        return make_s3_client(
            self.endpoint_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION, max_pool_connections=max_pool_connections
        )

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` (idempotent)."""
        client = self.client()
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", []) if "Name" in b}
            if name not in existing:
                client.create_bucket(Bucket=name)
        finally:
            client.close()

    def stop(self) -> None:
        """Close the child's stdin (it stops) and wait; kill it if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _serve() -> None:
    with EmbeddedS3() as server:
        print(server.endpoint_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or dies)


if __name__ == "__main__":
    _serve()
