"""The operator's metrics: what each hook records, bounded labels, the in-flight gauges, the Replicate client's
request observer, and the worker's events and metrics for whole generations (in memory, mock generator)."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import re
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from mediagen.api.types import Phase
from mediagen.controller.metrics import FINAL_REASONS, OTHER, BoundedLabel, Metrics, model_label
from mediagen.controller.worker import Worker
from mediagen.generators.base import CreateRequest, Prediction, TransientError
from mediagen.generators.mock import MockGenerator
from mediagen.generators.replicate import ReplicateGenerator
from mediagen.reconcile.decide import Pacing
from mediagen_dev.paths import REPO_ROOT
from tests.support.virtual_clock import VirtualClock, until
from tests.support.worker_fixtures import MemoryKube, MemoryStore, deps_for, resource

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_bounded_label_keeps_the_first_values_and_folds_the_rest() -> None:
    label = BoundedLabel(re.compile(r"^[a-z]+$"), limit=2)
    assert [label(v) for v in ("a", "b", "c", "a", "B", None, "")] == ["a", "b", OTHER, "a", OTHER, OTHER, OTHER]


@pytest.mark.parametrize(
    ("model", "deployment", "label"),
    [
        ("black-forest-labs/flux-schnell", None, "black-forest-labs/flux-schnell"),
        ("stability-ai/sdxl:" + "a" * 64, None, "stability-ai/sdxl"),  # versions are not label values
        (None, "acme/flux-prod", "deployment:acme/flux-prod"),
    ],
)
def test_model_label_drops_versions(model: str | None, deployment: str | None, label: str) -> None:
    assert model_label(model, deployment) == label


def test_finished_counts_by_phase_and_bounded_reason() -> None:
    metrics = Metrics()
    metrics.finished(Phase.SUCCEEDED, "Succeeded", 12.0)
    metrics.finished(Phase.FAILED, "ContentFlagged", 3.0)
    metrics.finished(Phase.FAILED, "not a reason: some free text", None)
    assert sample(metrics, "mediagen_generations_total", phase="Succeeded", reason="Succeeded") == 1
    assert sample(metrics, "mediagen_generations_total", phase="Failed", reason="ContentFlagged") == 1
    assert sample(metrics, "mediagen_generations_total", phase="Failed", reason=OTHER) == 1
    assert sample(metrics, "mediagen_generation_duration_seconds_count", phase="Failed") == 1
    assert sample(metrics, "mediagen_generation_duration_seconds_sum", phase="Succeeded") == 12.0
    assert sample(metrics, "mediagen_generation_duration_seconds_bucket", phase="Succeeded", le="10.0") == 0
    assert sample(metrics, "mediagen_generation_duration_seconds_bucket", phase="Succeeded", le="20.0") == 1


def test_a_finished_prediction_gives_queue_and_run_time_and_billed_seconds_per_model() -> None:
    metrics = Metrics()
    ran = Prediction(
        id="p1",
        status="succeeded",
        created_at=T0,
        started_at=T0 + dt.timedelta(seconds=4),
        completed_at=T0 + dt.timedelta(seconds=10),
        predict_time_seconds=5.5,
    )
    queued_only = Prediction(id="p2", status="canceled", created_at=T0, completed_at=T0 + dt.timedelta(seconds=1))
    metrics.prediction_finished("acme/flux", ran)
    metrics.prediction_finished("acme/flux", queued_only)
    metrics.prediction_finished("acme/flux", Prediction(id="p3", status="weird"))
    assert sample(metrics, "mediagen_prediction_queue_seconds_sum") == 4.0
    assert sample(metrics, "mediagen_prediction_queue_seconds_count") == 1
    assert sample(metrics, "mediagen_prediction_duration_seconds_sum", status="succeeded") == 5.5  # billed time
    assert sample(metrics, "mediagen_prediction_duration_seconds_count", status="canceled") == 0  # never ran
    assert sample(metrics, "mediagen_replicate_predict_seconds_total", model="acme/flux") == 5.5
    assert sample(metrics, "mediagen_predictions_total", status="canceled") == 1
    assert sample(metrics, "mediagen_predictions_total", status="unknown") == 1


def test_the_model_label_is_capped() -> None:
    metrics = Metrics(max_models=2)
    for index in range(5):
        metrics.prediction_finished(
            f"owner/m{index}", Prediction(id=str(index), status="failed", predict_time_seconds=1)
        )
    assert sample(metrics, "mediagen_replicate_predict_seconds_total", model="owner/m1") == 1
    assert sample(metrics, "mediagen_replicate_predict_seconds_total", model=OTHER) == 3
    metrics.prediction_finished("not a model name", Prediction(id="x", status="failed", predict_time_seconds=1))
    assert sample(metrics, "mediagen_replicate_predict_seconds_total", model=OTHER) == 4


def test_in_flight_gauges_follow_what_workers_report() -> None:
    metrics = Metrics()
    assert sample(metrics, "mediagen_generations_in_flight", phase="Pending") == 0  # present before anything runs
    assert sample(metrics, "mediagen_generation_oldest_in_flight_seconds") == 0
    now = dt.datetime.now(dt.UTC).timestamp()
    metrics.in_flight("a", Phase.PENDING, now - 100)
    metrics.in_flight("b", Phase.RUNNING, now - 10)
    metrics.in_flight("a", Phase.RUNNING, now - 100)
    assert sample(metrics, "mediagen_generations_in_flight", phase="Pending") == 0
    assert sample(metrics, "mediagen_generations_in_flight", phase="Running") == 2
    assert 100 <= sample(metrics, "mediagen_generation_oldest_in_flight_seconds") < 110
    metrics.in_flight("a", None, 0)
    metrics.in_flight("b", Phase.UPLOADING, now - 10)
    assert sample(metrics, "mediagen_generations_in_flight", phase="Uploading") == 1
    assert 10 <= sample(metrics, "mediagen_generation_oldest_in_flight_seconds") < 20


def test_requests_retries_recoveries_and_uploads() -> None:
    metrics = Metrics()
    metrics.replicate_request("create", "201", 0.2)
    metrics.replicate_request("create", "error", 5.0)
    metrics.retry("ReplicateUnavailable")
    metrics.recovery(True)
    metrics.upload(1.5, [100, 50])
    metrics.upload(0.5, None)
    metrics.progress_write()
    assert sample(metrics, "mediagen_replicate_requests_total", endpoint="create", code="error") == 1
    assert sample(metrics, "mediagen_replicate_request_duration_seconds_count", endpoint="create") == 2
    assert sample(metrics, "mediagen_retries_total", reason="ReplicateUnavailable") == 1
    assert sample(metrics, "mediagen_recoveries_total", outcome="found") == 1
    assert sample(metrics, "mediagen_upload_bytes_total") == 150
    assert sample(metrics, "mediagen_upload_objects_total") == 2
    assert sample(metrics, "mediagen_upload_duration_seconds_count", result="failure") == 1
    assert sample(metrics, "mediagen_progress_status_writes_total") == 1


def test_the_exposition_is_valid_and_follows_naming_conventions() -> None:
    metrics = Metrics(process_metrics=True)
    metrics.started("replicate")
    text = generate_latest(metrics.registry).decode()
    types = dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE "))
    ours = {name: kind for name, kind in types.items() if name.startswith("mediagen_")}
    assert len(ours) >= 18
    for name, kind in ours.items():
        assert name == name.lower() and "__" not in name
        if kind == "counter":
            assert name.endswith("_total"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
    assert "process_resident_memory_bytes" in types or "process_cpu_seconds_total" in types
    assert sample(metrics, "mediagen_operator_info", version=sample_version(text), generator="replicate") == 1


def sample_version(text: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith("mediagen_operator_info{"))
    return line.split('version="', 1)[1].split('"', 1)[0]


# --- the Replicate client's observer -------------------------------------------------------------------------


async def test_the_replicate_client_reports_every_request_by_endpoint_and_code() -> None:
    seen: list[tuple[str, str]] = []

    def observe(endpoint: str, code: str, seconds: float) -> None:
        assert seconds >= 0
        seen.append((endpoint, code))

    answers = iter(
        [
            httpx.Response(201, json={"id": "abc", "status": "starting"}),
            httpx.Response(503, text="<html>bad gateway</html>"),
            httpx.ConnectError("refused"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    generator = ReplicateGenerator(
        "r8_token_for_tests_only",
        webhook_base_url="https://example.invalid/hook",
        transport=httpx.MockTransport(handler),
        observer=observe,
    )
    request = CreateRequest(input={"prompt": "x"}, correlation="u.1", model="acme/flux")
    await generator.create(request)
    for _ in range(2):
        with pytest.raises(TransientError):
            await generator.get("abc")
    await generator.aclose()
    assert seen == [("create", "201"), ("get", "503"), ("get", "error")]


# --- the worker: events and metrics of whole generations ------------------------------------------------------


def created(body: dict[str, Any], clock: VirtualClock) -> dict[str, Any]:
    body["metadata"]["creationTimestamp"] = (clock.now() - dt.timedelta(seconds=30)).isoformat()
    return body


async def test_an_instant_generation_counts_once_and_posts_only_its_final_event() -> None:
    clock = VirtualClock()
    kube, store = MemoryKube(created(resource(), clock)), MemoryStore()
    deps = deps_for(kube, store, MockGenerator(clock=clock.now), clock)
    await Worker(copy.deepcopy(kube.body), deps).run()
    metrics = deps.metrics
    assert kube.events == [("Normal", "Succeeded")]
    assert sample(metrics, "mediagen_generations_total", phase="Succeeded", reason="Succeeded") == 1
    assert sample(metrics, "mediagen_generation_duration_seconds_sum", phase="Succeeded") == 30
    assert sample(metrics, "mediagen_upload_objects_total") == 1
    assert sample(metrics, "mediagen_upload_bytes_total") == len(next(iter(store.objects.values())))
    assert sample(metrics, "mediagen_predictions_total", status="succeeded") == 1
    assert sample(metrics, "mediagen_generations_in_flight", phase="Running") == 0


async def test_a_running_generation_posts_running_uploading_succeeded() -> None:
    clock = VirtualClock()
    kube, store = MemoryKube(created(resource(), clock)), MemoryStore()
    deps = deps_for(kube, store, MockGenerator(latency_seconds=3, clock=clock.now), clock)
    task = asyncio.create_task(Worker(copy.deepcopy(kube.body), deps).run())
    await until(lambda: sample(deps.metrics, "mediagen_generations_in_flight", phase="Running") == 1)
    await task
    assert kube.events == [("Normal", "Running"), ("Normal", "Uploading"), ("Normal", "Succeeded")]
    # The reasons are the condition's at each step.
    assert kube.body["status"]["conditions"][0]["reason"] == "Succeeded"
    assert sample(deps.metrics, "mediagen_generations_in_flight", phase="Running") == 0
    assert sample(deps.metrics, "mediagen_generation_oldest_in_flight_seconds") == 0


async def test_a_canceled_generation_posts_canceling_then_canceled() -> None:
    clock = VirtualClock()
    kube, store = MemoryKube(created(resource(), clock)), MemoryStore()
    deps = deps_for(kube, store, MockGenerator(latency_seconds=3600, clock=clock.now), clock)
    deps.pacing = Pacing(poll_initial_seconds=60, poll_max_seconds=60)
    worker = Worker(copy.deepcopy(kube.body), deps)
    task = asyncio.create_task(worker.run())
    await until(lambda: bool((kube.body.get("status") or {}).get("prediction")))
    kube.body["spec"]["cancel"] = True
    kube.body["metadata"]["generation"] = 2
    worker.update(kube._bump())
    await task
    assert kube.events == [("Normal", "Running"), ("Normal", "Canceling"), ("Normal", "Canceled")]
    assert sample(deps.metrics, "mediagen_generations_total", phase="Canceled", reason="Canceled") == 1
    assert (kube.body["status"]["phase"], kube.body["status"]["reason"]) == ("Canceled", "Canceled")


def test_every_final_phase_and_reason_is_exported_at_zero_from_the_start() -> None:
    """A counter series born at 1 is invisible to rate()/increase(): the first failure after a start must count."""
    metrics = Metrics()
    exported = {
        (s.labels["phase"], s.labels["reason"]): s.value
        for family in metrics.registry.collect()
        if family.name == "mediagen_generations"
        for s in family.samples
        if s.name == "mediagen_generations_total"
    }
    assert exported == {(phase.value, reason): 0.0 for phase, reasons in FINAL_REASONS.items() for reason in reasons}
    metrics.finished(Phase.FAILED, "ContentFlagged")
    assert sample(metrics, "mediagen_generations_total", phase="Failed", reason="ContentFlagged") == 1


def test_the_final_reasons_hold_every_reason_the_code_ends_a_generation_with() -> None:
    """Read the reasons off the product's sources: every literal reason given to a Finish, a Failure, a
    PermanentError or a transfer error must have its series at 0 from the start."""
    sources = {path: path.read_text() for path in (REPO_ROOT / "operator" / "mediagen").rglob("*.py")}
    code = "\n".join(sources.values())
    found: dict[str, set[str]] = {phase: set() for phase in ("Succeeded", "Failed", "Canceled")}
    for phase, reason in re.findall(r'Finish\(\s*Phase\.(\w+),\s*"([A-Z]\w*)"', code):
        found[phase.capitalize()].add(reason)
    found["Failed"] |= set(re.findall(r'PermanentError\(\s*"([A-Z]\w*)"', code))
    found["Failed"] |= set(re.findall(r'Failure\(\s*[\w.]+,\s*"([A-Z]\w*)"', code)) - {"Throttled"}  # waits, never ends
    found["Failed"] |= set(
        re.findall(r'"(\w+Unavailable)"', sources[REPO_ROOT / "operator/mediagen/reconcile/failures.py"])
    )
    transfer = sources[REPO_ROOT / "operator/mediagen/transfer/errors.py"]
    found["Failed"] |= set(re.findall(r'^[A-Z_]+ = "([A-Z]\w*)"$', transfer, re.MULTILINE)) - {"Canceled"}  # shutdown
    assert len(found["Failed"]) >= 25, found  # the patterns still find what they are meant to
    for phase, reasons in found.items():
        assert reasons <= set(FINAL_REASONS[Phase(phase)]), (phase, reasons - set(FINAL_REASONS[Phase(phase)]))
