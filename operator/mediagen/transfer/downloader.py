"""Opening outputs as byte streams: ``data:`` URIs decoded locally, http(s) URLs fetched under the SSRF policy.

Blocking (sync httpx); the copy runs in a thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import httpx

from mediagen.storage.keys import DEFAULT_CONTENT_TYPE, content_type_for_path
from mediagen.transfer.data_uri import clean_content_type, decode_data_uri
from mediagen.transfer.errors import (
    DOWNLOAD_FAILED,
    DOWNLOAD_REJECTED,
    DOWNLOAD_STALLED,
    OUTPUT_EXPIRED,
    OUTPUT_UNAUTHORIZED,
    OUTPUT_URL_REJECTED,
    TransferError,
    too_large,
    too_slow,
)
from mediagen.transfer.url_policy import (
    DEFAULT_MAX_BYTES,
    DELIVERY_HOSTS,
    DownloadPolicy,
    Resolver,
    check_url,
    describe_url,
    resolve_public,
    sends_token,
    system_resolver,
)

log = logging.getLogger(__name__)

DATA_CHUNK_BYTES = 1024 * 1024


class Download(NamedTuple):
    """An opened output: its content type, its size when known up front, and its bytes."""

    content_type: str
    size: int | None
    chunks: Iterator[bytes]


def make_download_client(policy: DownloadPolicy | None = None, *, max_connections: int = 16) -> httpx.Client:
    """An ``httpx.Client`` suited to :class:`Downloader`: no automatic redirects, the policy's timeouts."""
    policy = policy or DownloadPolicy()
    return httpx.Client(
        follow_redirects=False,
        timeout=policy.timeout(),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": "mediagen"},
    )


class Downloader:
    """Opens output references (``data:`` URIs and allow-listed http(s) URLs) as byte streams.

    Thread-safe: it holds no per-download state. The injected client must not carry credentials of its
    own; the Replicate token is added per request, only for ``policy.token_hosts`` (none by default).

    Every hop (the URL, then each redirect) is checked against the policy, its host name resolved once with
    ``resolver`` and refused unless every address is public, and the request is then sent to the checked
    address itself, with the name kept in the ``Host`` header and as the TLS server name (so the certificate
    is still verified against the name). That pins each connection to the address that was checked, whatever
    client is injected; the price is that a proxy or ``NO_PROXY`` rule sees the address, not the name.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        token: str | None = None,
        allowed_hosts: Sequence[str] = DELIVERY_HOSTS,
        token_hosts: Sequence[str] = (),
        allow_insecure_loopback: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 3,
        stall_timeout_seconds: float = 60.0,
        connect_timeout_seconds: float = 10.0,
        min_bytes_per_second: float = 16 * 1024,
        rate_window_seconds: float = 30.0,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``token`` is the Replicate API token; ``resolver`` looks host names up (tests inject one) and
        ``clock`` measures download rates; the other arguments are :class:`DownloadPolicy`'s fields."""
        self._client = client
        self._token = token
        self._resolver = resolver
        self._clock = clock
        self.policy = DownloadPolicy(
            allowed_hosts=tuple(allowed_hosts),
            token_hosts=tuple(token_hosts),
            allow_insecure_loopback=allow_insecure_loopback,
            max_bytes=max_bytes,
            max_redirects=max_redirects,
            stall_timeout_seconds=stall_timeout_seconds,
            connect_timeout_seconds=connect_timeout_seconds,
            min_bytes_per_second=min_bytes_per_second,
            rate_window_seconds=rate_window_seconds,
        )

    def __repr__(self) -> str:
        return f"Downloader(policy={self.policy!r}, token={'set' if self._token else 'unset'})"

    @contextmanager
    def open(self, url: str) -> Iterator[Download]:
        """Open ``url``; the response is released when the block exits. Raises :class:`TransferError`."""
        if url[:5].lower() == "data:":
            content_type, data = decode_data_uri(url, self.policy.max_bytes)
            yield Download(content_type, len(data), _slices(data))
            return
        response, final_url = self._get(url)
        try:
            yield self._download(response, httpx.URL(url), final_url)
        finally:
            response.close()

    def _get(self, url: str) -> tuple[httpx.Response, httpx.URL]:
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, UnicodeError) as exc:  # UnicodeError: idna's, for a bad A-label
            raise TransferError("output URL is malformed", False, OUTPUT_URL_REJECTED) from exc
        for _hop in range(self.policy.max_redirects + 1):
            check_url(current, self.policy)
            response = self._send(current)
            if not response.is_redirect:
                return self._check_status(response, current), current
            location = response.headers.get("Location", "")
            response.close()
            try:
                target = current.join(location)
            except (httpx.InvalidURL, UnicodeError) as exc:
                raise TransferError(
                    f"output {describe_url(current)} redirected to a malformed URL", False, OUTPUT_URL_REJECTED
                ) from exc
            log.debug("output %s redirects to %s", describe_url(current), describe_url(target))
            current = target
        raise TransferError(
            f"output {describe_url(current)}: more than {self.policy.max_redirects} redirects",
            False,
            OUTPUT_URL_REJECTED,
        )

    def _send(self, url: httpx.URL) -> httpx.Response:
        pinned = resolve_public(url, self.policy, self._resolver)
        if pinned is None:
            request = self._client.build_request("GET", url, timeout=self.policy.timeout())
        else:
            # Connect to the checked address; the name stays in Host and in TLS (SNI and certificate check).
            request = self._client.build_request(
                "GET",
                url.copy_with(host=pinned),
                timeout=self.policy.timeout(),
                headers={"Host": url.netloc.decode("ascii")},
                extensions={"sni_hostname": url.host},
            )
        # Client-level defaults must not leak either: the token goes exactly where the policy says.
        request.headers.pop("Authorization", None)
        if self._token and sends_token(url, self.policy):
            request.headers["Authorization"] = f"Bearer {self._token}"
        try:
            return self._client.send(request, stream=True, follow_redirects=False, auth=None)
        except UnicodeError as exc:  # httpx reads a redirect's Location as it receives it; idna refuses a bad host
            raise TransferError(
                f"output {describe_url(url)} redirected to a host name that is not valid IDNA",
                False,
                OUTPUT_URL_REJECTED,
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransferError(
                f"output {describe_url(url)}: timed out ({type(exc).__name__})", True, DOWNLOAD_STALLED
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise TransferError(
                f"output {describe_url(url)}: unsupported protocol", False, OUTPUT_URL_REJECTED
            ) from exc
        except httpx.TransportError as exc:
            raise TransferError(
                f"output {describe_url(url)}: network error ({type(exc).__name__})", True, DOWNLOAD_FAILED
            ) from exc

    @staticmethod
    def _check_status(response: httpx.Response, url: httpx.URL) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300:
            return response
        response.close()
        what = f"output {describe_url(url)}: HTTP {status}"
        if status in (403, 404, 410):
            raise TransferError(f"{what}; the file has expired or was removed", False, OUTPUT_EXPIRED)
        if status == 401:
            raise TransferError(f"{what}; the download was not authorised", False, OUTPUT_UNAUTHORIZED)
        if status in (408, 425, 429) or status >= 500:
            raise TransferError(what, True, DOWNLOAD_FAILED)
        raise TransferError(what, False, DOWNLOAD_REJECTED)

    def _download(self, response: httpx.Response, original: httpx.URL, final: httpx.URL) -> Download:
        encoded = response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        size: int | None = None
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and not encoded:
            size = int(length)
            if size > self.policy.max_bytes:
                raise too_large(describe_url(final), self.policy.max_bytes)
        content_type = (
            clean_content_type(response.headers.get("Content-Type"))
            or clean_content_type(content_type_for_path(final.path))
            or clean_content_type(content_type_for_path(original.path))
            or DEFAULT_CONTENT_TYPE
        )
        return Download(content_type, size, self._stream(response, final))

    def _stream(self, response: httpx.Response, url: httpx.URL) -> Iterator[bytes]:
        limit, policy = self.policy.max_bytes, self.policy
        total = 0
        waited, window_bytes = 0.0, 0
        try:
            # iter_bytes undoes any Content-Encoding, so the limit also caps decompression bombs.
            chunks = response.iter_bytes()
            while True:
                began = self._clock()
                chunk = next(chunks, None)
                if chunk is None:
                    return
                # Only the time spent waiting on the network counts: a slow store downstream of us is not the
                # server dripping. The stall timeout bounds each wait; this bounds the average rate, so a slow
                # drip that always beats the stall timeout still ends.
                waited += self._clock() - began
                window_bytes += len(chunk)
                total += len(chunk)
                if total > limit:
                    raise too_large(describe_url(url), limit)
                if waited >= policy.rate_window_seconds:
                    if window_bytes < policy.min_bytes_per_second * waited:
                        raise too_slow(describe_url(url), window_bytes, waited, policy.min_bytes_per_second)
                    waited, window_bytes = 0.0, 0
                yield chunk
        except httpx.TimeoutException as exc:
            raise TransferError(
                f"output {describe_url(url)}: no data for {self.policy.stall_timeout_seconds:g}s after {total} bytes",
                True,
                DOWNLOAD_STALLED,
            ) from exc
        except httpx.HTTPError as exc:
            raise TransferError(
                f"output {describe_url(url)}: download broke off after {total} bytes ({type(exc).__name__})",
                True,
                DOWNLOAD_FAILED,
            ) from exc


def _slices(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), DATA_CHUNK_BYTES):
        yield bytes(view[start : start + DATA_CHUNK_BYTES])
