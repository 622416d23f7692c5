"""An output URL whose host cannot be encoded as IDNA fails the generation at once, with a reason.

Before, such a host failed only in the resolver (a transient ``DownloadFailed``) or raised idna's own exception
out of httpx (an unexpected error): either way the upload step was retried three times as
``StorageUnavailable`` before the generation failed, for a URL no retry could ever fetch.
"""

from __future__ import annotations

import httpx
import pytest

from mediagen.reconcile.failures import Kind, from_exception
from mediagen.transfer import Downloader, TransferError

BAD_HOSTS = {
    "label-too-long": "a" * 64 + ".replicate.delivery",
    "empty-label": "a..replicate.delivery",
    "bad-a-label": "xn--zz.replicate.delivery",
}


def _downloader(sent: list[httpx.Request], route: httpx.Response | None = None) -> Downloader:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return route or httpx.Response(200, content=b"png")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return Downloader(client, resolver=_like_getaddrinfo)


def _like_getaddrinfo(host: str, port: int) -> list[str]:
    """What ``socket.getaddrinfo`` does before any DNS query: encode the name as IDNA (where bad names used to
    fail, as a transient lookup error); then one public address, so no test needs DNS."""
    host.encode("idna")
    return ["93.184.215.14"]


@pytest.mark.parametrize("host", BAD_HOSTS.values(), ids=BAD_HOSTS.keys())
def test_a_host_that_is_not_valid_idna_is_a_permanent_rejection(host: str) -> None:
    sent: list[httpx.Request] = []
    with pytest.raises(TransferError) as info, _downloader(sent).open(f"https://{host}/out/0.png"):
        pass
    assert info.value.transient is False
    assert info.value.reason == "OutputURLRejected"
    assert not sent
    failure = from_exception(info.value, during="upload")
    assert failure.kind is Kind.PERMANENT and failure.reason == "OutputURLRejected"


def test_a_redirect_to_such_a_host_is_rejected_the_same_way() -> None:
    sent: list[httpx.Request] = []
    redirect = httpx.Response(302, headers={"Location": "https://xn--zz.replicate.delivery/0.png"})
    downloader = _downloader(sent, redirect)
    with pytest.raises(TransferError) as info, downloader.open("https://pbxt.replicate.delivery/0.png"):
        pass
    assert (info.value.transient, info.value.reason) == (False, "OutputURLRejected")
    assert len(sent) == 1, "the first hop was fetched, the redirect target never"


def test_valid_names_and_addresses_pass() -> None:
    from mediagen.transfer.url_policy import is_valid_hostname

    assert is_valid_hostname("replicate.delivery")
    assert is_valid_hostname("pbxt.replicate.delivery.")
    assert is_valid_hostname("bücher.replicate.delivery")
    assert is_valid_hostname("93.184.215.14")
    assert is_valid_hostname("::1")
    assert not is_valid_hostname("a" * 64 + ".example")
    assert not is_valid_hostname("")
