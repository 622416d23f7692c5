"""Editing a MediaGeneration's manifest, as GitOps does it: `kubectl apply` of the edited file, on the real API server,
with the operator as its own process and the fake Replicate. An edit of the request is one new prediction (even
across a kill -9), the one in flight is canceled, kubectl wait waits for the new generation, and an edit that asks
for nothing new costs no prediction (a label: no write at all)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, Fault, LogScript, ModelScript
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import (
    BUCKET,
    STARTED,
    create,
    model_name,
    wait_for,
    wait_phase,
    wait_until,
)

QUIET = LogScript(())  # no progress writes: write counts are exact


def body_of(api: k8s.CustomObjectsApi, ns: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = api.get_namespaced_custom_object(  # type: ignore[assignment]
        "mediagen.fleek.xyz", "v1alpha1", ns, "mediagenerations", name
    )
    return found


def creates_of(fake: FakeReplicate, uid: str) -> Counter[str]:
    """Predictions created for one resource, by correlation marker (``<uid>.<attempt>``)."""
    return Counter({marker: n for marker, n in fake.creates_by_marker.items() if marker.startswith(f"{uid}.")})


def observed(generation: int, *phases: str) -> Any:
    """A predicate: the status is of ``generation`` and in one of ``phases``."""

    def holds(body: dict[str, Any]) -> bool:
        status = body.get("status") or {}
        return status.get("observedGeneration") == generation and status.get("phase") in phases

    return holds


def writes(
    plane: ControlPlane, namespace: str, name: str, *, received_after: str = ""
) -> tuple[Counter[str], Counter[str]]:
    """The audited writes to one MediaGeneration: (the user's through kubectl, the operator's), by verb and
    subresource; with ``received_after`` (an audit timestamp) only those the API server received later."""
    user: Counter[str] = Counter()
    operator: Counter[str] = Counter()
    for event in plane.audit_events():
        ref = event.get("objectRef", {})
        if ref.get("namespace") != namespace or ref.get("name") != name or event.get("stage") != "ResponseComplete":
            continue
        if event.get("requestReceivedTimestamp", "") <= received_after:  # fixed-width RFC 3339 microseconds
            continue
        kind = " ".join(filter(None, [event["verb"], ref.get("subresource")]))
        (user if str(event.get("userAgent", "")).startswith("kubectl") else operator)[kind] += 1
    return user, operator


def first_kubectl_patch(plane: ControlPlane, namespace: str, name: str) -> str:
    """When the API server received the user's first patch of the object (its audit timestamp), once logged."""

    def found() -> str:
        for event in plane.audit_events():
            ref = event.get("objectRef", {})
            if (
                (ref.get("namespace"), ref.get("name"), event.get("verb"), event.get("stage"))
                == (namespace, name, "patch", "ResponseComplete")
                and not ref.get("subresource")
                and str(event.get("userAgent", "")).startswith("kubectl")
            ):
                return str(event["requestReceivedTimestamp"])
        return ""

    return str(wait_until(found, "the user's patch in the audit log"))


def wait_kubectl(plane: ControlPlane, ns: str, name: str, timeout: str) -> Any:
    return plane.kubectl(
        "wait", "--for=condition=Succeeded", f"mg/{name}", "-n", ns, f"--timeout={timeout}", check=False, timeout=120
    )


def test_kubectl_apply_of_an_edited_prompt_is_one_new_prediction_and_kubectl_wait_waits_for_it(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    s3: EmbeddedS3,
) -> None:
    plane, ns, fake = control_plane, rep_namespace, fake_replicate
    model = model_name()
    fake.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=1.0, logs=QUIET))
    create(plane, ns, "poster", {"model": model, "input": {"prompt": "a lighthouse at dusk"}})
    first = wait_phase(custom_api, ns, "poster", "Succeeded")
    uid = first["metadata"]["uid"]
    assert wait_kubectl(plane, ns, "poster", "30s").returncode == 0

    fake.inject(Fault.held(6).on("create"))  # the new create's answer is held: generation 1's status stays up
    create(plane, ns, "poster", {"model": model, "input": {"prompt": "a lighthouse at dawn"}})  # the GitOps sync
    wait_until(lambda: creates_of(fake, uid)[f"{uid}.2"], "the new create reaching Replicate")
    stale = body_of(custom_api, ns, "poster")
    assert stale["metadata"]["generation"] == 2 and stale["status"]["observedGeneration"] == 1
    assert stale["status"]["phase"] == "Succeeded"  # the old result is still there, of generation 1...
    held = wait_kubectl(plane, ns, "poster", "2s")
    assert held.returncode != 0 and "timed out" in held.stderr  # ...and kubectl wait does not take it for the new one
    done = wait_kubectl(plane, ns, "poster", "60s")
    assert done.returncode == 0, done.stderr

    status = body_of(custom_api, ns, "poster")["status"]
    assert (status["phase"], status["observedGeneration"], status["attempts"], status["firstAttempt"]) == (
        "Succeeded",
        2,
        2,
        2,
    )
    assert {c["observedGeneration"] for c in status["conditions"]} == {2}
    assert creates_of(fake, uid) == Counter({f"{uid}.1": 1, f"{uid}.2": 1})
    new_id = status["prediction"]["id"]
    assert new_id != first["status"]["prediction"]["id"]
    assert fake.snapshot(new_id)["input"] == {"prompt": "a lighthouse at dawn"}
    assert status["url"] != first["status"]["url"] and new_id in status["outputs"][0]["key"]
    bucket = s3.client()
    for output in (first["status"]["outputs"][0], status["outputs"][0]):  # Retain keeps the old output too
        bucket.head_object(Bucket=BUCKET, Key=output["key"])

    plane.kubectl("delete", "mg", "poster", "-n", ns, "--timeout=30s")  # the barrier: every write is in the log
    user, operator = wait_until(
        lambda: (w := writes(plane, ns, "poster"))[1]["patch"] >= 3 and w, "the finalizer release in the audit log"
    )
    assert user == Counter({"create": 1, "patch": 1, "delete": 1}), user  # the apply, the edited apply, the delete
    # Per generation: the marker (the first one with the finalizer), the prediction id, the final status; then the
    # finalizer's release.
    assert operator == Counter({"patch": 3, "patch status": 4}), operator


def test_an_edit_during_an_in_flight_prediction_cancels_it_on_replicate(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    plane, ns, fake = control_plane, rep_namespace, fake_replicate
    slow, quick = model_name(), model_name()
    fake.add_model(slow, ModelScript(queue_seconds=0.2, processing_seconds=600, logs=QUIET))
    fake.add_model(quick, ModelScript(queue_seconds=0.1, processing_seconds=0.5, logs=QUIET))
    create(plane, ns, "redo", {"model": slow, "input": {"prompt": "a storm"}})
    running = wait_for(custom_api, ns, "redo", lambda b: bool((b.get("status") or {}).get("prediction")))
    old_id = running["status"]["prediction"]["id"]
    create(plane, ns, "redo", {"model": quick, "input": {"prompt": "a calm sea"}})
    status = wait_for(custom_api, ns, "redo", observed(2, "Succeeded", "Failed"), timeout=60)["status"]
    assert status["phase"] == "Succeeded", status
    assert fake.snapshot(old_id)["status"] == "canceled"
    uid = running["metadata"]["uid"]
    assert creates_of(fake, uid) == Counter({f"{uid}.1": 1, f"{uid}.2": 1})
    assert fake.snapshot(status["prediction"]["id"])["model"] == quick
    events = plane.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=redo", "-o", "json")
    reasons = [e["reason"] for e in json.loads(events.stdout)["items"]]
    assert "Canceling" in reasons and "RequestChanged" in reasons


def test_edits_that_ask_for_nothing_new_cost_no_prediction_and_a_label_no_write(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    plane, ns, fake = control_plane, rep_namespace, fake_replicate
    model = model_name()
    fake.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.2, logs=QUIET))
    spec: dict[str, Any] = {"model": model, "input": {"prompt": "a kite", "width": 512}}
    create(plane, ns, "steady", spec)
    before = wait_phase(custom_api, ns, "steady", "Succeeded")
    plane.kubectl("label", "mg", "steady", "-n", ns, "team=art")  # no new generation
    plane.kubectl("annotate", "mg", "steady", "-n", ns, "note=nice")
    # Same request, keys in another order, another retry limit: generation 2, which only needs acknowledging.
    create(plane, ns, "steady", {"retry": {"limit": 1}, "input": {"width": 512, "prompt": "a kite"}, "model": model})
    after = wait_for(custom_api, ns, "steady", observed(2, "Succeeded"))["status"]
    # The operator's writes since the label, by the time the audit log holds its acknowledgement: the API server
    # logs a write after answering it, so what a reader already sees can be missing from the log for a moment
    # (counting before and after the edit once missed the acknowledgement).
    label = first_kubectl_patch(plane, ns, "steady")
    operator_since = wait_until(
        lambda: (w := writes(plane, ns, "steady", received_after=label)[1])["patch status"] and w,
        "the operator's acknowledgement in the audit log",
    )
    assert operator_since == Counter({"patch status": 1}), operator_since
    assert after["prediction"] == before["status"]["prediction"] and after["url"] == before["status"]["url"]
    uid = before["metadata"]["uid"]
    assert creates_of(fake, uid) == Counter({f"{uid}.1": 1})


# --- kill -9 between the edit and the new create ---------------------------------------------------------------


@pytest.mark.parametrize("when", ["while the operator is down", "while the new create's answer is on its way"])
def test_a_kill_9_between_the_edit_and_the_new_create_still_makes_one_prediction(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    fake_replicate: FakeReplicate,
    crash_operator: tuple[OperatorProcess, str],
    when: str,
) -> None:
    operator, ns = crash_operator
    plane, fake = control_plane, fake_replicate
    model = model_name()
    fake.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.5, logs=QUIET))
    create(plane, ns, "phoenix", {"model": model, "input": {"prompt": "ashes"}})
    uid = wait_phase(custom_api, ns, "phoenix", "Succeeded")["metadata"]["uid"]
    if when == "while the operator is down":
        operator.kill()
        create(plane, ns, "phoenix", {"model": model, "input": {"prompt": "fire"}})
    else:
        fake.inject(Fault.held(10).on("create"))  # the create happens; its answer is held back
        create(plane, ns, "phoenix", {"model": model, "input": {"prompt": "fire"}})
        wait_until(lambda: creates_of(fake, uid)[f"{uid}.2"], "the new create reaching Replicate")
        operator.kill()  # the prediction exists on Replicate; the operator never learnt its id
    stored = body_of(custom_api, ns, "phoenix")
    assert stored["status"]["observedGeneration"] == 1 and stored["metadata"]["generation"] == 2
    operator.start().wait_for_log(STARTED)
    status = wait_for(custom_api, ns, "phoenix", observed(2, "Succeeded", "Failed"), timeout=40)["status"]
    assert status["phase"] == "Succeeded", status
    assert creates_of(fake, uid) == Counter({f"{uid}.1": 1, f"{uid}.2": 1})
    assert fake.snapshot(status["prediction"]["id"])["input"] == {"prompt": "fire"}
