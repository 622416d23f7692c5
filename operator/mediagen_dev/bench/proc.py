"""A process's memory and CPU, read from /proc (Linux): RSS, peak RSS, user+system CPU time.

``VmHWM`` is the peak resident set size since the process started, or since :func:`reset_peak`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    """Resident set size now (``VmRSS``), MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (``VmHWM``), MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (``clear_refs`` 5); False where the kernel does not allow it."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process (all its threads) has used so far, seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces; skip past it
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU cores a set of processes used between :meth:`start` and :meth:`stop` (CPU seconds / wall seconds)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._cpu0: dict[str, float] = {}
        self._wall0 = 0.0
        self.cores: dict[str, float] = {}
        self.seconds = 0.0
        self._busy0 = 0.0
        self.machine_cores = 0.0
        """Cores the whole machine was busy (every process, ours or not) between start and stop."""

    def start(self) -> Self:
        """Take the starting readings."""
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._busy0 = machine_busy_seconds()
        self._wall0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        """Cores used per process since :meth:`start` (a process that died meanwhile is left out)."""
        self.seconds = time.monotonic() - self._wall0
        for name, pid in self.pids.items():
            try:
                used = cpu_seconds(pid) - self._cpu0[name]
            except (OSError, KeyError):
                continue
            self.cores[name] = round(used / self.seconds, 3) if self.seconds > 0 else 0.0
        busy = machine_busy_seconds() - self._busy0
        self.machine_cores = round(busy / self.seconds, 3) if self.seconds > 0 else 0.0
        return self.cores

    @property
    def others_cores(self) -> float:
        """Cores used by processes outside the measured set: how busy the shared machine was with other work."""
        return round(max(0.0, self.machine_cores - sum(self.cores.values())), 3)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: everything but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples a process's RSS in a background thread every ``interval`` seconds; a context manager."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.samples.append(rss_mib(self.pid))
            except OSError:
                return
            if self._stop.wait(self.interval):
                return

    @property
    def peak(self) -> float:
        """The largest sample so far, MiB (0 without samples)."""
        return max(self.samples, default=0.0)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
