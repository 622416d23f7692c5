"""The flaky-API-server scenario of ``make chaos`` at a small scale: 409s on the operator's patches and failed
re-reads, through a fault proxy in front of kube-apiserver, while generations run and are deleted; no worker is
left stuck."""

from __future__ import annotations

from mediagen_dev.chaos import apiserver_faults
from mediagen_dev.chaos.chaos_stack import Stack


def test_conflicts_and_failed_rereads_leave_no_worker_stuck(stack: Stack) -> None:
    outcome = apiserver_faults.run(stack, apiserver_faults.SMALL)
    assert outcome.survived, outcome.notes
    assert outcome.headline == {"stuck_workers": 0, "duplicate_predictions": 0}
    injected = outcome.details["injected"]
    assert injected["conflicts"] > 0 and injected["failed_gets"] > 0  # the faults really happened
