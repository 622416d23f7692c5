"""Where outputs may be fetched from: the SSRF policy, and DNS pinning (resolve once, connect to what was checked).

Model outputs are URLs chosen by someone else, fetched by a process that holds cluster credentials and a
Replicate token: an open door for SSRF and token theft. So only ``https`` URLs on allow-listed hosts are
fetched (``replicate.delivery`` and its subdomains by default); private, loopback, link-local and other
non-public addresses never are, neither written in the URL nor as what an allowed host name *resolves* to
(:func:`resolve_public`, whose answer the downloader then connects to, so a second DNS answer cannot swap
in another address); and the Replicate token goes to no output host unless ``token_hosts`` names it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from mediagen.transfer.errors import DOWNLOAD_FAILED, OUTPUT_URL_REJECTED, TransferError

GIB = 1024 * 1024 * 1024
DEFAULT_MAX_BYTES = 5 * GIB
DELIVERY_HOSTS = ("replicate.delivery", "*.replicate.delivery")
LOOPBACK_NAMES = frozenset({"localhost"})

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``: how host names are looked up (injectable so tests need no DNS)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; it reaches whatever that address is.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class DownloadPolicy:
    """What the downloader may fetch and how. Host patterns are ``example.com`` (exactly that host) or
    ``*.example.com`` (any subdomain, not the apex)."""

    allowed_hosts: tuple[str, ...] = DELIVERY_HOSTS
    """Hosts outputs may be fetched from (https only)."""
    token_hosts: tuple[str, ...] = ()
    """Hosts that get ``Authorization: Bearer <token>`` (they must also be allowed). None by default: the token
    is for Replicate's API, and its output URLs are unguessable links that need none."""
    allow_insecure_loopback: bool = False
    """Also allow http(s) to 127.0.0.0/8, ::1 and localhost on any port: local development and tests."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Largest output accepted, counted while streaming (after content decoding)."""
    max_redirects: int = 3
    stall_timeout_seconds: float = 60.0
    """Longest wait for the next bytes of a response."""
    connect_timeout_seconds: float = 10.0
    min_bytes_per_second: float = 16 * 1024
    """Slowest average rate accepted, measured over windows of ``rate_window_seconds``: a server that drips a
    byte just often enough to beat the stall timeout would otherwise hold a transfer slot for days."""
    rate_window_seconds: float = 30.0

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout for one request: the read timeout is the stall timeout."""
        return httpx.Timeout(
            connect=self.connect_timeout_seconds,
            read=self.stall_timeout_seconds,
            write=self.stall_timeout_seconds,
            pool=self.connect_timeout_seconds,
        )


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``host`` matches one of ``patterns`` (case-insensitive, trailing dots ignored)."""
    host = host.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.lower().rstrip(".")
        if pattern.startswith("*."):
            suffix = pattern[1:]
            if host.endswith(suffix) and len(host) > len(suffix):
                return True
        elif host == pattern:
            return True
    return False


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(ip: IPAddress) -> bool:
    """Whether ``ip`` is a public unicast address, looking through the IPv6 forms that embed an IPv4 one
    (mapped ``::ffff:a.b.c.d``, 6to4, Teredo, NAT64), each of which reaches that IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Mapped, 6to4 and NAT64 addresses reach exactly the IPv4 address they carry, so that address decides.
        # Python's own verdict on their ranges changed between patch releases (3.11.2 calls every 6to4 address
        # private, 3.11.7 global), and the interpreter must not decide what the operator fetches.
        carried = ip.ipv4_mapped or ip.sixtofour
        if carried is None and ip in _NAT64:
            carried = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if carried is not None:
            return is_public(carried)
        if ip.teredo and not is_public(ip.teredo[1]):
            return False
    return ip.is_global and not ip.is_multicast


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address."""
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def is_valid_hostname(host: str) -> bool:
    """Whether ``host`` (an address, or a name as httpx decodes it) can be looked up at all: it encodes to
    IDNA with every label 1-63 characters, as the resolver (``socket.getaddrinfo``) requires."""
    if _ip(host) is not None:
        return True
    try:
        encoded = host.rstrip(".").encode("idna")
    except UnicodeError:
        return False
    return 0 < len(encoded) <= 253


def url_host(url: httpx.URL) -> str | None:
    """The URL's host as httpx decodes it (``bücher.example``), or None when it cannot be decoded (a malformed
    ``xn--`` label: httpx decodes lazily and raises then)."""
    try:
        return url.host
    except UnicodeError:
        return None


def describe_url(url: httpx.URL) -> str:
    """``https://host/…/file.png``: enough to recognise an output, without query strings or path tokens."""
    last = url.path.rstrip("/").rsplit("/", 1)[-1]
    middle = "/…/" if url.path.count("/") > 1 else "/"
    host = url_host(url) or url.raw_host.decode("ascii", "replace")
    return f"{url.scheme}://{host}{middle}{last}"


def check_url(url: httpx.URL, policy: DownloadPolicy) -> None:
    """Raise ``TransferError(OutputURLRejected)`` unless ``policy`` allows fetching ``url``."""
    decoded = url_host(url)
    host = (decoded or "").lower().rstrip(".")
    what = describe_url(url)

    def reject(why: str) -> TransferError:
        return TransferError(f"output URL {what} rejected: {why}", transient=False, reason=OUTPUT_URL_REJECTED)

    if url.scheme not in ("http", "https"):
        raise reject(f"scheme {url.scheme!r} is not allowed")
    if not host and decoded is not None:
        raise reject("no host")
    if url.userinfo:
        raise reject("credentials in the URL")
    if decoded is None or not is_valid_hostname(host):
        # The resolver would refuse it the same way on every try: a permanent failure, never a retry.
        raise reject("the host name is not a valid (IDNA) name: a label is empty, too long or malformed")
    if policy.allow_insecure_loopback and is_loopback(host):
        return
    if url.scheme != "https":
        raise reject("only https is allowed")
    ip = _ip(host)
    if ip is not None and not is_public(ip):
        raise reject("private, loopback or link-local address")
    if not host_matches(host, policy.allowed_hosts):
        raise reject("host is not on the allow-list")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (every one of them, in the resolver's order)."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def resolve_public(url: httpx.URL, policy: DownloadPolicy, resolver: Resolver = system_resolver) -> str | None:
    """The address to connect to for ``url`` (already passed :func:`check_url`), or None to connect as is.

    None for an address written in the URL (checked already) and for loopback hosts the policy allows. A
    host name is resolved once; every address it resolves to must be public (a name that also resolves to
    a private address is refused, not filtered, since it says the name is not what it claims), and the first
    is returned so the caller connects to exactly the address that was checked: a DNS server that answers
    differently the second time (DNS rebinding) changes nothing."""
    host = url.host.lower().rstrip(".")
    if _ip(host) is not None or (policy.allow_insecure_loopback and is_loopback(host)):
        return None
    what = describe_url(url)
    try:
        addresses = list(resolver(host, url.port or (443 if url.scheme == "https" else 80)))
    except UnicodeError as exc:  # not a name at all: no retry can resolve it
        raise TransferError(
            f"output URL {what} rejected: the host name is not a valid (IDNA) name", False, OUTPUT_URL_REJECTED
        ) from exc
    except OSError as exc:
        raise TransferError(
            f"output {what}: cannot resolve the host ({type(exc).__name__})", True, DOWNLOAD_FAILED
        ) from exc
    parsed = [_ip(address.split("%", 1)[0]) for address in addresses]
    if not parsed or any(ip is None for ip in parsed):
        raise TransferError(f"output {what}: the host resolved to no usable address", True, DOWNLOAD_FAILED)
    for ip in parsed:
        assert ip is not None
        if not is_public(ip) and not (policy.allow_insecure_loopback and ip.is_loopback):
            raise TransferError(
                f"output URL {what} rejected: the host resolves to a private, loopback or link-local address ({ip})",
                transient=False,
                reason=OUTPUT_URL_REJECTED,
            )
    return str(parsed[0])


def sends_token(url: httpx.URL, policy: DownloadPolicy) -> bool:
    """Whether a request to ``url`` may carry the Replicate token."""
    secure = url.scheme == "https" or is_loopback(url.host)
    return secure and host_matches(url.host, policy.token_hosts) and host_matches(url.host, policy.allowed_hosts)
