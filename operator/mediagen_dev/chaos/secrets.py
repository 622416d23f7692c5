"""Secret hygiene: a full run with known secret values, then a search for them everywhere they must not be.

The operator gets a fresh Replicate token and S3 secret key (DEBUG logging, metrics served); the gateway gets a
fresh API token. The run takes the paths where secrets tend to slip out: successes, a model failure, a cancel,
Replicate 5xx and 401 answers, S3 500s, requests to the gateway with wrong tokens (including the Replicate token
and the S3 key themselves). Then every MediaGeneration (metadata, spec and status), every Event, every line the
operator and the gateway logged, both metrics endpoints and every gateway answer (headers and body) is searched
for each secret, raw, URL-encoded and base64-encoded; and the fake Replicate's log of file downloads is checked
for an ``Authorization`` header (the token goes to Replicate's API only, never to an output host).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
from kubernetes import client as k8s

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.chaos.gateway import mint_token, start_gateway
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import Fault, ModelScript, problems


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    successes: int
    timeout: float


SMALL = Params(successes=2, timeout=60)
FULL = Params(successes=10, timeout=120)


def forms(value: str) -> set[str]:
    """The ways a secret could appear: as is, URL-encoded, base64-encoded (padded or not)."""
    encoded = base64.b64encode(value.encode()).decode()
    return {value, urllib.parse.quote(value, safe=""), encoded, encoded.rstrip("=")}


def scan(sources: dict[str, str], known: dict[str, str]) -> list[str]:
    """``secret name in source`` for every secret found in a source."""
    found = []
    for source, text in sources.items():
        for name, value in known.items():
            if any(form in text for form in forms(value)):
                found.append(f"{name} in {source}")
    return found


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-sec")
    replicate_token = "r8_" + secrets.token_hex(20)
    s3_secret = "chaos-s3-" + secrets.token_hex(16)
    with stack.fake.lock:
        stack.fake.config.valid_tokens = stack.fake.config.valid_tokens | {replicate_token}
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=0.5))
    metrics_port = free_ports(1)[0]
    env = stack.operator_env(
        namespace,
        token=replicate_token,
        secret_key=s3_secret,
        MEDIAGEN_LOG_LEVEL="DEBUG",
        MEDIAGEN_METRICS_PORT=str(metrics_port),
    )
    operator = stack.operator(f"secrets-{namespace}", env)
    start_and_wait(operator)
    gateway = start_gateway(stack, namespace, {"MEDIAGEN_GATEWAY_LOG_LEVEL": "DEBUG"})
    api_token = mint_token(stack, namespace, "secret hygiene")
    known = {"replicate token": replicate_token, "S3 secret key": s3_secret, "gateway API token": api_token}
    answers: list[str] = []
    files_before = len(stack.fake.requests_to("file"))

    def call(method: str, path: str, token: str | None = api_token, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.request(method, gateway.url + path, headers=headers, timeout=30, trust_env=False, **kwargs)
        answers.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    def generate(prompt: str) -> str:
        return str(call("POST", "/generate", json={"model": model, "input": {"prompt": prompt}}).json()["id"])

    try:
        ids = [generate(f"ok {i}") for i in range(params.successes)]
        ids.append(generate("fake:nsfw"))
        canceled = generate("to cancel")
        call("POST", f"/generations/{canceled}/cancel")
        ids.append(canceled)
        stack.fake.inject(Fault.server_error(500).on("create").repeat(2))
        ids.append(generate("after two 500s"))
        time.sleep(1.0)
        stack.fake.inject(Fault.status(problems.unauthenticated(True)).on("create"))
        ids.append(generate("refused token"))
        time.sleep(1.0)
        stack.proxy.fail_next(3, method="PUT")
        ids.append(generate("storage hiccup"))
        for wrong in (replicate_token, s3_secret, api_token[:-1] + "0", "mg_000000000000_" + "0" * 40):
            call("GET", "/generations", token=wrong)
        call("GET", "/status/does-not-exist")
        call("GET", "/generations?phase=Failed")
        call("GET", "/", token=None)
        bodies = stack.wait_terminal(namespace, ids, params.timeout)
        for name in ids:
            call("GET", f"/status/{name}")
        call("GET", "/generations")
        operator_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10, trust_env=False).text
        gateway_metrics = call("GET", "/metrics", token=None).text
    finally:
        gateway.stop()
        operator.stop()

    client: Any = k8s.ApiClient()  # only to turn Event models into JSON-ready dicts
    sources = {
        "MediaGenerations (metadata, spec, status)": json.dumps(stack.generations(namespace)),
        "Events": json.dumps([client.sanitize_for_serialization(e) for e in stack.events(namespace)]),
        "operator log": operator.logs(),
        "gateway log": gateway.logs(),
        "operator metrics": operator_metrics,
        "gateway metrics": gateway_metrics,
        "gateway answers": "\n".join(answers),
    }
    leaks = scan(sources, known)
    # The control: the search finds the token where it belongs, in the requests to Replicate's API.
    api_requests = [r for r in stack.fake.request_log if r.name != "file"]
    control = scan({"requests to Replicate's API": json.dumps([dict(r.headers) for r in api_requests])}, known)
    downloads = stack.fake.requests_to("file")[files_before:]
    with_auth = sum(1 for request in downloads if "authorization" in request.headers)
    if with_auth:
        leaks.append(f"the Replicate token was sent with {with_auth} of {len(downloads)} output downloads")
    phases: dict[str, int] = {}
    for body in bodies.values():
        phase = str((body.get("status") or {}).get("reason") or "?")
        phases[phase] = phases.get(phase, 0) + 1
    crashes = checks.operator_crashes(operator.logs())
    return Outcome(
        name="secret_hygiene",
        survived=not leaks and bool(control),
        headline={"secret_leaks": len(leaks)},
        details={
            "namespace": namespace,
            "secrets": sorted(known),
            "sources": {name: len(text) for name, text in sources.items()},
            "outcomes_by_reason": phases,
            "output_downloads_checked": len(downloads),
            "gateway_answers": len(answers),
            "leaks": leaks,
            "control_found": control,
            "operator_crash_lines": len(crashes),
        },
        notes=[f"leak: {leak}" for leak in leaks],
        seconds=time.monotonic() - began,
    )
