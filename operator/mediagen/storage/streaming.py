"""A file object over an iterator of byte chunks, for boto3 uploads with bounded memory.

s3transfer's non-seekable path trusts every ``read(n)`` to return exactly ``n`` bytes until the end: a short
read makes it treat the stream as small and read the rest in one go (docs/r2.md#streaming-uploads).
``io.BufferedReader`` over a ``RawIOBase`` that implements ``readinto`` gives exactly that guarantee, so parts
come out equal (R2 rejects unequal parts) and only a few parts are ever in memory.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterable, Iterator

from mediagen.storage.base import StorageError

READ_BUFFER_BYTES = 1024 * 1024


class UploadCanceled(StorageError):
    """The caller set the cancel event; any multipart upload in progress was aborted.

    Transient: nothing is wrong with the object, the work was merely stopped."""

    def __init__(self, message: str = "upload canceled") -> None:
        super().__init__(message, transient=True)


class ChunkReader(io.RawIOBase):
    """A raw, read-only, non-seekable stream over ``chunks`` that hashes and counts what passes through.

    ``cancel``, when set, makes the next read raise :class:`UploadCanceled`."""

    def __init__(self, chunks: Iterable[bytes], *, cancel: threading.Event | None = None) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._cancel = cancel
        self._pending = memoryview(b"")
        self._digest = hashlib.sha256()
        self._size = 0
        self._eof = False

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of every byte read so far (of the whole stream once :attr:`eof` is true)."""
        return self._digest.hexdigest()

    @property
    def size(self) -> int:
        """Bytes read so far."""
        return self._size

    @property
    def eof(self) -> bool:
        """True once the chunk iterator is exhausted and every byte has been handed out."""
        return self._eof and not self._pending

    def readable(self) -> bool:
        """Always true."""
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Copy up to ``len(buffer)`` bytes into ``buffer``; 0 only at the end of the stream."""
        if self._cancel is not None and self._cancel.is_set():
            raise UploadCanceled()
        while not self._pending:
            if self._eof:
                return 0
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                return 0
            if chunk:
                self._digest.update(chunk)
                self._size += len(chunk)
                self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def buffered_reader(
    chunks: Iterable[bytes], *, cancel: threading.Event | None = None
) -> tuple[io.BufferedReader, ChunkReader]:
    """The file object to hand to boto3, and the raw reader that knows the hash and size."""
    raw = ChunkReader(chunks, cancel=cancel)
    return io.BufferedReader(raw, READ_BUFFER_BYTES), raw
