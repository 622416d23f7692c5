"""The fake Replicate API in-process (ASGI): lifecycle, JSON shape, scripting, errors, paging, counters."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from mediagen_dev.fake_replicate import (
    ERRORS,
    FAKE_TOKEN,
    FakeConfig,
    FakeReplicate,
    ManualClock,
    ModelScript,
    OutputFile,
    RateLimits,
    TqdmBar,
    demo_models,
    expected_sha256,
    png_bytes,
    version_for,
)
from mediagen_dev.fake_replicate.logs import TWO_BARS

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
MODELS = {
    "acme/flux": ModelScript(queue_seconds=2, processing_seconds=4),
    "acme/sdxl": ModelScript(official=False, logs=TWO_BARS, required_inputs=("prompt",)),
    "acme/strict": ModelScript(required_inputs=("prompt",), input_maxima={"num_inference_steps": 4}),
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeReplicate:
    return FakeReplicate(clock=clock, models=MODELS, deployments={"acme/prod": "acme/flux"}, seed=1)


@pytest.fixture
async def http(fake: FakeReplicate) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {FAKE_TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake), base_url="http://fake", headers=headers
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, model: str = "acme/flux", **body: Any) -> dict[str, Any]:
    body.setdefault("input", {"prompt": "a corgi"})
    response = await http.post(f"/v1/models/{model}/predictions", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def get(http: httpx.AsyncClient, prediction_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/predictions/{prediction_id}")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


async def test_lifecycle_fields_appear_only_when_they_apply(http: httpx.AsyncClient, clock: ManualClock) -> None:
    created = await create(http, webhook="https://hooks.example/r?mg=abc")
    assert created["status"] == "starting"
    assert re.fullmatch(r"[a-z0-9]{26}", created["id"])
    assert created["model"] == "acme/flux"
    assert re.fullmatch(r"[0-9a-f]{64}", created["version"])
    assert created["logs"] == ""
    assert created["output"] is None
    assert created["error"] is None
    assert created["data_removed"] is False
    assert created["source"] == "api"
    assert "started_at" not in created
    assert "completed_at" not in created
    assert "metrics" not in created
    assert created["webhook"] == "https://hooks.example/r?mg=abc"
    assert created["urls"] == {
        "cancel": f"http://fake/v1/predictions/{created['id']}/cancel",
        "get": f"http://fake/v1/predictions/{created['id']}",
        "web": f"https://replicate.com/p/{created['id']}",
    }
    assert RFC3339_Z.match(created["created_at"])

    clock.advance(3)
    running = await get(http, created["id"])
    assert running["status"] == "processing"
    assert RFC3339_Z.match(running["started_at"])
    assert "completed_at" not in running
    assert "metrics" not in running
    assert running["logs"].endswith("| 12/50 [00:00<00:02, 16.56it/s]")

    clock.advance(3)
    done = await get(http, created["id"])
    assert done["status"] == "succeeded"
    assert done["metrics"] == {"total_time": 6.0, "predict_time": 4.0}
    assert done["output"] == [re.sub(r"[^/]+$", "out-0.png", done["output"][0])]
    assert done["output"][0].startswith("http://fake/files/")
    assert "100%|" in done["logs"]


async def test_timestamp_precision_varies_between_predictions(http: httpx.AsyncClient) -> None:
    stamps = [(await create(http))["created_at"] for _ in range(4)]
    fractions = {len(s.rsplit(".", 1)[1]) if "." in s else 0 for s in stamps}
    assert len(fractions) == 4


@pytest.mark.parametrize(
    ("marker", "status", "error"),
    [
        ({"outcome": "failed", "error": "nsfw"}, "failed", ERRORS["nsfw"]),
        ({"outcome": "failed", "error": "pa"}, "failed", "Prediction interrupted; please retry (code: PA)"),
        ({"outcome": "failed", "error": "Custom boom"}, "failed", "Custom boom"),
        ({"processing_seconds": 5000}, "failed", "Prediction timed out."),
        ({"outcome": "aborted"}, "aborted", None),
    ],
)
async def test_input_marker_scripts_the_outcome(
    http: httpx.AsyncClient, clock: ManualClock, marker: dict[str, Any], status: str, error: str | None
) -> None:
    created = await create(http, input={"prompt": "x", "_fake": marker})
    clock.advance(2000)
    done = await get(http, created["id"])
    assert (done["status"], done["error"], done["output"]) == (status, error, None)
    if status == "aborted":
        assert "started_at" not in done
        assert "predict_time" not in done["metrics"]


async def test_prompt_keyword_scripts_the_outcome(http: httpx.AsyncClient, clock: ManualClock) -> None:
    created = await create(http, input={"prompt": "a cat fake:oom please"})
    clock.advance(100)
    assert (await get(http, created["id"]))["error"] == ERRORS["oom"]


async def test_stuck_prediction_stays_starting(http: httpx.AsyncClient, clock: ManualClock) -> None:
    created = await create(http, input={"prompt": "fake:stuck"})
    clock.advance(86_400)
    assert (await get(http, created["id"]))["status"] == "starting"


async def test_output_shapes(http: httpx.AsyncClient, clock: ManualClock) -> None:
    files = [{"name": "video.mp4", "content_type": "video/mp4", "size": 10}, {"name": "poster.png"}]
    shapes = {
        "url": {"output": "url", "files": files[:1]},
        "object": {"output": "object", "files": files},
        "null": {"output": "null"},
        "data": {"output": "data"},
        "raw": {"output": "raw", "raw_output": ["Hello", " world"]},
    }
    ids = {name: (await create(http, input={"_fake": marker}))["id"] for name, marker in shapes.items()}
    clock.advance(10)
    outputs = {name: (await get(http, pid))["output"] for name, pid in ids.items()}
    assert re.fullmatch(r"http://fake/files/[0-9a-f]+/video\.mp4", outputs["url"])
    assert set(outputs["object"]) == {"video", "poster"}
    assert outputs["null"] is None
    assert outputs["raw"] == ["Hello", " world"]
    (data_uri,) = outputs["data"]
    prefix, encoded = data_uri.split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == png_bytes()


async def test_files_are_served_with_content_type_and_expire(
    http: httpx.AsyncClient, clock: ManualClock, fake: FakeReplicate
) -> None:
    fake.config.retention_ttl = 60
    video = OutputFile("out.mp4", "video/mp4", size=3 * 1024 * 1024 + 5, seed=7)
    fake.add_model("acme/video", ModelScript(output="url", files=(video,)))
    pid = (await create(http, "acme/video"))["id"]
    clock.advance(10)
    url = (await get(http, pid))["output"]
    digest = hashlib.sha256()
    async with http.stream("GET", url) as response:
        assert response.headers["content-type"] == "video/mp4"
        assert response.headers["content-length"] == str(video.length)
        chunks = [chunk async for chunk in response.aiter_raw()]
    for chunk in chunks:
        digest.update(chunk)
    assert sum(map(len, chunks)) == video.length
    assert digest.hexdigest() == expected_sha256(video)
    assert chunks[0][4:8] == b"ftyp"

    clock.advance(60)
    removed = await get(http, pid)
    assert removed["data_removed"] is True
    assert (removed["output"], removed["input"], removed["logs"]) == (None, {}, None)
    assert (await http.get(url)).status_code == 404


def test_large_files_are_generated_in_bounded_chunks_and_reproducibly() -> None:
    video = OutputFile("v.mp4", "video/mp4", size=50 * 1024 * 1024 + 3, seed=3)
    sizes = [len(chunk) for chunk in video.iter_chunks()]
    assert max(sizes) == 64 * 1024
    assert sum(sizes) == video.length
    regrouped = hashlib.sha256()
    for chunk in video.iter_chunks(1_000_003):  # chunking must not change the bytes
        regrouped.update(chunk)
    assert regrouped.hexdigest() == expected_sha256(video)
    other_seed = OutputFile("v.mp4", "video/mp4", size=1024, seed=4)
    assert next(iter(other_seed.iter_chunks()))[32:] != next(iter(video.iter_chunks(1024)))[32:]


async def test_png_output_is_a_real_png(http: httpx.AsyncClient, clock: ManualClock) -> None:
    pid = (await create(http))["id"]
    clock.advance(10)
    response = await http.get((await get(http, pid))["output"][0])
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert response.content.endswith(b"IEND\xaeB`\x82")


async def test_file_of_unfinished_prediction_is_404(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    pid = (await create(http))["id"]
    token = fake.predictions[pid].file_token
    assert (await http.get(f"/files/{token}/out-0.png")).status_code == 404


async def test_cancel_running_then_terminal_is_unchanged(http: httpx.AsyncClient, clock: ManualClock) -> None:
    pid = (await create(http))["id"]
    clock.advance(3)
    canceled = (await http.post(f"/v1/predictions/{pid}/cancel")).json()
    assert canceled["status"] == "canceled"
    assert "started_at" in canceled
    assert canceled["metrics"]["predict_time"] == 1.0
    clock.advance(100)
    again = await http.post(f"/v1/predictions/{pid}/cancel")
    assert again.status_code == 200
    assert again.json() == canceled | {"urls": again.json()["urls"]}


@pytest.mark.parametrize(("elapsed", "status"), [(1.0, "aborted"), (5.0, "canceled")])
async def test_cancel_after_deadline(http: httpx.AsyncClient, clock: ManualClock, elapsed: float, status: str) -> None:
    # acme/flux queues 2 s; a deadline during the queue aborts, one during processing cancels.
    response = await http.post(
        "/v1/models/acme/flux/predictions", json={"input": {}}, headers={"Cancel-After": f"{elapsed:g}s"}
    )
    created = response.json()
    assert RFC3339_Z.match(created["deadline"])
    clock.advance(elapsed - 0.01)
    assert (await get(http, created["id"]))["status"] != status
    clock.advance(10)
    done = await get(http, created["id"])
    assert done["status"] == status
    assert ("started_at" in done) is (status == "canceled")


async def test_go_style_cancel_after(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    response = await http.post(
        "/v1/models/acme/flux/predictions", json={"input": {}}, headers={"Cancel-After": "1h30m"}
    )
    prediction = fake.predictions[response.json()["id"]]
    assert prediction.deadline == prediction.created + 5400
    bad = await http.post("/v1/models/acme/flux/predictions", json={"input": {}}, headers={"Cancel-After": "soon"})
    assert bad.status_code == 400


async def test_routing_by_version_and_deployment(http: httpx.AsyncClient) -> None:
    version = version_for("acme/sdxl", MODELS["acme/sdxl"])
    for body in ({"version": version}, {"version": f"acme/sdxl:{version}"}):
        response = await http.post("/v1/predictions", json={**body, "input": {"prompt": "x"}})
        assert response.status_code == 201
        assert response.json()["model"] == "acme/sdxl"
    deployed = await http.post("/v1/deployments/acme/prod/predictions", json={"input": {}})
    assert deployed.status_code == 201
    assert deployed.json()["deployment"] == "acme/prod"
    assert deployed.json()["model"] == "acme/flux"


async def test_create_errors(http: httpx.AsyncClient) -> None:
    async def post(path: str, body: Any) -> httpx.Response:
        return await http.post(path, json=body)

    community = await post("/v1/models/acme/sdxl/predictions", {"input": {"prompt": "x"}})
    assert community.status_code == 422
    assert community.json()["title"] == "Invalid version or not permitted"
    assert community.headers["content-type"] == "application/problem+json"
    unknown = await post("/v1/models/nvidia/sana:c6b5d2b7/predictions", {"input": {}})
    assert unknown.json() == {"detail": "The requested resource could not be found.", "status": 404}
    assert (await post("/v1/deployments/acme/nope/predictions", {"input": {}})).status_code == 404
    missing = (await post("/v1/predictions", {"input": {}})).json()
    assert missing["invalid_fields"] == [{"type": "required", "field": "", "description": "version is required"}]
    extra = (await post("/v1/predictions", {"version": "0" * 64, "model": "x", "input": {}})).json()
    assert extra["status"] == 422
    bad_version = (await post("/v1/predictions", {"version": "0" * 64, "input": {}})).json()
    assert bad_version["title"] == "Invalid version or not permitted"
    invalid = (await post("/v1/models/acme/strict/predictions", {"input": {"num_inference_steps": 9}})).json()
    assert invalid["title"] == "Input validation failed"
    assert [f["field"] for f in invalid["invalid_fields"]] == ["input", "input.num_inference_steps"]
    assert (
        invalid["detail"]
        == "- input: prompt is required\n- input.num_inference_steps: Must be less than or equal to 4\n"
    )
    typo = await post("/v1/models/acme/flux/predictions", {"input": {"_fake": {"outcom": "failed"}}})
    assert typo.status_code == 422


async def test_get_and_cancel_unknown_prediction(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/predictions/nope")).json() == {"detail": "Not found."}
    assert (await http.post("/v1/predictions/nope/cancel")).status_code == 404


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "You did not pass an authentication token"),
        ("Bearer wrong", "You did not pass a valid authentication token"),
        ("Basic r8_fake_token", "You did not pass a valid authentication token"),
    ],
)
async def test_auth(fake: FakeReplicate, authorization: str | None, detail: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
        response = await client.get("/v1/predictions", headers=headers)
        accepted = await client.get("/v1/predictions", headers={"Authorization": f"Token {FAKE_TOKEN}"})
    assert response.status_code == 401
    assert response.json() == {"title": "Unauthenticated", "detail": detail, "status": 401}
    assert accepted.status_code == 200


async def test_ratelimit_headers(http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock) -> None:
    created = await http.post("/v1/models/acme/flux/predictions", json={"input": {}})
    listed = await http.get("/v1/predictions")
    assert created.headers["ratelimit-remaining"] == "599"
    assert listed.headers["ratelimit-remaining"] == "2999"
    assert listed.headers["ratelimit-reset"] == "1"


async def test_ratelimit_remaining_counts_down_after_each_request_like_replicate(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock
) -> None:
    fake.set_rate_limits(RateLimits.one_minute_bursts())
    created = [await http.post("/v1/models/acme/flux/predictions", json={"input": {}}) for _ in range(4)]
    assert [r.headers["ratelimit-remaining"] for r in created] == ["599", "598", "597", "596"]
    assert (await http.get("/v1/predictions")).headers["ratelimit-remaining"] == "2999"  # a bucket of its own
    clock.advance(0.25)  # 10 a second refill: back to 598 and a half
    again = await http.post("/v1/models/acme/flux/predictions", json={"input": {}})
    assert again.headers["ratelimit-remaining"] == "597"


@pytest.mark.parametrize(
    ("limits", "burst"),
    [(RateLimits.one_second_bursts(), 10), (RateLimits.one_minute_bursts(), 600)],
    ids=["one-second", "one-minute"],
)
async def test_both_readings_of_the_burst(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock, limits: RateLimits, burst: int
) -> None:
    fake.set_rate_limits(limits)

    async def creates(count: int) -> list[int]:
        return [
            (await http.post("/v1/models/acme/flux/predictions", json={"input": {}})).status_code for _ in range(count)
        ]

    assert await creates(burst + 1) == [201] * burst + [429]
    refused = await http.post("/v1/models/acme/flux/predictions", json={"input": {}})
    assert refused.json()["retry_after"] == 1 and refused.headers["retry-after"] == "1"
    assert refused.headers["ratelimit-remaining"] == "0"
    clock.advance(0.25)  # 10 a second: two more
    assert await creates(3) == [201, 201, 429]
    assert (await http.get("/v1/predictions")).headers["ratelimit-remaining"] == str(burst * 5 - 1)


async def test_other_requests_have_a_bucket_of_their_own(
    http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock
) -> None:
    fake.set_rate_limits(RateLimits.one_second_bursts())
    assert [(await http.get("/v1/predictions")).status_code for _ in range(51)] == [200] * 50 + [429]
    assert (await http.post("/v1/models/acme/flux/predictions", json={"input": {}})).status_code == 201
    clock.advance(0.11)  # 50 a second: five more
    assert [(await http.get("/v1/predictions")).status_code for _ in range(6)] == [200] * 5 + [429]


async def test_ratelimit_headers_can_be_left_out(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    fake.config.ratelimit_headers = False
    created = await http.post("/v1/models/acme/flux/predictions", json={"input": {}})
    assert "ratelimit-remaining" not in created.headers and "ratelimit-reset" not in created.headers


async def test_token_bucket_low_credit(http: httpx.AsyncClient, fake: FakeReplicate, clock: ManualClock) -> None:
    fake.set_rate_limits(RateLimits.low_credit())
    assert (await http.post("/v1/models/acme/flux/predictions", json={"input": {}})).status_code == 201
    throttled = await http.post("/v1/models/acme/flux/predictions", json={"input": {}})
    assert throttled.status_code == 429
    assert throttled.json()["retry_after"] == 10
    assert throttled.headers["retry-after"] == "10"
    assert "resets in ~10s" in throttled.json()["detail"]
    assert (await http.get("/v1/predictions")).status_code == 200  # other endpoints have their own bucket
    clock.advance(10)
    assert (await http.post("/v1/models/acme/flux/predictions", json={"input": {}})).status_code == 201
    assert len(fake.predictions) == 2


async def test_list_filters_and_cursor_pagination(
    http: httpx.AsyncClient, clock: ManualClock, fake: FakeReplicate
) -> None:
    fake.config.page_size = 2
    ids = []
    for _ in range(5):
        ids.append((await create(http))["id"])
        clock.advance(1)
    newest_first = ids[::-1]
    first = (await http.get("/v1/predictions")).json()
    assert [p["id"] for p in first["results"]] == newest_first[:2]
    assert first["previous"] is None
    assert first["next"].startswith("http://fake/v1/predictions?cursor=")
    second = (await http.get(first["next"])).json()
    assert [p["id"] for p in second["results"]] == newest_first[2:4]
    back = (await http.get(second["previous"])).json()
    assert [p["id"] for p in back["results"]] == newest_first[:2]
    third = (await http.get(second["next"])).json()
    assert [p["id"] for p in third["results"]] == newest_first[4:]
    assert third["next"] is None

    after = fake.predictions[ids[1]].created
    stamp = f"{after + 0.5:.3f}"
    import datetime as dt

    iso = dt.datetime.fromtimestamp(float(stamp), dt.UTC).isoformat().replace("+00:00", "Z")
    filtered = (await http.get("/v1/predictions", params={"created_after": iso})).json()
    assert [p["id"] for p in filtered["results"]] == newest_first[:2]
    assert "created_after=" in filtered["next"]
    rest = (await http.get(filtered["next"])).json()
    assert [p["id"] for p in rest["results"]] == [ids[2]]
    before = (await http.get("/v1/predictions", params={"created_before": iso})).json()
    assert [p["id"] for p in before["results"]] == [ids[1], ids[0]]
    assert (await http.get("/v1/predictions", params={"created_after": "yesterday"})).status_code == 422


async def test_versions_endpoint_and_secret(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    version = version_for("acme/sdxl", MODELS["acme/sdxl"])
    body = (await http.get(f"/v1/models/acme/sdxl/versions/{version}")).json()
    assert body["id"] == version
    assert body["cog_version"]
    assert body["openapi_schema"]["components"]["schemas"]["Output"]["type"] == "array"
    assert (await http.get("/v1/models/acme/sdxl/versions/" + "f" * 64)).status_code == 404
    key = (await http.get("/v1/webhooks/default/secret")).json()["key"]
    assert key == fake.webhook_secret
    assert key.startswith("whsec_")
    assert 24 <= len(base64.b64decode(key.removeprefix("whsec_"))) <= 32


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/nothing")).status_code == 404
    assert (await http.delete("/v1/predictions")).status_code == 405


async def test_counters_and_reset(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    fake.add_model("acme/extra")
    await create(http, webhook="https://h.example/w?mg=a&attempt=1")
    await create(http, webhook="https://h.example/w?mg=a&attempt=2")
    await create(http, webhook="https://h.example/w?mg=b&attempt=1")
    await create(http)
    assert fake.creates_by_marker == {"a": 2, "b": 1, "": 1}
    assert fake.creates_by("attempt") == {"1": 2, "2": 1, "": 1}
    assert fake.creates_by_webhook["https://h.example/w?mg=a&attempt=1"] == 1
    await http.get("/v1/predictions/nope")
    assert fake.requests[("POST", "/v1/models/{owner}/{name}/predictions", 201)] == 4
    assert fake.requests[("GET", "/v1/predictions/{id}", 404)] == 1
    assert fake.max_in_flight == 1
    assert [p["id"] for p in fake.all_predictions()] == list(fake.predictions)
    assert fake.requests_to("create")[0].headers["authorization"] == f"Bearer {FAKE_TOKEN}"

    fake.reset()
    assert fake.predictions == {}
    assert not fake.requests
    assert fake.creates_by_marker == {}
    assert "acme/extra" not in fake.models
    assert "acme/flux" in fake.models


async def test_logs_render_bars_as_scripted(http: httpx.AsyncClient, clock: ManualClock, fake: FakeReplicate) -> None:
    fake.add_model(
        "acme/bars",
        ModelScript(queue_seconds=0, processing_seconds=10, logs=(TqdmBar(20, prefix="Sampling: ", joiner="\r"),)),
    )
    pid = (await create(http, "acme/bars"))["id"]
    clock.advance(5)
    logs = (await get(http, pid))["logs"]
    assert "\n" not in logs
    assert logs.split("\r")[-1].startswith("Sampling:  50%|█████     | 10/20 [")


def test_config_reset_restores_constructor_values(clock: ManualClock) -> None:
    fake = FakeReplicate(clock=clock, config=FakeConfig(page_size=3))
    fake.config.page_size = 50
    fake.reset()
    assert fake.config.page_size == 3


async def test_sync_mode_holds_then_returns_current_state(http: httpx.AsyncClient, fake: FakeReplicate) -> None:
    fake.config.sync_wait_cap = 0.03
    response = await http.post("/v1/models/acme/flux/predictions", json={"input": {}}, headers={"Prefer": "wait=5"})
    assert response.status_code == 201
    assert response.headers["preference-applied"] == "wait=5"
    assert response.json()["status"] == "starting"


async def test_demo_models_and_auto_models(clock: ManualClock) -> None:
    fake = FakeReplicate(clock=clock, models=demo_models(), auto_models=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake),
        base_url="http://fake",
        headers={"Authorization": f"Bearer {FAKE_TOKEN}"},
    ) as client:
        video = await create(client, "minimax/video-01")
        anything = await create(client, "someone/anything")
        clock.advance(60)
        assert (await get(client, video["id"]))["output"].endswith(".mp4")
        assert (await get(client, anything["id"]))["status"] == "succeeded"
        community = await client.post("/v1/models/stability-ai/sdxl/predictions", json={"input": {}})
    assert community.status_code == 422
