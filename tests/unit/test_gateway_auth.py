"""Gateway authentication: token format and hashing, the cached token Secret (revocation timing, fail
closed), ServiceAccount tokens through TokenReview."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from mediagen.gateway.auth import Authenticator, AuthError, ReviewsThrottled, Tenant, TokenStore, bearer_token
from mediagen.gateway.cluster import ClusterError, Forbidden, Unavailable
from mediagen.gateway.settings import GatewaySettings
from mediagen.gateway.throttling import RateLimiter
from mediagen.gateway.tokens import TokenFormatError, TokenRecord, hash_token, mint, token_id
from tests.support.memory_cluster import MemoryCluster

NS, SECRET = "mediagen-system", "mediagen-gateway-tokens"


class Clock:
    """A hand-driven monotonic clock; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


AUDIENCE = "mediagen-gateway"


def make(
    cluster: MemoryCluster,
    clock: Clock,
    *,
    token_review: bool = False,
    ttl: float = 5.0,
    namespaces: tuple[str, ...] = ("team-c",),
    limiter: RateLimiter | None = None,
) -> Authenticator:
    tokens = TokenStore(cluster, NS, SECRET, ttl=ttl, refresh_interval=1.0, clock=clock, sleep=clock.sleep)
    return Authenticator(
        cluster,
        tokens,
        token_review=token_review,
        audiences=[AUDIENCE] if token_review else None,
        namespaces=list(namespaces) if token_review else None,
        review_ttl=ttl,
        review_limiter=limiter,
        clock=clock,
    )


def service_account(cluster: MemoryCluster, namespace: str, name: str, *, audience: str = AUDIENCE) -> str:
    """A (JWT-shaped) token of ServiceAccount namespace/name for ``audience``; returns it."""
    token = f"eyJhbGciOiJSUzI1NiJ9.{namespace}-{name}-{hash_token(audience)[:8]}.c2ln"
    cluster.service_account_tokens[token] = f"system:serviceaccount:{namespace}:{name}"
    cluster.token_audiences[token] = (audience,)
    return token


# --- token format -----------------------------------------------------------------------------------------


def test_minted_tokens_have_the_documented_shape_and_only_their_hash_is_stored() -> None:
    token, record = mint("team-a", "ci")
    assert token.startswith("mg_") and token_id(token) == record.id
    assert record.sha256 == hash_token(token) and token not in record.encode().decode()
    assert record.matches(token)
    other, _ = mint("team-a")
    assert not record.matches(other)
    assert TokenRecord.decode(record.id, record.encode()) == record
    assert mint("team-a")[0] != token


@pytest.mark.parametrize(
    "token",
    [
        "mg_abc_def",
        "mg_0123456789ab_" + "0" * 39,
        "mg_0123456789AB_" + "0" * 40,
        "xx_0123456789ab_" + "0" * 40,
        "mg_0123456789ab_" + "0" * 40 + "0",
    ],
)
def test_malformed_tokens_have_no_id(token: str) -> None:
    assert token_id(token) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("0123456789ab", b"not json"),
        ("0123456789ab", b"[]"),
        ("0123456789ab", json.dumps({"sha256": "xyz", "namespace": "a"}).encode()),
        ("0123456789ab", json.dumps({"sha256": "0" * 64, "namespace": "Not_A_Namespace"}).encode()),
        ("not-an-id", json.dumps({"sha256": "0" * 64, "namespace": "a"}).encode()),
    ],
)
def test_unusable_records_are_refused(key: str, value: bytes) -> None:
    with pytest.raises(TokenFormatError):
        TokenRecord.decode(key, value)


def test_mint_refuses_an_invalid_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        mint("Team_A")


@pytest.mark.parametrize(
    ("header", "reason"),
    [(None, "missing"), ("", "missing"), ("Basic dXNlcjpwdw==", "malformed"), ("Bearer", "malformed"),
     ("Bearer a b", "malformed"), ("Bearer caf\u00e9", "malformed")],
)  # fmt: skip
def test_authorization_headers_that_carry_no_usable_bearer_token(header: str | None, reason: str) -> None:
    with pytest.raises(AuthError) as caught:
        bearer_token(header)
    assert caught.value.reason == reason


def test_the_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer  mg_x ") == "mg_x"


# --- API tokens -------------------------------------------------------------------------------------------


async def test_a_valid_token_authenticates_as_its_namespace() -> None:
    cluster, clock = MemoryCluster(), Clock()
    token = cluster.add_api_token("team-a")
    tenant = await make(cluster, clock).authenticate(f"Bearer {token}")
    assert tenant == Tenant(namespace="team-a", subject=f"token/{token_id(token)}", token_id=token_id(token) or "")


async def test_wrong_secret_part_or_unknown_id_is_invalid() -> None:
    cluster, clock = MemoryCluster(), Clock()
    token = cluster.add_api_token("team-a")
    auth = make(cluster, clock)
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for candidate in (forged, "mg_ffffffffffff_" + "0" * 40):
        with pytest.raises(AuthError) as caught:
            await auth.authenticate(f"Bearer {candidate}")
        assert caught.value.reason == "invalid"
    with pytest.raises(AuthError) as caught:
        await auth.authenticate("Bearer mg_short")
    assert caught.value.reason == "malformed"


async def test_revocation_takes_effect_when_the_cache_expires_and_not_before() -> None:
    cluster, clock = MemoryCluster(), Clock()
    token = cluster.add_api_token("team-a")
    auth = make(cluster, clock, ttl=5.0)
    await auth.authenticate(f"Bearer {token}")
    cluster.secrets[NS, SECRET].clear()  # revoked
    clock.now += 4.9
    assert (await auth.authenticate(f"Bearer {token}")).namespace == "team-a"  # still cached
    clock.now += 0.2
    with pytest.raises(AuthError):
        await auth.authenticate(f"Bearer {token}")


async def test_a_token_minted_a_moment_ago_works_on_first_use() -> None:
    cluster, clock = MemoryCluster(), Clock()
    cluster.add_api_token("team-a")
    auth = make(cluster, clock)
    await auth.tokens.check()
    fresh = cluster.add_api_token("team-b")
    assert (await auth.authenticate(f"Bearer {fresh}")).namespace == "team-b"
    assert clock.slept == pytest.approx(1.0)  # it waited for the next permitted read, no longer


async def test_unknown_token_ids_cost_at_most_one_secret_read_per_second() -> None:
    cluster, clock = MemoryCluster(), Clock()
    cluster.add_api_token("team-a")
    auth = make(cluster, clock)
    await auth.tokens.check()
    reads, began = auth.tokens.reads, clock.now
    for _ in range(50):
        with pytest.raises(AuthError):
            await auth.authenticate("Bearer mg_ffffffffffff_" + "0" * 40)
    assert auth.tokens.reads - reads <= clock.now - began  # and each made-up token waited its turn


async def test_a_missing_secret_means_no_valid_tokens_and_broken_entries_are_skipped() -> None:
    cluster, clock = MemoryCluster(), Clock()
    with pytest.raises(AuthError):
        await make(cluster, clock).authenticate("Bearer mg_ffffffffffff_" + "0" * 40)
    token = cluster.add_api_token("team-a")
    cluster.secrets[NS, SECRET]["0123456789ab"] = b"garbage"
    assert (await make(cluster, clock).authenticate(f"Bearer {token}")).namespace == "team-a"


@pytest.mark.parametrize("error", [Unavailable("down"), Forbidden("rbac")])
async def test_when_the_secret_cannot_be_read_authentication_fails_closed(error: ClusterError) -> None:
    cluster, clock = MemoryCluster(), Clock()
    token = cluster.add_api_token("team-a")
    auth = make(cluster, clock)
    cluster.fail_with = error
    with pytest.raises(type(error)):
        await auth.authenticate(f"Bearer {token}")


# --- ServiceAccount tokens ----------------------------------------------------------------------------------


async def test_service_account_tokens_map_to_their_namespace_and_reviews_are_cached() -> None:
    cluster, clock = MemoryCluster(), Clock()
    builder = service_account(cluster, "team-c", "builder")
    cluster.grants.add(("system:serviceaccount:team-c:builder", "create", "team-c"))
    auth = make(cluster, clock, token_review=True)
    tenant = await auth.authenticate(f"Bearer {builder}")
    assert (tenant.namespace, tenant.subject) == ("team-c", "serviceaccount/team-c/builder")
    assert tenant.user is not None and tenant.user.username == "system:serviceaccount:team-c:builder"
    await auth.authenticate(f"Bearer {builder}")
    assert (cluster.calls["review_token"], cluster.calls["review_access"]) == (1, 1)
    bogus = "eyJhbGciOiJSUzI1NiJ9.unknown.c2ln"
    for _ in range(3):
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer {bogus}")
    assert cluster.calls["review_token"] == 2  # negative answers are cached too
    clock.now += 6
    await auth.authenticate(f"Bearer {builder}")
    assert cluster.calls["review_token"] == 3


async def test_a_pods_automounted_token_is_no_tenant() -> None:
    # Issue 13 item 10b: kube-system's default ServiceAccount token got 202 (any ServiceAccount was a tenant).
    cluster, clock = MemoryCluster(), Clock()
    automounted = service_account(cluster, "kube-system", "default", audience="https://kubernetes.default.svc")
    cluster.grants.add(("system:serviceaccount:kube-system:default", "*", "*"))  # even a powerful one
    auth = make(cluster, clock, token_review=True, namespaces=("*",))
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(f"Bearer {automounted}")
    assert caught.value.reason == "invalid"  # not for the gateway's audience


async def test_a_service_account_needs_an_allowed_namespace_and_rbac() -> None:
    cluster, clock = MemoryCluster(), Clock()
    outsider = service_account(cluster, "kube-system", "default")
    cluster.grants.add(("system:serviceaccount:kube-system:default", "create", "kube-system"))
    unprivileged = service_account(cluster, "team-c", "nobody")
    auth = make(cluster, clock, token_review=True, namespaces=("team-c",))
    for token in (outsider, unprivileged):
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer {token}")
    assert cluster.calls["review_access"] == 1  # the outsider was refused before any SubjectAccessReview
    cluster.grants.add(("system:serviceaccount:team-c:nobody", "create", "team-c"))
    clock.now += 6
    assert (await auth.authenticate(f"Bearer {unprivileged}")).namespace == "team-c"


async def test_tokens_that_are_no_jwt_are_refused_without_a_review() -> None:
    cluster, clock = MemoryCluster(), Clock()
    auth = make(cluster, clock, token_review=True)
    for junk in ("jwt-1", "a.b", "a.b.c.d", "a.b+.c"):
        with pytest.raises(AuthError) as caught:
            await auth.authenticate(f"Bearer {junk}")
        assert caught.value.reason == "malformed"
    assert "review_token" not in cluster.calls


async def test_reviews_of_unknown_tokens_are_capped_per_client() -> None:
    cluster, clock = MemoryCluster(), Clock()
    builder = service_account(cluster, "team-c", "builder")
    cluster.grants.add(("system:serviceaccount:team-c:builder", "create", "team-c"))
    auth = make(cluster, clock, token_review=True, limiter=RateLimiter(1.0, 3, clock=clock))
    await auth.authenticate(f"Bearer {builder}", client="10.0.0.1")
    for i in range(2):
        with pytest.raises(AuthError):
            await auth.authenticate(f"Bearer eyJ.bogus{i}.x", client="10.0.0.1")
    with pytest.raises(ReviewsThrottled) as throttled:
        await auth.authenticate("Bearer eyJ.bogus3.x", client="10.0.0.1")
    assert throttled.value.retry_after == pytest.approx(1.0)
    assert cluster.calls["review_token"] == 3
    assert (await auth.authenticate(f"Bearer {builder}", client="10.0.0.1")).namespace == "team-c"  # cached
    with pytest.raises(AuthError):
        await auth.authenticate("Bearer eyJ.bogus3.x", client="10.0.0.2")  # another client has its own budget


def test_service_account_tokens_need_an_audience_and_namespaces() -> None:
    with pytest.raises(ValidationError, match="token_review_audiences"):
        GatewaySettings(token_review=True, token_review_namespaces=["team-a"])
    with pytest.raises(ValidationError, match="token_review_namespaces"):
        GatewaySettings(token_review=True, token_review_audiences=["mediagen-gateway"])
    GatewaySettings(token_review=True, token_review_audiences=["g"], token_review_namespaces=["*"])


async def test_without_token_review_other_tokens_are_malformed_and_never_reviewed() -> None:
    cluster, clock = MemoryCluster(), Clock()
    jwt = service_account(cluster, "team-c", "builder")
    with pytest.raises(AuthError) as caught:
        await make(cluster, clock).authenticate(f"Bearer {jwt}")
    assert caught.value.reason == "malformed" and "review_token" not in cluster.calls
