"""S3Store, the embedded server and the copy pipeline against a real S3 server (moto) on loopback.

moto accepts any signature and ignores presign expiry, and takes unequal parts
(docs/r2.md#local-s3-servers-in-tests): what R2 would reject is covered by the wire-shape tests in
tests/unit/test_storage_s3.py. Here the point is boto3 end to end: bytes, hashes, headers, multipart, abort,
URLs, memory.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from mediagen.generators.base import CreateRequest
from mediagen.generators.mock import MockGenerator
from mediagen.storage.base import StorageError
from mediagen.storage.s3 import IMMUTABLE_CACHE_CONTROL, MAX_PRESIGN_SECONDS, MIB, S3Store, make_s3_client
from mediagen.storage.streaming import UploadCanceled
from mediagen.transfer import Downloader, collect_output_urls, copy_output
from mediagen_dev.s3_server import EmbeddedS3

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

BUCKET = "mediagen-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[EmbeddedS3]:
    with EmbeddedS3() as server:
        server.ensure_bucket(BUCKET)
        yield server


@pytest.fixture
def client(s3: EmbeddedS3) -> S3Client:
    return s3.client()


@pytest.fixture
def store(client: S3Client) -> S3Store:
    return S3Store(client, BUCKET)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return f"t/{request.node.name.replace('[', '-').replace(']', '')}/"


def pattern(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """``size`` pseudo-random bytes in ``chunk``-sized pieces, generated on the fly."""
    block = hashlib.sha256(b"seed").digest() * (chunk // 32 + 1)
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        yield block[:n]
        sent += n


def sha256_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def get(client: S3Client, key: str) -> tuple[bytes, dict[str, Any]]:
    response = client.get_object(Bucket=BUCKET, Key=key)
    return response["Body"].read(), dict(response)


def pending_uploads(client: S3Client, key: str) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", []))


# -- round trips ---------------------------------------------------------------------------------------


def test_small_object_round_trip(store: S3Store, client: S3Client, prefix: str) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(5000)
    stored = store.put_stream(f"{prefix}0.png", iter([data[:10], data[10:]]), content_type="image/png")

    body, response = get(client, f"{prefix}0.png")
    assert body == data
    assert response["ContentType"] == "image/png"
    assert response["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    assert stored.sha256 == hashlib.sha256(data).hexdigest() == response["Metadata"]["sha256"]
    assert stored.etag == hashlib.md5(data).hexdigest()  # noqa: S324 - single-part ETag is the MD5

    head = store.head(f"{prefix}0.png")
    assert head == stored


def test_multipart_round_trip(store: S3Store, client: S3Client, prefix: str) -> None:
    part_sizes: list[int] = []

    def count_parts(request: Any, **_: Any) -> None:
        part_sizes.append(int(request.headers["Content-Length"]))

    client.meta.events.register("before-send.s3.UploadPart", count_parts)
    size = 20 * MIB
    stored = store.put_stream(f"{prefix}0.mp4", pattern(size), content_type="video/mp4")

    assert sorted(part_sizes, reverse=True) == [8 * MIB, 8 * MIB, 4 * MIB]
    body, response = get(client, f"{prefix}0.mp4")
    assert len(body) == size == stored.size_bytes
    assert hashlib.sha256(body).hexdigest() == stored.sha256 == sha256_of(pattern(size))
    assert response["ContentType"] == "video/mp4"
    assert response["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    assert stored.etag is not None
    assert stored.etag.endswith("-3")
    head = store.head(f"{prefix}0.mp4")
    assert head is not None
    assert (head.size_bytes, head.sha256, head.etag) == (size, "", stored.etag)


def test_overwrite_keeps_the_key(store: S3Store, client: S3Client, prefix: str) -> None:
    store.put_stream(f"{prefix}k", iter([b"one"]), content_type="text/plain")
    store.put_stream(f"{prefix}k", iter([b"two"]), content_type="text/plain")
    assert get(client, f"{prefix}k")[0] == b"two"


def test_head_missing_is_none(store: S3Store, prefix: str) -> None:
    assert store.head(f"{prefix}nothing-here.png") is None


def test_delete_prefix(store: S3Store, client: S3Client, prefix: str) -> None:
    for i in range(3):
        store.put_stream(f"{prefix}uid-1/p/{i}.png", iter([b"x"]), content_type="image/png")
    store.put_stream(f"{prefix}uid-1x/p/0.png", iter([b"y"]), content_type="image/png")

    assert store.delete_prefix(f"{prefix}uid-1/") == 3
    remaining = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    assert [o.get("Key") for o in remaining] == [f"{prefix}uid-1x/p/0.png"]
    assert store.delete_prefix(f"{prefix}uid-1/") == 0


# -- URLs ----------------------------------------------------------------------------------------------


def test_presigned_url_is_fetchable_and_clamped(s3: EmbeddedS3, client: S3Client, prefix: str) -> None:
    store = S3Store(client, BUCKET, presign_ttl_seconds=30 * 86400)
    key = f"{prefix}a b/0.png"
    store.put_stream(key, iter([b"picture"]), content_type="image/png")

    url = store.url_for(key)
    assert url.url.startswith(f"{s3.endpoint_url}/{BUCKET}/")
    assert f"X-Amz-Expires={MAX_PRESIGN_SECONDS}" in url.url
    assert url.expires_at is not None
    response = httpx.get(url.url)
    assert response.status_code == 200
    assert response.content == b"picture"
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("content_type", "disposition"),
    [
        ("text/html", 'attachment; filename="0.html"'),
        ("image/svg+xml", 'attachment; filename="0.svg"'),
        ("image/png", None),
        ("video/mp4", None),
    ],
)
def test_active_content_downloads_instead_of_rendering(
    s3: EmbeddedS3, client: S3Client, prefix: str, content_type: str, disposition: str | None
) -> None:
    """A model's HTML or SVG opened from our domain would run its scripts there: the link downloads it."""
    store = S3Store(client, BUCKET)
    key = f"{prefix}0{'.html' if content_type == 'text/html' else '.svg' if 'svg' in content_type else '.bin'}"
    stored = store.put_stream(key, iter([b"<svg onload='alert(1)'/>"]), content_type=content_type)

    response = httpx.get(store.url_for(key).url)
    assert response.status_code == 200
    assert response.headers.get("content-disposition") == disposition
    assert response.headers["content-type"] == stored.content_type == content_type


def test_a_public_embedded_bucket_serves_short_permanent_urls(s3: EmbeddedS3, client: S3Client, prefix: str) -> None:
    base = s3.make_public(BUCKET)
    store = S3Store(client, BUCKET, public_base_url=base)
    key = f"{prefix}0.png"
    store.put_stream(key, iter([b"picture"]), content_type="image/png")

    url = store.url_for(key)
    assert url.expires_at is None
    assert url.url == f"{s3.endpoint_url}/{BUCKET}/{key}"
    response = httpx.get(url.url)  # unsigned
    assert (response.status_code, response.content) == (200, b"picture")


def test_public_url_format(s3: EmbeddedS3, client: S3Client, prefix: str) -> None:
    store = S3Store(client, BUCKET, public_base_url="https://media.example.com/")
    key = f"{prefix}ü 1/0.png"
    store.put_stream(key, iter([b"public"]), content_type="image/png")

    url = store.url_for(key)
    assert url.url == f"https://media.example.com/{prefix}%C3%BC%201/0.png"
    assert url.expires_at is None
    # The public URL addresses the same key the object was stored under.
    assert store.head(key) is not None


# -- failure and cancellation --------------------------------------------------------------------------


def test_cancel_aborts_without_leftovers(store: S3Store, client: S3Client, prefix: str) -> None:
    cancel = threading.Event()
    key = f"{prefix}0.mp4"

    def endless() -> Iterator[bytes]:
        produced = 0
        for chunk in pattern(10**12):
            produced += len(chunk)
            if produced > 20 * MIB:
                cancel.set()
            yield chunk

    with pytest.raises(UploadCanceled):
        store.put_stream(key, endless(), content_type="video/mp4", cancel=cancel)
    assert store.head(key) is None
    assert pending_uploads(client, key) == []


def test_source_failure_aborts_without_leftovers(store: S3Store, client: S3Client, prefix: str) -> None:
    key = f"{prefix}0.mp4"

    def failing() -> Iterator[bytes]:
        yield from pattern(17 * MIB)
        raise ConnectionResetError("source went away")

    with pytest.raises(ConnectionResetError):
        store.put_stream(key, failing(), content_type="video/mp4")
    assert store.head(key) is None
    assert pending_uploads(client, key) == []


def test_missing_bucket_is_permanent(client: S3Client) -> None:
    store = S3Store(client, "no-such-bucket-here")
    with pytest.raises(StorageError) as info:
        store.put_stream("k.png", iter([b"x"]), content_type="image/png")
    assert not info.value.transient
    assert "NoSuchBucket" in str(info.value)
    with pytest.raises(StorageError) as info:
        store.delete_prefix("p/")
    assert not info.value.transient


# -- memory --------------------------------------------------------------------------------------------

_CHILD_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="module")
def separate_moto() -> Iterator[str]:
    """A moto server in a child process, so its copy of the object does not count as our memory."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_streamed_upload_memory_is_bounded(separate_moto: str) -> None:
    make = make_s3_client(separate_moto, "k", "s", "us-east-1")
    make.create_bucket(Bucket="memory")
    make.close()
    client = make_s3_client(separate_moto, "k", "s")
    store = S3Store(client, "memory")  # defaults: 8 MiB parts, 2 upload threads
    size = 96 * MIB
    try:
        tracemalloc.start()
        stored = store.put_stream("big.bin", pattern(size), content_type="application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()

    print(f"streamed {size // MIB} MiB upload: tracemalloc peak {peak / MIB:.1f} MiB")
    assert stored.size_bytes == size
    # About (threads + 1) parts in flight plus buffers: far below the object, independent of its size.
    assert peak < (store.max_concurrency + 2) * store.part_size + 4 * MIB, f"peak {peak / MIB:.1f} MiB"


# -- the copy pipeline ---------------------------------------------------------------------------------


class _FileHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[tuple[str, bytes]]:
    body = b"".join(pattern(12 * MIB))
    handler = type("Handler", (_FileHandler,), {"body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/out/clip.mp4", body
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_copy_from_a_loopback_url(store: S3Store, client: S3Client, file_server: tuple[str, bytes]) -> None:
    url, body = file_server
    with httpx.Client() as http:
        downloader = Downloader(http, allow_insecure_loopback=True)
        stored = copy_output(downloader, store, url, lambda content_type: f"t/copy/0-{content_type[6:]}.mp4")
    assert stored.key == "t/copy/0-mp4.mp4"
    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert get(client, stored.key)[0] == body


async def test_mock_output_lands_in_the_bucket(store: S3Store, client: S3Client) -> None:
    prediction = await MockGenerator().create(
        CreateRequest(input={"prompt": "a corgi", "width": 128, "height": 96, "num_outputs": 2}, correlation="c1")
    )
    urls = collect_output_urls(prediction.output)
    with httpx.Client() as http:
        downloader = Downloader(http)
        stored = [
            copy_output(downloader, store, url, lambda ct, i=i: f"t/mock/{prediction.id}/{i}.png")
            for i, url in enumerate(urls)
        ]
    assert len(stored) == 2
    assert stored[0].sha256 != stored[1].sha256
    body, response = get(client, stored[0].key)
    assert body.startswith(b"\x89PNG")
    assert response["ContentType"] == "image/png"


# -- the embedded server itself ------------------------------------------------------------------------


def test_embedded_server_lifecycle_leaves_nothing_behind() -> None:
    threads_before = threading.active_count()
    server = EmbeddedS3()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint_url
    with server:
        assert server.start() is server  # idempotent
        endpoint = server.endpoint_url
        server.ensure_bucket("lifecycle")
        server.ensure_bucket("lifecycle")  # idempotent
        store = S3Store(server.client(), "lifecycle")
        store.put_stream("k", iter([b"v"]), content_type="text/plain")
        assert store.head("k") is not None
    server.stop()  # idempotent

    port = int(endpoint.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before, threading.enumerate()
