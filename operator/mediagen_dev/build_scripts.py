"""Running a hack/build-*.sh script from Python: its progress relayed live (a first build takes minutes), the tail of
its output kept for error messages. The scripts print what they built (a path) as their last line."""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

TAIL_LINES = 40


def _every_line(line: str) -> bool:
    return True


def run_build_script(bash: str, script: Path, relay: Callable[[str], bool] = _every_line) -> tuple[int, list[str]]:
    """Run ``script`` with ``bash``; returns its exit code and the last lines of its output (stdout and stderr in
    one pipe, which cannot deadlock). The lines ``relay`` accepts are written to stderr as they come."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        [bash, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if relay(line):
                sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
        code = proc.wait()
    return code, list(tail)
