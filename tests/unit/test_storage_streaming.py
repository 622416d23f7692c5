"""The RawIOBase adapter: exact-size reads over ragged chunks, hashing and counting, cancellation."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator

import pytest

from mediagen.storage.streaming import ChunkReader, UploadCanceled, buffered_reader


def ragged(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos : pos + n]
        yield b""  # empty chunks must not look like the end
        pos += n
        i += 1


def test_reads_are_exact_size_until_the_end() -> None:
    data = bytes(range(256)) * 400  # 102,400 bytes
    fileobj, raw = buffered_reader(ragged(data, [1, 7000, 333, 65536, 2]))
    parts = []
    while part := fileobj.read(10_000):
        parts.append(part)
    assert [len(p) for p in parts[:-1]] == [10_000] * (len(parts) - 1)
    assert len(parts[-1]) == len(data) % 10_000
    assert b"".join(parts) == data
    assert raw.size == len(data)
    assert raw.sha256 == hashlib.sha256(data).hexdigest()
    assert raw.eof


def test_readinto_fills_from_pending_data() -> None:
    raw = ChunkReader([b"hello ", b"world"])
    buf = bytearray(4)
    assert raw.readinto(buf) == 4
    assert bytes(buf) == b"hell"
    assert raw.readinto(buf) == 2
    assert bytes(buf[:2]) == b"o "
    assert not raw.eof
    assert raw.readall() == b"world"
    assert raw.eof
    assert raw.readinto(buf) == 0


def test_is_a_non_seekable_readable_stream() -> None:
    raw = ChunkReader([])
    assert raw.readable()
    assert not raw.seekable()
    assert not raw.writable()
    assert isinstance(io.BufferedReader(raw), io.BufferedReader)
    assert raw.read(10) == b""
    assert raw.sha256 == hashlib.sha256(b"").hexdigest()


def test_cancel_event_stops_the_next_read() -> None:
    cancel = threading.Event()
    fileobj, raw = buffered_reader((b"x" * 1000 for _ in range(10_000)), cancel=cancel)
    assert len(fileobj.read(5000)) == 5000
    cancel.set()
    with pytest.raises(UploadCanceled) as info:
        fileobj.read(5_000_000)
    assert info.value.transient
    assert raw.size < 10_000_000


def test_errors_from_the_source_propagate() -> None:
    def broken() -> Iterator[bytes]:
        yield b"abc"
        raise RuntimeError("source broke")

    fileobj, _ = buffered_reader(broken())
    with pytest.raises(RuntimeError, match="source broke"):
        fileobj.read(100)
