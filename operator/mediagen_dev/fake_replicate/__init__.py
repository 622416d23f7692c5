"""A faithful fake of Replicate's HTTP API for tests (what it implements:
docs/replicate.md#what-the-fake-replicate-implements).

Serves replicate 1.0.7 and plain httpx alike, in-process (``httpx.ASGITransport(app=fake)``) or over real
loopback HTTP (:class:`FakeReplicateServer`). Time comes from an injectable clock, and state is computed
from it on every read, so tests advance a :class:`ManualClock` instead of sleeping::

    clock = ManualClock()
    fake = FakeReplicate(clock=clock, models={"acme/flux": ModelScript(queue_seconds=2, processing_seconds=5)})
    with FakeReplicateServer(fake) as server:
        client = replicate.Client(api_token=FAKE_TOKEN, base_url=server.base_url)
        prediction = client.predictions.create(model="acme/flux", input={"prompt": "a corgi"})
        clock.advance(10)
        assert client.predictions.get(prediction.id).status == "succeeded"

Per-request overrides travel in the input (``"_fake": {"outcome": "failed", "error": "oom"}``) or in the
prompt (``"fake:nsfw"``); see :mod:`.script`. Faults: ``fake.inject(Fault.throttled(5).on("create"))``.
"""

from mediagen_dev.fake_replicate.clock import Clock, ManualClock, wall_clock
from mediagen_dev.fake_replicate.config import FakeConfig
from mediagen_dev.fake_replicate.fake import DroppedConnection, FakeReplicate, RecordedRequest
from mediagen_dev.fake_replicate.faults import Fault, RateLimits
from mediagen_dev.fake_replicate.files import OutputFile, expected_sha256, png_bytes
from mediagen_dev.fake_replicate.logs import LogLine, LogScript, TqdmBar
from mediagen_dev.fake_replicate.problems import Canned
from mediagen_dev.fake_replicate.script import ERRORS, PROMPT_PRESETS, ModelScript, demo_models, version_for
from mediagen_dev.fake_replicate.server import FakeReplicateServer
from mediagen_dev.fake_replicate.webhooks import Delivery, WebhookSender, sign

FAKE_TOKEN = "r8_fake_token"  # noqa: S105 - a test credential the fake accepts, not a secret
"""The API token the fake accepts by default (``FakeConfig.valid_tokens``)."""

__all__ = [
    "ERRORS",
    "FAKE_TOKEN",
    "PROMPT_PRESETS",
    "Canned",
    "Clock",
    "Delivery",
    "DroppedConnection",
    "FakeConfig",
    "FakeReplicate",
    "FakeReplicateServer",
    "Fault",
    "LogLine",
    "LogScript",
    "ManualClock",
    "ModelScript",
    "OutputFile",
    "RateLimits",
    "RecordedRequest",
    "TqdmBar",
    "WebhookSender",
    "demo_models",
    "expected_sha256",
    "png_bytes",
    "sign",
    "version_for",
    "wall_clock",
]
