"""Pictures of ``bench/results.json`` for the README: ``python -m mediagen_dev.bench.plots [RESULTS] [--out DIR]``.

``make bench`` draws them after every run (:func:`draw_all`). Three SVG files under ``bench/``:

* ``overhead.svg``: overhead p50/p95/p99 by concurrency, completion webhooks beside polling alone, with targets;
* ``overhead-cdf.svg``: the distribution of the overhead (its CDF from the percentiles 0-100 a run records);
* ``throughput.svg``: generations completed per second over the median drain, with its sustained rate.

A figure whose data the results lack (an older run, a benchmark left out with ``--only``) is not drawn.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mediagen_dev.bench import results
from mediagen_dev.paths import BENCH_DIR

OVERHEAD_TARGETS_MS = {"p50": 50.0, "p99": 500.0}
# The API server here takes ~366 status patches a second, ~180 generations at two writes each; 100 is the target.
THROUGHPUT_TARGET_PER_S = 100.0
SERIES = {"overhead_ms": ("completion webhooks", "-"), "overhead_ms_polling": ("polling alone", "--")}
PERCENTILES = {"p50": "tab:blue", "p95": "tab:orange", "p99": "tab:red"}
CONCURRENCY_COLORS = {"1": "tab:green", "50": "tab:blue", "200": "tab:purple"}


def _by_concurrency(rows: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(rows.items(), key=lambda item: int(item[0]))


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    # No date and a fixed id salt: the same results give the same file (a re-run changes only what changed).
    figure.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(figure)
    return path


def _subtitle(data: dict[str, Any]) -> str:
    machine = data.get("machine", {})
    return f"scale {data.get('scale', '?')}, {machine.get('cpus_usable', '?')} cores, {data.get('started', '')[:10]}"


def overhead_percentiles(data: dict[str, Any], path: Path) -> Path | None:
    """p50/p95/p99 of the overhead at each concurrency, webhooks and polling; None without overhead results."""
    present = {key: data[key] for key in SERIES if data.get(key)}
    if not present:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 4.2))
    for key, rows in present.items():
        label, style = SERIES[key]
        ordered = _by_concurrency(rows)
        x = [int(c) for c, _ in ordered]
        for name, color in PERCENTILES.items():
            axes.plot(x, [row[name] for _, row in ordered], style, marker="o", color=color, label=f"{name}, {label}")
    for name, target in OVERHEAD_TARGETS_MS.items():
        axes.axhline(target, color=PERCENTILES[name], linewidth=0.8, alpha=0.5)
        axes.annotate(f"{name} target {target:g} ms", (1, target), textcoords="offset points", xytext=(2, 3),
                      fontsize=7, color=PERCENTILES[name])  # fmt: skip
    axes.set(xscale="log", yscale="log", xlabel="generations in flight", ylabel="overhead (ms)")
    axes.set_xticks([1, 50, 200], labels=["1", "50", "200"])
    axes.set_title(f"Overhead beyond the model's own time ({_subtitle(data)})", fontsize=9)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=7, ncols=2)
    return _save(figure, path)


def overhead_cdf(data: dict[str, Any], path: Path) -> Path | None:
    """The overhead's distribution at each concurrency, webhooks and polling, from the percentiles 0-100 a run
    records; None when it recorded none (runs before the plots, whose five order statistics make no CDF)."""
    present = {key: data[key] for key in SERIES if any(row.get("quantiles") for row in (data.get(key) or {}).values())}
    if not present:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 4.2))
    fractions = [q / 100 for q in range(101)]
    for key, rows in present.items():
        label, style = SERIES[key]
        for concurrency, row in _by_concurrency(rows):
            color = CONCURRENCY_COLORS.get(concurrency, "gray")
            axes.plot(row["quantiles"], fractions, style, color=color, label=f"{concurrency}, {label}")
    axes.axvline(OVERHEAD_TARGETS_MS["p50"], color="gray", linewidth=0.8, alpha=0.5)
    axes.set(xscale="log", xlabel="overhead (ms)", ylabel="fraction of generations", ylim=(0, 1.02))
    axes.set_title(f"Overhead distribution by generations in flight ({_subtitle(data)})", fontsize=9)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=7, ncols=2, loc="lower right")
    return _save(figure, path)


def throughput_drain(data: dict[str, Any], path: Path) -> Path | None:
    """Completions per second over the median drain; None when the run did not record them."""
    run = data.get("throughput") or {}
    counts = run.get("completed_per_second")
    if not counts:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 3.6))
    axes.bar(range(len(counts)), counts, width=1.0, align="edge", color="tab:blue", alpha=0.7, label="completed")
    sustained = data.get("throughput_per_s") or run.get("sustained_per_s")
    if sustained:
        axes.axhline(sustained, color="tab:blue", linewidth=1.2, label=f"sustained {sustained:g}/s (10th-90th pct)")
    axes.axhline(
        THROUGHPUT_TARGET_PER_S,
        color="tab:red",
        linewidth=0.8,
        linestyle="--",
        label=f"target {THROUGHPUT_TARGET_PER_S:.0f}/s",
    )
    axes.set(xlabel="seconds since the operator's first write", ylabel="generations completed per second")
    axes.set_title(f"Draining {run.get('generations', '?')} instant generations ({_subtitle(data)})", fontsize=9)
    axes.grid(True, axis="y", alpha=0.25)
    axes.legend(fontsize=7)
    return _save(figure, path)


def draw_all(data: dict[str, Any], directory: Path = BENCH_DIR) -> list[Path]:
    """Every figure the results allow, as SVG files in ``directory``; returns the files written."""
    plt.rcParams["svg.hashsalt"] = "mediagen-bench"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: a third of the size, and searchable
    drawn = [
        overhead_percentiles(data, directory / "overhead.svg"),
        overhead_cdf(data, directory / "overhead-cdf.svg"),
        throughput_drain(data, directory / "throughput.svg"),
    ]
    return [path for path in drawn if path is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """Draw the figures of a results file."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev.bench.plots", description=__doc__)
    parser.add_argument("results", nargs="?", type=Path, default=results.DEFAULT_OUTPUT)
    parser.add_argument("--out", type=Path, default=BENCH_DIR, help="folder for the SVG files (bench/)")
    args = parser.parse_args(argv)
    for path in draw_all(results.load(args.results), args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
