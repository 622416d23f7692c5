"""collect_output_urls and the copy pipeline (download stream → put_stream), with an in-memory store."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mediagen.storage.base import ObjectStore, ObjectURL, StorageError, StoredObject
from mediagen.transfer import Downloader, TransferError, collect_output_urls, copy_output

# -- collect_output_urls -------------------------------------------------------------------------------


def test_collect_from_a_single_string() -> None:
    url = "https://replicate.delivery/xezq/abc/tmpuumvokey.mp4"
    assert collect_output_urls(url) == [url]


def test_collect_from_a_list_in_order() -> None:
    urls = [f"https://replicate.delivery/a/out-{i}.png" for i in (2, 0, 1)]
    assert collect_output_urls(urls) == urls


def test_collect_from_dicts_in_sorted_key_order_whatever_the_insertion_order() -> None:
    one = {"video": "https://replicate.delivery/v.mp4", "audio": "https://replicate.delivery/a.wav"}
    two = {"audio": "https://replicate.delivery/a.wav", "video": "https://replicate.delivery/v.mp4"}
    assert collect_output_urls(one) == collect_output_urls(two)
    assert collect_output_urls(one) == ["https://replicate.delivery/a.wav", "https://replicate.delivery/v.mp4"]


def test_collect_from_nested_json() -> None:
    output = {
        "images": ["https://replicate.delivery/1.png", {"thumb": "data:image/png;base64,AAAA"}],
        "meta": {"seed": 42, "nsfw": [False], "note": "see https://example.com in text"},
        "preview": "http://127.0.0.1:8000/p.png",
    }
    assert collect_output_urls(output) == [
        "https://replicate.delivery/1.png",
        "data:image/png;base64,AAAA",
        "http://127.0.0.1:8000/p.png",
    ]


@pytest.mark.parametrize(
    "output",
    [None, 3, 2.5, True, "", "just text", ["token", " https://leading-space.example"], {}, [], "ftp://x/y"],
)
def test_collect_ignores_everything_else(output: Any) -> None:
    assert collect_output_urls(output) == []


def test_collect_is_case_insensitive_on_scheme_and_drops_duplicates() -> None:
    output = ["HTTPS://replicate.delivery/a.png", "Data:text/plain,x", "HTTPS://replicate.delivery/a.png"]
    assert collect_output_urls(output) == output[:2]


# -- copy_output ---------------------------------------------------------------------------------------


@dataclass
class MemoryStore:
    """An ObjectStore in a dict, consuming the stream lazily like the real one."""

    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    hints: list[int | None] = field(default_factory=list)

    def put_stream(
        self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
    ) -> StoredObject:
        self.hints.append(size_hint)
        data = b"".join(chunks)
        self.objects[key] = (data, content_type)
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type)

    def head(self, key: str) -> StoredObject | None:
        raise NotImplementedError

    def url_for(self, key: str) -> ObjectURL:
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError


def _serve(body: bytes, content_type: str = "video/mp4") -> Downloader:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    return Downloader(httpx.Client(transport=httpx.MockTransport(route)), resolver=lambda host, port: ["93.184.215.14"])


def test_copy_uses_content_type_for_the_key() -> None:
    store = MemoryStore()
    _: ObjectStore = store
    body = b"\x00\x01" * 5000
    keys: list[str] = []

    def key_for(content_type: str) -> str:
        keys.append(content_type)
        return f"ns/n/uid/p/0{'.mp4' if content_type == 'video/mp4' else '.bin'}"

    stored = copy_output(_serve(body), store, "https://replicate.delivery/a/out", key_for)
    assert keys == ["video/mp4"]
    assert stored.key == "ns/n/uid/p/0.mp4"
    assert store.objects["ns/n/uid/p/0.mp4"] == (body, "video/mp4")
    assert store.hints == [len(body)]
    assert stored.sha256 == hashlib.sha256(body).hexdigest()


def test_copy_a_data_uri() -> None:
    store = MemoryStore()
    png = b"\x89PNG\r\n\x1a\nrest"
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    stored = copy_output(_serve(b""), store, uri, lambda ct: "k.png")
    assert store.objects["k.png"] == (png, "image/png")
    assert stored.size_bytes == len(png)


def test_cancel_before_start_downloads_nothing() -> None:
    requests: list[httpx.Request] = []

    def route(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=b"x")

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TransferError) as info:
        copy_output(
            Downloader(
                httpx.Client(transport=httpx.MockTransport(route)), resolver=lambda host, port: ["93.184.215.14"]
            ),
            MemoryStore(),
            "https://replicate.delivery/a.png",
            lambda ct: "k",
            cancel=cancel,
        )
    assert (info.value.reason, info.value.transient) == ("Canceled", True)
    assert not requests


def test_cancel_mid_stream_stops_the_copy() -> None:
    cancel = threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(1000):
            if i == 3:
                cancel.set()
            yield b"x" * 1000

    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())

    store = MemoryStore()
    with pytest.raises(TransferError) as info:
        copy_output(
            Downloader(
                httpx.Client(transport=httpx.MockTransport(route)), resolver=lambda host, port: ["93.184.215.14"]
            ),
            store,
            "https://replicate.delivery/a.bin",
            lambda ct: "k",
            cancel=cancel,
        )
    assert info.value.reason == "Canceled"
    assert not store.objects


def test_download_errors_surface_as_transfer_errors() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    with pytest.raises(TransferError) as info:
        copy_output(
            Downloader(
                httpx.Client(transport=httpx.MockTransport(route)), resolver=lambda host, port: ["93.184.215.14"]
            ),
            MemoryStore(),
            "https://replicate.delivery/gone.png",
            lambda ct: "k",
        )
    assert info.value.reason == "OutputExpired"


def test_storage_errors_pass_through() -> None:
    class FailingStore(MemoryStore):
        def put_stream(
            self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
        ) -> StoredObject:
            raise StorageError("bucket gone", transient=False)

    with pytest.raises(StorageError, match="bucket gone"):
        copy_output(_serve(b"abc"), FailingStore(), "https://replicate.delivery/a.mp4", lambda ct: "k")
