"""The operator end to end: real API server, moto S3 on loopback, the fake Replicate over HTTP, the operator
as its own process (as in production), users' flows through kubectl."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from kubernetes import client as k8s

from mediagen_dev.controlplane import ControlPlane
from mediagen_dev.fake_replicate import FakeReplicate, ModelScript, OutputFile, expected_sha256
from mediagen_dev.s3_server import EmbeddedS3
from tests.support.stack_fixtures import BUCKET, create, model_name, wait_phase


def s3_bytes(s3: EmbeddedS3, key: str) -> tuple[bytes, dict[str, Any]]:
    obj = s3.client().get_object(Bucket=BUCKET, Key=key)
    return obj["Body"].read(), obj


def test_image_model_with_several_outputs_succeeds_and_stores_them(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    s3: EmbeddedS3,
) -> None:
    model = model_name()
    files = tuple(OutputFile(name=f"out-{i}.png", seed=i, width=16, height=16) for i in range(3))
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.3, processing_seconds=0.5, files=files))
    create(control_plane, rep_namespace, "three", {"model": model, "input": {"prompt": "three cats"}})
    result = control_plane.kubectl(
        "wait", "--for=condition=Succeeded", "mg/three", "-n", rep_namespace, "--timeout=60s"
    )
    assert "condition met" in result.stdout

    body = wait_phase(custom_api, rep_namespace, "three", "Succeeded")
    status = body["status"]
    assert len(status["outputs"]) == 3
    assert status["url"] == status["outputs"][0]["url"]
    assert status["prediction"]["status"] == "succeeded" and status["attempts"] == 1
    assert status["progress"] == 100 and status["completionTime"] and status["startTime"]
    uid = body["metadata"]["uid"]
    for index, output in enumerate(status["outputs"]):
        assert output["key"] == f"{rep_namespace}/three/{uid}/{status['prediction']['id']}/{index}.png"
        data, obj = s3_bytes(s3, output["key"])
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and obj["ContentType"] == "image/png"
        assert hashlib.sha256(data).hexdigest() == output["sha256"] and len(data) == output["sizeBytes"]
        assert httpx.get(output["url"]).content == data  # the status URL serves the stored bytes
    assert fake_replicate.creates_by_marker[f"{uid}.1"] == 1


def test_video_output_is_streamed_with_multipart_and_bounded_memory(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate,
    s3: EmbeddedS3, replicate_operator: Any,
) -> None:  # fmt: skip
    model = model_name()
    video = OutputFile(name="out.mp4", content_type="video/mp4", size=64 * 1024 * 1024, seed=7)
    fake_replicate.add_model(
        model, ModelScript(queue_seconds=0.1, processing_seconds=0.2, output="url", files=(video,))
    )
    baseline_kb = _rss_kb(replicate_operator.pid, "VmRSS")
    create(control_plane, rep_namespace, "video", {"model": model, "input": {"prompt": "surf"}})
    status = wait_phase(custom_api, rep_namespace, "video", "Succeeded", "Failed", timeout=120)["status"]
    assert status["phase"] == "Succeeded", status
    output = status["outputs"][0]
    assert output["contentType"] == "video/mp4" and output["key"].endswith("/0.mp4")
    assert output["sizeBytes"] == video.size and output["sha256"] == expected_sha256(video)
    head = s3.client().head_object(Bucket=BUCKET, Key=output["key"])
    assert head["ContentLength"] == video.size and "-" in head["ETag"]  # a multipart upload's ETag
    growth_mb = (_rss_kb(replicate_operator.pid, "VmHWM") - baseline_kb) / 1024
    assert growth_mb < 48, f"operator peak RSS grew {growth_mb:.0f} MB for a 64 MB output"


def _rss_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_data_uri_outputs_are_stored(
    control_plane: ControlPlane,
    custom_api: k8s.CustomObjectsApi,
    rep_namespace: str,
    fake_replicate: FakeReplicate,
    s3: EmbeddedS3,
) -> None:
    model = model_name()
    fake_replicate.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.1, output="data"))
    create(control_plane, rep_namespace, "inline", {"model": model, "input": {"prompt": "x"}})
    status = wait_phase(custom_api, rep_namespace, "inline", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    data, obj = s3_bytes(s3, status["outputs"][0]["key"])
    assert data.startswith(b"\x89PNG") and obj["ContentType"] == "image/png"


def test_mock_mode_with_nothing_configured_stores_a_real_png(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, mock_namespace: str, s3: EmbeddedS3
) -> None:
    create(
        control_plane,
        mock_namespace,
        "placeholder",
        {"model": "any/model", "input": {"prompt": "a red fox", "width": 320, "height": 200}},
    )
    status = wait_phase(custom_api, mock_namespace, "placeholder", "Succeeded", "Failed")["status"]
    assert status["phase"] == "Succeeded", status
    data, obj = s3_bytes(s3, status["outputs"][0]["key"])
    assert obj["ContentType"] == "image/png"
    from io import BytesIO

    from PIL import Image

    assert Image.open(BytesIO(data)).size == (320, 200)


def test_failures_end_failed_with_replicates_reason(
    control_plane: ControlPlane, custom_api: k8s.CustomObjectsApi, rep_namespace: str, fake_replicate: FakeReplicate
) -> None:
    nsfw, aborted, strict = model_name(), model_name(), model_name()
    fake_replicate.add_model(nsfw, ModelScript(queue_seconds=0.1, processing_seconds=0.2, outcome="failed"))
    fake_replicate.add_model(aborted, ModelScript(queue_seconds=0.3, outcome="aborted"))
    fake_replicate.add_model(strict, ModelScript(required_inputs=("prompt",), input_maxima={"steps": 4}))
    create(control_plane, rep_namespace, "nsfw", {"model": nsfw, "input": {"prompt": "x"}})
    create(control_plane, rep_namespace, "aborted", {"model": aborted, "input": {"prompt": "x"}})
    create(control_plane, rep_namespace, "invalid", {"model": strict, "input": {"prompt": "x", "steps": 50}})
    expected = {"nsfw": "ContentFlagged", "aborted": "Aborted", "invalid": "InvalidInput"}
    for name, reason in expected.items():
        status = wait_phase(custom_api, rep_namespace, name, "Failed", "Succeeded", timeout=60)["status"]
        assert (status["phase"], status["reason"]) == ("Failed", reason), status
        assert status["conditions"][0]["status"] == "False" and status["conditions"][0]["reason"] == reason
    invalid = wait_phase(custom_api, rep_namespace, "invalid", "Failed")["status"]
    assert "input.steps" in invalid["message"]
    nsfw_status = wait_phase(custom_api, rep_namespace, "nsfw", "Failed")["status"]
    assert "NSFW content detected" in nsfw_status["message"]
