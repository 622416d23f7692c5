"""Copying a succeeded prediction's outputs into storage: the blocking pipeline, run in threads."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from mediagen.api.types import StoredOutput
from mediagen.generators.base import Prediction
from mediagen.reconcile.state import View
from mediagen.storage.base import ObjectURL, StoredObject
from mediagen.storage.keys import object_key
from mediagen.transfer import collect_output_urls, copy_output

if TYPE_CHECKING:
    from mediagen.controller.worker_deps import WorkerDeps

log = logging.getLogger(__name__)


async def store_outputs(
    deps: WorkerDeps, view: View, prediction: Prediction
) -> tuple[list[StoredOutput], dt.datetime | None]:
    """Copy every output of ``prediction`` into the bucket; returns what was stored and when URLs expire.

    Keys are deterministic (resource uid, prediction id, index), so a retried or repeated copy overwrites the
    same objects instead of leaving strays. Outputs that hold no file (text, numbers) are stored as one JSON
    object, so every succeeded generation has something to fetch."""
    urls = collect_output_urls(prediction.output)
    if not urls:
        urls = ["data:application/json;base64," + base64.b64encode(json.dumps(prediction.output).encode()).decode()]
    stored: list[StoredOutput] = []
    expires: dt.datetime | None = None
    async with deps.transfers:
        for index, url in enumerate(urls):

            def key_for(content_type: str, index: int = index) -> str:
                return object_key(
                    view.spec.output.key_prefix, view.namespace, view.name, view.uid, prediction.id, index, content_type
                )

            obj, location = await _copy_in_thread(deps, url, key_for)
            if location.expires_at is not None:
                expires = location.expires_at if expires is None else min(expires, location.expires_at)
            stored.append(
                StoredOutput(
                    url=location.url,
                    key=obj.key,
                    content_type=obj.content_type,
                    size_bytes=obj.size_bytes,
                    sha256=obj.sha256,
                )
            )
    return stored, expires


def resign(deps: WorkerDeps, outputs: list[StoredOutput]) -> tuple[list[StoredOutput], dt.datetime | None]:
    """The same outputs with URLs signed anew (a local computation, no request), and when the first expires."""
    located = [(output, deps.store.url_for(output.key)) for output in outputs]
    expiries = [where.expires_at for _, where in located if where.expires_at is not None]
    return [output.model_copy(update={"url": where.url}) for output, where in located], min(expiries, default=None)


async def _copy_in_thread(deps: WorkerDeps, url: str, key_for: Callable[[str], str]) -> tuple[StoredObject, ObjectURL]:
    """Copy one output in a thread. Canceled (the resource went, the operator stops), the copy is told to stop and
    is waited for before the transfer slot is given back: a slot stands for a copy really running, so
    ``MEDIAGEN_MAX_TRANSFERS`` holds while cancels and deletes storm."""
    cancel = threading.Event()
    copying = asyncio.ensure_future(asyncio.to_thread(_copy_and_locate, deps, url, key_for, cancel))
    try:
        return await asyncio.shield(copying)
    except asyncio.CancelledError:
        cancel.set()  # stops at the next chunk and aborts a multipart upload in progress
        while not copying.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                # Asked again (shutdown): still wait, a thread cannot be stopped sooner than its next chunk.
                await asyncio.shield(copying)
        raise


def _copy_and_locate(
    deps: WorkerDeps, url: str, key_for: Callable[[str], str], cancel: threading.Event
) -> tuple[StoredObject, ObjectURL]:
    """Copy one output and get its URL, in one trip to a thread (a presigned URL is signed locally, no request)."""
    log.debug("transfer started")  # with "transfer ended": how many copies really ran at once (make chaos)
    try:
        obj = copy_output(deps.downloader, deps.store, url, key_for, cancel=cancel)
        return obj, deps.store.url_for(obj.key)
    finally:
        log.debug("transfer ended")
