"""Run the benchmarks: ``python -m mediagen_dev.bench [--scale smoke|full] [--only NAME...] [--output PATH]``.

One :class:`~mediagen_dev.bench.bench_stack.Stack` serves every benchmark; each one starts its own operator process(es)
in a namespace of its own. The table goes to stdout, the numbers to ``bench/results.json`` (with ``--only``,
the named benchmarks' keys are replaced in an existing file of the same scale and the rest is kept).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mediagen_dev.bench import (
    aggregated,
    floor,
    inflight,
    large,
    makespan,
    maxobjects,
    overhead,
    rate,
    results,
    sustained,
    table,
    throughput,
    webhooks,
    writes,
)
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import SCALES, Scale
from mediagen_dev.controlplane import ControlPlane

Benchmark = Callable[[Stack, Scale], dict[str, Any]]
BENCHMARKS: dict[str, Benchmark] = {
    "floor": floor.run,
    "writes": writes.run,
    "overhead": overhead.run,
    "webhooks": webhooks.run,
    "throughput": throughput.run,
    "rate": rate.run,
    "makespan": makespan.run,
    "sustained": sustained.run,
    "inflight": inflight.run,
    "maxobjects": maxobjects.run,
    "aggregated": aggregated.run,
    "large": large.run,
}
"""Every benchmark, in the order a full run takes them (the heaviest last)."""

log = logging.getLogger(__name__)


def run_suite(
    scale: Scale,
    only: Sequence[str] = (),
    *,
    output: Path | None = results.DEFAULT_OUTPUT,
    plane: ControlPlane | None = None,
    keep_workdir: bool = False,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the selected benchmarks (all by default) and return the results (also written to ``output``).

    A benchmark that raises is recorded under ``errors`` and the others still run."""
    names = [name for name in BENCHMARKS if not only or name in only]
    previous = results.load(output) if output is not None and only else {}
    data: dict[str, Any] = previous if previous.get("scale") == scale.name else {}
    data.update(scale=scale.name, started=results.now(), machine=results.machine())
    data.setdefault("runs", {})
    data.setdefault("errors", {})
    began = time.monotonic()
    with Stack(plane=plane, keep_workdir=keep_workdir) as stack:
        progress(f"stack ready in {time.monotonic() - began:.1f} s (workdir {stack.workdir})")
        for name in names:
            progress(f"running {name} ({scale.name})...")
            started = time.monotonic()
            data["errors"].pop(name, None)
            try:
                data.update(BENCHMARKS[name](stack, scale))
            except Exception as exc:
                log.debug("benchmark %s failed", name, exc_info=True)
                data["errors"][name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
                progress(f"  {name} FAILED: {type(exc).__name__}: {exc}")
            seconds = round(time.monotonic() - started, 1)
            data["runs"][name] = {"seconds": seconds, "at": results.now()}
            progress(f"  {name} took {seconds} s")
    data["floor_ratios"] = floor_ratios(data)
    data["finished"] = results.now()
    data["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    data["duration_seconds"] = round(time.monotonic() - began, 1)
    if output is not None:
        results.write(output, data)
    return data


def floor_ratios(data: dict[str, Any]) -> dict[str, float]:
    """The operator's costs as multiples of the API server's own (the floor), where both were measured."""
    ratios: dict[str, float] = {}
    floor_ms = data.get("floor", {}).get("patch_ms", {}).get("p50")
    if floor_ms:
        for key in ("overhead_ms", "overhead_ms_instant"):
            p50 = data.get(key, {}).get("1", {}).get("p50")
            if p50 is not None:
                ratios[f"{key}_p50_at_1_in_raw_patches"] = round(p50 / floor_ms, 1)
    parallel = data.get("floor", {}).get("parallel_patches_per_s")
    throughput = data.get("throughput", {})
    if parallel and throughput.get("writes_per_generation"):
        writes = sum(throughput["writes_per_generation"].values()) / throughput["generations"]
        ratios["throughput_writes_share_of_raw_patch_rate"] = round(data["throughput_per_s"] * writes / parallel, 3)
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exit status 1 when a benchmark failed."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev.bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=[], metavar="NAME")
    parser.add_argument("--output", type=Path, default=results.DEFAULT_OUTPUT, help="results.json to write")
    parser.add_argument("--keep-workdir", action="store_true", help="keep operator logs and scratch files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    data = run_suite(SCALES[args.scale], args.only, output=args.output, keep_workdir=args.keep_workdir)
    print()
    print(table.markdown(data))
    for name, error in data.get("errors", {}).items():
        print(f"\n{name} failed:\n{error}")
    print(f"\nresults: {args.output}")
    from mediagen_dev.bench.plots import draw_all  # matplotlib: only once the numbers are safe on disk

    for path in draw_all(results.load(args.output), args.output.parent):
        print(f"figure: {path}")
    return 1 if data.get("errors") else 0
