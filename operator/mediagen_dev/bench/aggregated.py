"""What the aggregation hop adds to ``POST generate`` (issue 16): the same gateway process answers the standalone
``POST /generate`` (plain HTTP, an API token) and the aggregated ``.../namespaces/NS/generate`` (through
kube-apiserver, a user's client certificate, RBAC by SubjectAccessReview), requests alternating between the two in
one run so both see the same machine. ``N`` requests each, one at a time, after ten of each to warm up; no operator
runs (the generations stay Pending), and the gateway's quota and rate limit are off so neither path is throttled.

Reported: ``aggregated_overhead_ms`` with p50/p99 of each path, their difference, and the percentiles of the
per-pair differences (each aggregated request against the standalone one just before it). The aggregated path pays for
kube-apiserver's authentication, authorization, audit (on in the benchmark plane) and APF, a TLS hop to the gateway,
and the gateway's SubjectAccessReview (cached for five seconds per user, verb and namespace, so most requests reuse
one; the misses are in the p99).
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from mediagen.gateway.apigroup import APISERVICE_NAME, PREFIX
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client
from mediagen_dev.aggregated_api import SERVICE, AggregatedAPI
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.stats import summary
from mediagen_dev.gateway_process import GatewayProcess

WARMUP = 10
USER = "bench-user"
# As curl and urllib3 do: httpx writes a request's headers and body separately, and without it Nagle holds the body
# back until the server's delayed ACK of the headers (40 ms on Linux): a cost of the client, not of either path.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _user_client(stack: Stack, namespace: str, workdir: Path) -> httpx.Client:
    """kube-apiserver as a user who may create mediagenerations in ``namespace`` (a Role, as in production)."""
    plane = stack.plane
    kubeconfig = plane.user_kubeconfig(USER)
    credentials = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    cert, key = workdir / "user.crt", workdir / "user.key"
    cert.write_bytes(base64.b64decode(credentials["client-certificate-data"]))
    key.write_bytes(base64.b64decode(credentials["client-key-data"]))
    resource = "--resource=mediagenerations.mediagen.fleek.xyz"
    plane.kubectl("create", "role", "generate", "-n", namespace, "--verb=create", resource)
    plane.kubectl("create", "rolebinding", "generate", "-n", namespace, "--role=generate", f"--user={USER}")
    context = ssl.create_default_context(cafile=str(plane.ca_file))
    context.load_cert_chain(cert, key)
    transport = httpx.HTTPTransport(verify=context, socket_options=NO_DELAY)
    return httpx.Client(base_url=plane.server, transport=transport, timeout=30, trust_env=False)


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``aggregated_overhead_ms``: p50/p99 of standalone and aggregated ``POST generate`` and the difference."""
    count = scale.aggregated_requests
    namespace = stack.namespace("aggregated")
    workdir = stack.workdir / "aggregated"
    api = AggregatedAPI.prepare(workdir)
    token, _ = TokenAdmin(load_api_client(str(stack.plane.kubeconfig)), namespace).create(namespace, "bench")
    env = {
        "MEDIAGEN_GATEWAY_NAMESPACE": namespace,
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "text",
        "MEDIAGEN_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
        "MEDIAGEN_GATEWAY_MAX_INFLIGHT_PER_TENANT": "0",
        **api.gateway_env,
    }
    samples: dict[str, list[float]] = {"standalone": [], "aggregated": []}
    try:
        with GatewayProcess(stack.plane.kubeconfig, env, workdir / "gateway.log") as gateway:
            api.register(stack.plane)
            standalone = httpx.Client(
                base_url=gateway.url,
                headers={"Authorization": f"Bearer {token}"},
                transport=httpx.HTTPTransport(socket_options=NO_DELAY),
                timeout=30,
                trust_env=False,
            )
            with standalone, _user_client(stack, namespace, workdir) as aggregated:
                paths = {
                    "standalone": (standalone, "/generate"),
                    "aggregated": (aggregated, f"{PREFIX}/namespaces/{namespace}/generate"),
                }
                for index in range(WARMUP + count):
                    for name, (client, path) in paths.items():
                        body = {"model": "bench/none", "input": {"prompt": f"{name} {index}"}}
                        began = time.perf_counter()
                        answer = client.post(path, json=body)
                        elapsed = (time.perf_counter() - began) * 1000
                        if answer.status_code != 202:
                            raise RuntimeError(f"{name} POST answered {answer.status_code}: {answer.text[:300]}")
                        if index >= WARMUP:
                            samples[name].append(elapsed)
    finally:
        stack.plane.kubectl("delete", "apiservice", APISERVICE_NAME, "--ignore-not-found")
        stack.plane.kubectl("delete", "service", SERVICE, "-n", api.namespace, "--ignore-not-found")
    standalone_ms, aggregated_ms = summary(samples["standalone"]), summary(samples["aggregated"])
    # Each aggregated request right after its standalone twin: their difference is the hop, with the machine's
    # load of that moment on both sides (the machine may be shared).
    paired = summary([a - s for s, a in zip(samples["standalone"], samples["aggregated"], strict=True)])
    return {
        "aggregated_overhead_ms": {
            "requests": count,
            "standalone": {k: v for k, v in standalone_ms.items() if k != "quantiles"},
            "aggregated": {k: v for k, v in aggregated_ms.items() if k != "quantiles"},
            "added": {q: round(float(aggregated_ms[q]) - float(standalone_ms[q]), 1) for q in ("p50", "p99")},
            "added_paired": {k: v for k, v in paired.items() if k in ("p50", "p95", "p99", "min", "max")},
        }
    }
