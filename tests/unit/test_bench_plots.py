"""make bench's figures: drawn from a results file, each only when the run recorded its data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from mediagen_dev.bench.plots import draw_all
from mediagen_dev.bench.stats import summary
from mediagen_dev.bench.throughput import per_second


def results(with_raw: bool) -> dict[str, Any]:
    def row(base: float) -> dict[str, Any]:
        values = [base + i for i in range(100)]
        stats = summary(values)
        return stats if with_raw else {k: v for k, v in stats.items() if k != "quantiles"}

    data: dict[str, Any] = {
        "scale": "full",
        "started": "2026-12-04T00:00:00+00:00",
        "machine": {"cpus_usable": 2},
        "overhead_ms": {"1": row(30), "50": row(45), "200": row(55)},
        "overhead_ms_polling": {"1": row(500), "50": row(1500), "200": row(1600)},
        "throughput_per_s": 62.1,
        "throughput": {"generations": 1000, "sustained_per_s": 62.1},
    }
    if with_raw:
        data["throughput"]["completed_per_second"] = per_second([0.2 + i / 60 for i in range(1000)], 0.0)
    return data


def test_the_three_figures_are_svg_files(tmp_path: Path) -> None:
    drawn = draw_all(results(with_raw=True), tmp_path)
    assert [p.name for p in drawn] == ["overhead.svg", "overhead-cdf.svg", "throughput.svg"]
    for path in drawn:
        assert ET.parse(path).getroot().tag.endswith("svg")  # noqa: S314 - a file this test just wrote
        assert "Date" not in path.read_text()[:2000], "no timestamp: the same results give the same file"


def test_a_run_without_percentiles_or_drain_times_gets_only_the_percentile_figure(tmp_path: Path) -> None:
    assert [p.name for p in draw_all(results(with_raw=False), tmp_path)] == ["overhead.svg"]
    assert draw_all({"scale": "smoke"}, tmp_path) == []


def test_summary_keeps_the_whole_distribution_in_101_numbers() -> None:
    stats = summary([float(v) for v in range(1, 1001)])
    assert len(stats["quantiles"]) == 101
    assert stats["quantiles"][0] == stats["min"] == 1.0 and stats["quantiles"][100] == stats["max"] == 1000.0
    assert stats["quantiles"][50] == stats["p50"] and stats["quantiles"][99] == stats["p99"]
    assert summary([])["quantiles"] == []


def test_completions_are_counted_per_second_of_the_drain() -> None:
    assert per_second([10.1, 10.2, 11.9, 13.0], 10.0) == [2, 1, 0, 1]
    assert per_second([], 0.0) == []
