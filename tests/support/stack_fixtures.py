"""pytest fixtures for the whole stack: the CRD installed, an S3 server, the fake Replicate, operators.

Everything is real and on loopback: the API server (see :mod:`.controlplane_fixtures`), moto's S3 server,
the fake Replicate over HTTP, and the operator as its own process. One of each per test session; tests
isolate themselves with their own namespace (``rep_namespace`` for the Replicate-backed operator,
``mock_namespace`` for the mock-mode one), since each operator watches namespaces by prefix.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from mediagen.kube.client import load_api_client
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.install import install_api
from mediagen_dev.fake_replicate import FAKE_TOKEN, FakeReplicate, FakeReplicateServer
from mediagen_dev.fault_proxy import FaultProxy
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3

BUCKET = "mediagen-test"
STARTED = "mediagen operator started"


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> None:
    """The CRD and the input admission policy, installed and in force."""
    install_api(control_plane)


@pytest.fixture(scope="session")
def custom_api(control_plane: ControlPlane) -> k8s.CustomObjectsApi:
    """The admin's client for reading and writing MediaGenerations from tests."""
    return k8s.CustomObjectsApi(load_api_client(str(control_plane.kubeconfig)))


@pytest.fixture(scope="session")
def s3() -> Iterator[EmbeddedS3]:
    """moto's S3 server on loopback with the test bucket."""
    with EmbeddedS3() as server:
        server.ensure_bucket(BUCKET)
        yield server


@pytest.fixture(scope="session")
def fake_replicate() -> Iterator[FakeReplicate]:
    """The fake Replicate API over real loopback HTTP; any ``owner/name`` is a model unless scripted."""
    fake = FakeReplicate(auto_models=True)
    with FakeReplicateServer(fake):
        yield fake


@pytest.fixture(scope="session")
def s3_proxy(s3: EmbeddedS3) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the S3 server; the Replicate-backed operator stores through it."""
    with FaultProxy(s3.endpoint_url) as proxy:
        yield proxy


def operator_env(s3: EmbeddedS3, endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of an operator process in tests: fast polls, loopback outputs allowed."""
    return {
        "R2_ENDPOINT_URL": endpoint or s3.endpoint_url,
        "R2_ACCESS_KEY_ID": s3.access_key_id,
        "R2_SECRET_ACCESS_KEY": s3.secret_access_key,
        "R2_BUCKET": BUCKET,
        "MEDIAGEN_ALLOW_INSECURE_OUTPUTS": "true",
        "MEDIAGEN_OUTPUT_ALLOWED_HOSTS": '["127.0.0.1", "localhost"]',
        "MEDIAGEN_POLL_INITIAL_SECONDS": "0.2",
        "MEDIAGEN_POLL_MAX_SECONDS": "1",
        "MEDIAGEN_PROGRESS_INTERVAL_SECONDS": "1",
        "MEDIAGEN_DELETE_TIMEOUT_SECONDS": "10",
        "MEDIAGEN_LOG_FORMAT": "json",
        **extra,
    }


def replicate_env(
    s3: EmbeddedS3, fake: FakeReplicate, namespace: str, endpoint: str | None = None, **extra: str
) -> dict[str, str]:
    """An operator environment that talks to the fake Replicate, watching ``namespace`` (a glob)."""
    assert fake.base_url is not None
    return operator_env(
        s3,
        endpoint,
        REPLICATE_API_TOKEN=FAKE_TOKEN,
        REPLICATE_BASE_URL=fake.base_url,
        MEDIAGEN_NAMESPACE=namespace,
        **extra,
    )


@pytest.fixture(scope="session")
def replicate_operator(
    control_plane: ControlPlane,
    api: None,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    fake_replicate: FakeReplicate,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator, as its own process, backed by the fake Replicate and storing through ``s3_proxy``;
    watches namespaces ``rep-*``."""
    log = tmp_path_factory.mktemp("operator") / "replicate-operator.log"
    env = replicate_env(s3, fake_replicate, "rep-*", s3_proxy.url)
    with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
        operator.wait_for_log(STARTED)
        wait_until_watching(control_plane, "rep")
        yield operator


def wait_until_watching(plane: ControlPlane, prefix: str, timeout: float = 90.0) -> None:
    """Wait until an operator watching ``<prefix>-*`` picks up resources in namespaces created from now on.

    It logs that it started before kopf's watches are up, and a namespace created in that first second was
    seen to be missed for good (kopf's namespace scanning racing its own start). A probe in a fresh namespace
    every few seconds, until one gets the finalizer, makes "ready" mean ready."""
    api = k8s.CustomObjectsApi(load_api_client(str(plane.kubeconfig)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        namespace = fresh_namespace(plane, prefix)
        create(plane, namespace, "probe", {"model": "ready/probe", "input": {"prompt": "ready?"}})
        try:
            wait_for(api, namespace, "probe", lambda b: bool(b["metadata"].get("finalizers")), timeout=5.0)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the operator watching {prefix}-* picked up no new namespace in {timeout:.0f} s")


@pytest.fixture(scope="session")
def mock_operator(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator in mock mode (no Replicate token at all); watches namespaces ``mock-*``."""
    log = tmp_path_factory.mktemp("operator") / "mock-operator.log"
    env = operator_env(s3, MEDIAGEN_NAMESPACE="mock-*", REPLICATE_API_TOKEN="")
    with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
        operator.wait_for_log(STARTED)
        wait_until_watching(control_plane, "mock")
        yield operator


def fresh_namespace(plane: ControlPlane, prefix: str) -> str:
    """Create and return a namespace no other test uses."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    plane.create_namespace(name)
    return name


@pytest.fixture
def crash_operator(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, fake_replicate: FakeReplicate, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator of the test's own, backed by the fake Replicate and watching one fresh namespace, to kill (-9)
    and start again at will: (the operator, its namespace)."""
    namespace = fresh_namespace(control_plane, "crash")
    env = replicate_env(s3, fake_replicate, namespace)
    with OperatorProcess(control_plane.kubeconfig, env, tmp_path / "operator.log") as operator:
        operator.wait_for_log(STARTED)
        yield operator, namespace


@pytest.fixture
def rep_namespace(control_plane: ControlPlane, replicate_operator: OperatorProcess) -> str:
    """A fresh namespace watched by the Replicate-backed operator."""
    return fresh_namespace(control_plane, "rep")


@pytest.fixture
def mock_namespace(control_plane: ControlPlane, mock_operator: OperatorProcess) -> str:
    """A fresh namespace watched by the mock-mode operator."""
    return fresh_namespace(control_plane, "mock")


def model_name() -> str:
    """A fake model of its own for one test: the fake's scripts are per model."""
    return f"test-{uuid.uuid4().hex[:8]}/model"


def create(plane: ControlPlane, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """``kubectl apply`` a MediaGeneration, as a user would."""
    obj = {"apiVersion": "mediagen.fleek.xyz/v1alpha1", "kind": "MediaGeneration", "metadata": {"name": name}}
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({**obj, "spec": spec}))


def wait_for(
    api: k8s.CustomObjectsApi, namespace: str, name: str, predicate: Any, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll a MediaGeneration until ``predicate(body)`` holds; returns the body. Fails with the last state."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = api.get_namespaced_custom_object(  # type: ignore[assignment]  # the client returns a dict
            "mediagen.fleek.xyz", "v1alpha1", namespace, "mediagenerations", name
        )
        if predicate(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{namespace}/{name} did not get there in {timeout}s; last: {json.dumps(body.get('status'))}")


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``condition()`` until it returns something truthy; returns it. Fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_phase(
    api: k8s.CustomObjectsApi, namespace: str, name: str, *phases: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Wait until the resource's phase is one of ``phases``."""
    return wait_for(api, namespace, name, lambda b: (b.get("status") or {}).get("phase") in phases, timeout)
