"""Copying a model's outputs into the object store: find the output references, stream each one across.

Everything here blocks (sync httpx, boto3); the operator runs :func:`copy_output` through
``asyncio.to_thread``. Memory per copy is bounded by the store's part buffers, never by the output's size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from mediagen.storage.base import ObjectStore, StoredObject
from mediagen.transfer.downloader import Downloader
from mediagen.transfer.errors import CANCELED, TransferError

_URL_PREFIXES = ("https://", "http://", "data:")


def collect_output_urls(output: Any) -> list[str]:
    """Every ``https://``, ``http://`` and ``data:`` string in a prediction's output, first occurrence first.

    Lists are walked in order and objects in sorted key order, so the same output always gives the same list
    (and the same output indices, hence the same object keys). Duplicates are dropped."""
    found: list[str] = []
    seen: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value[:8].lower().startswith(_URL_PREFIXES) and value not in seen:
                seen.add(value)
                found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(value[key])

    walk(output)
    return found


def _until_canceled(chunks: Iterator[bytes], cancel: threading.Event | None) -> Iterator[bytes]:
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise TransferError("output copy canceled", True, CANCELED)
        yield chunk


def copy_output(
    downloader: Downloader,
    store: ObjectStore,
    url: str,
    key_for: Callable[[str], str],
    *,
    cancel: threading.Event | None = None,
) -> StoredObject:
    """Stream one output from ``url`` into ``store`` under ``key_for(content_type)``; blocking.

    Setting ``cancel`` stops the copy at the next chunk with ``TransferError(reason="Canceled")``, which
    aborts any multipart upload in progress. Raises :class:`TransferError` for download problems and
    :class:`~mediagen.storage.base.StorageError` for upload problems."""
    if cancel is not None and cancel.is_set():
        raise TransferError("output copy canceled", True, CANCELED)
    with downloader.open(url) as download:
        key = key_for(download.content_type)
        return store.put_stream(
            key,
            _until_canceled(download.chunks, cancel),
            content_type=download.content_type,
            size_hint=download.size,
        )
