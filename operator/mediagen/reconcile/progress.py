"""Best-effort progress (0-100) from a prediction's logs: Replicate has no progress field (docs/replicate.md#progress).

Diffusion models print tqdm bars; cog stores each redraw as its own line or joined with ``\\r``, sometimes
behind a description (``Sampling:  40%|████      | 20/50 [...]``). Some models print several bars in a row
(SDXL with refiner: 40 steps, then 10). Progress is the step-weighted share of all bars seen so far, so it
never moves backwards within a bar; when a new bar appears the total grows and the value can dip (40/40 of
the base bar reads 100, then 40/50 = 80 once the refiner starts). Nothing can know about a bar that has not
started yet; callers that need a never-decreasing number keep their own maximum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_BAR = re.compile(
    r"(?P<percent>\d{1,3})%\s*\|[^|\n\r]*\|\s*(?P<current>\d+)\s*/\s*(?P<total>\d+)"
    r"|(?P<bare>\d{1,3})%\s*\|"
)


@dataclass
class _Bar:
    prefix: str
    total: int | None
    current: int
    percent: int


def parse_progress(logs: str | None) -> int | None:
    """Overall progress in whole percent from tqdm bars in ``logs``, or ``None`` when there are none."""
    if not logs:
        return None
    bars: list[_Bar] = []
    for raw_line in re.split(r"[\r\n]+", _ANSI.sub("", logs)):
        match = _BAR.search(raw_line)
        if match is None:
            continue
        prefix = raw_line[: match.start()].strip().rstrip(":").strip()
        if match["bare"] is not None:
            update = _Bar(prefix, None, 0, min(100, int(match["bare"])))
        else:
            total, current = int(match["total"]), int(match["current"])
            if total <= 0 or current > total:
                continue
            update = _Bar(prefix, total, current, min(100, int(match["percent"])))
        if bars and _same_bar(bars[-1], update):
            bars[-1] = update
        else:
            bars.append(update)
    if not bars:
        return None
    if any(bar.total is None for bar in bars):
        return bars[-1].percent
    done = sum(bar.current for bar in bars)
    total = sum(bar.total or 0 for bar in bars)
    return min(100, done * 100 // total)


def _same_bar(previous: _Bar, update: _Bar) -> bool:
    """A redraw of the previous bar, rather than a new bar: same label and size, and it did not restart."""
    if previous.prefix != update.prefix or previous.total != update.total:
        return False
    if update.total is None:
        return update.percent >= previous.percent
    return update.current >= previous.current
