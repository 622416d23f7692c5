"""The reliability report: a run of some scenarios (``--only``) keeps the others' results and sums the headline
over all of them again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mediagen_dev.chaos.results import Outcome, combine, load, merged, write

EARLIER = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)


def full_report(path: Path) -> None:
    outcomes = [
        Outcome("operator_kills", True, {"kills": 10, "duplicate_predictions": 0}, {"found_again": 9}, seconds=300.0),
        Outcome("failover", True, {"failover_seconds": 52.4, "duplicate_predictions": 1}, notes=["slow"]),
        Outcome("control_plane", False, {"apiserver_restarts_survived": 1}, notes=["one restart lost"]),
    ]
    write(combine(outcomes, scale="full", started=EARLIER, seconds=900.0), path)


def test_a_partial_run_replaces_only_its_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "reliability.json"
    full_report(path)
    fresh = Outcome("failover", True, {"failover_seconds": 12.3, "duplicate_predictions": 0}, at=LATER.isoformat())
    outcomes = merged(load(path), [fresh, Outcome("new", True)], scale="full")
    report = combine(outcomes, scale="full", started=LATER, seconds=60.0)
    assert list(report["scenarios"]) == ["operator_kills", "failover", "control_plane", "new"]
    assert report["failover_seconds"] == 12.3 and report["duplicate_predictions"] == 0
    assert report["kills"] == 10 and report["apiserver_restarts_survived"] == 1
    assert report["all_survived"] is False  # the kept controlplane result still counts
    kills = report["scenarios"]["operator_kills"]
    assert kills["details"] == {"found_again": 9} and kills["seconds"] == 300.0
    assert kills["at"] == EARLIER.isoformat(timespec="seconds")  # when it really ran
    assert report["scenarios"]["failover"]["at"] == LATER.isoformat() and report["scenarios"]["failover"]["notes"] == []


def test_an_earlier_report_at_another_scale_or_none_at_all_contributes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "reliability.json"
    full_report(path)
    fresh = Outcome("failover", True, {"failover_seconds": 9.0})
    assert merged(load(path), [fresh], scale="small") == [fresh]
    assert merged(load(tmp_path / "missing.json"), [fresh], scale="full") == [fresh]
    (tmp_path / "broken.json").write_text("{not json")
    assert load(tmp_path / "broken.json") == {}
