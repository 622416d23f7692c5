"""`make dev` as a person uses it: it prints a token and curl lines that work, the gallery shows the example's
image, `kubectl get mg` fits a terminal, and Ctrl-C leaves no process behind.

`make dev` runs for real (control plane, embedded store, operator, gateway), in a process group of its own, with
a marker in its environment that every process it starts inherits: after Ctrl-C (SIGINT to the group, as a
terminal sends it) no process on the machine may still carry the marker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mediagen_dev.paths import REPO_ROOT
from tests.integration.test_gateway_gallery import IMAGE_SIZES, IMAGES_LOADED, Browser, find_chromium

READY = "Ctrl-C stops everything"
MAX_WIDTH = 120


@dataclass
class DevRun:
    """`make dev` running in its own process group; its output collected line by line."""

    process: subprocess.Popen[str]
    marker: str
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def read(self) -> None:
        """Collect the output in a thread until make closes it."""
        stream = self.process.stdout
        assert stream is not None
        self.reader = threading.Thread(target=lambda: self.lines.extend(line.rstrip("\n") for line in stream))
        self.reader.start()

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"make dev exited {self.process.returncode}:\n{self.output()}"
            assert time.monotonic() < deadline, f"{text!r} not printed within {timeout:.0f} s:\n{self.output()}"
            time.sleep(0.2)


def processes_with(marker: str) -> list[str]:
    """Every live process whose environment holds ``marker`` (pid and command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry.name}: {command}")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
    return found


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevRun]:
    marker = f"MEDIAGEN_DEV_TEST={uuid.uuid4().hex}"
    directory = tmp_path_factory.mktemp("dev")
    # A second `make dev` appends to the same log: a stale line from the last run must not be taken for this one.
    (directory / "gateway.log").write_text(
        "... INFO mediagen.gateway: mediagen gateway listening on http://127.0.0.1:9\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("R2_", "REPLICATE_", "MEDIAGEN_"))}
    env[marker.split("=")[0]] = marker.split("=")[1]
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), "dev", f"ARGS=--dir {directory}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal's foreground job
    )
    run = DevRun(process, marker)
    run.read()
    try:
        run.wait_for(READY, timeout=400)
        run.wait_for("storage:", timeout=10)
        time.sleep(0.2)  # the rest of the summary, printed in the same flush
        yield run
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        if run.reader is not None:
            run.reader.join(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def printed(run: DevRun, prefix: str) -> list[str]:
    return [line.strip() for line in run.lines if line.strip().startswith(prefix)]


def test_the_printed_curl_lines_work(dev: DevRun) -> None:
    post, status = printed(dev, "curl ")
    created = subprocess.run(["bash", "-c", post], capture_output=True, text=True, timeout=30, check=True)
    generation = json.loads(created.stdout)
    assert generation["phase"] in ("Pending", "Running", "Succeeded"), generation

    answer = json.loads(subprocess.run(["bash", "-c", status], capture_output=True, text=True, check=True).stdout)
    assert answer["phase"] == "Succeeded", answer
    image = httpx.get(answer["url"], trust_env=False)  # a public URL of the embedded store: no signature
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert "X-Amz-Signature" not in answer["url"]


def test_kubectl_get_fits_a_terminal(dev: DevRun) -> None:
    header = next(i for i, line in enumerate(dev.lines) if line.startswith("NAME "))
    listing = dev.lines[header : header + 2]
    assert listing[1].startswith("hello-mediagen "), listing
    assert max(len(line) for line in listing) <= MAX_WIDTH, listing


def test_the_gallery_shows_the_example(dev: DevRun) -> None:
    (gallery,) = [line for line in dev.lines if line.startswith("gallery: ")]
    url = re.search(r"(http://[0-9.:]+)/", gallery)
    assert url is not None, gallery
    (token,) = [line.strip() for line in dev.lines if re.fullmatch(r"\s+mg_[A-Za-z0-9_]+", line)]
    with Browser(find_chromium()) as browser:
        browser.sign_in(url.group(1), token)
        browser.wait_for(IMAGES_LOADED)
        sizes = dict(browser.evaluate(IMAGE_SIZES))
    assert sizes.get("hello-mediagen") == 768, sizes  # examples/mock-image.yaml asks for 768x512


def test_the_printed_aggregated_api_lines_work_with_kubectl(dev: DevRun) -> None:
    (export,) = printed(dev, "export KUBECONFIG=")
    (alias,) = printed(dev, "alias kubectl=")
    (create,) = [line for line in printed(dev, "echo ") if "kubectl create --raw" in line]
    (status,) = [line for line in printed(dev, "kubectl get --raw") if "/status" in line]
    shell = f"{export}; shopt -s expand_aliases; {alias}; "
    created = subprocess.run(["bash", "-c", shell + create], capture_output=True, text=True, timeout=60, check=True)
    name = json.loads(created.stdout)["metadata"]["name"]
    deadline = time.monotonic() + 60
    while True:
        read = ["bash", "-c", shell + status.replace("NAME", name)]
        answer = json.loads(subprocess.run(read, capture_output=True, text=True, timeout=60, check=True).stdout)
        if answer["phase"] == "Succeeded" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer["phase"] == "Succeeded", answer


def test_ctrl_c_stops_everything(dev: DevRun) -> None:
    assert processes_with(dev.marker), "the marker must be visible in the running processes"
    os.killpg(dev.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to its foreground job
    dev.process.wait(timeout=90)
    left = processes_with(dev.marker)  # make returns only once dev reaped every child: nothing may linger
    assert not left, "still running after Ctrl-C:\n" + "\n".join(left)
    with pytest.raises(ProcessLookupError):
        os.killpg(dev.process.pid, 0)
    assert dev.reader is not None
    dev.reader.join(timeout=30)
    assert "stopping..." in dev.lines and "stopped" in dev.lines, dev.output()[-2000:]
