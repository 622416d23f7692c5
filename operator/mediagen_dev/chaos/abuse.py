"""Abuse: the gateway's per-token rate limit and per-tenant in-flight quota, against the real API server.

A token that floods the gateway gets 429 with ``Retry-After`` beyond its burst while another token is served as
usual; a tenant at its quota of generations in flight gets 429 on ``POST /generate`` (reads still work), and
once its generations finish (a mock-mode operator runs them) it may create again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from mediagen_dev.chaos.chaos_stack import TERMINAL, Stack, phase_of
from mediagen_dev.chaos.gateway import mint_token, start_gateway
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome


@dataclass(frozen=True)
class Params:
    """The limits under test and the size of the flood."""

    rate: float
    burst: int
    flood: int
    quota: int
    mock_latency: float


SMALL = Params(rate=2, burst=5, flood=20, quota=3, mock_latency=2.0)
FULL = Params(rate=5, burst=20, flood=200, quota=10, mock_latency=5.0)


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-abuse")
    env = stack.operator_env(namespace, mock=True, via_proxy=False, MOCK_LATENCY_SECONDS=str(params.mock_latency))
    operator = stack.operator(f"abuse-{namespace}", env)
    start_and_wait(operator)
    gateway = start_gateway(
        stack,
        namespace,
        {
            "MEDIAGEN_GATEWAY_RATE_LIMIT_PER_SECOND": str(params.rate),
            "MEDIAGEN_GATEWAY_RATE_LIMIT_BURST": str(params.burst),
            "MEDIAGEN_GATEWAY_MAX_INFLIGHT_PER_TENANT": str(params.quota),
            "MEDIAGEN_GATEWAY_INFLIGHT_CACHE_SECONDS": "0.5",
        },
    )
    flooder, quiet, creator = (mint_token(stack, namespace, who) for who in ("flooder", "quiet", "creator"))
    notes: list[str] = []
    try:
        with httpx.Client(base_url=gateway.url, timeout=30, trust_env=False) as http:

            def get(token: str) -> httpx.Response:
                return http.get("/generations?limit=1", headers={"Authorization": f"Bearer {token}"})

            flood = [get(flooder) for _ in range(params.flood)]
            refused = [r for r in flood if r.status_code == 429]
            served = sum(1 for r in flood if r.status_code == 200)
            quiet_status = get(quiet).status_code
            retry_after = sorted({r.headers.get("Retry-After", "") for r in refused})
            if not refused or any(not value.isdigit() or int(value) < 1 for value in retry_after):
                notes.append(f"flood: {len(refused)} refusals with Retry-After {retry_after}")
            if served < params.burst:
                notes.append(f"flood: only {served} requests served, fewer than the burst of {params.burst}")
            if quiet_status != 200:
                notes.append(f"another token was refused during the flood ({quiet_status})")

            headers = {"Authorization": f"Bearer {creator}"}
            body = {"model": "abuse/model", "input": {"prompt": "quota"}}
            creates = [http.post("/generate", json=body, headers=headers) for _ in range(params.quota + 2)]
            codes = [r.status_code for r in creates]
            over = creates[params.quota :]
            kinds = sorted({str(r.json().get("type", "")).rsplit("/", 1)[-1] for r in over})
            if codes != [202] * params.quota + [429, 429] or kinds != ["quota-exceeded"]:
                notes.append(f"quota of {params.quota}: answers {codes}, kinds {kinds}")
            # Reads are not limited by the quota (another token of the tenant: the creator's burst is spent).
            quiet_headers = {"Authorization": f"Bearer {quiet}"}
            read = http.get(f"/status/{creates[0].json()['id']}", headers=quiet_headers).status_code
            if read != 200:
                notes.append(f"a read at the quota got {read}")
            names = [r.json()["id"] for r in creates[: params.quota]]
            bodies = stack.wait_terminal(namespace, names, timeout=60)
            finished = sum(1 for b in bodies.values() if phase_of(b) in TERMINAL)
            time.sleep(1.0)  # the gateway's cached count expires
            after = http.post("/generate", json=body, headers=headers).status_code
            if after != 202:
                notes.append(f"after {finished} generations finished, a create still got {after}")
            throttled_metric = next(
                (
                    line
                    for line in http.get("/metrics").text.splitlines()
                    if line.startswith("mediagen_gateway_throttled")
                ),
                "",
            )
    finally:
        gateway.stop()
        operator.stop()
    return Outcome(
        name="abuse_limits",
        survived=not notes,
        details={
            "rate_limit": {"per_second": params.rate, "burst": params.burst},
            "flood": {
                "requests": params.flood,
                "served": served,
                "refused_429": len(refused),
                "retry_after": retry_after,
            },
            "other_token_during_flood": quiet_status,
            "quota": {"limit": params.quota, "answers": codes, "refusal_kinds": kinds, "read_at_quota": read},
            "create_after_finishing": after,
            "throttled_metric": throttled_metric,
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
