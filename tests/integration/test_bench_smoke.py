"""Every benchmark at smoke scale, against the session's control plane, so the benchmarks never rot.

Not their timings: that they run, that results.json has the documented keys and types, and that the counts are
exact (the writes a generation costs equal what the API server's audit log says, request counts add up).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mediagen_dev.bench import runner, table
from mediagen_dev.bench.config import SMOKE
from mediagen_dev.controlplane import ControlPlane

REQUIRED = (
    "writes_per_generation",
    "replicate_requests_per_generation",
    "peak_replicate_rate_ratio",
    "overhead_ms",
    "throughput_per_s",
    "rss_mb_inflight_2000",
    "cpu_cores_inflight_2000",
    "large_transfer",
    "rss_mb_max_objects",
    "aggregated_overhead_ms",
    "machine",
)


@pytest.fixture(scope="module")
def results(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One smoke run of the whole suite; what it wrote to results.json."""
    output = tmp_path_factory.mktemp("bench") / "results.json"
    runner.run_suite(SMOKE, output=output, plane=control_plane, progress=lambda _: None)
    data: dict[str, Any] = json.loads(Path(output).read_text())
    return data


def test_every_benchmark_ran_without_error(results: dict[str, Any]) -> None:
    assert results["errors"] == {}
    assert set(results["runs"]) == set(runner.BENCHMARKS)
    assert results["scale"] == "smoke"


def test_max_objects_measures_both_processes_through_every_path(results: dict[str, Any]) -> None:
    rss, details = results["rss_mb_max_objects"], results["max_objects"]
    assert set(rss) == {"gateway", "operator"} and all(value > 0 for value in rss.values())
    assert details["input_bytes"] == 65536 and details["object_json_bytes"] > 65536
    assert details["listed"] == SMOKE.max_objects_count + 1  # the history and the sentinel, every page read


def test_aggregated_overhead_compares_both_paths_in_one_run(results: dict[str, Any]) -> None:
    overhead = results["aggregated_overhead_ms"]
    for path in ("standalone", "aggregated"):
        assert overhead[path]["n"] == SMOKE.aggregated_requests and overhead[path]["p50"] > 0
    assert overhead["added"]["p50"] == round(overhead["aggregated"]["p50"] - overhead["standalone"]["p50"], 1)
    assert set(overhead["added_paired"]) == {"p50", "p95", "p99", "min", "max"}


def test_results_have_the_documented_keys_and_types(results: dict[str, Any]) -> None:
    assert all(key in results for key in REQUIRED), sorted(results)
    for key in ("peak_replicate_rate_ratio", "throughput_per_s", "rss_mb_inflight_2000", "cpu_cores_inflight_2000"):
        assert isinstance(results[key], int | float) and results[key] >= 0, key
    sequential = {str(min(c for c, _ in SMOKE.overhead_rounds))}
    expected = {
        "overhead_ms": sequential | {str(c) for c, _ in SMOKE.held},
        "overhead_ms_polling": sequential | {str(c) for c, _ in SMOKE.held},
        "overhead_ms_instant": {str(c) for c, _ in SMOKE.overhead_rounds},
        "overhead_ms_burst": {str(c) for c, _ in SMOKE.overhead_rounds} - sequential,
        "overhead_ms_burst_polling": {str(c) for c, _ in SMOKE.overhead_rounds} - sequential,
    }
    for key, concurrencies in expected.items():
        assert set(results[key]) == concurrencies, key
        for stats in results[key].values():
            assert all(isinstance(stats[p], float) for p in ("p50", "p95", "p99")), key
    large = results["large_transfer"]
    assert isinstance(large["rss_growth_mb"], float) and isinstance(large["speed_ratio"], float)
    assert isinstance(results["machine"]["cpu_count"], int)
    assert len(table.rows(results)) == len(table.ROWS)  # every row of the table renders


def test_writes_per_generation_are_exact_and_match_the_audit_log(
    results: dict[str, Any], control_plane: ControlPlane
) -> None:
    writes, namespace = results["writes_per_generation"], results["generation_cost"]["namespace"]
    # The finalizer with the pending marker, then the final status; one more (the prediction id) when the
    # prediction outlives the create call. The smoke "long" prediction is shorter than a progress interval.
    assert writes["instant"]["by_kind"] == {"patch": 1, "patch status": 1}
    for name in ("short", "long", "long_quiet"):
        assert writes[name]["by_kind"] == {"patch": 1, "patch status": 2}, name
    audited: dict[str, Counter[str]] = {}
    for event in control_plane.audit_events():
        ref = event.get("objectRef", {})
        if ref.get("namespace") == namespace and event.get("stage") == "ResponseComplete":
            kind = " ".join(filter(None, [event["verb"], ref.get("subresource")]))
            audited.setdefault(ref["name"], Counter())[kind] += 1
    for name, counts in writes.items():
        assert audited[name.replace("_", "-")] == Counter(counts["by_kind"]) + Counter({"create": 1}), name
        assert counts["total"] == sum(counts["by_kind"].values())


def test_replicate_request_counts_add_up(results: dict[str, Any]) -> None:
    requests = results["replicate_requests_per_generation"]
    for name, counts in requests.items():
        assert (counts["create"], counts["cancel"], counts["list"], counts["file"]) == (1, 0, 0, 1), name
        assert counts["api_total"] == counts["create"] + counts["get"] + counts["cancel"] + counts["list"]
    assert requests["instant"]["get"] == 0  # finished inside the create call: nothing to poll
    assert requests["short"]["get"] >= 1


def test_load_benchmarks_did_all_their_work(results: dict[str, Any]) -> None:
    throughput = results["throughput"]
    assert throughput["phases"] == {"Succeeded": SMOKE.throughput_count}
    assert throughput["generations_by_write_count"] == {"2": SMOKE.throughput_count}
    assert throughput["replicate_requests"] == {"create": SMOKE.throughput_count, "file": SMOKE.throughput_count}
    rate = results["replicate_rate"]
    assert rate["created"] == SMOKE.rate_count and rate["throttled_429"] == 0
    inflight = results["inflight"]
    assert inflight["created"] == SMOKE.inflight_count
    assert inflight["predictions_polled_by_steady_operator"] == SMOKE.inflight_count
    for run in results["large_transfer"]["operator_runs"]:
        assert run["phase"] == "Succeeded" and run["size_ok"] and run["sha256_ok"]
    assert results["floor"]["patch_ms"]["n"] == SMOKE.floor_patches
    for key in ("overhead_phases", "overhead_phases_polling"):
        for phases in results[key].values():
            for by_phase in phases.values():
                assert set(by_phase) == {"Succeeded"}, key
    for reading, burst in (("burst_10", 10), ("burst_600", 600)):
        run = results["makespan"][reading]
        assert run["phases"] == {"Succeeded": SMOKE.makespan_count}, reading
        assert run["failed"] == run["duplicate_predictions"] == 0, reading
        assert run["creates"] == SMOKE.makespan_count + run["creates_429"], reading
        assert run["max_requests_in_flight_per_prediction"] == 1, reading
        # The operator learnt the bucket's size from Replicate's ratelimit-remaining, through its metrics.
        assert run["pacer"]["burst"] == {"create": burst, "other": burst * 5}, reading
    for sustained in (results["sustained"], results["sustained"]["slots_for_all"]):
        assert sustained["phases"] == {"Succeeded": SMOKE.sustained_count}
        assert sustained["creates_accepted"] == SMOKE.sustained_count
        assert sustained["failed"] == sustained["duplicate_predictions"] == 0
    # With webhooks the long prediction is told, not polled: at most the safety net's polls.
    assert results["webhooks"]["long_prediction"]["get"] <= 1
    assert results["webhooks"]["deliveries"] >= 1
