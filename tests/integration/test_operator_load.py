"""Many resources at once: everything succeeds, and the operator-wide bounds hold."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from kubernetes import client as k8s

from mediagen_dev.bench.stats import max_overlap
from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, LogScript, ModelScript
from mediagen_dev.operator_process import OperatorProcess
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import STARTED, fresh_namespace, model_name, replicate_env

COUNT = 200
MAX_INFLIGHT = 100
CREATES_PER_SECOND = 25


def test_two_hundred_at_once_all_succeed_within_the_bounds(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    api: None,
    s3: EmbeddedS3,
    fake_replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    ns = fresh_namespace(control_plane, "load")
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.5, processing_seconds=10.0, logs=LogScript(())))
    env = replicate_env(
        s3,
        fake_replicate,
        ns,
        MEDIAGEN_MAX_INFLIGHT=str(MAX_INFLIGHT),
        MEDIAGEN_REPLICATE_CREATE_RPS=str(CREATES_PER_SECOND),
        MEDIAGEN_POLL_MAX_SECONDS="2",
    )
    items = [
        {
            "apiVersion": "mediagen.fleek.xyz/v1alpha1",
            "kind": "MediaGeneration",
            "metadata": {"name": f"gen-{i:03d}", "namespace": ns},
            "spec": {"model": model, "input": {"prompt": f"image {i}"}},
        }
        for i in range(COUNT)
    ]
    control_plane.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    with OperatorProcess(control_plane.kubeconfig, env, tmp_path / "operator.log") as operator:
        operator.wait_for_log(STARTED)
        deadline = time.monotonic() + 150
        phases: dict[str, int] = {}
        while time.monotonic() < deadline:
            listing = custom_api.list_namespaced_custom_object("mediagen.fleek.xyz", "v1alpha1", ns, "mediagenerations")
            phases = {}
            for item in listing["items"]:  # type: ignore[index]
                phase = (item.get("status") or {}).get("phase") or "New"
                phases[phase] = phases.get(phase, 0) + 1
            if phases.get("Succeeded", 0) + phases.get("Failed", 0) == COUNT:
                break
            time.sleep(1.0)
    assert phases == {"Succeeded": COUNT}, phases

    ours = [p for p in fake_replicate.all_predictions() if p["model"] == model]
    assert len(ours) == COUNT  # exactly one prediction each
    spans = [(dt.datetime.fromisoformat(p["created_at"]), dt.datetime.fromisoformat(p["completed_at"])) for p in ours]
    assert max_overlap(spans) <= MAX_INFLIGHT
    # The create bucket allows a burst of one second's worth, then CREATES_PER_SECOND: 200 creates cannot
    # be spread over less than (200 - burst) / rate seconds.
    starts = sorted(start for start, _ in spans)
    minimum_spread = (COUNT - CREATES_PER_SECOND) / CREATES_PER_SECOND
    assert (starts[-1] - starts[0]).total_seconds() >= minimum_spread - 0.5
