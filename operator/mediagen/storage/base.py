"""The storage interface the operator writes outputs through.

Methods are blocking (boto3 is); the operator calls them through ``asyncio.to_thread``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """One object as stored: enough to rebuild its URL and to verify its bytes."""

    key: str
    size_bytes: int
    sha256: str
    content_type: str
    etag: str | None = None


@dataclass(frozen=True)
class ObjectURL:
    """Where a stored object can be fetched; ``expires_at`` is set for presigned URLs only."""

    url: str
    expires_at: dt.datetime | None = None


class StorageError(Exception):
    """A storage operation failed. ``transient`` says whether retrying may help. Messages hold no secrets."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class ObjectStore(Protocol):
    """A bucket that media is copied into."""

    def put_stream(
        self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
    ) -> StoredObject:
        """Stream ``chunks`` to ``key`` with bounded memory (multipart above a threshold); overwrites."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The stored object at ``key`` (sha256 from its metadata when known), or ``None``."""
        ...

    def url_for(self, key: str) -> ObjectURL:
        """A public URL (when a public base URL is configured) or a presigned GET URL."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many were deleted."""
        ...
