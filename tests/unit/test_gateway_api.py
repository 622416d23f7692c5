"""The gateway's JSON API in process, over an in-memory cluster: bad bodies, idempotency, tenant isolation,
cancel, listing, health, and that no error is ever a bare 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mediagen.gateway import GatewayDeps, GatewaySettings, build_deps, create_app
from mediagen.gateway.cluster import Unavailable
from tests.support.memory_cluster import MemoryCluster

PROBLEM = "application/problem+json"


@dataclass
class Gateway:
    cluster: MemoryCluster
    deps: GatewayDeps
    client: httpx.AsyncClient
    a: dict[str, str]
    """Headers of tenant team-a."""
    b: dict[str, str]
    """Headers of tenant team-b."""


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    cluster = MemoryCluster()
    cluster.namespaces = {"team-a", "team-b"}
    a, b = cluster.add_api_token("team-a"), cluster.add_api_token("team-b")
    settings = GatewaySettings(namespace="mediagen-system", max_body_bytes=64 * 1024, token_refresh_seconds=0.01)
    deps = build_deps(settings, cluster)
    transport = httpx.ASGITransport(app=create_app(deps), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        yield Gateway(cluster, deps, client, {"Authorization": f"Bearer {a}"}, {"Authorization": f"Bearer {b}"})


def created(gw: Gateway, namespace: str = "team-a") -> dict[str, dict[str, Any]]:
    return gw.cluster.objects.get(namespace, {})


def finish(gw: Gateway, name: str, phase: str = "Succeeded", namespace: str = "team-a") -> None:
    """Play the operator: give the resource a final status."""
    body = gw.cluster.objects[namespace][name]
    body["status"] = {"phase": phase, "reason": phase, "url": "https://media.example/0.png"}


# --- POST /generate -----------------------------------------------------------------------------------------


async def test_generate_creates_in_the_callers_namespace_and_answers_202_with_the_status_url(gw: Gateway) -> None:
    response = await gw.client.post("/generate", json={"model": "owner/m", "input": {"prompt": "a fox"}}, headers=gw.a)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["statusUrl"] == f"http://gw.test/status/{body['id']}" == response.headers["location"]
    assert (body["phase"], body["done"]) == ("Pending", False)
    stored = created(gw)[body["id"]]
    assert stored["spec"]["model"] == "owner/m" and stored["spec"]["input"] == {"prompt": "a fox"}
    assert stored["spec"]["retry"] == {"limit": 3, "backoffSeconds": 5, "maxBackoffSeconds": 300}
    assert "Idempotent-Replayed" not in response.headers and not created(gw, "team-b")
    status = await gw.client.get(body["statusUrl"], headers=gw.a)
    assert status.status_code == 200 and status.json()["id"] == body["id"]


OVERSIZED = "x" * 16385


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        pytest.param({"input": {"prompt": "x"}}, None, 422, "model", id="missing-model"),
        pytest.param({"model": "a/b", "deployment": "c/d"}, None, 422, "deployment", id="model-and-deployment"),
        pytest.param({"model": "not a model ref"}, None, 422, "model", id="malformed-model-ref"),
        pytest.param({"model": "a/b:"}, None, 422, "model", id="malformed-version"),
        pytest.param({"deployment": "a/b:v1"}, None, 422, "deployment", id="deployment-with-version"),
        pytest.param({"model": 42}, None, 422, "model", id="model-not-a-string"),
        pytest.param({"model": "a/b", "input": ["prompt"]}, None, 422, "input", id="input-not-an-object"),
        pytest.param({"model": "a/b", "timeoutSeconds": "soon"}, None, 422, "timeoutSeconds", id="wrong-type"),
        pytest.param({"model": "a/b", "timeoutSeconds": 5}, None, 422, "timeoutSeconds", id="below-minimum"),
        pytest.param({"model": "a/b", "retry": {"limit": 99}}, None, 422, "retry.limit", id="nested-range"),
        pytest.param(
            {"model": "a/b", "retry": {"backoffSeconds": 900}}, None, 422, "retry.maxBackoffSeconds", id="cel-rule"
        ),
        pytest.param(
            {"model": "a/b", "input": {"prompt": OVERSIZED}}, None, 422, "input.prompt", id="oversized-string"
        ),
        pytest.param(
            {"model": "a/b", "input": {f"k{i}": 1 for i in range(65)}}, None, 422, "input", id="too-many-keys"
        ),
        pytest.param({"model": "a/b", "input": {"p": {"deep": 1}}}, None, 422, "input.p", id="nested-object"),
        pytest.param({"model": "a/b", "colour": "red"}, None, 422, "colour", id="unknown-field"),
        pytest.param({"model": "a/b", "output": {"bucket": "x"}}, None, 422, "output.bucket", id="unknown-nested"),
        pytest.param({"model": "a/b", "name": "Not_Valid"}, None, 422, "name", id="invalid-name"),
        pytest.param({"model": "a/b", "name": "n" * 64}, None, 422, "name", id="name-too-long"),
        pytest.param(b'{"model": "a/b",', "application/json", 400, "body", id="invalid-json"),
        pytest.param(b'{"model": "a/b", "input": {"x": NaN}}', "application/json", 422, "input.x", id="nan"),
        pytest.param(b'["a/b"]', "application/json", 422, "body", id="json-array"),
        pytest.param(b"", "application/json", 422, "body", id="empty-body"),
        pytest.param(b'{"model": "a/b"}', "text/plain", 415, "Content-Type", id="wrong-content-type"),
        pytest.param(b'{"model": "a/b"}', "", 415, "Content-Type", id="no-content-type"),
        pytest.param(b"model=a/b", "application/x-www-form-urlencoded", 415, "Content-Type", id="form"),
    ],
)
async def test_bad_bodies_get_a_problem_naming_the_field_and_create_nothing(
    gw: Gateway, content: dict[str, Any] | bytes, content_type: str | None, status: int, field: str
) -> None:
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    headers = {**gw.a, "Content-Type": content_type if content_type is not None else "application/json"}
    if content_type == "":
        del headers["Content-Type"]
    response = await gw.client.post("/generate", content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["instance"] == "/generate" and problem["type"].startswith("https://")
    assert field in [e["field"] for e in problem["errors"]], problem
    assert field in problem["detail"]
    assert not created(gw) and "create" not in gw.cluster.calls


async def test_an_oversized_body_is_413_without_reading_it(gw: Gateway) -> None:
    big = json.dumps({"model": "a/b", "input": {f"k{i}": "x" * 16000 for i in range(8)}})
    response = await gw.client.post("/generate", content=big, headers={**gw.a, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["field"] == "body" and not created(gw)


async def test_a_streamed_oversized_body_is_413_too(gw: Gateway) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "a/b", "input": {"p": "'
        for _ in range(10):
            yield b"x" * 10000
        yield b'"}}'

    response = await gw.client.post("/generate", content=chunks(), headers={**gw.a, "Content-Type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM and not created(gw)


# --- idempotency --------------------------------------------------------------------------------------------


async def test_the_same_idempotency_key_and_body_give_the_same_generation(gw: Gateway) -> None:
    body = {"model": "a/b", "input": {"prompt": "once"}}
    headers = {**gw.a, "Idempotency-Key": "order-42"}
    first = await gw.client.post("/generate", json=body, headers=headers)
    again = await gw.client.post(
        "/generate", json={**body, "retry": {"limit": 3}}, headers=headers
    )  # same, spelled out
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and len(created(gw)) == 1
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers

    other = await gw.client.post("/generate", json={**body, "input": {"prompt": "twice"}}, headers=headers)
    assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
    assert other.json()["errors"][0]["field"] == "Idempotency-Key" and len(created(gw)) == 1

    fresh = await gw.client.post("/generate", json=body, headers={**gw.a, "Idempotency-Key": "order-43"})
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]


async def test_idempotency_keys_are_per_tenant(gw: Gateway) -> None:
    body = {"model": "a/b", "input": {"prompt": "mine"}}
    a = await gw.client.post("/generate", json=body, headers={**gw.a, "Idempotency-Key": "k"})
    b = await gw.client.post("/generate", json={**body, "input": {"p": 1}}, headers={**gw.b, "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 202
    assert len(created(gw, "team-a")) == len(created(gw, "team-b")) == 1


async def test_a_name_is_idempotent_by_itself_and_excludes_an_idempotency_key(gw: Gateway) -> None:
    body = {"model": "a/b", "name": "my-cat", "input": {"prompt": "cat"}}
    assert (await gw.client.post("/generate", json=body, headers=gw.a)).status_code == 202
    again = await gw.client.post("/generate", json=body, headers=gw.a)
    assert again.status_code == 202 and again.json()["id"] == "my-cat"
    conflict = await gw.client.post("/generate", json={**body, "input": {"prompt": "dog"}}, headers=gw.a)
    assert conflict.status_code == 409 and conflict.json()["errors"][0]["field"] == "name"
    both = await gw.client.post("/generate", json=body, headers={**gw.a, "Idempotency-Key": "k"})
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_resource_created_outside_the_gateway_is_never_claimed_by_a_key(gw: Gateway) -> None:
    gw.cluster.put("team-a", {"metadata": {"name": "mine"}, "spec": {"model": "a/b"}})
    response = await gw.client.post("/generate", json={"model": "a/b", "name": "mine"}, headers=gw.a)
    assert response.status_code == 409


@pytest.mark.parametrize("key", ["", " padded ", "x" * 256, "tab\tkey"])
async def test_unusable_idempotency_keys_are_refused(gw: Gateway, key: str) -> None:
    response = await gw.client.post("/generate", json={"model": "a/b"}, headers={**gw.a, "Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["errors"][0]["in"] == "header" and not created(gw)


# --- auth and tenants ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer mg_nope"},
     {"Authorization": "Bearer mg_0123456789ab_" + "0" * 40}],
)  # fmt: skip
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/generate"), ("GET", "/status/x"), ("GET", "/generations"), ("GET", "/generations/x"),
     ("POST", "/generations/x/cancel"), ("DELETE", "/generations/x")],
)  # fmt: skip
async def test_every_api_route_needs_a_valid_token(
    gw: Gateway, headers: dict[str, str], method: str, path: str
) -> None:
    response = await gw.client.request(method, path, json={"model": "a/b"}, headers=headers)
    assert response.status_code == 401 and response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not created(gw)


async def test_other_tenants_generations_are_not_found_for_reads_and_cancels(gw: Gateway) -> None:
    mine = (await gw.client.post("/generate", json={"model": "a/b"}, headers=gw.a)).json()["id"]
    for method, path in [("GET", f"/status/{mine}"), ("GET", f"/generations/{mine}"),
                         ("POST", f"/generations/{mine}/cancel"), ("DELETE", f"/generations/{mine}")]:  # fmt: skip
        response = await gw.client.request(method, path, headers=gw.b)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert created(gw)[mine]["spec"]["cancel"] is False
    assert (await gw.client.get("/generations", headers=gw.b)).json()["items"] == []
    assert (await gw.client.get(f"/status/{mine}", headers=gw.a)).status_code == 200


async def test_a_token_for_a_namespace_that_does_not_exist_gets_503_not_500(gw: Gateway) -> None:
    ghost = gw.cluster.add_api_token("ghost")
    response = await gw.client.post("/generate", json={"model": "a/b"}, headers={"Authorization": f"Bearer {ghost}"})
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM


# --- status, cancel, list -----------------------------------------------------------------------------------


async def test_cancel_sets_spec_cancel_and_is_idempotent(gw: Gateway) -> None:
    name = (await gw.client.post("/generate", json={"model": "a/b"}, headers=gw.a)).json()["id"]
    first = await gw.client.post(f"/generations/{name}/cancel", headers=gw.a)
    assert first.status_code == 202 and first.json()["cancelRequested"] is True
    assert created(gw)[name]["spec"]["cancel"] is True
    patches = gw.cluster.calls["patch"]
    again = await gw.client.delete(f"/generations/{name}", headers=gw.a)
    assert again.status_code == 200 and gw.cluster.calls["patch"] == patches
    assert name in created(gw)  # DELETE cancels; it never deletes


async def test_cancel_of_a_finished_generation_changes_nothing(gw: Gateway) -> None:
    name = (await gw.client.post("/generate", json={"model": "a/b"}, headers=gw.a)).json()["id"]
    finish(gw, name)
    response = await gw.client.delete(f"/generations/{name}", headers=gw.a)
    assert response.status_code == 200 and response.json()["phase"] == "Succeeded"
    assert created(gw)[name]["spec"]["cancel"] is False and "patch" not in gw.cluster.calls


async def test_status_of_a_finished_generation(gw: Gateway) -> None:
    name = (await gw.client.post("/generate", json={"model": "a/b"}, headers=gw.a)).json()["id"]
    finish(gw, name, "Failed")
    body = (await gw.client.get(f"/status/{name}", headers=gw.a)).json()
    assert body["done"] and body["error"] == {"reason": "Failed", "message": ""}


async def test_invalid_ids_are_a_problem_naming_the_path_parameter(gw: Gateway) -> None:
    response = await gw.client.get("/status/Not_An_Id", headers=gw.a)
    assert response.status_code == 422 and response.json()["errors"][0] == {
        "field": "id", "in": "path", "pointer": "/id", "message": response.json()["errors"][0]["message"]
    }  # fmt: skip


async def _all_pages(gw: Gateway, query: str) -> tuple[list[str], int]:
    names: list[str] = []
    pages = 0
    url = f"/generations?{query}"
    while True:
        page = (await gw.client.get(url, headers=gw.a)).json()
        pages += 1
        names += [item["id"] for item in page["items"]]
        if not page["continue"]:
            return names, pages
        url = f"/generations?{query}&continue={page['continue']}"


async def test_listing_pages_through_everything_exactly_once(gw: Gateway) -> None:
    for i in range(7):
        await gw.client.post("/generate", json={"model": "a/b", "name": f"g{i}"}, headers=gw.a)
    names, pages = await _all_pages(gw, "limit=3")
    assert names == [f"g{i}" for i in range(7)] and pages == 3


async def test_listing_filters_by_phase_without_losing_or_repeating_any(gw: Gateway) -> None:
    for i in range(10):
        await gw.client.post("/generate", json={"model": "a/b", "name": f"g{i}"}, headers=gw.a)
        if i % 3 == 0:
            finish(gw, f"g{i}", "Failed")
    failed, _ = await _all_pages(gw, "limit=2&phase=Failed")
    assert failed == ["g0", "g3", "g6", "g9"]
    pending, _ = await _all_pages(gw, "limit=4&phase=Pending")
    assert pending == ["g1", "g2", "g4", "g5", "g7", "g8"]


async def test_a_listing_page_never_holds_more_than_100_whatever_the_limit(gw: Gateway) -> None:
    for i in range(230):
        gw.cluster.put("team-a", {"metadata": {"name": f"g{i:03d}"}, "spec": {"model": "a/b"}})
    names, pages = await _all_pages(gw, "limit=500")
    assert names == [f"g{i:03d}" for i in range(230)] and pages == 3
    assert gw.cluster.items_listed == 230  # each object read once


async def test_the_phase_filter_runs_in_the_api_server(gw: Gateway) -> None:
    for i in range(50):
        status = {"phase": "Running"} if i == 49 else {"phase": "Canceled"}
        gw.cluster.put("team-a", {"metadata": {"name": f"g{i:02d}"}, "spec": {"model": "a/b"}, "status": status})
    running, pages = await _all_pages(gw, "limit=1&phase=Running")
    assert running == ["g49"] and pages == 1 and gw.cluster.items_listed == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "phase=Exploded", "limit=ten"])
async def test_bad_list_parameters_are_named(gw: Gateway, query: str) -> None:
    response = await gw.client.get(f"/generations?{query}", headers=gw.a)
    assert response.status_code == 422 and response.json()["errors"][0]["in"] == "query"


async def test_a_malformed_continue_token_is_400(gw: Gateway) -> None:
    response = await gw.client.get("/generations?continue=garbage", headers=gw.a)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "continue"


# --- health, failures, docs ---------------------------------------------------------------------------------


async def test_health_check_liveness_and_readiness(gw: Gateway) -> None:
    now = [0.0]
    gw.deps.clock = lambda: now[0]
    health = await gw.client.get("/health-check")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "kubernetes": "reachable", "version": gw.deps.version}
    assert (await gw.client.get("/readyz")).status_code == 200
    gw.cluster.fail_with = Unavailable("down")
    assert (await gw.client.get("/health-check")).status_code == 200  # the answer is cached for a second
    now[0] += 1.5
    health = await gw.client.get("/health-check")
    assert health.status_code == 503 and health.json()["kubernetes"] == "unreachable"
    assert (await gw.client.get("/readyz")).status_code == 503
    assert (await gw.client.get("/livez")).status_code == 200


async def test_kubernetes_down_is_503_with_retry_after_never_500(gw: Gateway) -> None:
    await gw.client.get("/generations", headers=gw.a)  # tokens cached
    gw.cluster.fail_with = Unavailable("down")
    for method, path in [("POST", "/generate"), ("GET", "/status/x"), ("GET", "/generations")]:
        response = await gw.client.request(method, path, json={"model": "a/b"}, headers=gw.a)
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert response.headers["content-type"] == PROBLEM


async def test_an_unexpected_error_is_a_500_problem_without_details(gw: Gateway) -> None:
    gw.cluster.fail_with = RuntimeError("secret internals")  # type: ignore[assignment]
    response = await gw.client.get("/generations", headers=gw.a)
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM
    assert "secret internals" not in response.text


async def test_unknown_routes_and_methods_are_problems(gw: Gateway) -> None:
    missing = await gw.client.get("/nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    wrong = await gw.client.put("/generate", headers=gw.a)
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM and "allow" in wrong.headers


async def test_metrics_count_requests_by_route_template(gw: Gateway) -> None:
    await gw.client.get("/status/abc", headers=gw.a)
    await gw.client.get("/generations")
    text = (await gw.client.get("/metrics")).text
    assert 'mediagen_gateway_requests_total{method="GET",route="/status/{id}",status="404"} 1.0' in text
    assert 'mediagen_gateway_auth_failures_total{reason="missing"} 1.0' in text
    assert "/status/abc" not in text  # ids never become label values


async def test_invented_methods_do_not_make_new_series(gw: Gateway) -> None:
    # Issue 13 item 10a: h11 accepts any token as a method; 3,000 invented ones made 51,019 series.
    for i in range(300):
        await gw.client.request(f"X{i}", "/generate")
        await gw.client.request(f"Y{i}", f"/nowhere/{i}")
    text = (await gw.client.get("/metrics")).text
    series = [line for line in text.splitlines() if line.startswith("mediagen_gateway_request")]
    assert 'mediagen_gateway_requests_total{method="other",route="/generate",status="405"} 300.0' in text
    assert 'mediagen_gateway_requests_total{method="other",route="unmatched",status="404"} 300.0' in text
    assert not any('method="X' in line or 'method="Y' in line for line in series)
    assert len(series) < 60  # two counters and two histograms (with their buckets), nothing per request


async def test_openapi_documents_the_request_model_and_the_security_scheme(gw: Gateway) -> None:
    spec = (await gw.client.get("/openapi.json")).json()
    request = spec["components"]["schemas"]["GenerateRequest"]
    assert {"model", "deployment", "input", "output", "retry", "timeoutSeconds", "cancel", "name"} <= set(
        request["properties"]
    )
    assert request["additionalProperties"] is False
    assert "apiToken" in spec["components"]["securitySchemes"]
    assert {"/generate", "/status/{id}", "/generations", "/health-check"} <= set(spec["paths"])
    assert "/login" not in spec["paths"]
    docs = await gw.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_unknown_query_parameters_are_refused_but_only_after_authentication(gw: Gateway) -> None:
    typo = await gw.client.get("/generations?phse=Failed", headers=gw.a)
    assert typo.status_code == 422 and typo.json()["errors"][0] == {
        "field": "phse", "in": "query", "pointer": "/phse", "message": "unknown query parameter"
    }  # fmt: skip
    assert (await gw.client.get("/generations?phse=Failed")).status_code == 401
