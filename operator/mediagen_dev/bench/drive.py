"""Driving MediaGenerations as a user would, through the API: create many at once, wait for final phases."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch

from mediagen.api.types import API_VERSION, GROUP, KIND, PLURAL, VERSION
from mediagen_dev.fake_replicate import LogScript, ModelScript
from mediagen_dev.fake_replicate.logs import ONE_BAR

FINAL = frozenset({"Succeeded", "Failed", "Canceled"})
QUIET = LogScript(())
"""No log lines: no progress writes, so every write of a generation is a lifecycle write."""
TQDM = ONE_BAR
"""One progress bar, as most image and video models print."""
INSTANT = ModelScript(queue_seconds=0.0, processing_seconds=0.0, logs=QUIET)
"""Done the moment it is created: the create response already carries the output."""


def slow_model(seconds: float) -> ModelScript:
    """A quiet prediction that runs for ``seconds`` (after one second in the queue): it waits, we poll."""
    return ModelScript(queue_seconds=1.0, processing_seconds=seconds, logs=QUIET)


def manifest(name: str, model: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A MediaGeneration for ``model`` with a one-word prompt."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"model": model, "input": {"prompt": f"benchmark {name}"}},
    }


def create_all(api: k8s.CustomObjectsApi, namespace: str, bodies: Sequence[dict[str, Any]], threads: int = 8) -> float:
    """Create every body at once from ``threads`` threads (a user's burst); returns the wall seconds it took."""
    began = time.monotonic()

    def create(body: dict[str, Any]) -> None:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    if len(bodies) == 1:
        create(bodies[0])
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(bodies))) as pool:
            list(pool.map(create, bodies))
    return time.monotonic() - began


def list_raw(api: k8s.CustomObjectsApi, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    """Every MediaGeneration in ``namespace`` (matching ``selector``), parsed from the raw response."""
    response = api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=selector, _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data)["items"]  # type: ignore[attr-defined]
    return items


def phases(api: k8s.CustomObjectsApi, namespace: str, selector: str = "") -> Counter[str]:
    """How many resources are in each phase (``New`` before the operator wrote any status)."""
    return Counter(_phase(item) for item in list_raw(api, namespace, selector))


def _phase(item: dict[str, Any]) -> str:
    return str((item.get("status") or {}).get("phase") or "New")


def wait_for_phases(
    api: k8s.CustomObjectsApi,
    namespace: str,
    count: int,
    *,
    wanted: frozenset[str] = FINAL,
    selector: str = "",
    timeout: float = 600.0,
) -> Counter[str]:
    """Wait until ``count`` resources are in one of the ``wanted`` phases; returns the phase counts.

    One list, then a watch from its resourceVersion: the API server sends changes only, so waiting costs it
    next to nothing (re-listing 1,000 objects twice a second would cost it a good part of a core). Raises
    TimeoutError with the counts seen last."""
    deadline = time.monotonic() + timeout
    response = api.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=selector, _preload_content=False
    )
    listing = json.loads(response.data)  # type: ignore[attr-defined]
    current = {item["metadata"]["name"]: _phase(item) for item in listing["items"]}
    version = listing["metadata"]["resourceVersion"]

    def done() -> bool:
        return sum(1 for phase in current.values() if phase in wanted) >= count

    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"{namespace}: not {count} resources in {sorted(wanted)} after {timeout:.0f} s: "
                f"{dict(Counter(current.values()))}"
            )
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            label_selector=selector,
            resource_version=version,
            timeout_seconds=max(1, min(60, int(remaining))),
            allow_watch_bookmarks=False,
        )
        for event in stream:
            if event["type"] == "ERROR":
                raise RuntimeError(f"watching {namespace} failed: {event['object']}")
            item = event["object"]
            version = item["metadata"]["resourceVersion"]
            if event["type"] == "DELETED":
                current.pop(item["metadata"]["name"], None)
            else:
                current[item["metadata"]["name"]] = _phase(item)
            if done():
                stream.close()
                break
    return Counter(current.values())
