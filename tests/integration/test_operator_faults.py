"""Faults from Replicate and operator crashes: retried within budget, permanent ones fail clearly, and no
crash ever pays for a second prediction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import pytest
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, Fault, ModelScript, problems
from mediagen_dev.fault_proxy import FaultProxy
from mediagen_dev.operator_process import OperatorProcess
from tests.support.stack_fixtures import (
    STARTED,
    create,
    model_name,
    wait_for,
    wait_phase,
)

FAST_RETRY = {"limit": 3, "backoffSeconds": 1, "maxBackoffSeconds": 4}


def spec(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "input": {"prompt": "x"}, "retry": FAST_RETRY, **extra}


def uid_of(api: k8s.CustomObjectsApi, ns: str, name: str) -> str:
    body = api.get_namespaced_custom_object("mediagen.fleek.xyz", "v1alpha1", ns, "mediagenerations", name)
    return str(body["metadata"]["uid"])  # type: ignore[index]


def test_throttling_is_waited_out_as_asked_without_spending_retries(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1))
    earlier = len(fake_replicate.requests_to("create"))
    fake_replicate.inject(Fault.throttled(3).on("create"))
    began = dt.datetime.now(dt.UTC)
    create(control_plane, rep_namespace, "throttled", spec(model))
    status = wait_phase(custom_api, rep_namespace, "throttled", "Succeeded", "Failed", timeout=30)["status"]
    assert status["phase"] == "Succeeded" and status.get("retries", 0) == 0, status
    # Retry-After: 3 was honoured. The fake writes timestamps with varied precision (whole seconds at times, as
    # Replicate does), so compare against the start truncated to the second: a 3 s wait still shows as >= 3.
    created = dt.datetime.fromisoformat(fake_replicate.snapshot(status["prediction"]["id"])["created_at"])
    assert (created - began.replace(microsecond=0)).total_seconds() >= 2.9
    # The 429 went to the next create, ours or a readiness probe's still on its way: the pause is operator-wide.
    statuses = [r.status for r in fake_replicate.requests_to("create")[earlier:]]
    assert statuses.count(429) == 1


def test_bursts_of_server_errors_are_retried_within_the_budget(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.5))
    fake_replicate.inject(Fault.server_error(503).on("create").repeat(2), Fault.server_error(502).on("get").repeat(3))
    create(control_plane, rep_namespace, "flaky", spec(model))
    status = wait_phase(custom_api, rep_namespace, "flaky", "Succeeded", "Failed", timeout=40)["status"]
    assert status["phase"] == "Succeeded", status
    assert status["retries"] == 2  # the two failed creates; failed polls are retried in memory for free
    assert fake_replicate.creates_by_marker[f"{uid_of(custom_api, rep_namespace, 'flaky')}.1"] == 1


def test_a_connection_dropped_after_create_finds_the_prediction_instead_of_paying_twice(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.3))
    fake_replicate.inject(Fault.dropped().on("create"))
    create(control_plane, rep_namespace, "dropped", spec(model))
    status = wait_phase(custom_api, rep_namespace, "dropped", "Succeeded", "Failed", timeout=30)["status"]
    assert status["phase"] == "Succeeded", status
    uid = uid_of(custom_api, rep_namespace, "dropped")
    assert fake_replicate.creates_by_marker[f"{uid}.1"] == 1
    assert sum(1 for m in fake_replicate.creates_by_marker if m.startswith(uid)) == 1


def test_exhausted_retries_fail_naming_the_cause(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript())
    fake_replicate.inject(Fault.server_error(500).on("create").repeat(2))
    create(control_plane, rep_namespace, "hopeless", spec(model, retry={"limit": 1, "backoffSeconds": 1}))
    status = wait_phase(custom_api, rep_namespace, "hopeless", "Succeeded", "Failed", timeout=30)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ReplicateUnavailable"), status
    assert "retry limit of 1 reached" in status["message"]


@pytest.mark.parametrize(
    ("canned", "reason", "words"),
    [
        (problems.unauthenticated(True), "Unauthorized", "REPLICATE_API_TOKEN"),
        (problems.billing_required(), "BillingRequired", "billing"),
        (problems.not_found_resource(), "ModelNotFound", "not"),
    ],
    ids=["401", "402", "404"],
)
def test_permanent_api_errors_fail_at_once_with_a_clear_message(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    canned: problems.Canned,
    reason: str,
    words: str,
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript())
    fake_replicate.inject(Fault.status(canned).on("create"))
    create(control_plane, rep_namespace, "denied", spec(model))
    status = wait_phase(custom_api, rep_namespace, "denied", "Succeeded", "Failed", timeout=20)["status"]
    assert (status["phase"], status["reason"], status.get("retries", 0)) == ("Failed", reason, 0), status
    assert words.lower() in status["message"].lower()


def test_outputs_removed_before_the_copy_fail_as_expired(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=1.5))
    original = fake_replicate.config
    fake_replicate.config = dataclasses.replace(original, retention_ttl=1.0)
    try:
        create(control_plane, rep_namespace, "expired", spec(model))
        status = wait_phase(custom_api, rep_namespace, "expired", "Succeeded", "Failed", timeout=20)["status"]
    finally:
        fake_replicate.config = original
    assert (status["phase"], status["reason"]) == ("Failed", "OutputExpired"), status


def test_storage_errors_on_upload_are_retried(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    s3_proxy: FaultProxy,
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2))
    failed_before = s3_proxy.failed
    s3_proxy.fail_next(8, method="PUT")  # more than boto3's own retries absorb: our retry budget must act
    create(control_plane, rep_namespace, "s3-flaky", spec(model))
    status = wait_phase(custom_api, rep_namespace, "s3-flaky", "Succeeded", "Failed", timeout=60)["status"]
    assert status["phase"] == "Succeeded", status
    assert s3_proxy.failed - failed_before == 8
    assert status["retries"] >= 1


def test_storage_down_beyond_the_budget_fails_with_a_storage_reason(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    s3_proxy: FaultProxy,
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2))
    s3_proxy.down = True
    try:
        create(control_plane, rep_namespace, "s3-down", spec(model, retry={"limit": 1, "backoffSeconds": 1}))
        status = wait_phase(custom_api, rep_namespace, "s3-down", "Succeeded", "Failed", timeout=60)["status"]
    finally:
        s3_proxy.down = False
    assert (status["phase"], status["reason"]) == ("Failed", "StorageError"), status
    assert "retry limit of 1 reached" in status["message"]


# --- crashes: a real SIGKILL of a real operator process --------------------------------------------------


def test_kill_9_mid_prediction_resumes_the_same_prediction(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    fake_replicate: FakeReplicate,
    crash_operator: tuple[OperatorProcess, str],
) -> None:
    operator, ns = crash_operator
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=4.0))
    create(control_plane, ns, "survivor", spec(model))
    wait_for(custom_api, ns, "survivor", lambda b: bool((b.get("status") or {}).get("prediction")))
    operator.kill()  # returns once the process is gone
    operator.start().wait_for_log(STARTED)
    status = wait_phase(custom_api, ns, "survivor", "Succeeded", "Failed", timeout=30)["status"]
    assert status["phase"] == "Succeeded" and status["attempts"] == 1, status
    uid = uid_of(custom_api, ns, "survivor")
    assert sum(n for m, n in fake_replicate.creates_by_marker.items() if m.startswith(uid)) == 1


def test_a_crash_between_create_and_recording_the_id_does_not_pay_twice(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    fake_replicate: FakeReplicate,
    crash_operator: tuple[OperatorProcess, str],
) -> None:
    operator, ns = crash_operator
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=1.0))
    fake_replicate.inject(Fault.held(10).on("create"))  # the create happens; its answer is held back
    create(control_plane, ns, "lost-answer", spec(model))
    uid = uid_of(custom_api, ns, "lost-answer")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not fake_replicate.creates_by_marker.get(f"{uid}.1"):
        time.sleep(0.02)
    operator.kill()  # the prediction exists on Replicate; the operator never learnt its id
    body = custom_api.get_namespaced_custom_object(
        "mediagen.fleek.xyz", "v1alpha1", ns, "mediagenerations", "lost-answer"
    )
    assert not (body.get("status") or {}).get("prediction")  # type: ignore[union-attr]
    operator.start().wait_for_log(STARTED)
    status = wait_phase(custom_api, ns, "lost-answer", "Succeeded", "Failed", timeout=30)["status"]
    assert status["phase"] == "Succeeded", status
    assert fake_replicate.creates_by_marker[f"{uid}.1"] == 1
    assert sum(n for m, n in fake_replicate.creates_by_marker.items() if m.startswith(uid)) == 1
