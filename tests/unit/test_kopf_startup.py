"""The operator's kopf tuning, applied by its startup handler."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import kopf

from mediagen.controller import kopf_handlers
from mediagen.controller.wiring import Runtime
from mediagen.generators.mock import MockGenerator
from tests.unit.test_worker import MemoryKube, MemoryStore, deps_for, resource


async def test_the_initial_listing_is_chunked() -> None:
    # Issue 13: kopf's initial list was one unchunked LIST, so an operator starting among thousands of large
    # generations held every one of them at once (the gateway's arithmetic: a crash loop under its limit).
    kube = MemoryKube(resource())
    runtime = Runtime(deps=deps_for(kube, MemoryStore(), MockGenerator()), http=httpx.Client(), kube=cast("Any", kube))
    settings = kopf.OperatorSettings()
    memo = kopf.Memo(runtime=runtime)
    await kopf_handlers.startup(settings=settings, memo=memo)
    try:
        assert settings.watching.chunk_size == 100
    finally:
        await asyncio.wait_for(memo["supervisor"].shutdown(), timeout=5)
        runtime.http.close()
