"""One long-running server binary: started in its own process group, logged to a file, stopped for sure."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from mediagen_dev.controlplane.errors import ControlPlaneError

_PR_SET_PDEATHSIG = 1


def parent_death_signal() -> Callable[[], None] | None:
    """Return a pre-exec hook that makes the kernel SIGKILL the child when its parent dies.

    This is what keeps a SIGKILLed or crashed test run (no atexit) from leaking servers. Linux
    only, and only from the main thread: the signal fires when the *thread* that forked exits,
    so arming it from a worker thread (asyncio.to_thread) would kill the server with the thread.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return arm


def tail_file(path: Path, lines: int) -> str:
    """Return the last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            # Server log lines are short; 512 bytes a line is plenty and bounds the read.
            handle.seek(max(0, size - 512 * max(lines, 1)))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


class ServerProcess:
    """A server binary whose stdout and stderr are appended to ``log_path``.

    Each start puts the server in a new session (and so its own process group): a terminal's
    Ctrl-C reaches only the Python process, which stops the servers in order, and :meth:`stop`
    can signal the whole group.
    """

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None):
        """Describe the server; nothing runs until :meth:`start`."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, if it ran before); its log is appended to, not truncated."""
        if self.running:
            raise ControlPlaneError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"=== starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    start_new_session=True,
                    preexec_fn=parent_death_signal(),
                )
            except OSError as exc:
                raise ControlPlaneError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc

    @property
    def pid(self) -> int | None:
        """The process id of the current run, if the server was started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status once the server has exited, else None."""
        return self._proc.poll() if self._proc is not None else None

    def stop(self, grace_period: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_period`` seconds, reap the process."""
        proc = self._proc
        if proc is None:
            return
        # Only signal while the leader is unreaped: until then its pid (= the group id) cannot have
        # been reused. etcd and kube-apiserver start no children, so a dead leader leaves nothing.
        if proc.poll() is not None:
            return
        self._signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_period)
        except subprocess.TimeoutExpired:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, for chaos tests) and reap the process."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            proc.send_signal(sig)

    def tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of this server's log."""
        return tail_file(self.log_path, lines)
