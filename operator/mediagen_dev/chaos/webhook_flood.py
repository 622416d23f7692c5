"""A webhook flood: many connections at once to the operator's webhook port, each with headers that look right
(a current timestamp, a ``v1`` signature, a mediagen marker) and a large body sent slowly, the way a hostile sender
would hold memory. The receiver used to read 4 MiB per connection before checking anything (40 connections: the
operator's RSS went from 57 to 222 MiB). ``webhook_flood_rss_growth_mb`` is the operator's peak RSS during the flood
less its RSS before; afterwards a generation must still succeed and a signed delivery still be answered.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from mediagen_dev.bench.proc import peak_rss_mib, reset_peak, rss_mib
from mediagen_dev.chaos.chaos_stack import Stack, phase_of
from mediagen_dev.chaos.kills import start_and_wait
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.controlplane.ports import free_ports
from mediagen_dev.fake_replicate import ModelScript, sign

MIB = 1024 * 1024


@dataclass(frozen=True)
class Params:
    """How big the flood is."""

    connections: int
    body_bytes: int
    """What each sender declares and tries to send."""
    seconds: float
    """How long each sender takes to send its body."""


SMALL = Params(connections=20, body_bytes=2 * MIB, seconds=3)
FULL = Params(connections=200, body_bytes=4 * MIB, seconds=10)


async def _sender(port: int, secret: str, index: int, params: Params) -> str:
    """One hostile delivery; returns the status line it got (or what ended it)."""
    body_chunk = b" " * 65536
    stamp = int(time.time())
    signature = sign(secret, f"msg_flood_{index}", stamp, b"{}")  # signed for another body: forged
    head = (
        f"POST /replicate-webhook?mg=00000000-0000-0000-0000-{index:012d}.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"webhook-id: msg_flood_{index}\r\nwebhook-timestamp: {stamp}\r\nwebhook-signature: {signature}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {params.body_bytes}\r\n\r\n"
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as err:
        return type(err).__name__
    try:
        writer.write(head.encode())
        chunks = max(1, params.body_bytes // len(body_chunk))
        pause = params.seconds / chunks
        for _ in range(chunks):
            if reader.at_eof():
                break
            writer.write(body_chunk)
            await writer.drain()
            await asyncio.sleep(pause)
        line = await asyncio.wait_for(reader.readline(), timeout=15)
        return line.decode(errors="replace").strip() or "closed"
    except (OSError, TimeoutError) as err:
        return type(err).__name__
    finally:
        writer.close()


async def _flood(port: int, secret: str, params: Params) -> dict[str, int]:
    answers = await asyncio.gather(*(_sender(port, secret, i, params) for i in range(params.connections)))
    counts: dict[str, int] = {}
    for answer in answers:
        key = answer.split(" ")[1] if answer.startswith("HTTP/") else answer
        counts[key] = counts.get(key, 0) + 1
    return counts


def run(stack: Stack, params: Params) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    namespace = stack.namespace("chaos-hook")
    (port,) = free_ports(1)
    env = stack.operator_env(
        namespace,
        MEDIAGEN_WEBHOOK_PORT=str(port),
        MEDIAGEN_WEBHOOK_BIND_ADDRESS="127.0.0.1",
        MEDIAGEN_WEBHOOK_URL=f"http://127.0.0.1:{port}/replicate-webhook",
        MEDIAGEN_WEBHOOK_SECRET=stack.fake.webhook_secret,
        MEDIAGEN_WEBHOOK_POLL_INITIAL_SECONDS="1",
        MEDIAGEN_WEBHOOK_POLL_MAX_SECONDS="2",
    )
    operator = stack.operator(f"webhook-flood-{namespace}", env)
    start_and_wait(operator)
    pid = operator.pid
    assert pid is not None
    time.sleep(2.0)  # the RSS of an operator that has settled after its start
    before = rss_mib(pid)
    peak_measured = reset_peak(pid)
    answers = asyncio.run(_flood(port, stack.fake.webhook_secret, params))
    peak = peak_rss_mib(pid) if peak_measured else rss_mib(pid)
    growth = round(max(0.0, peak - before), 1)
    # Still working: a generation succeeds, and a signed delivery is verified and answered.
    model = f"{namespace}/after-flood"
    stack.fake.add_model(model, ModelScript(queue_seconds=0.1, processing_seconds=0.3))
    stack.create(namespace, [("after-flood", {"model": model, "input": {"prompt": "still here?"}})])
    body = json.dumps({"id": "p-flood", "status": "succeeded", "output": []}).encode()
    stamp = int(time.time())
    signed = httpx.post(
        f"http://127.0.0.1:{port}/replicate-webhook?mg=unknown-uid.1",
        content=body,
        headers={
            "webhook-id": "msg_after",
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(stack.fake.webhook_secret, "msg_after", stamp, body),
        },
        timeout=10,
    )
    final = stack.wait_terminal(namespace, ["after-flood"], timeout=60)
    succeeded = phase_of(final.get("after-flood", {})) == "Succeeded"
    operator.stop()
    notes = []
    if not succeeded:
        notes.append("a generation created after the flood did not succeed")
    if signed.status_code != 503:
        notes.append(f"a signed delivery after the flood got {signed.status_code}, not 503 (unknown resource)")
    if "200" in answers or "204" in answers:
        notes.append(f"forged deliveries were accepted: {answers}")
    return Outcome(
        name="webhook_flood",
        survived=succeeded and signed.status_code == 503 and not ({"200", "204"} & set(answers)),
        headline={"webhook_flood_rss_growth_mb": growth},
        details={
            "connections": params.connections,
            "body_bytes": params.body_bytes,
            "seconds": params.seconds,
            "answers": answers,
            "rss_before_mb": round(before, 1),
            "rss_peak_mb": round(peak, 1),
            "peak_measured_with_vmhwm": peak_measured,
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
