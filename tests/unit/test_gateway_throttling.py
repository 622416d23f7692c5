"""The gateway's throttling: a request rate per token and a quota of generations in flight per tenant, both
answered with 429 problem+json and Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from mediagen.gateway import GatewayDeps, GatewaySettings, build_deps, create_app
from mediagen.gateway.cluster import AlreadyExists, BadRequest, Page
from mediagen.gateway.problems import ProblemError
from mediagen.gateway.throttling import InflightQuota, RateLimiter
from tests.support.memory_cluster import MemoryCluster

PROBLEM = "application/problem+json"
BODY = {"model": "owner/m", "input": {"prompt": "a fox"}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- RateLimiter -----------------------------------------------------------------------------------------------


def test_a_burst_is_allowed_then_the_rate_applies_with_the_wait_until_the_next_token() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("t") for _ in range(3)] == [None, None, None]
    assert limiter.take("t") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("t") is None
    assert limiter.take("t") == pytest.approx(0.5)
    clock.now += 10
    assert [limiter.take("t") for _ in range(4)] == [None, None, None, pytest.approx(0.5)]  # never above burst


def test_tokens_have_buckets_of_their_own_and_memory_stays_bounded() -> None:
    limiter = RateLimiter(1.0, 1, max_keys=3, clock=Clock())
    assert limiter.take("a") is None and limiter.take("a") is not None
    assert limiter.take("b") is None
    for key in ("c", "d", "e"):
        limiter.take(key)
    assert limiter.take("a") is None  # forgotten (least recently seen) and started afresh


def test_the_problem_carries_retry_after_in_whole_seconds() -> None:
    limiter = RateLimiter(0.25, 1, clock=Clock())
    limiter.check("t")
    with pytest.raises(ProblemError) as info:
        limiter.check("t")
    assert (info.value.status, info.value.kind, info.value.headers) == (429, "rate-limited", {"Retry-After": "4"})


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate, burst)


# -- InflightQuota ---------------------------------------------------------------------------------------------


def generation(cluster: MemoryCluster, name: str, phase: str | None = None, deleting: bool = False) -> None:
    body: dict[str, object] = {"metadata": {"name": name}, "spec": {"model": "a/b"}}
    if phase:
        body["status"] = {"phase": phase}
    if deleting:
        body["metadata"] = {"name": name, "deletionTimestamp": "2026-01-01T00:00:00Z"}
    cluster.put("team-a", body)


async def test_only_unfinished_generations_count() -> None:
    cluster = MemoryCluster()
    for i, phase in enumerate([None, "Pending", "Running", "Uploading", "Succeeded", "Failed", "Canceled"]):
        generation(cluster, f"g{i}", phase)
    generation(cluster, "gone", "Running", deleting=True)
    assert await InflightQuota(cluster, 10).in_flight("team-a") == 4


async def test_the_listing_is_cached_and_paged_and_stops_once_the_answer_is_known() -> None:
    cluster, clock = MemoryCluster(), Clock()
    for i in range(1200):
        generation(cluster, f"g{i:04d}", "Succeeded" if i % 2 else None)
    quota = InflightQuota(cluster, 1000, cache_seconds=2, clock=clock)
    assert await quota.in_flight("team-a") == 600
    assert cluster.calls["list_metadata"] == 6  # pages of 100
    assert cluster.items_listed == 600  # the finished ones were filtered out by the API server
    assert "list_page" not in cluster.calls and "get" not in cluster.calls  # never a whole object
    await quota.in_flight("team-a")
    assert quota.listings == 1
    clock.now += 2
    await quota.in_flight("team-a")
    assert quota.listings == 2
    small = InflightQuota(cluster, 5)
    assert await small.in_flight("team-a") >= 5
    assert cluster.calls["list_metadata"] == 13  # the last listing needed one page only


async def test_finished_decoys_named_to_sort_first_cannot_hide_the_generations_in_flight() -> None:
    # Issue 13 item 2: the count used to read whole objects in name order and stop after 5,000, so 5,000
    # canceled generations named to sort first made every tenant look idle.
    cluster = MemoryCluster()
    for i in range(5000):
        generation(cluster, f"a{i:04d}", "Canceled")
    generation(cluster, "z1")
    generation(cluster, "z2", "Running")
    quota = InflightQuota(cluster, 2)
    assert await quota.in_flight("team-a") == 2
    assert cluster.items_listed == 2
    with pytest.raises(ProblemError) as refused:
        async with quota.slot("team-a"):
            pass
    assert refused.value.status == 429


async def test_reservations_keep_concurrent_creates_within_the_quota() -> None:
    cluster = MemoryCluster()
    quota = InflightQuota(cluster, 3, cache_seconds=60)
    admitted = 0
    refusals: list[ProblemError] = []

    async def one() -> None:
        nonlocal admitted
        try:
            async with quota.slot("team-a") as created:
                await asyncio.sleep(0.01)  # the create in flight
                created()
                admitted += 1
        except ProblemError as err:
            refusals.append(err)

    await asyncio.gather(*(one() for _ in range(10)))
    assert (admitted, len(refusals)) == (3, 7)
    assert {(e.status, e.kind, e.headers["Retry-After"]) for e in refusals} == {(429, "quota-exceeded", "10")}
    assert await quota.in_flight("team-a") == 3  # counted until the next listing sees them


async def test_a_create_that_did_not_happen_gives_its_slot_back() -> None:
    quota = InflightQuota(MemoryCluster(), 1, cache_seconds=60)
    with pytest.raises(AlreadyExists):
        async with quota.slot("team-a"):
            raise AlreadyExists("x")
    async with quota.slot("team-a"):
        pass  # not confirmed: no slot taken either
    assert await quota.in_flight("team-a") == 0


async def test_own_creates_are_forgotten_once_a_listing_includes_them() -> None:
    cluster, clock = MemoryCluster(), Clock()
    quota = InflightQuota(cluster, 5, cache_seconds=2, clock=clock)
    async with quota.slot("team-a") as created:
        generation(cluster, "g1")
        created()
    assert await quota.in_flight("team-a") == 1
    clock.now += 3
    assert await quota.in_flight("team-a") == 1  # from the listing now, not counted twice


async def test_without_selectable_fields_the_quota_fails_closed_and_says_why() -> None:
    cluster = MemoryCluster()
    cluster.fail_with = BadRequest('field label not supported: "status.phase"')
    with pytest.raises(ProblemError) as refused:
        async with InflightQuota(cluster, 2).slot("team-a"):
            pass
    assert (refused.value.status, refused.value.kind) == (503, "quota-unavailable")
    assert "Kubernetes >= 1.31" in refused.value.detail


async def test_a_listing_error_surfaces_and_is_retried_next_time() -> None:
    class Flaky(MemoryCluster):
        fail = True

        async def list_metadata(
            self, namespace: str, *, limit: int, continue_token: str = "", field_selector: str = ""
        ) -> Page:
            if self.fail:
                self.fail = False
                raise AlreadyExists("boom")
            return await super().list_metadata(
                namespace, limit=limit, continue_token=continue_token, field_selector=field_selector
            )

    quota = InflightQuota(Flaky(), 2)
    with pytest.raises(AlreadyExists):
        await quota.in_flight("team-a")
    assert await quota.in_flight("team-a") == 0


# -- through the HTTP API --------------------------------------------------------------------------------------


@dataclass
class Gateway:
    cluster: MemoryCluster
    deps: GatewayDeps
    client: httpx.AsyncClient
    a: dict[str, str]
    b: dict[str, str]


async def gateway(**limits: float) -> AsyncIterator[Gateway]:
    cluster = MemoryCluster()
    cluster.namespaces = {"team-a", "team-b"}
    a, b = cluster.add_api_token("team-a"), cluster.add_api_token("team-b")
    settings = GatewaySettings(namespace="mediagen-system", token_refresh_seconds=0.01, **limits)  # type: ignore[arg-type]
    deps = build_deps(settings, cluster)
    transport = httpx.ASGITransport(app=create_app(deps), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        yield Gateway(cluster, deps, client, {"Authorization": f"Bearer {a}"}, {"Authorization": f"Bearer {b}"})


@pytest.fixture
async def rate_limited() -> AsyncIterator[Gateway]:
    async for gw in gateway(rate_limit_per_second=0.5, rate_limit_burst=3):
        yield gw


@pytest.fixture
async def quota_of_two() -> AsyncIterator[Gateway]:
    async for gw in gateway(max_inflight_per_tenant=2, inflight_cache_seconds=60, quota_retry_after_seconds=7):
        yield gw


async def test_requests_beyond_a_tokens_rate_get_429_with_retry_after(rate_limited: Gateway) -> None:
    gw = rate_limited
    answers = [(await gw.client.get("/generations", headers=gw.a)).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    refused = await gw.client.post("/generate", json=BODY, headers=gw.a)
    assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
    assert refused.headers["Retry-After"] == "2"
    problem = refused.json()
    assert problem["type"].endswith("/rate-limited") and problem["title"] == "Too Many Requests"
    assert not gw.cluster.objects.get("team-a")  # refused before anything was done
    assert (await gw.client.get("/generations", headers=gw.b)).status_code == 200  # team-b is not affected
    metrics = (await gw.client.get("/metrics")).text
    assert 'mediagen_gateway_throttled_total{reason="rate"} 1.0' in metrics


async def test_failed_authentication_spends_nothing_of_a_tokens_rate(rate_limited: Gateway) -> None:
    gw = rate_limited
    for _ in range(5):
        assert (await gw.client.get("/generations", headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await gw.client.get("/generations", headers=gw.a)).status_code == 200


async def test_the_gallery_pages_count_against_the_rate_too(rate_limited: Gateway) -> None:
    gw = rate_limited
    statuses = [(await gw.client.get("/", headers=gw.a)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_a_tenant_at_its_quota_gets_429_until_generations_finish(quota_of_two: Gateway) -> None:
    gw = quota_of_two
    first = await gw.client.post("/generate", json=BODY, headers=gw.a)
    second = await gw.client.post("/generate", json=BODY, headers=gw.a)
    assert (first.status_code, second.status_code) == (202, 202)
    third = await gw.client.post("/generate", json=BODY, headers=gw.a)
    assert third.status_code == 429 and third.headers["Retry-After"] == "7"
    assert third.json()["type"].endswith("/quota-exceeded") and "2 generations in flight" in third.json()["detail"]
    assert len(gw.cluster.objects["team-a"]) == 2
    assert (await gw.client.post("/generate", json=BODY, headers=gw.b)).status_code == 202  # per tenant
    # Reads are not limited by the quota.
    assert (await gw.client.get(f"/status/{first.json()['id']}", headers=gw.a)).status_code == 200


async def test_5000_canceled_decoys_do_not_open_the_quota(quota_of_two: Gateway) -> None:
    gw = quota_of_two
    for i in range(5000):
        generation(gw.cluster, f"a-decoy-{i:04d}", "Canceled")
    generation(gw.cluster, "z-real-1", "Running")  # created elsewhere (kubectl, another replica)
    generation(gw.cluster, "z-real-2")
    refused = await gw.client.post("/generate", json=BODY, headers=gw.a)
    assert refused.status_code == 429
    assert len(gw.cluster.objects["team-a"]) == 5002


async def test_finished_generations_free_their_slots() -> None:
    async for gw in gateway(max_inflight_per_tenant=2, inflight_cache_seconds=0.05):
        ids = [(await gw.client.post("/generate", json=BODY, headers=gw.a)).json()["id"] for _ in range(2)]
        assert (await gw.client.post("/generate", json=BODY, headers=gw.a)).status_code == 429
        gw.cluster.objects["team-a"][ids[0]]["status"] = {"phase": "Succeeded"}
        await asyncio.sleep(0.1)  # the cached count expires
        assert (await gw.client.post("/generate", json=BODY, headers=gw.a)).status_code == 202


async def test_a_retry_of_a_created_request_is_answered_even_at_the_quota(quota_of_two: Gateway) -> None:
    gw = quota_of_two
    keyed = {**gw.a, "Idempotency-Key": "order-1"}
    created = await gw.client.post("/generate", json=BODY, headers=keyed)
    await gw.client.post("/generate", json=BODY, headers=gw.a)
    replay = await gw.client.post("/generate", json=BODY, headers=keyed)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == created.json()["id"]
    other = await gw.client.post("/generate", json={**BODY, "input": {"prompt": "other"}}, headers=keyed)
    assert other.status_code == 429  # not a replay: the quota applies
    metrics = (await gw.client.get("/metrics")).text
    assert 'mediagen_gateway_throttled_total{reason="quota"} 1.0' in metrics


async def test_limits_can_be_turned_off() -> None:
    async for gw in gateway(rate_limit_per_second=0, max_inflight_per_tenant=0):
        assert gw.deps.rate_limiter is None and gw.deps.generations.quota is None
        for _ in range(5):
            assert (await gw.client.post("/generate", json=BODY, headers=gw.a)).status_code == 202


def test_429_and_retry_after_are_in_the_openapi() -> None:
    openapi = create_app(build_deps(GatewaySettings(namespace="x"), MemoryCluster())).openapi()
    for path, method in [("/generate", "post"), ("/status/{id}", "get"), ("/generations", "get")]:
        documented = openapi["paths"][path][method]["responses"]["429"]
        assert documented["headers"]["Retry-After"]["required"] is True
