"""Memory among many maximum-size MediaGenerations (issue 13): the gateway's and the operator's RSS while ``N``
finished generations with ``spec.input`` at its bound exist in one namespace and the gallery, the listing and a
POST are exercised.

The input is the largest the policy allows (64 KiB as :func:`~mediagen.api.input_limits.input_size` measures it)
in the shape that costs Python the most memory per measured byte: 3,840 two-character strings in 60 lists (each
a string object of its own once parsed, ~50 bytes for 5 counted) and three ~15 KiB strings. The generations are
finished (status written by the benchmark), as a namespace's history is; one more, created through the gateway,
runs through the operator during the run.

Order: create the ``N`` objects; start the operator among them (kopf's initial listing) and wait until it has
run a sentinel generation (so its listing is over); start the gateway; exercise the gallery three times, every
listing page (limit 500, served 100 at a time), a phase-filtered page and a POST whose generation is followed to
its end. Both processes' RSS is sampled every 50 ms throughout; the peaks (and ``VmHWM``) are the result, next to
the chart's memory limits.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import yaml

from mediagen.api.input_limits import input_size
from mediagen.api.types import API_VERSION, GROUP, KIND, MAX_INPUT_STRING_BYTES, MAX_INPUT_TOTAL_BYTES, PLURAL, VERSION
from mediagen.gateway.token_admin import TokenAdmin
from mediagen.kube.client import load_api_client
from mediagen_dev.bench import drive
from mediagen_dev.bench.bench_stack import Stack
from mediagen_dev.bench.config import Scale
from mediagen_dev.bench.fake import FakeService
from mediagen_dev.bench.proc import RssSampler, peak_rss_mib, rss_mib
from mediagen_dev.gateway_process import GatewayProcess
from mediagen_dev.paths import CHART_DIR

SENTINEL_MODEL = "bench/instant"


def max_size_input() -> dict[str, Any]:
    """An input of exactly MAX_INPUT_TOTAL_BYTES, shaped for the largest parsed size (see the module docstring)."""
    value: dict[str, Any] = {f"l{i:02d}": [f"{i % 10}{j % 10}" for j in range(64)] for i in range(60)}
    value |= {"s0": "", "s1": "", "s2": ""}
    rest = MAX_INPUT_TOTAL_BYTES - input_size(value)
    for i in range(3):
        value[f"s{i}"] = "x" * min(MAX_INPUT_STRING_BYTES, rest // (3 - i))
        rest = MAX_INPUT_TOTAL_BYTES - input_size(value)
    assert input_size(value) == MAX_INPUT_TOTAL_BYTES, input_size(value)
    return value


def _chart_limit_mib(component: str) -> float:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    memory = str(values[component]["resources"]["limits"]["memory"])
    return float(memory.removesuffix("Mi")) if memory.endswith("Mi") else float(memory.removesuffix("Gi")) * 1024


def _create_finished(stack: Stack, namespace: str, count: int) -> float:
    """Create ``count`` maximum-size generations and mark them Succeeded; returns the seconds it took."""
    began = time.monotonic()
    spec = {"model": "bench/history", "input": max_size_input()}

    def one(index: int) -> None:
        name = f"max-{index:05d}"
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}
        stack.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        status = {"status": {"phase": "Succeeded", "reason": "Succeeded", "url": "https://media.example/x.png"}}
        stack.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, status)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - began


def _exercise(client: httpx.Client) -> dict[str, Any]:
    """Gallery (3x), every listing page, one filtered page, one POST followed to its end; seconds of each."""
    seconds: dict[str, Any] = {}
    began = time.monotonic()
    for _ in range(3):
        client.get("/").raise_for_status()
    seconds["gallery_3x"] = round(time.monotonic() - began, 2)
    began, url, listed, pages = time.monotonic(), "/generations?limit=500", 0, 0
    while url:
        page = client.get(url)
        page.raise_for_status()
        body = page.json()
        listed, pages = listed + len(body["items"]), pages + 1
        url = f"/generations?limit=500&continue={body['continue']}" if body["continue"] else ""
    seconds["listing_all"] = round(time.monotonic() - began, 2)
    client.get("/generations?phase=Succeeded&limit=100").raise_for_status()
    began = time.monotonic()
    created = client.post("/generate", json={"model": SENTINEL_MODEL, "input": {"prompt": "one more"}})
    created.raise_for_status()
    deadline = time.monotonic() + 120
    while not client.get(f"/status/{created.json()['id']}").json()["done"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the POSTed generation did not finish within 120 s")
        time.sleep(0.1)
    seconds["post_to_done"] = round(time.monotonic() - began, 2)
    return {"seconds": seconds, "listed": listed, "pages": pages}


def run(stack: Stack, scale: Scale) -> dict[str, Any]:
    """``rss_mb_max_objects`` ({gateway, operator}, peak MiB) and the run's details under ``max_objects``."""
    count = scale.max_objects_count
    namespace = stack.namespace("maxobjects")
    create_seconds = _create_finished(stack, namespace, count)
    stored = stack.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "max-00000")
    object_bytes = len(json.dumps(stored, separators=(",", ":")).encode())
    with FakeService() as service:
        service.fake.add_model(SENTINEL_MODEL, drive.INSTANT)
        with stack.operator(namespace, service.base_url, "maxobjects") as operator:
            assert operator.pid is not None
            with RssSampler(operator.pid, interval=0.05) as operator_rss:
                began = time.monotonic()
                drive.create_all(stack.custom, namespace, [drive.manifest("sentinel", SENTINEL_MODEL)])
                drive.wait_for_phases(stack.custom, namespace, count + 1, timeout=600)
                operator_start_seconds = time.monotonic() - began
                operator_after_start = rss_mib(operator.pid)
                gateway, details = _gateway_run(stack, namespace)
            operator_peak = max(operator_rss.peak, peak_rss_mib(operator.pid))
    limits = {"gateway": _chart_limit_mib("gateway"), "operator": _chart_limit_mib("operator")}
    return {
        "rss_mb_max_objects": {"gateway": gateway["peak"], "operator": round(operator_peak, 1)},
        "max_objects": {
            "objects": count,
            "input_bytes": MAX_INPUT_TOTAL_BYTES,
            "object_json_bytes": object_bytes,
            "create_seconds": round(create_seconds, 1),
            "operator_start_to_sentinel_done_seconds": round(operator_start_seconds, 1),
            "operator_rss_mb_after_start": round(operator_after_start, 1),
            "gateway_rss_mb_before": gateway["before"],
            "chart_limits_mb": limits,
            "within_limits": gateway["peak"] <= limits["gateway"] and operator_peak <= limits["operator"],
            **details,
        },
    }


def _gateway_run(stack: Stack, namespace: str) -> tuple[dict[str, float], dict[str, Any]]:
    token, _ = TokenAdmin(load_api_client(str(stack.plane.kubeconfig)), namespace).create(namespace, "bench")
    env = {
        "MEDIAGEN_GATEWAY_NAMESPACE": namespace,
        "MEDIAGEN_GATEWAY_LOG_FORMAT": "text",
        "MEDIAGEN_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
    }
    with GatewayProcess(stack.plane.kubeconfig, env, stack.workdir / "gateway-maxobjects.log") as gateway:
        pid = gateway.pid
        assert pid is not None
        before = rss_mib(pid)
        with RssSampler(pid, interval=0.05) as sampler, gateway.client(token) as client:
            exercised = _exercise(client)
        peak = max(sampler.peak, peak_rss_mib(pid))
    return {"peak": round(peak, 1), "before": round(before, 1)}, exercised
