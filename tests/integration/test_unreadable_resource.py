"""A status the API server accepts but the operator cannot read (a hand-edited timestamp that kube-openapi's
date-time pattern lets through): a Warning event and a condition say what is wrong, and the generation carries on
once it is fixed. The worker used to die of a ValidationError, silently."""

from __future__ import annotations

import time
from typing import Any

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.fake_replicate import ModelScript


def _wait(stack: Stack, namespace: str, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = stack.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gen")  # type: ignore[assignment]
        if check(body):
            return body
        assert time.monotonic() < deadline, f"{what}: {body.get('status')}"
        time.sleep(0.2)


def test_an_unreadable_status_is_reported_and_the_generation_carries_on_once_fixed(stack: Stack) -> None:
    namespace = stack.namespace("chaos-unreadable")
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=8.0))
    operator = stack.operator("unreadable", stack.operator_env(namespace))
    start_and_wait(operator)
    stack.create(namespace, [("gen", {"model": model, "input": {"prompt": "x"}})])
    _wait(stack, namespace, "running", lambda b: (b.get("status") or {}).get("phase") == "Running")
    broken = {"status": {"startTime": "2024-01-01T00:00:00x5Z"}}
    stack.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "gen", broken)

    def reported(body: dict[str, Any]) -> bool:
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c.get("reason") == "InvalidResource" for c in conditions)

    body = _wait(stack, namespace, "the condition", reported)
    statuses = {c["type"]: c["status"] for c in body["status"]["conditions"] if c["reason"] == "InvalidResource"}
    assert statuses == {"Succeeded": "Unknown", "Ready": "False", "Stalled": "True"}  # kstatus: Failed, for now
    assert all("status.startTime" in c["message"] for c in body["status"]["conditions"])
    events = [e for e in stack.events(namespace) if e.reason == "InvalidResource"]
    assert events and events[0].type == "Warning" and "status.startTime" in events[0].message
    fixed = {"status": {"startTime": body["metadata"]["creationTimestamp"]}}
    stack.api.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, "gen", fixed)
    final = stack.wait_terminal(namespace, ["gen"], timeout=120)["gen"]
    assert final["status"]["phase"] == "Succeeded", final["status"]
    operator.stop()
    assert "Traceback" not in operator.logs()
