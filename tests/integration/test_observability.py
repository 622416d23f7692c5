"""What the operator lets you see, end to end: /metrics with exact counts, the events `kubectl describe` shows,
JSON logs without secrets, and live progress written at a bounded rate.

A module of its own: one operator process with a metrics port, its own fake Replicate and its own namespace,
so every count is exact (no other test's generations, requests or faults can leak in)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import (
    FAKE_TOKEN,
    FakeReplicate,
    FakeReplicateServer,
    Fault,
    LogScript,
    ModelScript,
    OutputFile,
    problems,
)
from mediagen_dev.fake_replicate.logs import ONE_BAR
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, create, replicate_env, wait_for, wait_phase, wait_until
from tests.unit.test_dashboards import SCRAPE_SERIES, dashboard_exprs, exported_names, metric_names, rule_exprs

QUIET = LogScript(())  # no tqdm bars: no progress writes beyond the Uploading one
PROGRESS_INTERVAL = 2.0
LEAKY_SIGNATURE = "5d0f3c1e9a7b2468ace13579bdf02468ace13579bdf02468ace13579bdf02468"
LEAKY_URL = f"https://files.example.com/cat.png?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={LEAKY_SIGNATURE}"
FAST_RETRY = {"limit": 3, "backoffSeconds": 1, "maxBackoffSeconds": 2}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Stack:
    plane: ControlPlane
    fake: FakeReplicate
    operator: OperatorProcess
    namespace: str
    metrics_url: str
    s3: EmbeddedS3

    def scrape(self) -> Samples:
        """Every sample on /metrics: (sample name, labels) -> value."""
        text = httpx.get(self.metrics_url, timeout=5).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def stack(
    control_plane: ControlPlane, api: None, s3: EmbeddedS3, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    namespace = f"obs-{uuid.uuid4().hex[:8]}"
    control_plane.create_namespace(namespace)
    (port,) = free_ports(1)
    fake = FakeReplicate(auto_models=True)
    log = tmp_path_factory.mktemp("observability") / "operator.log"
    with FakeReplicateServer(fake):
        env = replicate_env(
            s3,
            fake,
            namespace,
            MEDIAGEN_METRICS_PORT=str(port),
            MEDIAGEN_PROGRESS_INTERVAL_SECONDS=str(PROGRESS_INTERVAL),
            # The most verbose the operator gets: every line of it must still be JSON and free of secrets.
            MEDIAGEN_LOG_LEVEL="DEBUG",
        )
        with OperatorProcess(control_plane.kubeconfig, env, log) as operator:
            operator.wait_for_log(STARTED)
            yield Stack(control_plane, fake, operator, namespace, f"http://127.0.0.1:{port}/metrics", s3)


def model(name: str) -> str:
    return f"obs-{uuid.uuid4().hex[:6]}/{name}"


def status_writes(plane: ControlPlane, namespace: str, name: str) -> list[float]:
    """When each audited status write to one MediaGeneration was received (epoch seconds, in order)."""
    times = []
    for event in plane.audit_events():
        ref = event.get("objectRef", {})
        if (
            ref.get("namespace") == namespace
            and ref.get("name") == name
            and ref.get("subresource") == "status"
            and event.get("stage") == "ResponseComplete"
        ):
            times.append(dt.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp())
    return sorted(times)


def described_events(plane: ControlPlane, namespace: str, name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of each row of the Events table of `kubectl describe mg NAME`, in its order."""
    text = plane.kubectl("describe", "mg", name, "-n", namespace).stdout
    rows = text.split("\nEvents:", 1)[1].splitlines()[3:]  # skip the header and the dashes
    events = []
    for row in rows:
        parts = re.split(r"\s{2,}", row.strip(), maxsplit=4)
        if len(parts) == 5:
            events.append((parts[0], parts[1], parts[4]))
    return events


def wait_events(
    plane: ControlPlane, namespace: str, name: str, count: int, timeout: float = 10
) -> list[tuple[str, str, str]]:
    """Events are posted right after the status write they go with: give the last one a moment."""
    deadline = time.monotonic() + timeout
    events = described_events(plane, namespace, name)
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        events = described_events(plane, namespace, name)
    return events


def fake_requests(fake: FakeReplicate, name: str) -> Counter[str]:
    """The fake's own count of requests to one endpoint by status code, to cross-check the client's."""
    return Counter(str(r.status) for r in fake.requests_to(name) if not r.dropped)


# --- the scripted run ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_run(stack: Stack, custom_api: k8s.CustomObjectsApi) -> dict[str, Any]:
    """Six generations with different fates; returns their final bodies by name, and the scrapes around them."""
    plane, fake, ns = stack.plane, stack.fake, stack.namespace
    models = {name: model(name) for name in ("flaky", "ok", "flagged", "interrupted", "invalid", "canceled")}
    # Still running when the lost create is looked up (after two backoffs), so it is recorded as recovered.
    fake.add_model(models["flaky"], ModelScript(queue_seconds=0.1, processing_seconds=4.0, logs=QUIET))
    fake.add_model(
        models["ok"],
        ModelScript(queue_seconds=0.2, processing_seconds=0.5, logs=QUIET, files=(OutputFile(width=32, height=32),)),
    )
    fake.add_model(
        models["flagged"], ModelScript(queue_seconds=0.1, processing_seconds=0.3, logs=QUIET, outcome="failed")
    )
    fake.add_model(
        models["interrupted"],
        ModelScript(
            queue_seconds=0.1,
            processing_seconds=0.2,
            logs=QUIET,
            outcome="failed",
            error="Prediction interrupted; please retry (code: PA)",
        ),
    )
    fake.add_model(models["invalid"], ModelScript())
    fake.add_model(models["canceled"], ModelScript(queue_seconds=0.1, processing_seconds=120, logs=QUIET))
    before = stack.scrape()

    # First alone, so the faults hit it and nothing else: a 429 (waited out, no retry spent), a 503 and a
    # create whose response is lost (two retries; the second is found again on Replicate instead of re-created).
    fake.inject(Fault.throttled(1).on("create"), Fault.server_error(503).on("create"), Fault.dropped().on("create"))
    create(plane, ns, "flaky", {"model": models["flaky"], "input": {"prompt": "x"}, "retry": FAST_RETRY})
    wait_phase(custom_api, ns, "flaky", "Succeeded", "Failed", timeout=40)
    # Alone too: Replicate rejects an input image given as a presigned URL, and its message echoes the URL.
    # The message lands in the status (the user's own URL), but the signature must not reach the logs.
    fake.inject(Fault.status(problems.problem(422, f"input.image: cannot fetch {LEAKY_URL}")).on("create"))
    create(plane, ns, "invalid", {"model": models["invalid"], "input": {"prompt": "x", "image": LEAKY_URL}})
    wait_phase(custom_api, ns, "invalid", "Succeeded", "Failed", timeout=20)

    create(plane, ns, "ok", {"model": models["ok"], "input": {"prompt": "x"}})
    create(plane, ns, "flagged", {"model": models["flagged"], "input": {"prompt": "x"}})
    create(
        plane, ns, "interrupted",
        {"model": models["interrupted"], "input": {"prompt": "x"}, "retry": {"limit": 1, "backoffSeconds": 1}},
    )  # fmt: skip
    create(plane, ns, "canceled", {"model": models["canceled"], "input": {"prompt": "x"}})
    for name in ("ok", "flagged", "interrupted"):
        wait_phase(custom_api, ns, name, "Succeeded", "Failed", "Canceled", timeout=40)

    # Only "canceled" is left in flight: it has started on Replicate and runs for two minutes.
    running = wait_for(custom_api, ns, "canceled", lambda b: bool((b.get("status") or {}).get("prediction")))
    prediction_id = running["status"]["prediction"]["id"]
    deadline = time.monotonic() + 10
    while fake.snapshot(prediction_id)["status"] != "processing" and time.monotonic() < deadline:
        time.sleep(0.05)
    during = stack.scrape()
    plane.kubectl("patch", "mg", "canceled", "-n", ns, "--type=merge", "-p", '{"spec":{"cancel":true}}')
    wait_phase(custom_api, ns, "canceled", "Canceled", "Failed", "Succeeded", timeout=20)

    bodies = {
        name: custom_api.get_namespaced_custom_object("mediagen.fleek.xyz", "v1alpha1", ns, "mediagenerations", name)
        for name in models
    }
    # The last event and metric updates follow the final status write: wait until all six finishes are counted.
    after = wait_until(
        lambda: (
            (now := stack.scrape())
            and sum(v - before.get(k, 0.0) for k, v in now.items() if k[0] == "mediagen_generations_total")
            == len(models)
            and now
        ),
        "every finish counted in mediagen_generations_total",
    )
    return {"models": models, "bodies": bodies, "before": before, "during": during, "after": after}


def test_the_mixed_run_ends_as_scripted(mixed_run: dict[str, Any]) -> None:
    outcomes = {name: (b["status"]["phase"], b["status"]["reason"]) for name, b in mixed_run["bodies"].items()}
    assert outcomes == {
        "flaky": ("Succeeded", "Succeeded"),
        "ok": ("Succeeded", "Succeeded"),
        "flagged": ("Failed", "ContentFlagged"),
        "interrupted": ("Failed", "ModelInterrupted"),
        "invalid": ("Failed", "InvalidInput"),
        "canceled": ("Canceled", "Canceled"),
    }
    assert mixed_run["bodies"]["flaky"]["status"]["retries"] == 2


def test_metrics_count_the_run_exactly(stack: Stack, mixed_run: dict[str, Any]) -> None:
    before, during, after = mixed_run["before"], mixed_run["during"], mixed_run["after"]
    bodies, models = mixed_run["bodies"], mixed_run["models"]

    def d(name: str, **labels: str) -> float:
        return delta(before, after, name, **labels)

    # Generations by final phase and reason, and their end-to-end durations.
    assert d("mediagen_generations_total", phase="Succeeded", reason="Succeeded") == 2
    assert d("mediagen_generations_total", phase="Failed", reason="ContentFlagged") == 1
    assert d("mediagen_generations_total", phase="Failed", reason="ModelInterrupted") == 1
    assert d("mediagen_generations_total", phase="Failed", reason="InvalidInput") == 1
    assert d("mediagen_generations_total", phase="Canceled", reason="Canceled") == 1
    for phase, count in (("Succeeded", 2), ("Failed", 3), ("Canceled", 1)):
        assert d("mediagen_generation_duration_seconds_count", phase=phase) == count
        assert d("mediagen_generation_duration_seconds_bucket", phase=phase, le="+Inf") == count
    assert d("mediagen_generation_duration_seconds_sum", phase="Canceled") > 0

    # Retries by reason: the 503 and the lost create response; one model interruption.
    assert d("mediagen_retries_total", reason="ReplicateUnavailable") == 2
    assert d("mediagen_retries_total", reason="ModelInterrupted") == 1
    assert d("mediagen_recoveries_total", outcome="not_found") == 1  # after the 503: nothing was created
    assert d("mediagen_recoveries_total", outcome="found") == 1  # after the drop: found, not paid twice

    # Replicate requests by endpoint and status code, as the client saw them...
    assert d("mediagen_replicate_requests_total", endpoint="create", code="201") == 5
    assert d("mediagen_replicate_requests_total", endpoint="create", code="429") == 1
    assert d("mediagen_replicate_requests_total", endpoint="create", code="503") == 1
    assert d("mediagen_replicate_requests_total", endpoint="create", code="error") == 1
    assert d("mediagen_replicate_requests_total", endpoint="create", code="422") == 1
    assert d("mediagen_replicate_requests_total", endpoint="cancel", code="200") == 1
    # ...and exactly what the fake Replicate answered (polls and look-ups depend on timing; counts must agree).
    for endpoint in ("get", "list", "cancel"):
        for code, count in fake_requests(stack.fake, endpoint).items():
            assert d("mediagen_replicate_requests_total", endpoint=endpoint, code=code) == count, (endpoint, code)
    assert fake_requests(stack.fake, "list")["200"] == 2
    # Nothing else was counted, and every request's latency was observed once.
    for endpoint in ("create", "get", "cancel", "list"):
        counted = sum(
            delta(before, after, "mediagen_replicate_requests_total", endpoint=endpoint, code=code)
            for code in ("200", "201", "422", "429", "503", "error")
        )
        seen = 9 if endpoint == "create" else fake_requests(stack.fake, endpoint).total()
        assert counted == seen == d("mediagen_replicate_request_duration_seconds_count", endpoint=endpoint), endpoint
    codes = {dict(labels)["code"] for name, labels in after if name == "mediagen_replicate_requests_total"}
    assert codes == {"200", "201", "422", "429", "503", "error"}

    # Predictions: one per attempt that reached Replicate, by final status; queue and run times; billed time.
    assert d("mediagen_predictions_total", status="succeeded") == 2
    assert d("mediagen_predictions_total", status="failed") == 3  # flagged once, interrupted twice
    assert d("mediagen_predictions_total", status="canceled") == 1
    assert d("mediagen_prediction_queue_seconds_count") == 6
    assert d("mediagen_prediction_duration_seconds_count", status="succeeded") == 2
    assert d("mediagen_prediction_duration_seconds_count", status="failed") == 3
    assert d("mediagen_prediction_duration_seconds_count", status="canceled") == 1
    for name, ref in models.items():
        billed = sum(
            p.get("metrics", {}).get("predict_time", 0.0) for p in stack.fake.all_predictions() if p["model"] == ref
        )
        assert math.isclose(d("mediagen_replicate_predict_seconds_total", model=ref), billed, abs_tol=1e-6), name
    assert d("mediagen_replicate_predict_seconds_total", model=models["canceled"]) > 0

    # Uploads: two successful copies, their objects and bytes.
    outputs = [o for name in ("flaky", "ok") for o in bodies[name]["status"]["outputs"]]
    assert d("mediagen_upload_duration_seconds_count", result="success") == 2
    assert d("mediagen_upload_duration_seconds_count", result="failure") == 0
    assert d("mediagen_upload_objects_total") == len(outputs) == 2
    assert d("mediagen_upload_bytes_total") == sum(o["sizeBytes"] for o in outputs) > 0

    # Status writes: the lifecycle ones (Record per attempt, one per retry, the final one) plus progress writes.
    lifecycle = {"flaky": 4, "ok": 2, "flagged": 2, "interrupted": 4, "invalid": 1, "canceled": 2}
    writes = {name: len(status_writes(stack.plane, stack.namespace, name)) for name in lifecycle}
    assert d("mediagen_progress_status_writes_total") == sum(writes.values()) - sum(lifecycle.values())

    # In flight: only "canceled" while it ran; nothing afterwards.
    assert value(during, "mediagen_generations_in_flight", phase="Running") == 1
    assert value(during, "mediagen_generations_in_flight", phase="Pending") == 0
    assert value(during, "mediagen_generations_in_flight", phase="Uploading") == 0
    assert value(during, "mediagen_generation_oldest_in_flight_seconds") > 0
    for phase in ("Pending", "Running", "Uploading"):
        assert value(after, "mediagen_generations_in_flight", phase=phase) == 0
    assert value(after, "mediagen_generation_oldest_in_flight_seconds") == 0
    assert value(after, "mediagen_operator_info", version="0.1.0", generator="replicate") == 1


def test_the_dashboard_and_the_alerts_only_use_series_the_operator_serves(
    stack: Stack, mixed_run: dict[str, Any]
) -> None:
    text = httpx.get(stack.metrics_url, timeout=5).text
    used = {name for expr in dashboard_exprs() + rule_exprs() for name in metric_names(expr)} - SCRAPE_SERIES
    assert used <= exported_names(text), used - exported_names(text)
    # After the mixed run every one of them has data, so each panel and alert has been exercised once.
    sampled = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if not line.startswith("#")}
    assert used <= sampled, used - sampled


def test_label_values_are_bounded(mixed_run: dict[str, Any]) -> None:
    """No resource name, uid, namespace or prediction id ever becomes a label value."""
    names = set(mixed_run["bodies"])
    forbidden = {mixed_run["bodies"]["ok"]["metadata"]["namespace"]}
    for body in mixed_run["bodies"].values():
        forbidden.add(body["metadata"]["uid"])
        if body["status"].get("prediction"):
            forbidden.add(body["status"]["prediction"]["id"])
    for _name, labels in mixed_run["after"]:
        for key, label in labels:
            assert label not in forbidden, (key, label)
            assert key != "model" or label.split("/")[-1] in names  # the model's owner/name, nothing else


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ok", [("Normal", "Running"), ("Normal", "Uploading"), ("Normal", "Succeeded")]),
        ("flagged", [("Normal", "Running"), ("Warning", "ContentFlagged")]),
        ("canceled", [("Normal", "Running"), ("Normal", "Canceling"), ("Normal", "Canceled")]),
        (
            "interrupted",
            [
                ("Normal", "Running"),
                ("Warning", "ModelInterrupted"),
                ("Normal", "Running"),
                ("Warning", "ModelInterrupted"),
            ],
        ),
        (
            "flaky",
            [
                ("Warning", "ReplicateUnavailable"),
                ("Warning", "ReplicateUnavailable"),
                ("Normal", "Running"),
                ("Normal", "Uploading"),
                ("Normal", "Succeeded"),
            ],
        ),
        ("invalid", [("Warning", "InvalidInput")]),
    ],
)
def test_kubectl_describe_tells_each_story(
    stack: Stack, mixed_run: dict[str, Any], name: str, expected: list[tuple[str, str]]
) -> None:
    events = wait_events(stack.plane, stack.namespace, name, len(expected))
    assert [(kind, reason) for kind, reason, _ in events] == expected, events
    status = mixed_run["bodies"][name]["status"]
    # The last event is the final condition: same reason, same message.
    assert events[-1][1] == status["conditions"][0]["reason"] == status["reason"]
    assert events[-1][2] == status["message"]
    prediction = status.get("prediction", {}).get("id")
    if prediction and name != "interrupted":
        assert prediction in events[0][2] or prediction in events[2][2]


def test_describe_messages_say_what_happened(stack: Stack, mixed_run: dict[str, Any]) -> None:
    flaky = described_events(stack.plane, stack.namespace, "flaky")
    assert "retry 1 of 3" in flaky[0][2] and "retry 2 of 3" in flaky[1][2]
    assert flaky[2][2].startswith("Recovered prediction ")  # found on Replicate after the lost response
    ok = described_events(stack.plane, stack.namespace, "ok")
    assert ok[0][2].startswith("Started prediction ") and "(attempt 1)" in ok[0][2]
    canceled = described_events(stack.plane, stack.namespace, "canceled")
    assert "spec.cancel is set" in canceled[1][2]


def test_every_log_line_is_json_and_keeps_secrets(stack: Stack, mixed_run: dict[str, Any]) -> None:
    lines = [
        line for line in stack.operator.logs().splitlines() if line.strip() and not line.startswith("===== operator")
    ]
    assert len(lines) > 20
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    signatures = set()
    for body in mixed_run["bodies"].values():
        for output in body["status"].get("outputs", []):
            match = re.search(r"X-Amz-Signature=([0-9a-f]+)", output["url"])
            assert match, output["url"]  # presigned: the store has no public base URL
            signatures.add(match.group(1))
    assert len(signatures) == 2
    # The rejected presigned input URL was in hand (the status shows Replicate's message) but is redacted.
    assert LEAKY_SIGNATURE in mixed_run["bodies"]["invalid"]["status"]["message"]
    text = stack.operator.logs()
    for secret in (FAKE_TOKEN, stack.s3.secret_access_key, LEAKY_SIGNATURE, *signatures):
        assert secret not in text
    assert "X-Amz-Signature=[REDACTED]" in text
    # The worker's lines carry the resource and, once known, the prediction id.
    ok = mixed_run["bodies"]["ok"]
    mine = [r for r in records if (r.get("object") or {}).get("uid") == ok["metadata"]["uid"]]
    assert mine and all(r["object"]["namespace"] == stack.namespace and r["object"]["name"] == "ok" for r in mine)
    final = [r for r in mine if r["message"].startswith(f"{stack.namespace}/ok: Succeeded")]
    assert len(final) == 1 and final[0]["prediction_id"] == ok["status"]["prediction"]["id"]
    assert {r["severity"] for r in records} <= {"debug", "info", "warn", "error", "fatal"}


# --- live progress ---------------------------------------------------------------------------------------------


def progress_column(plane: ControlPlane, namespace: str, name: str) -> tuple[str, str]:
    """(PHASE, PROGRESS) as `kubectl get mg NAME` prints them."""
    header, row = plane.kubectl("get", "mg", name, "-n", namespace).stdout.splitlines()[:2]
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+", header)]
    cells = {}
    for i, (title, start) in enumerate(columns):
        end = columns[i + 1][1] if i + 1 < len(columns) else None
        cells[title] = row[start:end].strip()
    return cells["PHASE"], cells["PROGRESS"]


def test_kubectl_get_shows_progress_rising_at_a_bounded_write_rate(
    stack: Stack, custom_api: k8s.CustomObjectsApi, mixed_run: dict[str, Any]
) -> None:
    plane, ns = stack.plane, stack.namespace
    long_model = model("tqdm")
    stack.fake.add_model(long_model, ModelScript(queue_seconds=0.2, processing_seconds=8.0, logs=ONE_BAR))
    before = stack.scrape()
    create(plane, ns, "long", {"model": long_model, "input": {"prompt": "x"}})
    seen: list[int] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        phase, progress = progress_column(plane, ns, "long")
        if phase == "Running" and progress.isdigit():
            seen.append(int(progress))
        if phase == "Succeeded":
            break
        time.sleep(0.25)
    assert phase == "Succeeded"
    assert seen == sorted(seen), seen  # never backwards
    rising = sorted({p for p in seen if 0 < p < 100})
    assert len(rising) >= 2, seen

    # The final status write is in the audit log once the finish is counted (the metric follows the write).
    wait_until(
        lambda: delta(before, stack.scrape(), "mediagen_generations_total", phase="Succeeded", reason="Succeeded") == 1,
        "the finish counted",
    )
    writes = wait_until(lambda: (w := status_writes(plane, ns, "long")) and len(w) >= 2 and w, "the status writes")
    # Record + final status, plus progress writes: never two within the interval (the final write excepted).
    gaps = [b - a for a, b in itertools.pairwise(writes[:-1])]
    assert all(gap >= PROGRESS_INTERVAL - 0.05 for gap in gaps), gaps
    running_seconds = writes[-1] - writes[0]
    assert len(writes) <= 2 + math.ceil(running_seconds / PROGRESS_INTERVAL), writes
    assert delta(before, stack.scrape(), "mediagen_progress_status_writes_total") == len(writes) - 2 >= 2
