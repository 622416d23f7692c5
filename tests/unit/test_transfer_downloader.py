"""The Downloader: allow-list, redirects, size limit, status mapping, token placement, content types."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Iterator

import httpx
import pytest

from mediagen.transfer import Downloader, TransferError

TOKEN = "r8_supersecrettoken0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
Handler = Callable[[httpx.Request], httpx.Response]
PUBLIC_ADDRESS = "93.184.215.14"


def public(host: str, port: int) -> list[str]:
    """A resolver for tests: every name is one public address (no DNS in unit tests)."""
    return [PUBLIC_ADDRESS]


def as_named(request: httpx.Request) -> httpx.Request:
    """The request as addressed by name: the downloader sends it to the resolved address (see test_ssrf.py)."""
    name = request.extensions.get("sni_hostname")
    if not name:
        return request
    named = httpx.Request(request.method, request.url.copy_with(host=name), headers=request.headers)
    named.extensions = request.extensions
    return named


class Recorder:
    """An httpx MockTransport handler that records requests and answers from a routing function."""

    def __init__(self, route: Handler) -> None:
        self.route = route
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request = as_named(request)
        self.requests.append(request)
        return self.route(request)

    @property
    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]


def ok(body: bytes = PNG, **headers: str) -> Handler:
    return lambda request: httpx.Response(200, content=body, headers=headers)


def downloader(route: Handler, **kwargs: object) -> tuple[Downloader, Recorder]:
    recorder = Recorder(route)
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    return Downloader(client, token=TOKEN, resolver=public, **kwargs), recorder  # type: ignore[arg-type]


def fetch(d: Downloader, url: str) -> tuple[str, int | None, bytes]:
    with d.open(url) as download:
        return download.content_type, download.size, b"".join(download.chunks)


def reason_of(d: Downloader, url: str) -> TransferError:
    with pytest.raises(TransferError) as info:
        fetch(d, url)
    return info.value


# -- data: URIs ----------------------------------------------------------------------------------------


def test_data_uri_base64() -> None:
    d, rec = downloader(ok())
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert fetch(d, uri) == ("image/png", len(PNG), PNG)
    assert not rec.requests


def test_data_uri_percent_encoded_and_defaults() -> None:
    d, _ = downloader(ok())
    assert fetch(d, "data:,hello%20world%21") == ("text/plain; charset=US-ASCII", 12, b"hello world!")
    assert fetch(d, "data:text/plain;charset=utf-8,caf%C3%A9")[0] == "text/plain; charset=utf-8"
    assert fetch(d, "DATA:application/json,%7B%7D")[2] == b"{}"


def test_data_uri_tolerates_missing_padding_and_urlsafe_alphabet() -> None:
    d, _ = downloader(ok())
    payload = bytes([251, 255, 254, 1])
    unpadded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    assert fetch(d, f"data:application/octet-stream;base64,{unpadded}")[2] == payload


@pytest.mark.parametrize("uri", ["data:image/png;base64,@@@not-base64@@@", "data:image/png;base64"])
def test_malformed_data_uri(uri: str) -> None:
    d, _ = downloader(ok())
    err = reason_of(d, uri)
    assert (err.reason, err.transient) == ("OutputURLRejected", False)
    assert "@@@" not in str(err)


def test_data_uri_over_the_limit() -> None:
    d, _ = downloader(ok(), max_bytes=10)
    err = reason_of(d, "data:application/octet-stream;base64," + base64.b64encode(b"x" * 11).decode())
    assert err.reason == "OutputTooLarge"
    assert not err.transient


def test_data_uri_large_payload_streams_in_chunks() -> None:
    d, _ = downloader(ok())
    data = bytes(range(256)) * 9000  # ~2.2 MiB
    with d.open("data:video/mp4;base64," + base64.b64encode(data).decode()) as download:
        chunks = list(download.chunks)
    assert len(chunks) == 3
    assert b"".join(chunks) == data


# -- allow-list ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/out-0.png",
        "https://evilreplicate.delivery/out-0.png",
        "https://replicate.delivery.evil.com/out-0.png",
        "http://replicate.delivery/yhqm/abc/out-0.png",
        "https://10.0.0.7/out-0.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/out-0.png",
        "https://127.0.0.1/out-0.png",
        "http://localhost:8080/out-0.png",
        "https://user:pw@replicate.delivery/out-0.png",
        "ftp://replicate.delivery/out-0.png",
        "file:///etc/passwd",
    ],
)
def test_disallowed_urls_are_never_requested(url: str) -> None:
    d, rec = downloader(ok())
    err = reason_of(d, url)
    assert (err.reason, err.transient) == ("OutputURLRejected", False)
    assert not rec.requests
    assert "pw" not in str(err)


@pytest.mark.parametrize(
    "url",
    [
        "https://replicate.delivery/yhqm/abc/out-0.png",
        "https://pbxt.replicate.delivery/abc/out-0.png",
        "https://REPLICATE.delivery./abc/out-0.png",
    ],
)
def test_delivery_hosts_are_allowed(url: str) -> None:
    d, rec = downloader(ok(**{"Content-Type": "image/png"}))
    assert fetch(d, url) == ("image/png", len(PNG), PNG)
    assert len(rec.requests) == 1


def test_loopback_only_with_the_flag() -> None:
    d, rec = downloader(ok(), allow_insecure_loopback=True)
    for url in ("http://127.0.0.1:9/x.png", "http://localhost:9/x.png", "http://[::1]:9/x.png"):
        assert fetch(d, url)[2] == PNG
    assert len(rec.requests) == 3
    # The flag opens loopback only, not the rest of the private network.
    assert reason_of(d, "http://10.1.2.3/x.png").reason == "OutputURLRejected"


def test_configured_host_patterns() -> None:
    d, _ = downloader(ok(), allowed_hosts=["cdn.example.com", "*.media.example.org"])
    assert fetch(d, "https://cdn.example.com/a.png")[2] == PNG
    assert fetch(d, "https://eu.media.example.org/a.png")[2] == PNG
    for url in ("https://media.example.org/a.png", "https://replicate.delivery/a.png"):
        assert reason_of(d, url).reason == "OutputURLRejected"


# -- redirects -----------------------------------------------------------------------------------------


def redirecting(chain: dict[str, str]) -> Handler:
    def route(request: httpx.Request) -> httpx.Response:
        target = chain.get(str(request.url))
        if target is not None:
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    return route


def test_redirect_to_disallowed_host_is_refused() -> None:
    d, rec = downloader(redirecting({"https://replicate.delivery/a.png": "https://attacker.example/steal"}))
    err = reason_of(d, "https://replicate.delivery/a.png")
    assert err.reason == "OutputURLRejected"
    assert rec.hosts == ["replicate.delivery"]


def test_redirect_to_private_address_is_refused() -> None:
    d, rec = downloader(redirecting({"https://replicate.delivery/a.png": "http://169.254.169.254/"}))
    assert reason_of(d, "https://replicate.delivery/a.png").reason == "OutputURLRejected"
    assert len(rec.requests) == 1


def test_allowed_redirects_are_followed_including_relative_ones() -> None:
    chain = {
        "https://replicate.delivery/a.png": "https://pbxt.replicate.delivery/b.png",
        "https://pbxt.replicate.delivery/b.png": "/c.png",
    }
    d, rec = downloader(redirecting(chain))
    assert fetch(d, "https://replicate.delivery/a.png")[2] == PNG
    assert [str(r.url) for r in rec.requests][-1] == "https://pbxt.replicate.delivery/c.png"


def test_more_than_three_redirects_is_refused() -> None:
    chain = {f"https://replicate.delivery/{i}": f"https://replicate.delivery/{i + 1}" for i in range(4)}
    d, rec = downloader(redirecting(chain))
    assert fetch(d, "https://replicate.delivery/1")[2] == PNG  # three hops: fine
    rec.requests.clear()
    err = reason_of(d, "https://replicate.delivery/0")
    assert err.reason == "OutputURLRejected"
    assert "redirects" in str(err)
    assert len(rec.requests) == 4


# -- size limit ----------------------------------------------------------------------------------------


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    d, _ = downloader(ok(b"x" * 100), max_bytes=99)
    err = reason_of(d, "https://replicate.delivery/big.mp4")
    assert (err.reason, err.transient) == ("OutputTooLarge", False)


def test_undeclared_length_over_the_limit_is_refused_mid_stream() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 40] * 10))  # chunked: no Content-Length

    d, _ = downloader(route, max_bytes=100)
    received: list[bytes] = []

    def consume() -> None:
        with d.open("https://replicate.delivery/big.mp4") as download:
            assert download.size is None
            for chunk in download.chunks:
                received.append(chunk)

    with pytest.raises(TransferError) as info:
        consume()
    assert info.value.reason == "OutputTooLarge"
    # Refused at the chunk that crossed the limit: what was handed out stays within it.
    assert 0 < sum(map(len, received)) <= 100


def test_decompressed_size_counts() -> None:
    body = gzip.compress(b"\x00" * 10_000)

    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    d, _ = downloader(route, max_bytes=5_000)
    assert reason_of(d, "https://replicate.delivery/bomb.bin").reason == "OutputTooLarge"
    d, _ = downloader(route)
    _content_type, size, data = fetch(d, "https://replicate.delivery/a.bin")
    assert size is None
    assert data == b"\x00" * 10_000


# -- status and network errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [
        (404, "OutputExpired", False),
        (410, "OutputExpired", False),
        (403, "OutputExpired", False),
        (401, "OutputUnauthorized", False),
        (400, "DownloadRejected", False),
        (429, "DownloadFailed", True),
        (500, "DownloadFailed", True),
        (503, "DownloadFailed", True),
    ],
)
def test_status_mapping(status: int, reason: str, transient: bool) -> None:
    d, _ = downloader(lambda request: httpx.Response(status, text="nope"))
    err = reason_of(d, "https://replicate.delivery/yhqm/abc/out-0.png?sig=SECRETSIG")
    assert (err.reason, err.transient) == (reason, transient)
    assert "out-0.png" in str(err)
    assert "SECRETSIG" not in str(err)
    assert TOKEN not in str(err)


def test_connect_errors_are_transient() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    err = reason_of(downloader(route)[0], "https://replicate.delivery/a.png")
    assert (err.reason, err.transient) == ("DownloadFailed", True)


class _Stalling(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"first bytes"
        raise httpx.ReadTimeout("no data")


def test_stall_mid_stream_is_transient() -> None:
    d, _ = downloader(lambda request: httpx.Response(200, stream=_Stalling()))
    err = reason_of(d, "https://replicate.delivery/a.mp4")
    assert (err.reason, err.transient) == ("DownloadStalled", True)
    assert "11 bytes" in str(err)


def test_stall_timeout_is_the_read_timeout() -> None:
    seen: list[dict[str, float | None]] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, content=PNG)

    d, _ = downloader(route, stall_timeout_seconds=7.5, connect_timeout_seconds=2)
    fetch(d, "https://replicate.delivery/a.png")
    assert seen[0]["read"] == 7.5
    assert seen[0]["connect"] == 2


# -- the token -----------------------------------------------------------------------------------------


def test_token_goes_only_to_configured_token_hosts() -> None:
    chain = {"https://pbxt.replicate.delivery/a.png": "https://cdn.example.com/a.png"}
    d, rec = downloader(
        redirecting(chain),
        allowed_hosts=["replicate.delivery", "*.replicate.delivery", "cdn.example.com"],
        token_hosts=["replicate.delivery", "*.replicate.delivery"],
        allow_insecure_loopback=True,
    )
    fetch(d, "https://replicate.delivery/x.png")
    fetch(d, "https://pbxt.replicate.delivery/a.png")
    fetch(d, "http://127.0.0.1:5/x.png")
    auth = {str(r.url): r.headers.get("Authorization") for r in rec.requests}
    assert auth == {
        "https://replicate.delivery/x.png": f"Bearer {TOKEN}",
        "https://pbxt.replicate.delivery/a.png": f"Bearer {TOKEN}",
        "https://cdn.example.com/a.png": None,
        "http://127.0.0.1:5/x.png": None,
    }


def test_client_default_authorization_never_leaks() -> None:
    rec = Recorder(ok())
    client = httpx.Client(transport=httpx.MockTransport(rec), headers={"Authorization": "Bearer client-default"})
    d = Downloader(client, allowed_hosts=["cdn.example.com"], resolver=public)
    fetch(d, "https://cdn.example.com/a.png")
    assert "Authorization" not in rec.requests[0].headers
    assert TOKEN not in repr(Downloader(client, token=TOKEN))


def test_no_token_configured_sends_none() -> None:
    rec = Recorder(ok())
    d = Downloader(httpx.Client(transport=httpx.MockTransport(rec)), resolver=public)
    fetch(d, "https://replicate.delivery/a.png")
    assert "Authorization" not in rec.requests[0].headers


# -- content type --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "path", "expected"),
    [
        ({"Content-Type": "image/webp"}, "/a/out-0.png", "image/webp"),
        ({"Content-Type": "Audio/WAV; rate=44100"}, "/a/out", "audio/wav; rate=44100"),
        ({}, "/a/out-0.png", "image/png"),
        ({"Content-Type": "application/octet-stream"}, "/a/clip.mp4", "video/mp4"),
        ({"Content-Type": "garbage"}, "/a/clip.mp4", "video/mp4"),
        ({}, "/a/out", "application/octet-stream"),
    ],
)
def test_content_type_fallbacks(headers: dict[str, str], path: str, expected: str) -> None:
    d, _ = downloader(ok(**headers))
    assert fetch(d, f"https://replicate.delivery{path}")[0] == expected


def test_content_type_from_redirect_target() -> None:
    chain = {"https://replicate.delivery/get/abc": "https://pbxt.replicate.delivery/files/out-0.jpg"}

    def route(request: httpx.Request) -> httpx.Response:
        if str(request.url) in chain:
            return httpx.Response(302, headers={"Location": chain[str(request.url)]})
        return httpx.Response(200, content=PNG)

    d, _ = downloader(route)
    assert fetch(d, "https://replicate.delivery/get/abc")[0] == "image/jpeg"
