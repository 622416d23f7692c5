"""An S3-compatible server inside this process (moto's), for ``mediagen dev`` and integration tests.

It stores objects in memory, accepts any signature and ignores presign expiry
(docs/r2.md#local-s3-servers-in-tests): fine for a local default and for exercising boto3 end to end, not for
checking R2's rejections. :meth:`EmbeddedS3.make_public` lets anyone read a bucket's objects at
``<endpoint>/<bucket>/<key>``, as an R2 public bucket serves them at ``<public URL>/<key>``: short,
permanent URLs for ``mediagen dev``.

moto keeps its state in process-wide backends: two servers in one process see the same buckets.
"""

from __future__ import annotations

import json
import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Self

from botocore.exceptions import ClientError

from mediagen.storage.errors import storage_errors
from mediagen.storage.s3 import make_s3_client

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

ACCESS_KEY_ID = "mediagen-local"
"""Dummy credentials: moto accepts any."""
SECRET_ACCESS_KEY = "mediagen-local-secret"  # noqa: S105 - a fixed dummy for a loopback test server
REGION = "us-east-1"
"""moto refuses ``CreateBucket`` from a client in region ``auto`` (IllegalLocationConstraintException)."""


class EmbeddedS3:
    """A moto S3 server on loopback; a context manager. ``port=0`` picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Nothing is started until :meth:`start` (or ``with``)."""
        self._host = host
        self._port = port
        self._server: object | None = None
        self._endpoint_url: str | None = None
        self._clients: list[S3Client] = []
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; only while running."""
        if self._endpoint_url is None:
            raise RuntimeError("EmbeddedS3 is not running")
        return self._endpoint_url

    @property
    def access_key_id(self) -> str:
        """The dummy access key id to use with this server."""
        return ACCESS_KEY_ID

    @property
    def secret_access_key(self) -> str:
        """The dummy secret to use with this server."""
        return SECRET_ACCESS_KEY

    def start(self) -> Self:
        """Start serving (idempotent); returns ``self``."""
        with self._lock:
            if self._server is not None:
                return self
            # Imported here: moto's server pulls in every backend, which costs about a second.
            from moto.server import ThreadedMotoServer

            access_log = logging.getLogger("werkzeug")
            if access_log.level == logging.NOTSET:
                # One line per request on stderr drowns the operator's own logs.
                access_log.setLevel(logging.WARNING)
            server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            self._server = server
            self._endpoint_url = f"http://{host}:{port}"
            return self

    def stop(self) -> None:
        """Close the clients made by :meth:`client` and stop serving (idempotent).

        Closing the clients first lets the server's per-connection threads end with their connections."""
        with self._lock:
            clients, self._clients = self._clients, []
            for client in clients:
                client.close()
            server, self._server = self._server, None
            self._endpoint_url = None
        if server is not None:
            server.stop()  # type: ignore[attr-defined]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, region: str = "auto") -> S3Client:
        """A client for this server with the R2 configuration; closed by :meth:`stop`."""
        client = make_s3_client(
            self.endpoint_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, region, connect_timeout=5, read_timeout=60
        )
        with self._lock:
            self._clients.append(client)
        return client

    def public_base_url(self, bucket: str) -> str:
        """Where :meth:`make_public` serves ``bucket``'s objects: the base URL for ``R2_PUBLIC_BASE_URL``."""
        return f"{self.endpoint_url}/{bucket}"

    def make_public(self, bucket: str) -> str:
        """Let anyone GET the objects of ``bucket`` without signing (a bucket policy; R2 has a public-bucket
        switch instead); returns :meth:`public_base_url`."""
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
            ],
        }
        client = make_s3_client(self.endpoint_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION)
        try:
            with storage_errors("PutBucketPolicy", bucket, ""):
                client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        finally:
            client.close()
        return self.public_base_url(bucket)

    def ensure_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists."""
        client = make_s3_client(self.endpoint_url, ACCESS_KEY_ID, SECRET_ACCESS_KEY, REGION)
        try:
            with storage_errors("CreateBucket", name, ""):
                try:
                    client.create_bucket(Bucket=name)
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code", "")
                    if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
        finally:
            client.close()
