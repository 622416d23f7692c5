"""The gallery in a real browser: headless Chromium (Debian's ``chromium``) driven over the DevTools protocol
signs in, loads the gallery after a few generations, and checks that the images really loaded
(``naturalWidth > 0``); then watches an in-flight generation finish without a page reload. Screenshots are
saved under pytest's tmp dir and their paths printed (run with ``-s`` to see them).

Skipped only when Chromium is missing and cannot be installed (``apt-get install -y chromium`` as root).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
import websocket  # websocket-client, installed with the kubernetes client
from PIL import Image

from mediagen_dev.fake_replicate import FakeReplicate, ModelScript, OutputFile
from tests.support.gateway_fixtures import (
    GatewayProcess,
    GatewayTenant,
    gateway,
    gateway_kubeconfig,
    mint_tenant,
    token_admin,
)

__all__ = ["gateway", "gateway_kubeconfig", "mint_tenant", "token_admin"]

INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium"
MintTenant = Callable[[str], GatewayTenant]


def find_chromium() -> str:
    """The Chromium binary; installs Debian's package when it is missing and this runs as root."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    why = "not running as root"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        result = subprocess.run(["sh", "-c", INSTALL], capture_output=True, text=True, timeout=900, check=False)
        found = shutil.which("chromium")
        if found:
            return found
        why = f"`{INSTALL}` exited {result.returncode}: {result.stderr.strip()[-300:]}"
    pytest.skip(f"chromium is not installed and could not be installed ({why}); CI must run: {INSTALL}")


class Browser:
    """Headless Chromium with one page, driven over the DevTools protocol (JSON over a websocket)."""

    def __init__(self, binary: str, width: int = 1440, height: int = 1000) -> None:
        self._binary = binary
        self._size = (width, height)
        self._profile = Path(tempfile.mkdtemp(prefix="mediagen-chromium-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [
                self._binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--window-size={self._size[0]},{self._size[1]}",
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", trust_env=False).json()
        page = next(t for t in targets if t["type"] == "page")
        self._socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; returns its result (events in between are skipped)."""
        assert self._socket is not None
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{expression!r} still falsy after {timeout}s at {self.evaluate('location.href')}")
            time.sleep(0.1)

    def open(self, url: str) -> None:
        """Navigate and wait until the page (and its images) finished loading."""
        self.send("Page.navigate", url=url)
        time.sleep(0.1)
        self.wait_for("document.readyState === 'complete'")

    def sign_in(self, base_url: str, token: str) -> None:
        """Through the sign-in form, as a person would."""
        self.open(f"{base_url}/login")
        self.evaluate(
            f"document.getElementById('token').value = {json.dumps(token)}; document.querySelector('form').submit()"
        )
        self.wait_for(f"location.href === {json.dumps(base_url + '/')} && document.readyState === 'complete'")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page, once its images are decoded (loaded is not yet painted)."""
        self.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() => 1)")
        self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(1))))")
        metrics = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": self._size[0], "height": max(metrics["height"], 200), "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


IMAGES_LOADED = "Array.from(document.images).every(i => i.complete) && document.images.length"
IMAGE_SIZES = "Array.from(document.images).map(i => [i.closest('[data-key]').dataset.key, i.naturalWidth])"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with Browser(find_chromium()) as chromium:
        yield chromium


def wait_done(client: httpx.Client, ids: list[str], timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        states = {gid: client.get(f"/status/{gid}").json() for gid in ids}
        if all(s["done"] for s in states.values()):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


PROMPTS = [
    ("a lighthouse on a cliff at dawn, watercolor", 640, 640),
    ("a red fox in fresh snow, studio ghibli style", 768, 512),
    ("isometric city block at night, neon signs, rain", 640, 640),
    ("a bowl of ramen, overhead shot, film grain", 512, 640),
    ("portrait of an astronaut cat, oil painting", 640, 640),
]


def test_the_gallery_loads_real_images_in_a_browser(
    browser: Browser,
    gateway: GatewayProcess,
    mint_tenant: MintTenant,
    mock_namespace: str,
    tmp_path: Path,
) -> None:
    tenant = mint_tenant(mock_namespace)
    with gateway.client(tenant.token) as client:
        ids = [
            client.post("/generate", json={"model": "black-forest-labs/flux-schnell",
                                           "input": {"prompt": prompt, "width": w, "height": h}}).json()["id"]
            for prompt, w, h in PROMPTS
        ]  # fmt: skip
        bad_input = {"model": "stability-ai/sdxl", "input": {"prompt": "x", "width": "wide"}}
        broken = client.post("/generate", json=bad_input)
        states = wait_done(client, [*ids, broken.json()["id"]])
    assert [states[gid]["phase"] for gid in ids] == ["Succeeded"] * len(ids)

    browser.open(f"{gateway.url}/")
    assert browser.evaluate("location.pathname") == "/login"  # no session yet
    browser.sign_in(gateway.url, tenant.token)
    browser.wait_for(IMAGES_LOADED)
    sizes = dict(browser.evaluate(IMAGE_SIZES))
    assert sizes == {gid: width for gid, (_, width, _) in zip(ids, PROMPTS, strict=True)}, sizes
    assert browser.evaluate("document.querySelectorAll('article.card').length") == len(ids) + 1
    failed = browser.evaluate(f"document.querySelector('[data-key=\"{broken.json()['id']}\"]').innerText")
    assert "InvalidInput" in failed and "FAILED" in failed.upper()
    assert browser.evaluate("document.querySelector('.tenant').innerText") == mock_namespace
    shot = browser.screenshot(tmp_path / "gallery.png")
    print(f"\ngallery screenshot: {shot}")
    assert Image.open(shot).size[0] == 1440

    browser.open(f"{gateway.url}/g/{ids[1]}")
    browser.wait_for(IMAGES_LOADED)
    assert browser.evaluate("document.images[0].naturalWidth") == 768
    assert PROMPTS[1][0] in browser.evaluate("document.querySelector('h1').innerText")
    print(f"detail screenshot: {browser.screenshot(tmp_path / 'detail.png')}")


def test_the_gallery_follows_a_generation_in_flight_without_reloading(
    browser: Browser,
    gateway: GatewayProcess,
    mint_tenant: MintTenant,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    model = f"gallery-{uuid.uuid4().hex[:8]}/model"
    script = ModelScript(queue_seconds=0.5, processing_seconds=5, files=(OutputFile(width=192, height=192, seed=3),))
    fake_replicate.add_model(model, script)
    tenant = mint_tenant(rep_namespace)
    browser.sign_in(gateway.url, tenant.token)  # a new session replaces the previous tenant's
    with gateway.client(tenant.token) as client:
        gid = client.post("/generate", json={"model": model, "input": {"prompt": "a slow sunrise"}}).json()["id"]
    browser.open(f"{gateway.url}/")
    card = f"document.querySelector('[data-key=\"{gid}\"]')"
    assert browser.evaluate(f"{card}.hasAttribute('data-inflight')")
    browser.evaluate("window.__sameDocument = true")
    browser.wait_for(f"{card}.querySelector('.badge').textContent === 'Running'", timeout=15)
    print(f"\nin-flight screenshot: {browser.screenshot(tmp_path / 'gallery-in-flight.png')}")
    browser.wait_for(f"{card}.querySelector('img') && {card}.querySelector('img').naturalWidth > 0", timeout=30)
    assert browser.evaluate("window.__sameDocument === true")  # updated in place, not reloaded
    assert not browser.evaluate(f"{card}.hasAttribute('data-inflight')")
    assert browser.evaluate(f"{card}.querySelector('img').naturalWidth") == 192
