"""The SSRF guard of output downloads: addresses that are not public are refused whether written in the URL or
resolved from an allowed name, the connection goes to the address that was checked, the Replicate token goes to
no output host by default, and slow-drip responses end with a clear reason."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest

from mediagen.transfer import Downloader, TransferError
from mediagen.transfer.url_policy import DownloadPolicy, is_public, resolve_public

TOKEN = "r8_ssrf_test_token_0123456789abcdef"
PUBLIC = "93.184.215.14"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Resolver:
    """A scripted resolver that counts its lookups."""

    def __init__(self, answers: dict[str, list[str]] | None = None, default: list[str] | None = None) -> None:
        self.answers = answers or {}
        self.default = default if default is not None else [PUBLIC]
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host in self.answers:
            return self.answers[host]
        if self.default == ["fail"]:
            raise OSError("name resolution failed")
        return self.default


def client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def fetch(downloader: Downloader, url: str) -> bytes:
    with downloader.open(url) as download:
        return b"".join(download.chunks)


def refusal(downloader: Downloader, url: str) -> TransferError:
    with pytest.raises(TransferError) as info:
        fetch(downloader, url)
    return info.value


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),  # multicast: "global" to ipaddress, never a file server
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:93.184.215.14", True),  # judged by the IPv4 address it maps
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:5db8:d70e::", True),  # 6to4 of a public address
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::5db8:d70e", True),  # NAT64 of a public address
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo: is_global says no already
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


# -- resolution ------------------------------------------------------------------------------------------


def test_a_name_resolving_to_a_private_address_is_refused_with_the_reason() -> None:
    resolver = Resolver({"replicate.delivery": ["10.0.0.7"]})
    with pytest.raises(TransferError) as info:
        resolve_public(httpx.URL("https://replicate.delivery/a.png"), DownloadPolicy(), resolver)
    err = info.value
    assert (err.reason, err.transient) == ("OutputURLRejected", False)
    assert "resolves to a private, loopback or link-local address (10.0.0.7)" in str(err)


def test_one_private_answer_among_public_ones_is_enough_to_refuse() -> None:
    resolver = Resolver({"replicate.delivery": [PUBLIC, "127.0.0.1"]})
    with pytest.raises(TransferError, match="resolves to a private"):
        resolve_public(httpx.URL("https://replicate.delivery/a.png"), DownloadPolicy(), resolver)


def test_a_failed_lookup_is_transient() -> None:
    with pytest.raises(TransferError) as info:
        resolve_public(httpx.URL("https://replicate.delivery/a.png"), DownloadPolicy(), Resolver(default=["fail"]))
    assert (info.value.reason, info.value.transient) == ("DownloadFailed", True)


def test_addresses_in_urls_and_allowed_loopback_need_no_lookup() -> None:
    resolver = Resolver()
    assert resolve_public(httpx.URL("https://93.184.215.14/a.png"), DownloadPolicy(), resolver) is None
    loopback = DownloadPolicy(allow_insecure_loopback=True)
    assert resolve_public(httpx.URL("http://localhost:8080/a.png"), loopback, resolver) is None
    assert not resolver.lookups


def test_a_name_resolving_to_loopback_is_allowed_only_with_the_test_flag() -> None:
    resolver = Resolver({"media.test": ["127.0.0.1"]})
    url = httpx.URL("https://media.test/a.png")
    assert resolve_public(url, DownloadPolicy(allow_insecure_loopback=True), resolver) == "127.0.0.1"
    with pytest.raises(TransferError, match="resolves to a private"):
        resolve_public(url, DownloadPolicy(), resolver)


# -- the downloader: pinning, redirects, the token ---------------------------------------------------------


def test_the_request_goes_to_the_checked_address_with_the_name_in_host_and_tls() -> None:
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG)

    resolver = Resolver({"pbxt.replicate.delivery": [PUBLIC]})
    downloader = Downloader(client(httpx.MockTransport(route)), resolver=resolver)
    assert fetch(downloader, "https://pbxt.replicate.delivery:8443/x/out-0.png?sig=1") == PNG
    (request,) = seen
    assert str(request.url) == f"https://{PUBLIC}:8443/x/out-0.png?sig=1"
    assert request.headers["Host"] == "pbxt.replicate.delivery:8443"
    assert request.extensions["sni_hostname"] == "pbxt.replicate.delivery"
    assert resolver.lookups == [("pbxt.replicate.delivery", 8443)]  # once, then pinned


def test_ipv6_answers_are_pinned_in_brackets() -> None:
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG)

    resolver = Resolver({"replicate.delivery": ["2606:4700::6810:84e5"]})
    fetch(Downloader(client(httpx.MockTransport(route)), resolver=resolver), "https://replicate.delivery/a.png")
    assert str(seen[0].url) == "https://[2606:4700::6810:84e5]/a.png"


def test_a_redirect_to_an_allowed_name_that_resolves_privately_is_never_requested() -> None:
    seen: list[str] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.extensions.get("sni_hostname")))
        return httpx.Response(302, headers={"Location": "https://evil.replicate.delivery/meta"})

    resolver = Resolver({"replicate.delivery": [PUBLIC], "evil.replicate.delivery": ["169.254.169.254"]})
    err = refusal(Downloader(client(httpx.MockTransport(route)), resolver=resolver), "https://replicate.delivery/a")
    assert err.reason == "OutputURLRejected" and "169.254.169.254" in str(err)
    assert seen == ["replicate.delivery"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://replicate.delivery/a.png", "only https"),
        ("https://attacker.example/a.png", "allow-list"),
        ("https://127.0.0.1/a.png", "private, loopback"),
        ("https://[::ffff:169.254.169.254]/a.png", "private, loopback"),
        ("https://user:pw@replicate.delivery/a.png", "credentials"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_refusals_name_their_reason_and_send_nothing(url: str, why: str) -> None:
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG)

    err = refusal(Downloader(client(httpx.MockTransport(route)), resolver=Resolver()), url)
    assert err.reason == "OutputURLRejected" and why in str(err)
    assert not seen


def test_the_token_goes_to_no_output_host_by_default() -> None:
    seen: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG)

    downloader = Downloader(client(httpx.MockTransport(route)), token=TOKEN, resolver=Resolver())
    fetch(downloader, "https://replicate.delivery/a.png")
    fetch(downloader, "https://pbxt.replicate.delivery/b.png")
    assert [r.headers.get("Authorization") for r in seen] == [None, None]
    assert downloader.policy.token_hosts == ()


def test_oversized_bodies_are_refused_declared_or_not() -> None:
    declared = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 2048))
    err = refusal(Downloader(client(declared), max_bytes=1024, resolver=Resolver()), "https://replicate.delivery/a")
    assert (err.reason, err.transient) == ("OutputTooLarge", False)

    def undeclared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 600, b"x" * 600]))

    err = refusal(
        Downloader(client(httpx.MockTransport(undeclared)), max_bytes=1024, resolver=Resolver()),
        "https://replicate.delivery/a",
    )
    assert err.reason == "OutputTooLarge" and "1024 bytes" in str(err)


# -- slow drip ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drip(clock: Clock, chunks: int, size: int, seconds_each: float) -> Iterator[bytes]:
    for _ in range(chunks):
        clock.now += seconds_each  # the network wait before each chunk
        yield b"x" * size


def test_a_slow_drip_that_beats_the_stall_timeout_is_still_refused() -> None:
    clock = Clock()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=drip(clock, 100, 10, 5.0)))
    downloader = Downloader(
        client(transport), resolver=Resolver(), clock=clock, min_bytes_per_second=1024, rate_window_seconds=30
    )
    err = refusal(downloader, "https://replicate.delivery/slow.mp4")
    assert (err.reason, err.transient) == ("DownloadTooSlow", True)
    assert "slower than the minimum of 1024 bytes/s" in str(err)
    assert clock.now <= 35.0  # refused at the end of the first window, not after 500 s


def test_a_steady_download_and_a_slow_consumer_are_not_a_drip() -> None:
    clock = Clock()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=drip(clock, 40, 64 * 1024, 1.0)))
    downloader = Downloader(
        client(transport), resolver=Resolver(), clock=clock, min_bytes_per_second=16 * 1024, rate_window_seconds=10
    )
    with downloader.open("https://replicate.delivery/ok.mp4") as download:
        received = 0
        for chunk in download.chunks:
            received += len(chunk)
            clock.now += 20.0  # the store is slow: that is not the server's doing
    assert received == 40 * 64 * 1024
