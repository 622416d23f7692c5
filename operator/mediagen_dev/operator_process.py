"""Run the operator as its own process, exactly as in production, for integration tests and benchmarks.

Only a real process proves that state lives in the API server rather than in memory: ``kill()`` is a
``SIGKILL``, and ``start()`` again resumes from whatever the resources say.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


class OperatorProcess:
    """``python -m mediagen.cli operator`` with a given environment; logs go to ``log_path``."""

    def __init__(self, kubeconfig: Path, env: Mapping[str, str], log_path: Path, args: Sequence[str] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.args = list(args)
        """Extra arguments of ``mediagen operator`` (e.g. ``--liveness=…``)."""
        self.env = {**os.environ, **env, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running process id, or None."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def start(self) -> Self:
        """Start the operator; its output is appended to the log file."""
        if self.pid is not None:
            raise RuntimeError("operator already running")
        with self.log_path.open("ab") as log:
            log.write(f"\n===== operator start #{self.starts + 1} =====\n".encode())
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mediagen.cli", "operator", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers, no graceful shutdown. What a node failure looks like."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait (kopf shuts down gracefully), then SIGKILL if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def logs(self) -> str:
        """Everything the operator printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        """Block until ``text`` appears in the log (e.g. the startup line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.logs():
                return
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"operator exited with {self._process.returncode}:\n{self.logs()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{text!r} not in the operator's log after {timeout}s:\n{self.logs()[-4000:]}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
