"""bench/results.json's e2e key: timings parsed, figures merged, other keys untouched."""

from __future__ import annotations

import json
from pathlib import Path

from mediagen_dev.e2e import results as e2e_results


def test_timings_are_parsed_and_junk_lines_ignored() -> None:
    text = "node_ready_s=6\ncoredns_ready_s=12.5\nnot a timing\nbad=abc\n=3\n"
    assert e2e_results.parse_timings(text) == {"node_ready_s": 6.0, "coredns_ready_s": 12.5}


def test_entry_names_missing_headline_figures() -> None:
    entry = e2e_results.e2e_entry({"failover_s": 1.2}, {"node_ready_s": 6.0}, "2026-01-01T00:00:00+00:00")
    assert entry["missing"] == ["install_to_first_success_s", "operator_rss_mb_2000"]
    complete = e2e_results.e2e_entry(
        {"failover_s": 1.2, "install_to_first_success_s": 9.0, "operator_rss_mb_2000": 250.0},
        {"node_ready_s": 6.0},
        "now",
    )
    assert "missing" not in complete


def test_main_replaces_only_the_e2e_key(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"throughput_per_s": 62.1, "e2e": {"old": True}}))
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps({"failover_s": 0.8}))
    timings = tmp_path / "timings"
    timings.write_text("node_ready_s=10\n")
    assert e2e_results.main([str(figures), str(timings), str(results)]) == 0
    written = json.loads(results.read_text())
    assert written["throughput_per_s"] == 62.1
    assert written["e2e"]["failover_s"] == 0.8
    assert written["e2e"]["node_ready_s"] == 10.0
    assert "old" not in written["e2e"]


def test_main_refuses_wrong_arguments(capsys: object) -> None:
    assert e2e_results.main(["only-one"]) == 2
