"""A create whose answer was lost is found again after a restart with another MEDIAGEN_WEBHOOK_URL (webhooks turned
on, say): one paid prediction, not two."""

from __future__ import annotations

import time

from mediagen.api.types import GROUP, PLURAL, VERSION
from mediagen_dev.chaos.chaos_stack import Stack
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.fake_replicate import Fault, ModelScript


def test_a_lost_create_is_found_after_the_webhook_url_changed(stack: Stack) -> None:
    namespace = stack.namespace("chaos-hookurl")
    model = f"{namespace}/model"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.2, processing_seconds=1.0))
    before = stack.operator(
        "before", stack.operator_env(namespace, MEDIAGEN_WEBHOOK_URL="https://before.example/replicate-webhook")
    )
    start_and_wait(before)
    stack.fake.inject(Fault.held(5.0).on("create"))  # the prediction is made at once, its answer comes 5 s late
    stack.create(namespace, [("gen", {"model": model, "input": {"prompt": "once"}})])
    body = stack.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gen")
    marker = f"{body['metadata']['uid']}.1"  # type: ignore[index]
    deadline = time.monotonic() + 30
    while stack.fake.creates_by_marker.get(marker, 0) == 0:
        assert time.monotonic() < deadline, "the create never reached the fake"
        time.sleep(0.05)
    before.kill()  # the answer, and with it the prediction's id, is lost
    after = stack.operator(
        "after", stack.operator_env(namespace, MEDIAGEN_WEBHOOK_URL="https://after.example/hooks?team=a")
    )
    start_and_wait(after)
    final = stack.wait_terminal(namespace, ["gen"], timeout=60)["gen"]
    assert final["status"]["phase"] == "Succeeded", final.get("status")
    assert stack.fake.creates_by_marker[marker] == 1
    assert "found prediction" in after.logs()
