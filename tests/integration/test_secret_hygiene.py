"""Secret hygiene (the scenario of ``make chaos``): after a run with known secret values through successes,
failures, retries and wrong tokens, no status, event, log line, metric or gateway answer contains any of them,
and no output download carried the Replicate token."""

from __future__ import annotations

from mediagen_dev.chaos import secrets
from mediagen_dev.chaos.chaos_stack import Stack


def test_no_secret_appears_anywhere_it_must_not(stack: Stack) -> None:
    outcome = secrets.run(stack, secrets.SMALL)
    assert outcome.headline == {"secret_leaks": 0}, outcome.details["leaks"]
    assert outcome.details["control_found"]  # the search does find the token where it belongs
    reasons = outcome.details["outcomes_by_reason"]
    assert {"Succeeded", "ContentFlagged", "Canceled", "Unauthorized"} <= set(reasons), reasons
    assert outcome.details["output_downloads_checked"] >= 1
    assert all(size > 0 for size in outcome.details["sources"].values())


def test_the_scan_finds_every_encoding() -> None:
    known = {"token": "r8_abcdef0123456789"}
    for form in secrets.forms(known["token"]):
        assert secrets.scan({"log": f"... {form} ..."}, known) == ["token in log"]
    assert secrets.scan({"log": "r8_abcdef012345678"}, known) == []
