"""``make dev``: the whole product on this machine with nothing configured, until Ctrl-C.

A local control plane (etcd + kube-apiserver) with the CRD, an embedded S3-compatible store serving its bucket
publicly like an R2 public bucket (unless R2 is configured), the operator (mock generator unless
REPLICATE_API_TOKEN is set) and the HTTP gateway under its least-privilege ServiceAccount, each as its own
process exactly as in a cluster. Applies an example, mints a gateway token, waits for the example to succeed
and prints how to use it all: kubectl, curl, the gallery and the ``mediagen`` CLI.

Ctrl-C (SIGINT), SIGTERM and SIGHUP stop everything in order and leave no process behind: the servers run in
sessions of their own (so a terminal's Ctrl-C reaches only this process, which stops them in order) and are
SIGKILLed by the kernel should this process die without cleaning up (parent-death signal).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from mediagen.controller.settings import Settings
from mediagen.gateway import rbac
from mediagen.gateway.apigroup import PREFIX
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client
from mediagen_dev.aggregated_api import AggregatedAPI
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.controlplane.plane import ControlPlane
from mediagen_dev.controlplane.process import parent_death_signal
from mediagen_dev.dev_summary import Summary, print_summary
from mediagen_dev.gateway_process import GatewayProcess
from mediagen_dev.paths import EXAMPLES_DIR
from mediagen_dev.s3_server import EmbeddedS3

MOCK_EXAMPLE = EXAMPLES_DIR / "mock-image.yaml"
TENANT_NAMESPACE = "default"
GATEWAY_PORT = 8000
"""Where the gateway listens when the port is free (else any free port; the printed URLs say which)."""


@dataclass(frozen=True)
class DevOptions:
    """What ``python -m mediagen_dev dev`` was asked to do."""

    examples: tuple[Path, ...] = (MOCK_EXAMPLE,)
    exit_after_example: bool = False
    presigned: bool = False
    """Keep the embedded bucket private: presigned URLs, as with R2 without a public base URL."""
    gateway_port: int = GATEWAY_PORT
    directory: Path = Path(".dev")
    """Where the kubeconfig and the gateway's log go."""


def run_dev(options: DevOptions = DevOptions()) -> int:
    """Run everything until Ctrl-C (or until the example succeeded, with ``exit_after_example``); the exit code."""
    # SIGINT too: a shell starts background jobs with it ignored, and Python then never raises KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)  # the same orderly stop as Ctrl-C
    options.directory.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.ExitStack() as stack:
            try:
                return _run(stack, options)
            except KeyboardInterrupt:
                print("\nstopping...", flush=True)
                return 0
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: the kernel's parent-death signal does the rest
        return 130
    finally:
        print("stopped", flush=True)


def _run(stack: contextlib.ExitStack, options: DevOptions) -> int:
    settings = Settings()
    began = time.monotonic()
    env = dict(os.environ, MEDIAGEN_LOG_FORMAT="text", PYTHONUNBUFFERED="1")
    store: concurrent.futures.Future[tuple[dict[str, str], str]] | None = None
    if settings.storage_endpoint is None:
        s3 = EmbeddedS3()
        stack.callback(s3.stop)  # registered first, so it runs after the pool below has finished starting it
        pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=1))
        # moto takes a second or two to import and start: in parallel with the control plane.
        store = pool.submit(_start_store, s3, settings.r2_bucket, public=not options.presigned)

    print("starting the local control plane (etcd + kube-apiserver)...", flush=True)
    plane = stack.enter_context(ControlPlane(grace_period=5).start())
    kubeconfig = (options.directory / "kubeconfig").resolve()
    kubeconfig.write_text(plane.kubeconfig.read_text())
    env["KUBECONFIG"] = str(kubeconfig)
    install_api(plane)

    storage_note = f"R2 / S3 at {settings.storage_endpoint}"
    if store is not None:
        storage_env, storage_note = store.result()
        env.update(storage_env)
    mode = "mock (no REPLICATE_API_TOKEN set)" if settings.use_mock else "Replicate"
    print(f"storage: {storage_note}\ngenerator: {mode}", flush=True)

    operator = stack.enter_context(_process([sys.executable, "-m", "mediagen.cli", "operator"], env))
    # While the operator starts: the gateway's namespace, least-privilege RBAC and ServiceAccount; the examples.
    plane.create_namespace(rbac.DEFAULT_NAMESPACE)
    plane.kubectl("apply", "-f", "-", input=rbac.manifests_yaml(rbac.DEFAULT_NAMESPACE))
    aggregated = prepare_aggregated_api(plane, options.directory)
    gateway_kubeconfig = plane.service_account_kubeconfig(rbac.DEFAULT_NAMESPACE, rbac.SERVICE_ACCOUNT)
    for manifest in options.examples:
        plane.kubectl("apply", "-f", str(manifest))
    gateway = stack.enter_context(
        _gateway(gateway_kubeconfig, options.gateway_port, options.directory, aggregated.gateway_env)
    )
    aggregated.register(plane)
    token, _ = TokenAdmin(load_api_client(str(kubeconfig)), rbac.DEFAULT_NAMESPACE).create(TENANT_NAMESPACE, "make dev")

    names = [_name_of(plane, manifest) for manifest in options.examples]
    for name in names:
        waited = plane.kubectl("wait", "--for=condition=Succeeded", f"mg/{name}", "--timeout=300s", check=False)
        if waited.returncode != 0:
            print(plane.kubectl("describe", "mg", name, check=False).stdout, flush=True)
            return 1
    print_summary(
        Summary(
            kubeconfig=kubeconfig,
            kubectl=plane.kubectl_path,
            listing=plane.kubectl("get", "mg").stdout,
            first_name=names[0],
            first_url=plane.kubectl("get", "mg", names[0], "-o", "jsonpath={.status.url}").stdout,
            gateway_url=gateway.url,
            gateway_log=gateway.log_path,
            token=token,
            tenant=TENANT_NAMESPACE,
            storage=storage_note,
            example=options.examples[0],
            seconds=time.monotonic() - began,
        )
    )
    print_aggregated_api(TENANT_NAMESPACE)
    if options.exit_after_example:
        return 0
    while True:
        for what, code in (("operator", operator.poll()), ("gateway", gateway.returncode)):
            if code is not None:
                print(f"the {what} exited with status {code}; stopping", file=sys.stderr, flush=True)
                return 1
        time.sleep(0.5)


def _start_store(s3: EmbeddedS3, bucket: str, *, public: bool) -> tuple[dict[str, str], str]:
    """Start the embedded store with ``bucket`` (public, or presigned URLs); the operator's storage environment
    and a line about it."""
    s3.start()
    s3.ensure_bucket(bucket)
    env = {
        "R2_ENDPOINT_URL": s3.endpoint_url,
        "R2_ACCESS_KEY_ID": s3.access_key_id,
        "R2_SECRET_ACCESS_KEY": s3.secret_access_key,
    }
    if not public:
        return env, f"embedded S3 at {s3.endpoint_url}, bucket {bucket} (presigned URLs)"
    env["R2_PUBLIC_BASE_URL"] = s3.make_public(bucket)
    return env, f"embedded S3, bucket {bucket} served publicly at {env['R2_PUBLIC_BASE_URL']}/"


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A child in a session of its own (printing to this terminal), stopped with SIGTERM (then SIGKILL)."""
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=parent_death_signal()
    )
    try:
        yield process
    finally:
        _stop_group(process)


@contextlib.contextmanager
def _gateway(kubeconfig: Path, port: int, directory: Path, extra: dict[str, str]) -> Iterator[GatewayProcess]:
    env = {
        "MEDIAGEN_GATEWAY_NAMESPACE": rbac.DEFAULT_NAMESPACE,
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "text",
        "MEDIAGEN_GATEWAY_COOKIE_SECURE": "false",
        **extra,
    }
    gateway = GatewayProcess(kubeconfig, env, (directory / "gateway.log").resolve(), port=_free_or_any(port))
    with gateway:
        yield gateway


def prepare_aggregated_api(plane: ControlPlane, directory: Path) -> AggregatedAPI:
    """The aggregated API's serving certificate and the RBAC its server needs (before the gateway starts: it reads
    kube-apiserver's request-header settings at start). Pass ``gateway_env`` to the gateway, then ``register``."""
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(rbac.aggregated_manifests(rbac.DEFAULT_NAMESPACE)))
    return AggregatedAPI.prepare((directory / "gateway-api").resolve(), rbac.DEFAULT_NAMESPACE)


def print_aggregated_api(namespace: str) -> None:
    """How to reach the gateway through kube-apiserver (RBAC on mediagenerations decides; admin may)."""
    body = '{"model": "black-forest-labs/flux-schnell", "input": {"prompt": "a corgi"}}'
    print(
        "The same API through kube-apiserver (the aggregated API):\n"
        f"  echo '{body}' | kubectl create --raw {PREFIX}/namespaces/{namespace}/generate -f -\n"
        f"  kubectl get --raw {PREFIX}/namespaces/{namespace}/generations/NAME/status\n",
        flush=True,
    )


def _free_or_any(port: int) -> int:
    """``port`` when nothing listens there, else 0 (any free port)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _name_of(plane: ControlPlane, manifest: Path) -> str:
    out = plane.kubectl("create", "--dry-run=client", "-o", "json", "-f", str(manifest)).stdout
    data = json.loads(out)
    item = data["items"][0] if data.get("kind") == "List" else data
    return str(item["metadata"]["name"])


def _stop_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
