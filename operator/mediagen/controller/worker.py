"""One worker per in-flight MediaGeneration: ask :func:`decide`, perform the step, repeat.

The worker owns all I/O for its resource and nothing else. State that matters survives in the resource
(status, the pending-create annotation, the finalizer); :class:`Memory` only saves calls between steps.
This module is the loop; performing a step is :mod:`.worker_steps`, taking in predictions (calls and webhooks)
:mod:`.worker_intake`, and events, logs and metrics :mod:`.worker_telemetry`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mediagen.api.types import TERMINAL_PHASES, Phase
from mediagen.controller.watch_versions import Versions
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.controller.worker_intake import Intake
from mediagen.controller.worker_steps import StepRunner
from mediagen.controller.worker_telemetry import Telemetry
from mediagen.generators.base import Prediction
from mediagen.kube.client import Conflict, Gone
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.decide import decide
from mediagen.reconcile.state import (
    CancelRemote,
    Create,
    Done,
    InvalidResource,
    MarkPending,
    Memory,
    Poll,
    Record,
    Recover,
    Upload,
    View,
    WriteProgress,
)

_SLOT_STEPS = (MarkPending, Recover, Create, Record, Poll, WriteProgress, Upload, CancelRemote)
MAX_BACKOFF_SECONDS = 30.0
INVALID_RECHECK_SECONDS = 300.0
"""How often an unreadable resource is read again without a watch event (someone may have fixed it)."""


def backoff_seconds(failures: int) -> float:
    """The wait after ``failures`` failures in a row: 1, 2, 4 … seconds, at most :data:`MAX_BACKOFF_SECONDS`."""
    return min(MAX_BACKOFF_SECONDS, 0.5 * 2.0 ** max(1, failures))


class Worker:
    """Drives one MediaGeneration to a final phase (and through deletion).

    ``refresh``: read the resource again before the first decision (a worker restarted by the supervisor's
    watchdog holds the body its predecessor last had)."""

    def __init__(self, body: dict[str, Any], deps: WorkerDeps, *, refresh: bool = False) -> None:
        self.body = body
        self.deps = deps
        self.memory = Memory()
        self.versions = Versions.of(body)
        self.recovered: str | None = None
        """The id of a prediction this worker found again on Replicate (its Running event says Recovered)."""
        self._wake = asyncio.Event()
        self._has_slot = False
        self._stale = refresh
        self._reported_invalid: str | None = None
        self.telemetry = Telemetry(deps, lambda: self.body, self._known_prediction_id)
        self.intake = Intake(self.memory, lambda: self.body, self.telemetry, self._wake)
        self.steps = StepRunner(self)

    @property
    def label(self) -> str:
        """``namespace/name``."""
        return self.telemetry.label

    def update(self, body: dict[str, Any]) -> None:
        """A watch event for this resource: use it if it is news, and wake up for the user's changes."""
        if not self.versions.is_news(body):
            return  # older than (or the very version) a write or read of ours already returned
        old_meta, new_meta = self.body.get("metadata", {}), body.get("metadata", {})
        self.body = body
        # Our own status writes come back through the watch too; only the user's changes need a wake-up (and any
        # change, while the resource cannot be read: it may be the fix).
        if (
            old_meta.get("generation") != new_meta.get("generation")
            or (new_meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp"))
            or self._reported_invalid is not None
        ):
            self._wake.set()

    def offer(self, attempt: int, prediction: Prediction) -> bool:
        """A finished prediction delivered by a webhook (see :meth:`Intake.offer`). Returns True if used."""
        return self.intake.offer(attempt, prediction)

    async def run(self) -> None:
        """Work until there is nothing left to decide; never raises except on cancellation.

        Nothing but a decision (Done), the resource's disappearance or cancellation ends a worker: no watch event
        may ever come to start another one (kopf resumes its watch where it left off), and the resource would
        stay in flight forever. So every failure of our own I/O (the API server restarting, a blip while
        re-reading after a conflict, a bug) backs off, re-reads the resource and decides again; everything it
        learnt is still in memory, so nothing is created twice. A resource that cannot be read gets a Warning
        event and a condition saying why, and is read again when it changes."""
        failures = 0
        parsed: tuple[dict[str, Any], View] | None = None
        try:
            while True:
                try:
                    if self._stale:
                        await self._reread()
                    # Parse the body only when it changed: most steps (create, upload) leave it as it was.
                    if parsed is None or parsed[0] is not self.body:
                        parsed = (self.body, self._parse(self.body))
                        self._reported_invalid = None  # readable (again)
                    view = parsed[1]
                    now = self.deps.clock.now()
                    if view.deleting and self.memory.deletion_seen is None:
                        self.memory.deletion_seen = now
                    in_flight = None if view.terminal or view.deleting else (view.status.phase or Phase.PENDING)
                    # A generation an edit started is in flight since it began, not since the resource's creation.
                    self.telemetry.track(in_flight, (view.began or now) if view.first_attempt > 1 else None)
                    step = decide(view, self.memory, now, self.deps.pacing)
                    if isinstance(step, Done):
                        return
                    needs_slot = isinstance(step, _SLOT_STEPS) and not view.deleting
                    if needs_slot and not self._has_slot:
                        await self.deps.inflight.acquire()
                        self._has_slot = True
                        continue  # the wait for a slot may have been long: decide again with the time it is now
                    if not needs_slot:
                        self._release_slot()
                    self.memory.failure = None  # decided upon: the step carries what it needs of it
                    await self.steps.perform(view, step, now)
                    failures = 0
                except Gone:
                    return  # deleted under us; a DELETED event ends this worker anyway
                except asyncio.CancelledError:
                    raise
                except Conflict:
                    failures += 1
                    self._stale = True  # the object changed since we read it: read it again, at once the first time
                    if failures > 1:
                        await self.sleep(backoff_seconds(failures - 1))
                except InvalidResource as err:
                    failures += 1
                    await self._report_invalid(str(err))
                    await self.sleep(min(INVALID_RECHECK_SECONDS, backoff_seconds(failures) * 10))
                    self._stale = True
                except Exception as err:
                    failures += 1
                    delay = backoff_seconds(failures)
                    self.telemetry.log(logging.WARNING, "step failed (%s); retrying in %.1fs", _describe(err), delay)
                    self._stale = True
                    await self.sleep(delay)
        finally:
            self._release_slot()
            await self.telemetry.close()

    # -- what the steps use ------------------------------------------------------------------------------------

    async def sleep(self, seconds: float) -> bool:
        """Sleep, but wake early when the resource changes (a cancel must not wait for the next poll).

        Returns True when woken early."""
        self._wake.clear()
        if seconds > 0:
            await self.deps.clock.sleep(seconds, self._wake)
        return self._wake.is_set()

    async def write_status(self, view: View, patch: dict[str, Any]) -> None:
        """A JSON merge patch on the status; the answer is the body from now on."""
        self._took(await self.deps.kube.patch_status(view.namespace, view.name, patch))
        self.memory.last_status_write = self.deps.clock.now()

    async def patch_metadata(self, view: View, patch: dict[str, Any]) -> None:
        """A JSON merge patch on the object's metadata (guarded by the resourceVersion it carries)."""
        self._took(await self.deps.kube.patch_metadata(view.namespace, view.name, patch))

    def prediction_id(self, view: View) -> str | None:
        """The prediction this worker follows: the one in memory, else the recorded one."""
        if self.memory.prediction is not None:
            return self.memory.prediction.id
        return view.status.prediction.id if view.status.prediction else None

    # -- internals ---------------------------------------------------------------------------------------------

    def _known_prediction_id(self) -> str | None:
        return self.memory.prediction.id if self.memory.prediction else None

    def _took(self, body: dict[str, Any]) -> None:
        self.body = body
        self.versions.took(body)

    async def _reread(self) -> None:
        meta = self.body.get("metadata", {})
        self._took(await self.deps.kube.get(str(meta.get("namespace", "")), str(meta.get("name", ""))))
        self._stale = False

    def _parse(self, body: dict[str, Any]) -> View:
        """The view of ``body``. A resource being deleted is read without the status fields that cannot be read
        (whatever is readable still gets cleaned up); anything else unreadable raises :class:`InvalidResource`."""
        try:
            return View.from_body(body)
        except InvalidResource as err:
            if not body.get("metadata", {}).get("deletionTimestamp") or err.section != "status":
                raise
            status = {k: v for k, v in (body.get("status") or {}).items() if k not in err.fields}
            try:
                return View.from_body({**body, "status": status})
            except InvalidResource:
                return View.from_body({**body, "status": {}})

    async def _report_invalid(self, message: str) -> None:
        """Once per distinct problem: a Warning event, and (unless the phase is final, which never changes) the
        Succeeded condition saying what is wrong. Best effort: the loop backs off and tries again anyway."""
        if message == self._reported_invalid:
            return
        self.telemetry.log(logging.WARNING, "cannot read the resource: %s", message)
        try:
            await self.telemetry.event("Warning", patches.INVALID_RESOURCE, f"cannot read the resource: {message}")
            status = self.body.get("status") or {}
            if status.get("phase") not in {phase.value for phase in TERMINAL_PHASES}:
                meta = self.body.get("metadata", {})
                patch = patches.invalid_patch(int(meta.get("generation") or 1), message, self.deps.clock.now())
                self._took(await self.deps.kube.patch_status(meta.get("namespace", ""), meta.get("name", ""), patch))
            self._reported_invalid = message
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self.telemetry.log(logging.WARNING, "could not report the unreadable resource: %s", _describe(err))

    def _release_slot(self) -> None:
        if self._has_slot:
            self.deps.inflight.release()
            self._has_slot = False


def _describe(err: BaseException) -> str:
    """One line about an exception, for logs (the redaction filter scrubs secrets from it)."""
    status = getattr(err, "status", None)
    return f"{type(err).__name__}{f' HTTP {status}' if status else ''}: {str(err)[:300]}"
