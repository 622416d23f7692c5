"""S3Store against a fake R2 wired in through botocore's ``before-send`` hook: what goes over the wire.

No local server reproduces R2's rejections (docs/r2.md#local-s3-servers-in-tests), so the request shapes R2
needs are asserted here: no automatic checksums or aws-chunked bodies, equal parts, no ACL/tagging/SSE headers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse

from mediagen.storage.base import StorageError
from mediagen.storage.errors import scrub
from mediagen.storage.s3 import (
    IMMUTABLE_CACHE_CONTROL,
    MAX_PRESIGN_SECONDS,
    MIB,
    S3Store,
    make_s3_client,
    part_size_for,
    r2_endpoint,
)
from mediagen.storage.streaming import UploadCanceled

SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ACCESS_KEY = "fedcba9876543210fedcba9876543210"
FORBIDDEN_HEADER_PREFIXES = ("x-amz-checksum-", "x-amz-sdk-checksum-algorithm", "x-amz-trailer", "x-amz-acl")
FORBIDDEN_HEADERS = ("x-amz-tagging", "x-amz-server-side-encryption", "x-amz-grant-full-control")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]

    @property
    def length(self) -> int:
        return int(self.headers.get("content-length", "0"))


@dataclass
class FakeR2:
    """Answers S3 requests from memory; ``fail`` may return ``(status, code)`` to answer with an error."""

    sent: list[Sent] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=dict)
    list_pages: list[list[str]] = field(default_factory=list)
    fail: Callable[[Sent], tuple[int, str] | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        url = urlsplit(request.url)
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        sent = Sent(request.method, url.path, parse_qs(url.query, keep_blank_values=True), headers)
        with self.lock:
            self.sent.append(sent)
        failure = self.fail(sent) if self.fail else None
        if failure is not None:
            status, code = failure
            body = f"<Error><Code>{code}</Code><Message>oops key {ACCESS_KEY}</Message></Error>"
            return self._response(request, status, {}, body.encode() if sent.method != "HEAD" else b"")
        return self._answer(request, sent)

    def _answer(self, request: AWSPreparedRequest, sent: Sent) -> AWSResponse:
        key = sent.path.split("/", 2)[2] if sent.path.count("/") >= 2 else ""
        q = sent.query
        etag = {"ETag": '"abc123"'}
        if sent.method == "POST" and "uploads" in q:
            xml = "<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>"
            return self._response(request, 200, {}, xml.encode())
        if sent.method == "PUT" and "partNumber" in q:
            with self.lock:
                self.parts[key] = self.parts.get(key, 0) + sent.length
            return self._response(request, 200, etag, b"")
        if sent.method == "POST" and "uploadId" in q:
            self.sizes[key] = self.parts.pop(key, 0)
            xml = '<CompleteMultipartUploadResult><ETag>"abc123-3"</ETag></CompleteMultipartUploadResult>'
            return self._response(request, 200, {}, xml.encode())
        if sent.method == "DELETE" and "uploadId" in q:
            self.parts.pop(key, None)
            return self._response(request, 204, {}, b"")
        if sent.method == "PUT":
            self.sizes[key] = sent.length
            return self._response(request, 200, etag, b"")
        if sent.method == "HEAD":
            if key not in self.sizes:
                return self._response(request, 404, {}, b"")
            head = {**etag, "Content-Length": str(self.sizes[key]), "Content-Type": "image/png"}
            return self._response(request, 200, head, b"")
        if sent.method == "GET" and "list-type" in q:
            return self._response(request, 200, {}, self._list_page(q))
        if sent.method == "POST" and "delete" in q:
            return self._response(request, 200, {}, b"<DeleteResult></DeleteResult>")
        if sent.method == "DELETE":
            return self._response(request, 204, {}, b"")
        raise AssertionError(f"unexpected request {sent.method} {sent.path}")

    def _list_page(self, q: dict[str, list[str]]) -> bytes:
        index = int(q.get("continuation-token", ["0"])[0])
        keys = self.list_pages[index] if index < len(self.list_pages) else []
        more = index + 1 < len(self.list_pages)
        contents = "".join(f"<Contents><Key>{k}</Key><Size>1</Size></Contents>" for k in keys)
        token = f"<NextContinuationToken>{index + 1}</NextContinuationToken>" if more else ""
        return (
            f"<ListBucketResult><Name>b</Name><KeyCount>{len(keys)}</KeyCount>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{token}{contents}</ListBucketResult>"
        ).encode()

    @staticmethod
    def _response(request: AWSPreparedRequest, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
        return AWSResponse(request.url, status, headers, _Raw(body))

    def of(self, method: str, marker: str | None = None) -> list[Sent]:
        return [s for s in self.sent if s.method == method and (marker is None or marker in s.query)]


@pytest.fixture
def fake() -> FakeR2:
    return FakeR2()


@pytest.fixture
def store(fake: FakeR2) -> Iterator[S3Store]:
    client = make_s3_client(r2_endpoint("acct0123"), ACCESS_KEY, SECRET, max_retries=0)
    client.meta.events.register("before-send.s3.*", fake)
    yield S3Store(client, "media")
    client.close()


def chunks_of(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def assert_r2_safe(sent: list[Sent]) -> None:
    assert sent
    for s in sent:
        for name, value in s.headers.items():
            assert not name.startswith(FORBIDDEN_HEADER_PREFIXES), (s.method, name)
            assert name not in FORBIDDEN_HEADERS, (s.method, name)
            if name == "content-encoding":
                assert "aws-chunked" not in value
            if name == "x-amz-content-sha256":
                assert "STREAMING" not in value


def test_multipart_wire_shape(store: S3Store, fake: FakeR2) -> None:
    data = bytes(range(256)) * (20 * MIB // 256 + 1000)  # 20 MiB and a bit: three parts
    stored = store.put_stream("out/0.png", chunks_of(data, 100_000), content_type="image/png")

    assert_r2_safe(fake.sent)
    parts = sorted(fake.of("PUT", "partNumber"), key=lambda s: int(s.query["partNumber"][0]))
    sizes = [p.length for p in parts]
    assert sizes[:-1] == [8 * MIB] * (len(sizes) - 1)
    assert 0 < sizes[-1] <= 8 * MIB
    assert sum(sizes) == len(data)
    (create,) = fake.of("POST", "uploads")
    assert create.headers["content-type"] == "image/png"
    assert create.headers["cache-control"] == IMMUTABLE_CACHE_CONTROL
    assert len(fake.of("POST", "uploadId")) == 1
    assert stored.size_bytes == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.etag == "abc123"
    assert stored.content_type == "image/png"


def test_small_objects_are_one_put_with_sha256_metadata(store: S3Store, fake: FakeR2) -> None:
    data = b"\x89PNG tiny"
    stored = store.put_stream("out/0.png", iter([data[:3], b"", data[3:]]), content_type="image/png")

    assert_r2_safe(fake.sent)
    (put,) = fake.of("PUT")
    assert put.headers["x-amz-meta-sha256"] == hashlib.sha256(data).hexdigest()
    assert put.headers["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert put.headers["cache-control"] == IMMUTABLE_CACHE_CONTROL
    assert put.length == len(data)
    assert not fake.of("POST")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size_bytes == len(data)


PASSIVE = ["image/png", "image/jpeg", "image/webp", "image/gif", "image/avif", "video/mp4", "audio/mpeg"]
ACTIVE = ["text/html", "text/html; charset=utf-8", "image/svg+xml", "application/xhtml+xml", "text/plain"]


@pytest.mark.parametrize("content_type", PASSIVE + ACTIVE)
@pytest.mark.parametrize("size", [100, 9 * MIB], ids=["single-put", "multipart"])
def test_only_passive_media_is_served_inline(store: S3Store, fake: FakeR2, content_type: str, size: int) -> None:
    """Models' HTML and SVG would run scripts on our domain if opened: everything but passive media downloads."""
    stored = store.put_stream("ns/n/uid/p/0.bin", chunks_of(b"<" * size), content_type=content_type)

    (write,) = fake.of("POST", "uploads") if size > 8 * MIB else fake.of("PUT")
    disposition = write.headers.get("content-disposition")
    if content_type in PASSIVE:
        assert disposition is None
    else:
        assert disposition == 'attachment; filename="0.bin"'
    assert write.headers["content-type"] == content_type
    assert stored.content_type == content_type, "the status records the type the object is stored with"


def test_exactly_one_part_is_still_a_single_put(store: S3Store, fake: FakeR2) -> None:
    store.put_stream("k", chunks_of(b"z" * (8 * MIB)), content_type="application/octet-stream")
    assert len(fake.of("PUT")) == 1
    assert not fake.of("POST")


def test_known_size_picks_larger_parts(store: S3Store, fake: FakeR2) -> None:
    # The hint promises ~79 GiB: parts must grow past 8 MiB to stay under 9,000. The stream is shorter.
    store.put_stream("k", chunks_of(b"y" * (20 * MIB)), content_type="video/mp4", size_hint=9000 * 9 * MIB)
    sizes = [p.length for p in fake.of("PUT", "partNumber")]
    assert sorted(sizes, reverse=True)[:2] == [9 * MIB, 9 * MIB]


def test_part_size_for() -> None:
    assert part_size_for(None) == 8 * MIB
    assert part_size_for(5 * MIB) == 8 * MIB
    assert part_size_for(9000 * 8 * MIB) == 8 * MIB
    assert part_size_for(9000 * 8 * MIB + 1) == 9 * MIB
    assert part_size_for(5 * 1024**4) == 583 * MIB  # 5 TiB still fits in 9,000 parts


def test_cancel_aborts_the_multipart_upload(store: S3Store, fake: FakeR2) -> None:
    cancel = threading.Event()

    def endless() -> Iterator[bytes]:
        sent = 0
        while True:
            if sent >= 20 * MIB:
                cancel.set()
            sent += 64 * 1024
            yield b"c" * (64 * 1024)

    with pytest.raises(UploadCanceled):
        store.put_stream("k", endless(), content_type="video/mp4", cancel=cancel)
    assert len(fake.of("DELETE", "uploadId")) == 1
    assert not fake.of("POST", "uploadId")


def test_source_errors_abort_and_propagate_unchanged(store: S3Store, fake: FakeR2) -> None:
    class SourceBroke(Exception):
        pass

    def broken() -> Iterator[bytes]:
        yield b"d" * (12 * MIB)
        raise SourceBroke("download died")

    with pytest.raises(SourceBroke):
        store.put_stream("k", broken(), content_type="video/mp4")
    assert len(fake.of("DELETE", "uploadId")) == 1
    assert not fake.of("POST", "uploadId")


def test_cancel_before_small_put_sends_nothing(store: S3Store, fake: FakeR2) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(UploadCanceled):
        store.put_stream("k", iter([b"abc"]), content_type="text/plain", cancel=cancel)
    assert not fake.sent


def test_head(store: S3Store, fake: FakeR2) -> None:
    assert store.head("missing.png") is None
    fake.sizes["there.png"] = 42
    obj = store.head("there.png")
    assert obj is not None
    assert (obj.size_bytes, obj.content_type, obj.etag, obj.sha256) == (42, "image/png", "abc123", "")


@pytest.mark.parametrize(
    ("status", "code", "transient"),
    [
        (403, "AccessDenied", False),
        (404, "NoSuchBucket", False),
        (403, "SignatureDoesNotMatch", False),
        (501, "NotImplemented", False),
        (400, "InvalidArgument", False),
        (500, "InternalError", True),
        (503, "SlowDown", True),
        (429, "TooManyRequests", True),
        (502, "BadGateway", True),
        (400, "RequestTimeout", True),
    ],
)
def test_error_mapping(store: S3Store, fake: FakeR2, status: int, code: str, transient: bool) -> None:
    fake.fail = lambda sent: (status, code)
    with pytest.raises(StorageError) as info:
        store.put_stream("k.png", iter([b"abc"]), content_type="image/png")
    assert info.value.transient is transient
    message = str(info.value)
    assert code in message
    assert str(status) in message
    assert "k.png" in message
    assert SECRET not in message
    assert ACCESS_KEY not in message


def test_head_errors_other_than_404_raise(store: S3Store, fake: FakeR2) -> None:
    fake.fail = lambda sent: (403, "AccessDenied")
    with pytest.raises(StorageError) as info:
        store.head("k")
    assert not info.value.transient


def test_connection_refused_is_transient_and_secret_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_s3_client(f"http://127.0.0.1:{port}", ACCESS_KEY, SECRET, max_retries=0, connect_timeout=2)
    try:
        with pytest.raises(StorageError) as info:
            S3Store(client, "media").head("k")
    finally:
        client.close()
    assert info.value.transient
    assert SECRET not in str(info.value)
    assert ACCESS_KEY not in str(info.value)


def test_delete_prefix_pages_and_batches(store: S3Store, fake: FakeR2) -> None:
    fake.list_pages = [[f"p/{i}" for i in range(3)], [f"p/{i}" for i in range(3, 5)]]
    assert store.delete_prefix("p/") == 5
    assert len(fake.of("POST", "delete")) == 2
    assert_r2_safe([s for s in fake.sent if s.method != "POST"])


def test_delete_prefix_falls_back_to_single_deletes(store: S3Store, fake: FakeR2) -> None:
    fake.list_pages = [["p/a", "p/b"], ["p/c"]]
    fake.fail = lambda sent: (501, "NotImplemented") if "delete" in sent.query else None
    assert store.delete_prefix("p/") == 3
    assert len(fake.of("POST", "delete")) == 1  # tried once, then no more
    assert sorted(s.path for s in fake.of("DELETE")) == ["/media/p/a", "/media/p/b", "/media/p/c"]


def test_delete_prefix_refuses_empty_prefix(store: S3Store, fake: FakeR2) -> None:
    for prefix in ("", "/", "//"):
        with pytest.raises(ValueError, match="empty prefix"):
            store.delete_prefix(prefix)
    assert not fake.sent


def test_public_url() -> None:
    client = make_s3_client(r2_endpoint("acct"), ACCESS_KEY, SECRET)
    try:
        store = S3Store(client, "media", public_base_url="https://media.example.com/")
        url = store.url_for("a b/ü+1.png")
    finally:
        client.close()
    assert url.url == "https://media.example.com/a%20b/%C3%BC%2B1.png"
    assert url.expires_at is None


def test_presigned_url_is_clamped_to_seven_days() -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    client = make_s3_client(r2_endpoint("acct"), ACCESS_KEY, SECRET)
    try:
        store = S3Store(client, "media", presign_ttl_seconds=30 * 86400, clock=lambda: now)
        url = store.url_for("a/0.png")
    finally:
        client.close()
    assert url.url.startswith("https://acct.r2.cloudflarestorage.com/media/a/0.png?")
    assert f"X-Amz-Expires={MAX_PRESIGN_SECONDS}" in url.url
    assert url.expires_at == now + dt.timedelta(seconds=MAX_PRESIGN_SECONDS)
    assert SECRET not in url.url


def test_store_refuses_nonsense_settings() -> None:
    client = make_s3_client(r2_endpoint("acct"), ACCESS_KEY, SECRET)
    try:
        with pytest.raises(ValueError, match="presign"):
            S3Store(client, "b", presign_ttl_seconds=0)
        with pytest.raises(ValueError, match="concurrency"):
            S3Store(client, "b", max_concurrency=0)
        assert SECRET not in repr(S3Store(client, "b"))
    finally:
        client.close()


def test_client_configuration_matches_r2_needs() -> None:
    client = make_s3_client(r2_endpoint("acct", "eu"), ACCESS_KEY, SECRET)
    try:
        config = client.meta.config
        assert client.meta.endpoint_url == "https://acct.eu.r2.cloudflarestorage.com"
        assert client.meta.region_name == "auto"
        assert config.signature_version == "s3v4"
        assert config.s3 is not None
        assert config.s3["addressing_style"] == "path"
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
        assert config.retries is not None
        assert config.retries["mode"] == "standard"
    finally:
        client.close()


def test_r2_endpoint() -> None:
    assert r2_endpoint("abc123") == "https://abc123.r2.cloudflarestorage.com"
    assert r2_endpoint("abc123", "fedramp") == "https://abc123.fedramp.r2.cloudflarestorage.com"
    with pytest.raises(ValueError, match="jurisdiction"):
        r2_endpoint("abc123", "us")
    with pytest.raises(ValueError, match="account"):
        r2_endpoint("evil.com/x")


def test_scrub_blanks_key_ids_and_long_tokens() -> None:
    text = f"bad key AKIAIOSFODNN7EXAMPLE and {ACCESS_KEY} on bucket media/k.png"
    cleaned = scrub(text)
    assert "AKIAIOSFODNN7EXAMPLE" not in cleaned
    assert ACCESS_KEY not in cleaned
    assert "media/k.png" in cleaned
    assert len(scrub("x " * 1000)) < 400
