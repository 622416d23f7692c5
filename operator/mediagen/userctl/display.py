"""Showing generations: a live progress bar or table on a terminal (rich), plain lines anywhere else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.style import Style
from rich.table import Table
from rich.text import Text

from mediagen.userctl.snapshot import Snapshot

Clock = Callable[[], dt.datetime]
PHASE_STYLES = {
    "Pending": "yellow",
    "Running": "cyan",
    "Uploading": "cyan",
    "Succeeded": "green",
    "Failed": "bold red",
    "Canceled": "magenta",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write_plain(console: Console, line: str) -> None:
    """A line as is (tabs kept, nothing wrapped or styled): for pipes, logs and scripts."""
    console.file.write(line + "\n")
    console.file.flush()


def duration(seconds: float | None) -> str:
    """``75.2`` → ``1:15``; ``3725`` → ``1:02:05``; None → ``-``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def percent(snapshot: Snapshot) -> str:
    """``40%`` (100% once Succeeded), or ``-`` while unknown."""
    if snapshot.succeeded:
        return "100%"
    return f"{snapshot.progress}%" if snapshot.progress is not None else "-"


def file_label(url: str) -> str:
    """The last segment of a URL's path (``0.png``), without the query string of a presigned URL."""
    return urlsplit(url).path.rsplit("/", 1)[-1] or url


class Follower(Protocol):
    """Shows one generation's progress as it changes."""

    def update(self, snapshot: Snapshot) -> None:
        """Show the latest state."""
        ...

    def close(self) -> None:
        """Stop showing (the last state stays on screen)."""
        ...


class LiveFollower:
    """A rich progress line: spinner, name, phase, bar, percent and elapsed time, redrawn in place."""

    def __init__(self, console: Console, clock: Clock = utcnow) -> None:
        self._clock = clock
        self._progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.fields[name]}"),
            TextColumn("{task.fields[phase]}"),
            BarColumn(bar_width=32),
            TextColumn("{task.fields[percent]:>4}"),
            TextColumn("{task.fields[elapsed]}"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._progress.start()

    def update(self, snapshot: Snapshot) -> None:
        """Redraw the line; an unknown progress pulses, a final phase fills or stops the bar."""
        style = PHASE_STYLES.get(snapshot.phase, "")
        fields: dict[str, Any] = {
            "name": snapshot.name,
            "phase": f"[{style}]{snapshot.phase:<9}[/]" if style else snapshot.phase,
            "percent": percent(snapshot),
            "elapsed": duration(snapshot.elapsed(self._clock())),
        }
        completed = 100 if snapshot.succeeded else snapshot.progress
        total = 100.0 if completed is not None or snapshot.done else None
        if self._task is None:
            self._task = self._progress.add_task("", total=total, completed=completed or 0, **fields)
        else:
            self._progress.update(self._task, total=total, completed=completed or 0, **fields)
        if snapshot.done:
            self._progress.stop_task(self._task)

    def close(self) -> None:
        """Leave the last line on screen."""
        self._progress.stop()


class PlainFollower:
    """One line per change of phase or progress (for logs, pipes and CI)."""

    def __init__(self, console: Console, clock: Clock = utcnow) -> None:
        self._console = console
        self._clock = clock
        self._last: tuple[str, int | None] | None = None

    def update(self, snapshot: Snapshot) -> None:
        """Print a line if the phase or the progress changed."""
        state = (snapshot.phase, snapshot.progress)
        if state == self._last:
            return
        self._last = state
        elapsed = duration(snapshot.elapsed(self._clock()))
        write_plain(self._console, f"{snapshot.name}\t{snapshot.phase}\t{percent(snapshot)}\t{elapsed}")

    def close(self) -> None:
        """Nothing to clean up."""


def follower(console: Console, clock: Clock = utcnow) -> Follower:
    """A live progress line on a terminal, plain lines otherwise."""
    return LiveFollower(console, clock) if console.is_terminal else PlainFollower(console, clock)


def _result(snapshot: Snapshot) -> Text:
    if snapshot.succeeded and snapshot.outputs:
        more = f" +{len(snapshot.outputs) - 1}" if len(snapshot.outputs) > 1 else ""
        # A terminal hyperlink: the file name is short, the (long, maybe presigned) URL is a click away.
        return Text(file_label(snapshot.url), style=Style(link=snapshot.url, underline=True)) + Text(more)
    if snapshot.done or snapshot.reason not in ("", snapshot.phase):
        return Text(snapshot.reason, style="red" if snapshot.phase == "Failed" else "")
    return Text("")


def table(snapshots: Sequence[Snapshot], now: dt.datetime) -> Table:
    """A rich table of generations: name, phase, progress, model, age and the result (a link, or why not)."""
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "PHASE", "PROGRESS", "MODEL", "AGE", "RESULT"):
        grid.add_column(column, no_wrap=True, overflow="ellipsis")
    for s in snapshots:
        age = duration((now - s.created).total_seconds()) if s.created else "-"
        grid.add_row(s.name, Text(s.phase, style=PHASE_STYLES.get(s.phase, "")), percent(s), s.model, age, _result(s))
    return grid


def plain_rows(snapshots: Sequence[Snapshot], now: dt.datetime) -> list[str]:
    """The same as :func:`table`, tab-separated, with the full URL (or the reason) last."""
    rows = []
    for s in snapshots:
        age = duration((now - s.created).total_seconds()) if s.created else "-"
        rows.append("\t".join([s.name, s.phase, percent(s), s.model or "-", age, s.url or s.reason or "-"]))
    return rows


class LiveTable:
    """``mediagen watch``: a table redrawn in place on a terminal, or a line per change elsewhere."""

    def __init__(self, console: Console, clock: Clock = utcnow) -> None:
        self._console = console
        self._clock = clock
        self._seen: dict[str, str] = {}
        self._live = Live(console=console, auto_refresh=False) if console.is_terminal else None
        if self._live is not None:
            self._live.start()

    def update(self, snapshots: Sequence[Snapshot]) -> None:
        """Show the latest states."""
        now = self._clock()
        if self._live is not None:
            self._live.update(table(snapshots, now), refresh=True)
            return
        for snapshot, row in zip(snapshots, plain_rows(snapshots, now), strict=True):
            key = "\t".join(row.split("\t")[:3] + row.split("\t")[5:])  # age alone changes nothing
            if self._seen.get(snapshot.name) != key:
                self._seen[snapshot.name] = key
                write_plain(self._console, row)

    def close(self) -> None:
        """Stop redrawing (the last table stays on screen)."""
        if self._live is not None:
            self._live.stop()
