"""Completion webhooks end to end: the fake Replicate signs and delivers ``completed`` events over loopback HTTP
to the operator's receiver (the operator as its own process, fetching the signing secret from the fake); polling
is made so sparse (first poll after 8 s) that a quick finish can only have come from a delivery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import FakeReplicate, FakeReplicateServer, ModelScript, WebhookSender, sign
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, create, fresh_namespace, model_name, replicate_env, wait_phase

SAFETY_NET_SECONDS = 8.0


class Deliveries(httpx.BaseTransport):
    """The sender's transport: real HTTP, except that deliveries to a dropped marker never arrive."""

    def __init__(self) -> None:
        self.dropped: set[str] = set()
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("mg", "").rpartition(".")[0] in self.dropped:
            raise httpx.ConnectError("dropped by the test", request=request)
        return self._inner.handle_request(request)


class Stack:
    """A fake Replicate of its own (so no other test's predictions are delivered) and an operator receiving."""

    def __init__(self, fake: FakeReplicate, transport: Deliveries, receiver_url: str, metrics_url: str) -> None:
        self.fake, self.transport, self.receiver_url, self.metrics_url = fake, transport, receiver_url, metrics_url


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    fake = FakeReplicate(auto_models=True)
    transport = Deliveries()
    hook_port, metrics_port = free_ports(2)
    receiver_url = f"http://127.0.0.1:{hook_port}/replicate-webhook"
    log: Path = tmp_path_factory.mktemp("operator") / "webhook-operator.log"
    with FakeReplicateServer(fake), WebhookSender(fake, client=httpx.Client(transport=transport, timeout=5.0)):
        env = replicate_env(
            s3,
            fake,
            "hook-*",
            MEDIAGEN_WEBHOOK_PORT=str(hook_port),
            MEDIAGEN_WEBHOOK_BIND_ADDRESS="127.0.0.1",
            MEDIAGEN_WEBHOOK_URL=receiver_url,
            MEDIAGEN_WEBHOOK_POLL_INITIAL_SECONDS=str(SAFETY_NET_SECONDS),
            MEDIAGEN_WEBHOOK_POLL_MAX_SECONDS=str(SAFETY_NET_SECONDS),
            MEDIAGEN_METRICS_PORT=str(metrics_port),
        )
        with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
            operator.wait_for_log(STARTED)
            yield Stack(fake, transport, receiver_url, f"http://127.0.0.1:{metrics_port}/metrics")


@pytest.fixture
def namespace(control_plane: ControlPlane, stack: Stack) -> str:
    return fresh_namespace(control_plane, "hook")


def _gets(fake: FakeReplicate, prediction_id: str) -> int:
    return sum(1 for r in fake.requests_to("get") if r.path.endswith(prediction_id))


def _accepted(stack: Stack) -> float:
    for line in httpx.get(stack.metrics_url).text.splitlines():
        if line.startswith('mediagen_webhook_deliveries_total{outcome="accepted"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_delivery_finishes_the_generation_without_a_poll(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, namespace: str, stack: Stack
) -> None:
    model = model_name()
    stack.fake.add_model(model, ModelScript(queue_seconds=0.5, processing_seconds=1.5))
    accepted = _accepted(stack)
    began = time.monotonic()
    create(control_plane, namespace, "hooked", {"model": model, "input": {"prompt": "a heron"}})
    status = wait_phase(custom_api, namespace, "hooked", "Succeeded", "Failed", timeout=30)["status"]
    took = time.monotonic() - began
    assert status["phase"] == "Succeeded", status
    # 2 s of model, then the delivery: long before the first safety-net poll could have noticed.
    assert took < SAFETY_NET_SECONDS - 1, f"took {took:.1f}s: the webhook did not wake the worker"
    assert _gets(stack.fake, status["prediction"]["id"]) == 0
    assert _accepted(stack) == accepted + 1


def test_a_lost_delivery_is_caught_by_the_safety_net_poll(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, namespace: str, stack: Stack
) -> None:
    model = model_name()
    stack.fake.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=0.5))
    create(control_plane, namespace, "lost", {"model": model, "input": {"prompt": "a lost letter"}})
    uid = custom_api.get_namespaced_custom_object(
        "mediagen.fleek.xyz", "v1alpha1", namespace, "mediagenerations", "lost"
    )["metadata"]["uid"]
    stack.transport.dropped.add(uid)
    status = wait_phase(custom_api, namespace, "lost", "Succeeded", "Failed", timeout=30)["status"]
    assert status["phase"] == "Succeeded", status
    assert _gets(stack.fake, status["prediction"]["id"]) >= 1  # found by polling, not told


def test_forged_and_misdirected_deliveries_change_nothing(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, namespace: str, stack: Stack
) -> None:
    quick, slow = model_name(), model_name()
    stack.fake.add_model(quick, ModelScript(queue_seconds=0.1, processing_seconds=0.2))
    stack.fake.add_model(slow, ModelScript(queue_seconds=0.5, processing_seconds=6.0))
    create(control_plane, namespace, "done", {"model": quick, "input": {"prompt": "done"}})
    done = wait_phase(custom_api, namespace, "done", "Succeeded", timeout=30)
    create(control_plane, namespace, "slow", {"model": slow, "input": {"prompt": "slow"}})
    slow_body = wait_phase(custom_api, namespace, "slow", "Running", timeout=30)
    target = f"{stack.receiver_url}?mg={slow_body['metadata']['uid']}.1"
    accepted = _accepted(stack)

    # A genuine, signed delivery of the other (finished) prediction, replayed to the running resource's URL.
    body = json.dumps(stack.fake.snapshot(done["status"]["prediction"]["id"])).encode()
    stamp = str(int(time.time()))
    headers = {"webhook-id": "msg_replay", "webhook-timestamp": stamp}
    signature = sign(stack.fake.webhook_secret, "msg_replay", stamp, body)
    assert httpx.post(target, content=body, headers={**headers, "webhook-signature": signature}).status_code == 204
    forged = sign("whsec_" + "A" * 32, "msg_replay", stamp, body)
    response = httpx.post(target, content=body, headers={**headers, "webhook-signature": forged})
    assert response.status_code == 401 and "no valid signature" in response.text
    response = httpx.post(target, content=b"{", headers={**headers, "webhook-signature": signature})
    assert response.status_code == 401  # the signature covers the body

    # The receiver decides before it answers: none of the three was used (the counter counts deliveries handed
    # to a worker), so nothing woke the worker early.
    assert _accepted(stack) == accepted
    assert wait_phase(custom_api, namespace, "slow", "Running", timeout=5)["status"].get("outputs") is None
    final = wait_phase(custom_api, namespace, "slow", "Succeeded", "Failed", timeout=30)["status"]
    assert final["phase"] == "Succeeded" and final["prediction"]["id"] != done["status"]["prediction"]["id"]
