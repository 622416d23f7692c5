"""The floor: what the API server itself charges for a status write, made directly with the kubernetes client.

``N`` merge patches to ``/status`` one after another (latency of one write, as the operator's client sees it),
then the same number from 8 threads on 8 objects (how many writes a second the API server sustains here). No
operator runs; every other benchmark's numbers can be read as multiples of these.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen_dev.bench import drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.stats import summary

THREADS = 8


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """Sequential and parallel raw status patches; ``floor`` in results.json."""
    api = stack.custom
    namespace = stack.namespace("floor")
    names = [f"floor-{i}" for i in range(THREADS)]
    drive.create_all(api, namespace, [drive.manifest(name, "bench/none") for name in names])

    def patch(name: str, i: int) -> float:
        began = time.perf_counter()
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, {"status": {"message": f"raw patch {i}"}}
        )
        return time.perf_counter() - began

    for i in range(5):  # warm the connection pool and the server's caches
        patch(names[0], -i)
    began = time.perf_counter()
    sequential = [patch(names[0], i) for i in range(scale.floor_patches)]
    sequential_seconds = time.perf_counter() - began

    jobs = [(names[i % THREADS], i) for i in range(scale.floor_patches)]
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(lambda job: patch(*job), jobs))
    parallel_seconds = time.perf_counter() - began
    return {
        "floor": {
            "patches": scale.floor_patches,
            "patch_ms": summary([s * 1000 for s in sequential], 2),
            "sequential_patches_per_s": round(scale.floor_patches / sequential_seconds, 1),
            "parallel_patches_per_s": round(scale.floor_patches / parallel_seconds, 1),
            "parallel_threads": THREADS,
        }
    }
