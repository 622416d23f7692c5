"""The user CLI's pieces without a cluster: inputs, snapshots, the live and plain renderings, the gateway client."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from mediagen.api.types import TERMINAL_PHASES
from mediagen.userctl import display
from mediagen.userctl.backends import GatewayBackend
from mediagen.userctl.download import targets
from mediagen.userctl.errors import BackendError, UsageError
from mediagen.userctl.inputs import build_spec, parse_inputs, parse_value
from mediagen.userctl.parser import plugin_main
from mediagen.userctl.snapshot import TERMINAL_PHASES as CLI_TERMINAL
from mediagen.userctl.snapshot import Output, Snapshot, from_gateway, from_resource

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
PRESIGNED = "https://acct.r2.cloudflarestorage.com/media/ns/n/uid/p/0.png?X-Amz-Signature=" + "f" * 64


@pytest.mark.parametrize(
    ("text", "value"),
    [("768", 768), ("0.5", 0.5), ("true", True), ("[1, 2]", [1, 2]), ("a cat", "a cat"), ("null", "null"),
     ('"quoted"', '"quoted"'), ("", ""), ("{\"a\": 1}", "{\"a\": 1}")],
)  # fmt: skip
def test_values_become_numbers_booleans_and_lists_or_stay_text(text: str, value: Any) -> None:
    assert parse_value(text) == value


def test_inputs_parse_and_refuse_what_is_unclear() -> None:
    assert parse_inputs(["prompt=a=b", "width=64"]) == {"prompt": "a=b", "width": 64}
    with pytest.raises(UsageError, match="key=value"):
        parse_inputs(["prompt"])
    with pytest.raises(UsageError, match="given twice"):
        parse_inputs(["a=1", "a=2"])


def test_the_spec_is_checked_like_the_api_server_checks_it() -> None:
    assert build_spec("a/b", None, {"prompt": "x"}, 60) == {
        "model": "a/b",
        "input": {"prompt": "x"},
        "timeoutSeconds": 60,
    }
    assert build_spec(None, "o/d", {}, None) == {"deployment": "o/d", "input": {}}
    with pytest.raises(UsageError, match="'flux' is not owner/name or owner/name:version"):
        build_spec("flux", None, {}, None)
    with pytest.raises(UsageError, match="give a MODEL"):
        build_spec("a/b", "c/d", {}, None)
    with pytest.raises(UsageError, match="timeoutSeconds"):
        build_spec("a/b", None, {}, 1)
    with pytest.raises(UsageError, match=r"invalid input: .*prompt"):
        build_spec("a/b", None, {"prompt": "x" * 20000}, None)


def test_a_resource_and_the_gateway_view_read_alike() -> None:
    resource = {
        "metadata": {"name": "gen-1", "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {"model": "a/b"},
        "status": {
            "phase": "Succeeded", "progress": 100, "reason": "Succeeded", "message": "stored 1 output",
            "completionTime": "2026-01-02T03:04:17Z", "outputs": [{"url": PRESIGNED, "contentType": "image/png"}],
        },
    }  # fmt: skip
    view = {
        "id": "gen-1", "phase": "Succeeded", "done": True, "model": "a/b", "progress": 100, "reason": "Succeeded",
        "message": "stored 1 output", "createdAt": "2026-01-02T03:04:05Z", "completionTime": "2026-01-02T03:04:17Z",
        "outputs": [{"url": PRESIGNED, "contentType": "image/png"}], "url": PRESIGNED,
    }  # fmt: skip
    assert from_resource(resource) == from_gateway(view)
    snapshot = from_resource(resource)
    assert snapshot.done and snapshot.url == PRESIGNED and snapshot.elapsed(T0 + dt.timedelta(hours=1)) == 12.0
    assert from_resource({"metadata": {"name": "new"}}).phase == "Pending"
    assert {str(p) for p in TERMINAL_PHASES} == CLI_TERMINAL


def test_output_files_are_named_after_the_target(tmp_path: Path) -> None:
    outputs = (Output("u0", "image/png"), Output("u1", "image/png"), Output("u2", "video/mp4"))
    assert targets(outputs[:1], tmp_path / "fox.png", "gen-1") == [tmp_path / "fox.png"]
    assert targets(outputs[:2], tmp_path / "fox.png", "gen-1") == [tmp_path / "fox.png", tmp_path / "fox-1.png"]
    assert targets(outputs, tmp_path, "gen-1")[2] == tmp_path / "gen-1-2.mp4"


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, color_system=None, markup=False), out


def test_live_progress_on_a_terminal() -> None:
    console, out = _console(terminal=True)
    follower = display.follower(console, clock=lambda: T0 + dt.timedelta(seconds=75))
    assert isinstance(follower, display.LiveFollower)
    follower.update(Snapshot("gen-1", "Running", progress=45, created=T0))
    follower.update(Snapshot("gen-1", "Succeeded", progress=100, created=T0, finished=T0 + dt.timedelta(seconds=80)))
    follower.close()
    text = out.getvalue()
    assert "gen-1" in text and "45%" in text and "1:15" in text  # phase, percent and elapsed, redrawn in place
    assert "Succeeded" in text and "100%" in text and "1:20" in text
    assert "━" in text  # a bar drawn by rich, not by hand


def test_plain_lines_when_not_a_terminal() -> None:
    console, out = _console(terminal=False)
    follower = display.follower(console, clock=lambda: T0 + dt.timedelta(seconds=5))
    for progress in (None, None, 40, 40, 90):
        follower.update(Snapshot("gen-1", "Running", progress=progress, created=T0))
    follower.update(Snapshot("gen-1", "Failed", reason="ModelFailed", created=T0, finished=T0))
    assert out.getvalue().splitlines() == [
        "gen-1\tRunning\t-\t0:05",
        "gen-1\tRunning\t40%\t0:05",
        "gen-1\tRunning\t90%\t0:05",
        "gen-1\tFailed\t-\t0:00",
    ]


def test_tables_link_short_names_on_a_terminal_and_print_full_urls_elsewhere() -> None:
    done = Snapshot("gen-1", "Succeeded", "a/b", 100, outputs=(Output(PRESIGNED, "image/png"),), created=T0)
    failed = Snapshot("gen-2", "Failed", "a/b", reason="ContentFlagged", created=T0)
    console, out = _console(terminal=True)
    console.print(display.table([done, failed], T0 + dt.timedelta(seconds=90)))
    text = out.getvalue()
    assert "0.png" in text and "X-Amz-Signature" not in text and "ContentFlagged" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    rows = display.plain_rows([done, failed], T0 + dt.timedelta(seconds=90))
    assert rows == [f"gen-1\tSucceeded\t100%\ta/b\t1:30\t{PRESIGNED}", "gen-2\tFailed\t-\ta/b\t1:30\tContentFlagged"]


def test_the_gateway_client_reads_problems_and_pages() -> None:
    pages = {
        None: {"items": [{"id": "b", "phase": "Running", "createdAt": "2026-01-02T03:04:06Z"}], "continue": "c1"},
        "c1": {"items": [{"id": "a", "phase": "Pending", "createdAt": "2026-01-02T03:04:05Z"}], "continue": None},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer mg_x"
        if request.url.path == "/generations":
            return httpx.Response(200, json=pages[request.url.params.get("continue")])
        problem = {"title": "Unprocessable", "errors": [{"field": "input.width", "message": "must be an integer"}]}
        return httpx.Response(422, json=problem, headers={"Content-Type": "application/problem+json"})

    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handler))
    backend = GatewayBackend("http://gw", "mg_x", client)
    assert [s.name for s in backend.list()] == ["a", "b"]  # every page, oldest first
    with pytest.raises(BackendError, match=r"HTTP 422: input.width: must be an integer"):
        backend.create({"model": "a/b", "input": {"width": "wide"}}, None)
    with pytest.raises(UsageError, match="needs an API token"):
        GatewayBackend("http://gw", None)


def test_the_kubectl_plugin_has_the_user_commands_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        plugin_main(["--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: kubectl mediagen") and "{generate,get,watch}" in usage
    assert "operator" not in usage
