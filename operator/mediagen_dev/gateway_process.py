"""The HTTP gateway as a process of its own (``python -m mediagen.cli gateway``), for tests and the chaos runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from mediagen_dev.controlplane.process import parent_death_signal

_LISTENING = re.compile(r"mediagen gateway listening on (http://[0-9.]+:\d+)")
_AGGREGATED = re.compile(r"mediagen gateway serving the aggregated API on (https://[0-9.]+:\d+)")


class GatewayProcess:
    """``python -m mediagen.cli gateway`` on 127.0.0.1 (``port``, 0 for a free one); logs go to ``log_path``.

    It runs in a session of its own and is SIGKILLed by the kernel should this process die without stopping it."""

    def __init__(self, kubeconfig: Path, env: Mapping[str, str], log_path: Path, port: int = 0) -> None:
        self.kubeconfig = kubeconfig
        self.port = port
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self.argv = [sys.executable, "-m", "mediagen.cli", "gateway"]

    @property
    def returncode(self) -> int | None:
        """The exit status once the gateway has exited, else None."""
        return self._process.poll() if self._process is not None else None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._url is None:
            raise RuntimeError("the gateway has not started")
        return self._url

    @property
    def aggregated_url(self) -> str:
        """``https://127.0.0.1:<port>`` of the aggregated API's listener, when it serves one."""
        found = _AGGREGATED.search(self.logs())
        if found is None:
            raise RuntimeError("the gateway serves no aggregated API")
        return found.group(1)

    @property
    def pid(self) -> int | None:
        """The running process id, or None."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def start(self, timeout: float = 30.0) -> Self:
        """Start the gateway and wait until it answers /livez."""
        with self.log_path.open("ab") as log:
            # The log is appended to: only what this run prints says where it listens.
            since = log.tell()
            self._process = subprocess.Popen(
                [*self.argv, "--kubeconfig", str(self.kubeconfig), "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                # Not the repository: a developer's .env must not configure the gateway under test.
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_signal(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self._logs_since(since))
            if found:
                self._url = found.group(1)
                try:
                    if httpx.get(f"{self._url}/livez", timeout=2, trust_env=False).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            if self._process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self._process.returncode}:\n{self.logs()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"the gateway did not start within {timeout}s:\n{self.logs()[-4000:]}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def _logs_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def logs(self) -> str:
        """Everything the gateway printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the gateway, with ``token`` as bearer if given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
