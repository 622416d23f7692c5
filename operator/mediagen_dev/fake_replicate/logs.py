"""Scripted model logs: plain lines and tqdm progress bars, rendered for a point in the processing phase.

A log script is a tuple of :class:`LogLine` and :class:`TqdmBar` items played in order over the processing
time. Bars advance one step per equal slice of time (weighted by their step count); lines between bars appear
the moment the script reaches them. With no bars at all, lines are spread evenly over the processing time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LogLine:
    """A plain line of stdout, e.g. ``"Loading pipeline..."``."""

    text: str


@dataclass(frozen=True)
class TqdmBar:
    """A tqdm bar of ``total`` steps, rendered like tqdm does (``" 40%|████      | 20/50 [...]"``).

    ``prefix`` is tqdm's ``desc`` (``"Sampling: "``); ``joiner`` separates successive renders of the bar:
    ``"\\n"`` as most cog logs show them, or ``"\\r"`` as tqdm writes them to a terminal."""

    total: int
    prefix: str = ""
    joiner: str = "\n"
    it_per_second: float = 16.56


LogItem = LogLine | TqdmBar
LogScript = tuple[LogItem, ...]

NO_LOGS: LogScript = ()
PLAIN_LINES: LogScript = (
    LogLine("Moderating content..."),
    LogLine("Generating video..."),
    LogLine("Still generating..."),
    LogLine("Retrieving video..."),
)
ONE_BAR: LogScript = (LogLine("Using seed: 42"), TqdmBar(total=50))
TWO_BARS: LogScript = (
    LogLine("Using seed: 42"),
    LogLine("txt2img mode"),
    TqdmBar(total=40),
    LogLine("Refining with the refiner..."),
    TqdmBar(total=10),
)
CR_JOINED: LogScript = (LogLine("Using seed: 7"), TqdmBar(total=28, joiner="\r"))
PREFIXED: LogScript = (LogLine("Loading pipeline components..."), TqdmBar(total=30, prefix="Sampling: "))

PRESETS: dict[str, LogScript] = {
    "none": NO_LOGS,
    "lines": PLAIN_LINES,
    "tqdm": ONE_BAR,
    "two_bars": TWO_BARS,
    "cr": CR_JOINED,
    "prefixed": PREFIXED,
}
"""Named scripts usable from the ``_fake`` input marker (``{"logs": "two_bars"}``)."""


def render_bar(bar: TqdmBar, step: int) -> str:
    """One tqdm render of ``bar`` at ``step``, formatted like tqdm's default ``bar_format``."""
    fraction = step / bar.total if bar.total else 1.0
    filled = int(fraction * 10)
    blocks = "█" * filled + " " * (10 - filled)
    elapsed = step / bar.it_per_second
    remaining = (bar.total - step) / bar.it_per_second
    return (
        f"{bar.prefix}{int(fraction * 100):3d}%|{blocks}| {step}/{bar.total} "
        f"[{_mmss(elapsed)}<{_mmss(remaining)}, {bar.it_per_second:.2f}it/s]"
    )


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def render_logs(script: LogScript, fraction: float) -> str:
    """The accumulated logs once ``fraction`` (0..1) of the processing time has elapsed."""
    fraction = min(max(fraction, 0.0), 1.0)
    bar_steps = sum(item.total for item in script if isinstance(item, TqdmBar))
    if bar_steps == 0:
        shown = int(fraction * len(script) + 1e-9) if script else 0
        if fraction > 0 and shown == 0 and script:
            shown = 1
        return "".join(item.text + "\n" for item in script[:shown] if isinstance(item, LogLine))

    budget = fraction * bar_steps
    out: list[str] = []
    for item in script:
        if isinstance(item, LogLine):
            out.append(item.text + "\n")
            continue
        step = min(item.total, int(budget + 1e-9))
        renders = [render_bar(item, n) for n in range(step + 1)]
        out.append(item.joiner.join(renders) + ("\n" if step == item.total else ""))
        budget -= item.total
        if step < item.total:
            break
    return "".join(out)
