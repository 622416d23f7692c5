"""``mediagen dev``: the whole system on this machine with nothing configured.

A local control plane (etcd + kube-apiserver) with the CRD, an embedded S3-compatible store unless R2 is
configured, and the operator (mock generator unless REPLICATE_API_TOKEN is set) as its own process, exactly
as it would run in a cluster. Applies an example, waits for it to succeed, prints the URL and how to use
kubectl, then keeps running until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mediagen.controller.settings import Settings
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.controlplane.plane import ControlPlane
from mediagen_dev.paths import REPO_ROOT
from mediagen_dev.s3_server import EmbeddedS3

DEV_DIR = Path(".dev")
MOCK_EXAMPLE = REPO_ROOT / "examples" / "mock-image.yaml"


def run_dev(examples: list[Path] | None = None, exit_after_example: bool = False) -> int:
    """Run everything; returns the process exit code."""
    settings = Settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    DEV_DIR.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        print("starting the local control plane (etcd + kube-apiserver)...", flush=True)
        plane = stack.enter_context(ControlPlane().start())
        install_api(plane)
        kubeconfig = (DEV_DIR / "kubeconfig").resolve()
        kubeconfig.write_text(plane.kubeconfig.read_text())

        env = dict(os.environ, KUBECONFIG=str(kubeconfig), MEDIAGEN_LOG_FORMAT="text")
        if settings.storage_endpoint is None:
            s3 = stack.enter_context(EmbeddedS3())
            s3.ensure_bucket(settings.r2_bucket)
            env.update(
                R2_ENDPOINT_URL=s3.endpoint_url,
                R2_ACCESS_KEY_ID=s3.access_key_id,
                R2_SECRET_ACCESS_KEY=s3.secret_access_key,
            )
            print(f"embedded S3-compatible store at {s3.endpoint_url}, bucket {settings.r2_bucket}", flush=True)
        print(f"generator: {'mock (no REPLICATE_API_TOKEN set)' if settings.use_mock else 'Replicate'}", flush=True)

        operator = subprocess.Popen(
            [sys.executable, "-m", "mediagen.cli", "operator"], env=env, stdout=sys.stdout, stderr=sys.stderr
        )
        stack.callback(_stop_process, operator)

        manifests = examples or [MOCK_EXAMPLE]
        for manifest in manifests:
            plane.kubectl("apply", "-f", str(manifest))
        names = [_name_of(plane, m) for m in manifests]
        for name in names:
            result = plane.kubectl(
                "wait", "--for=condition=Succeeded", f"mediagenerations/{name}", "--timeout=300s", check=False
            )
            if result.returncode != 0:
                print(plane.kubectl("describe", "mediagenerations", name, check=False).stdout, flush=True)
                return 1
        listing = plane.kubectl("get", "mediagenerations").stdout
        url = plane.kubectl("get", "mediagenerations", names[0], "-o", "jsonpath={.status.url}").stdout
        print(f"\n{listing}\nfirst output: {url}\n", flush=True)
        print(
            f"Use it yourself:\n  export KUBECONFIG={kubeconfig}\n  alias kubectl={plane.assets / 'kubectl'}\n"
            f"  kubectl apply -f {MOCK_EXAMPLE} && kubectl get mg -w\n",
            flush=True,
        )
        if exit_after_example:
            return 0
        print("running; press Ctrl-C to stop", flush=True)
        try:
            while not stop.is_set() and operator.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        return 0 if operator.returncode in (None, 0) else operator.returncode


def _name_of(plane: ControlPlane, manifest: Path) -> str:
    out = plane.kubectl("create", "--dry-run=client", "-o", "json", "-f", str(manifest)).stdout
    data = json.loads(out)
    item = data["items"][0] if data.get("kind") == "List" else data
    return str(item["metadata"]["name"])


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
