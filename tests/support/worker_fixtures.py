"""In-memory stand-ins for the worker's collaborators: one object's API server, a bucket, and deps wired to a
virtual clock (see :mod:`tests.support.virtual_clock`)."""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
from tests.support.virtual_clock import VirtualClock

from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import Generator
from mediagen.kube.client import Conflict
from mediagen.reconcile.decide import Pacing
from mediagen.storage.base import ObjectURL, StoredObject
from mediagen.transfer import Downloader


class MemoryKube:
    """Enough of the API server for one object: merge patches, resourceVersions, conflicts, events."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.conflicts_to_raise = 0
        self.deleted = False
        self.faults: dict[str, list[Exception]] = {}
        """Errors the next calls of a method (``get``, ``patch_status``, ``patch_metadata``) raise, in order."""

    def fail(self, method: str, *errors: Exception) -> None:
        """Make the next calls of ``method`` raise ``errors``, one each."""
        self.faults.setdefault(method, []).extend(errors)

    def _fault(self, method: str) -> None:
        if self.faults.get(method):
            raise self.faults[method].pop(0)

    def _bump(self) -> dict[str, Any]:
        meta = self.body["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        return copy.deepcopy(self.body)

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        self._fault("get")
        return copy.deepcopy(self.body)

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._fault("patch_status")
        self.writes.append("status")
        status = self.body.setdefault("status", {})
        for key, value in patch["status"].items():  # a JSON merge patch: null deletes the key
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        return self._bump()

    async def patch_metadata(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._fault("patch_metadata")
        meta = patch["metadata"]
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            raise Conflict("HTTP 409")
        if meta.get("resourceVersion") not in (None, self.body["metadata"]["resourceVersion"]):
            raise Conflict("HTTP 409")
        self.writes.append("metadata")
        target = self.body["metadata"]
        if "finalizers" in meta:
            target["finalizers"] = meta["finalizers"]
        target.setdefault("annotations", {}).update(meta.get("annotations", {}))
        return self._bump()

    async def delete(self, namespace: str, name: str, uid: str) -> None:
        self.deleted = True

    async def event(self, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason))


class MemoryStore:
    """An in-memory bucket."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_stream(
        self, key: str, chunks: Iterator[bytes], *, content_type: str, size_hint: int | None = None
    ) -> StoredObject:
        data = b"".join(chunks)
        self.objects[key] = data
        return StoredObject(key, len(data), hashlib.sha256(data).hexdigest(), content_type)

    def head(self, key: str) -> StoredObject | None:
        return None

    def url_for(self, key: str) -> ObjectURL:
        return ObjectURL(f"https://media.example/{key}")

    def delete_prefix(self, prefix: str) -> int:
        doomed = [k for k in self.objects if k.startswith(prefix)]
        for key in doomed:
            del self.objects[key]
        return len(doomed)


def resource(**spec: Any) -> dict[str, Any]:
    """A MediaGeneration as the API server would hand it over, before the operator touched it."""
    return {
        "metadata": {"name": "gen", "namespace": "ns", "uid": "u-1", "generation": 1, "resourceVersion": "1"},
        "spec": {"model": "a/b", "input": {"prompt": "a fox", "width": 64, "height": 64}, **spec},
    }


def deps_for(
    kube: MemoryKube, store: MemoryStore, generator: Generator, clock: VirtualClock | None = None
) -> WorkerDeps:
    """Deps on in-memory parts and a virtual clock (the mock generator should share it: ``clock=clock.now``)."""
    downloader = Downloader(httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(404))))
    return WorkerDeps(
        generator=generator,
        store=store,
        downloader=downloader,
        kube=kube,
        inflight=asyncio.Semaphore(1),
        transfers=asyncio.Semaphore(1),
        pacing=Pacing(poll_initial_seconds=1, poll_max_seconds=5, progress_interval_seconds=5),
        clock=clock or VirtualClock(),
    )
