"""Cancel, delete, TTL, final phases and the cost of a generation in API-server writes."""

from __future__ import annotations

import time
from collections import Counter

from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, LogScript, ModelScript
from tests.support.stack_fixtures import create, model_name, wait_for, wait_phase, wait_until

QUIET = LogScript(())  # no log lines: no progress writes, so the write count is exact


def writes_by_kind(plane: ControlPlane, namespace: str, name: str) -> Counter[str]:
    """The audited writes to one MediaGeneration, by verb and subresource (e.g. ``patch`` / ``patch status``)."""
    counts: Counter[str] = Counter()
    for event in plane.audit_events():
        ref = event.get("objectRef", {})
        if ref.get("namespace") == namespace and ref.get("name") == name and event.get("stage") == "ResponseComplete":
            counts[" ".join(filter(None, [event["verb"], ref.get("subresource")]))] += 1
    return counts


def test_a_generation_costs_three_writes_beyond_the_users_create(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    # Longer than the test operator's 1 s progress interval, so an eager Uploading write would show up here.
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=2.5, logs=QUIET))
    create(control_plane, rep_namespace, "cheap", {"model": model, "input": {"prompt": "x"}})
    wait_phase(custom_api, rep_namespace, "cheap", "Succeeded")
    # The barrier: deleting it makes the operator act on this resource once more (releasing its finalizer), so
    # any write still due from the generation itself has been made once the object is gone. No settle sleep.
    control_plane.kubectl("delete", "mediagenerations", "cheap", "-n", rep_namespace, "--timeout=30s")
    expected = Counter({"create": 1, "patch": 2, "patch status": 2, "delete": 1})
    writes = wait_until(
        lambda: (w := writes_by_kind(control_plane, rep_namespace, "cheap"))["patch"] >= 2 and w,
        "the finalizer release in the audit log",
    )
    # The finalizer and the pending-create marker in one patch, the prediction id, the final status; then the
    # user's delete and the finalizer's release.
    assert writes == expected, writes


def test_progress_is_reported_at_a_bounded_rate(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=6.0))  # a tqdm bar
    create(control_plane, rep_namespace, "slow", {"model": model, "input": {"prompt": "x"}})
    seen = wait_for(
        custom_api, rep_namespace, "slow", lambda b: 0 < ((b.get("status") or {}).get("progress") or 0) < 100
    )
    assert seen["status"]["phase"] == "Running"
    wait_phase(custom_api, rep_namespace, "slow", "Succeeded", timeout=30)
    writes = writes_by_kind(control_plane, rep_namespace, "slow")
    # The operator under test writes progress at most once a second; the prediction ran ~6 s.
    assert 3 <= writes["patch status"] <= 2 + 8, writes


def test_cancel_stops_the_prediction_and_ends_canceled(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=60))
    create(control_plane, rep_namespace, "stopme", {"model": model, "input": {"prompt": "x"}})
    running = wait_for(custom_api, rep_namespace, "stopme", lambda b: bool((b.get("status") or {}).get("prediction")))
    prediction_id = running["status"]["prediction"]["id"]
    control_plane.kubectl(
        "patch", "mg", "stopme", "-n", rep_namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}'
    )
    status = wait_phase(custom_api, rep_namespace, "stopme", "Canceled", "Failed", "Succeeded", timeout=20)["status"]
    assert (status["phase"], status["reason"]) == ("Canceled", "Canceled")
    assert status["conditions"][0]["status"] == "False"
    assert fake_replicate.snapshot(prediction_id)["status"] == "canceled"


def test_deleting_a_running_generation_cancels_it_remotely_and_removes_it(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=60))
    create(control_plane, rep_namespace, "doomed", {"model": model, "input": {"prompt": "x"}})
    running = wait_for(custom_api, rep_namespace, "doomed", lambda b: bool((b.get("status") or {}).get("prediction")))
    prediction_id = running["status"]["prediction"]["id"]
    control_plane.kubectl("delete", "mg", "doomed", "-n", rep_namespace, "--timeout=30s")
    assert control_plane.kubectl("get", "mg", "-n", rep_namespace, "-o", "name").stdout == ""
    assert fake_replicate.snapshot(prediction_id)["status"] == "canceled"


def test_final_phases_never_change_and_ttl_deletes_finished_resources(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2, logs=QUIET))
    create(control_plane, rep_namespace, "done", {"model": model, "input": {"prompt": "x"}})
    create(
        control_plane,
        rep_namespace,
        "ephemeral",
        {"model": model, "input": {"prompt": "x"}, "ttlSecondsAfterFinished": 2},
    )
    done = wait_phase(custom_api, rep_namespace, "done", "Succeeded")["status"]
    control_plane.kubectl("patch", "mg", "done", "-n", rep_namespace, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    wait_phase(custom_api, rep_namespace, "ephemeral", "Succeeded")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "ephemeral" in control_plane.kubectl("get", "mg", "-n", rep_namespace).stdout:
        time.sleep(0.2)
    assert "ephemeral" not in control_plane.kubectl("get", "mg", "-n", rep_namespace).stdout
    # The late cancel changed nothing but the generation the status speaks for (kstatus needs it to say Current).
    after = wait_for(custom_api, rep_namespace, "done", lambda b: b["status"]["observedGeneration"] == 2)["status"]
    restated = [c | {"observedGeneration": 2} for c in done["conditions"]]
    assert after == done | {"observedGeneration": 2, "conditions": restated}


def test_kubectl_describe_tells_the_story(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2, outcome="failed"))
    create(control_plane, rep_namespace, "story", {"model": model, "input": {"prompt": "x"}})
    wait_phase(custom_api, rep_namespace, "story", "Failed")
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = control_plane.kubectl("describe", "mg", "story", "-n", rep_namespace).stdout
        if "ContentFlagged" in text.split("Events:")[-1]:
            break
        time.sleep(0.2)
    events = text.split("Events:")[-1]
    assert "Started" in events and "ContentFlagged" in events, text


def test_the_deadline_cancels_the_prediction_and_fails_with_deadline_exceeded(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=120))
    create(control_plane, rep_namespace, "too-slow", {"model": model, "input": {"prompt": "x"}, "timeoutSeconds": 10})
    running = wait_for(custom_api, rep_namespace, "too-slow", lambda b: bool((b.get("status") or {}).get("prediction")))
    prediction_id = running["status"]["prediction"]["id"]
    status = wait_phase(custom_api, rep_namespace, "too-slow", "Failed", "Succeeded", timeout=30)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded"), status
    assert fake_replicate.snapshot(prediction_id)["status"] == "canceled"
    create_request = next(
        r for r in fake_replicate.requests_to("create") if model.encode() in r.body or model in r.path
    )
    assert create_request.headers["cancel-after"].endswith("s")  # Replicate enforces the deadline too
    assert 1 <= int(create_request.headers["cancel-after"][:-1]) <= 10
