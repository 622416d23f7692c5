"""One worker per in-flight MediaGeneration: ask :func:`decide`, perform the step, repeat.

The worker owns all I/O for its resource and nothing else. State that matters survives in the resource
(status, the pending-create annotation, the finalizer); :class:`Memory` only saves calls between steps.

It also tells the story: an event on every transition, with the reason the Succeeded condition gets (Running,
Uploading, the failure's reason on a retry, the final reason), plus Canceling when it stops a prediction;
log lines carrying the resource and the prediction id; and the metrics of :mod:`mediagen.controller.metrics`.
None of that adds a write to the MediaGeneration itself (events are objects of their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from mediagen.api.types import Phase
from mediagen.controller.metrics import model_label
from mediagen.controller.outputs import resign, store_outputs
from mediagen.controller.worker_deps import WorkerDeps
from mediagen.generators.base import TERMINAL_STATUSES, CreateRequest, GeneratorError, PermanentError, Prediction
from mediagen.kube.client import Conflict, Gone
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.decide import decide
from mediagen.reconcile.failures import Failure, Kind, from_exception
from mediagen.reconcile.progress import parse_progress
from mediagen.reconcile.state import (
    FINALIZER,
    PENDING_ANNOTATION,
    CancelRemote,
    Cleanup,
    Create,
    DeleteResource,
    Done,
    Finish,
    MarkPending,
    Memory,
    ObserveGeneration,
    PendingCreate,
    Poll,
    Record,
    Recover,
    RefreshURLs,
    ReleaseFinalizer,
    ScheduleRetry,
    Step,
    Upload,
    View,
    Wait,
    correlation,
)
from mediagen.storage.keys import resource_prefix

log = logging.getLogger(__name__)

# Look for a lost create a little before the marker's time: clocks of the operator and Replicate differ.
RECOVERY_CLOCK_SKEW = dt.timedelta(seconds=60)
_SLOT_STEPS = (MarkPending, Recover, Create, Record, Poll, Upload, CancelRemote)


def _creation_epoch(body: dict[str, Any]) -> float:
    """metadata.creationTimestamp as epoch seconds (now when missing or unreadable)."""
    try:
        return dt.datetime.fromisoformat(str(body["metadata"]["creationTimestamp"])).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()


def resource_version(body: dict[str, Any]) -> int:
    """The object's resourceVersion as a number (etcd revisions are), or -1 when it is not one."""
    try:
        return int(body.get("metadata", {}).get("resourceVersion", -1))
    except (TypeError, ValueError):
        return -1


class Worker:
    """Drives one MediaGeneration to a final phase (and through deletion)."""

    def __init__(self, body: dict[str, Any], deps: WorkerDeps) -> None:
        self.body = body
        self.deps = deps
        self.memory = Memory()
        self._wake = asyncio.Event()
        self._has_slot = False
        self._last_status_write = -1e9
        self._last_progress: int | None = None
        # Observability only: nothing below decides anything.
        spec = body.get("spec") or {}
        self._model = model_label(spec.get("model"), spec.get("deployment"))
        self._key = str(body.get("metadata", {}).get("uid") or self.label)
        self._created = _creation_epoch(body)
        self._tracked_phase: Phase | None = None
        self._finished_predictions: set[str] = set()
        self._recovered: str | None = None
        # A webhook can beat the create's own response: held until the create returns the same id.
        self._delivered: Prediction | None = None
        self._events_in_flight: set[asyncio.Task[None]] = set()

    def _ref(self) -> dict[str, Any]:
        """The resource's identity for log records (kopf's JSON format shows it as ``object``)."""
        meta = self.body.get("metadata", {})
        return {
            "apiVersion": "mediagen.fleek.xyz/v1alpha1",
            "kind": "MediaGeneration",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }

    def _log(self, level: int, message: str, *args: object, exc_info: bool = False) -> None:
        """Log with the resource's identity and the prediction id (where known) attached."""
        prediction = self.memory.prediction.id if self.memory.prediction else None
        if prediction is None:
            recorded = (self.body.get("status") or {}).get("prediction") or {}
            prediction = recorded.get("id")
        log.log(
            level,
            f"{self.label}: {message}",
            *args,
            exc_info=exc_info,
            extra={"k8s_ref": self._ref(), "prediction_id": prediction},
        )

    async def _event(self, type_: str, reason: str, message: str) -> None:
        """Post an event on the resource (a write of its own, never one to the MediaGeneration)."""
        await self.deps.kube.event(self.body, type_, reason, message)

    def _event_soon(self, type_: str, reason: str, message: str) -> None:
        """Post an event without waiting for it: for events on the way to the user's result (an API round trip
        each; events are best effort anyway). The worker waits for them before it ends."""
        task = asyncio.create_task(self.deps.kube.event(self.body, type_, reason, message))
        self._events_in_flight.add(task)
        task.add_done_callback(self._events_in_flight.discard)

    def _track(self, phase: Phase | None) -> None:
        """Report this resource to the in-flight gauges (``None``: not in flight any more)."""
        if phase is not self._tracked_phase:
            self._tracked_phase = phase
            self.deps.metrics.in_flight(self._key, phase, self._created)

    @property
    def label(self) -> str:
        meta = self.body.get("metadata", {})
        return f"{meta.get('namespace')}/{meta.get('name')}"

    def update(self, body: dict[str, Any]) -> None:
        """A newer version of the resource arrived from the watch: use it and wake up."""
        if 0 <= resource_version(body) <= resource_version(self.body):
            return  # older than (or the very version) a write of ours already returned
        old_meta, new_meta = self.body.get("metadata", {}), body.get("metadata", {})
        self.body = body
        # Our own status writes come back through the watch too; only the user's changes need a wake-up.
        if old_meta.get("generation") != new_meta.get("generation") or (
            new_meta.get("deletionTimestamp") and not old_meta.get("deletionTimestamp")
        ):
            self._wake.set()

    def offer(self, attempt: int, prediction: Prediction) -> bool:
        """A finished prediction delivered by a webhook: act on it now instead of at the next poll.

        Used only when it is the prediction this worker waits for (the id is in the signed body, the attempt
        only in the URL), so a replayed delivery for another resource changes nothing. Returns True if used."""
        known = self.memory.prediction
        if known is None:
            recorded = (self.body.get("status") or {}).get("prediction") or {}
            if recorded.get("id") != prediction.id:
                self._delivered = prediction  # the create has not returned yet (or it is not ours: dropped then)
                return False
            attempt = int(recorded.get("attempt") or attempt)
        elif known.id != prediction.id:
            self._delivered = prediction
            return False
        elif known.terminal:
            return False  # a repeated delivery, or the poll was quicker
        else:
            attempt = self.memory.prediction_attempt or attempt
        self._remember(prediction, attempt)
        self._wake.set()
        return True

    async def run(self) -> None:
        """Work until there is nothing left to do; never raises except on cancellation.

        A failure of our own I/O (the API server restarting, a network blip, a bug) must not end the worker:
        no watch event may ever come to start another one (kopf resumes its watch where it left off), and the
        resource would stay in flight forever. So the worker backs off, re-reads the resource and decides again;
        everything it learnt is still in memory, so nothing is created twice."""
        failures = 0
        parsed: tuple[dict[str, Any], View] | None = None
        try:
            while True:
                # Parse the body only when it changed: most steps (create, upload) leave it as it was.
                if parsed is None or parsed[0] is not self.body:
                    parsed = (self.body, View.from_body(self.body))
                view = parsed[1]
                try:
                    self._track(None if view.terminal or view.deleting else (view.status.phase or Phase.PENDING))
                    now = self.deps.now()
                    step = decide(view, self.memory, now, self.deps.pacing)
                    if isinstance(step, Done):
                        return
                    self.memory.failure = None  # decided upon: the step carries what it needs of it
                    await self._hold_slot(isinstance(step, _SLOT_STEPS))
                    await self._perform(view, step, now)
                    failures = 0
                except Gone:
                    return  # deleted under us; a DELETED event ends this worker anyway
                except Conflict:
                    self.body = await self.deps.kube.get(view.namespace, view.name)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    failures += 1
                    delay = min(30.0, 0.5 * 2.0**failures)
                    self._log(logging.WARNING, "step failed (%s); retrying in %.1fs", _describe(err), delay)
                    await self._sleep(delay)
                    with contextlib.suppress(Exception):  # still down: the next round backs off further
                        self.body = await self.deps.kube.get(view.namespace, view.name)
        finally:
            self._track(None)
            await self._hold_slot(False)
            if self._events_in_flight:
                await asyncio.wait(self._events_in_flight, timeout=2)

    async def _hold_slot(self, needed: bool) -> None:
        """Take or give back one of the operator-wide in-flight slots."""
        if needed and not self._has_slot:
            await self.deps.inflight.acquire()
            self._has_slot = True
        elif not needed and self._has_slot:
            self.deps.inflight.release()
            self._has_slot = False

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when the resource changes (a cancel must not wait for the next poll)."""
        self._wake.clear()
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _write_status(self, view: View, patch: dict[str, Any]) -> None:
        self.body = await self.deps.kube.patch_status(view.namespace, view.name, patch)
        self._last_status_write = self.deps.monotonic()

    async def _perform(self, view: View, step: Step, now: dt.datetime) -> None:
        mem, deps = self.memory, self.deps
        if isinstance(step, MarkPending):
            finalizers = list(self.body["metadata"].get("finalizers") or [])
            if FINALIZER not in finalizers:
                finalizers.append(FINALIZER)
            marker = PendingCreate(step.attempt, now).to_annotation()
            meta = {
                "resourceVersion": self.body["metadata"]["resourceVersion"],
                "finalizers": finalizers,
                "annotations": {PENDING_ANNOTATION: marker},
            }
            self.body = await deps.kube.patch_metadata(view.namespace, view.name, {"metadata": meta})
            mem.recovery_done_for = step.attempt  # this process wrote the marker: nothing was created yet
            mem.prediction, mem.outputs = None, None
        elif isinstance(step, Recover):
            await self._call(view, "recover", self._recover(view, step))
        elif isinstance(step, Create):
            await self._call(view, "create", self._create(view, step))
        elif isinstance(step, Record):
            assert mem.prediction is not None
            await self._write_status(view, patches.record_patch(view, mem.prediction, mem.prediction_attempt, now))
            verb = "Recovered" if self._recovered == mem.prediction.id else "Started"
            what = f"prediction {mem.prediction.id} (attempt {mem.prediction_attempt})"
            # The reason is the condition's ("Running"); the message says whether this process created it.
            await self._event("Normal", "Running", f"{verb} {what}")
            self._log(logging.INFO, "%s %s", verb.lower(), what)
        elif isinstance(step, Poll):
            await self._sleep(step.delay)
            if not self._wake.is_set():
                await self._call(view, "poll", self._poll(view))
        elif isinstance(step, CancelRemote):
            if view.spec.cancel:
                why, kind = "spec.cancel is set", "Normal"
            else:
                why, kind = f"the deadline (spec.timeoutSeconds={view.spec.timeout_seconds}) passed", "Warning"
            await self._event(kind, "Canceling", f"canceling prediction {step.prediction_id}: {why}")
            self._log(logging.INFO, "canceling prediction %s: %s", step.prediction_id, why)
            await self._cancel(step.prediction_id)
        elif isinstance(step, Upload):
            self._track(Phase.UPLOADING)
            if view.status.prediction is not None:  # an instant prediction goes straight to its final event
                assert mem.prediction is not None
                message = f"copying the outputs of prediction {mem.prediction.id} to storage"
                self._event_soon("Normal", "Uploading", message)
                self._log(logging.INFO, "%s", message)
            await self._upload_reporting_slowness(view)
        elif isinstance(step, Wait):
            await self._sleep((step.until - now).total_seconds())
        elif isinstance(step, ScheduleRetry):
            if not step.new_attempt and mem.failure_during == "create":
                mem.recovery_done_for = 0  # the failed create may have reached Replicate: look before retrying
            await self._write_status(view, patches.retry_patch(view, step.failure, step.delay, mem.prediction, now))
            deps.metrics.retry(step.failure.reason)
            # The condition's reason while retrying is the failure's; the message says which retry and when.
            await self._event("Warning", step.failure.reason, self.body["status"].get("message", ""))
            self._log(logging.WARNING, "retrying: %s", self.body["status"].get("message", ""))
        elif isinstance(step, Finish):
            await self._write_status(view, patches.finish_patch(view, mem, step.phase, step.reason, step.message, now))
            self._track(None)
            kind = "Warning" if step.phase is Phase.FAILED else "Normal"
            self._log(logging.INFO, "%s (%s): %s", step.phase.value, step.reason, step.message)
            await self._event(kind, step.reason, step.message)
            deps.metrics.finished(step.phase, step.reason, now.timestamp() - self._created)
        elif isinstance(step, RefreshURLs):
            outputs, expires = await asyncio.to_thread(resign, deps, view.status.outputs)
            await self._write_status(view, patches.urls_patch(outputs, expires))
            self._log(logging.INFO, "signed the output URLs again; they expire at %s", expires)
        elif isinstance(step, ObserveGeneration):
            await self._write_status(view, patches.observe_patch(view, now))
            self._log(logging.INFO, "generation %d changes nothing: it had finished already", view.generation)
        elif isinstance(step, DeleteResource):
            await deps.kube.delete(view.namespace, view.name, view.uid)
            await self._sleep(5.0)  # the DELETED (or finalizing) event wakes us; don't spin meanwhile
        elif isinstance(step, Cleanup):
            await self._cleanup(view, step)
        elif isinstance(step, ReleaseFinalizer):
            finalizers = [f for f in self.body["metadata"].get("finalizers") or [] if f != FINALIZER]
            meta = {"resourceVersion": self.body["metadata"]["resourceVersion"], "finalizers": finalizers}
            self.body = await deps.kube.patch_metadata(view.namespace, view.name, {"metadata": meta})

    async def _call(self, view: View, during: str, operation: Any) -> None:
        """Run one backend or storage operation; a failure is remembered for the next decision."""
        try:
            await operation
        except (Gone, Conflict, asyncio.CancelledError):
            raise
        except Exception as err:
            failure = from_exception(err, during=during)
            if failure.kind is not Kind.PERMANENT and not isinstance(err, GeneratorError):
                self._log(logging.WARNING, "%s failed: %s", during, failure.message)
            self.memory.failure, self.memory.failure_during = failure, during
            if during == "poll":
                self.memory.poll_failures += 1

    async def _recover(self, view: View, step: Recover) -> None:
        found = await self.deps.generator.find(correlation(view.uid, step.attempt), step.since - RECOVERY_CLOCK_SKEW)
        self.deps.metrics.recovery(found is not None)
        if found is None:
            self.memory.recovery_done_for = step.attempt
        else:
            self._recovered = found.id
            self._log(logging.INFO, "found prediction %s of attempt %d on Replicate", found.id, step.attempt)
            self._remember(found, step.attempt)

    async def _create(self, view: View, step: Create) -> None:
        request = CreateRequest(
            input=view.spec.input,
            correlation=correlation(view.uid, step.attempt),
            model=view.spec.model,
            deployment=view.spec.deployment,
            cancel_after_seconds=step.cancel_after_seconds,
        )
        self._remember(await self.deps.generator.create(request), step.attempt)

    async def _poll(self, view: View) -> None:
        prediction_id = self._prediction_id(view)
        assert prediction_id is not None
        prediction = await self.deps.generator.get(prediction_id)
        attempt = view.status.prediction.attempt if view.status.prediction else self.memory.prediction_attempt
        self._remember(prediction, attempt)
        self.memory.poll_failures = 0
        if not prediction.terminal:
            await self._maybe_progress(view, Phase.RUNNING, parse_progress(prediction.logs))

    def _remember(self, prediction: Prediction, attempt: int) -> None:
        known, delivered = self.memory.prediction, self._delivered
        if not prediction.terminal:
            # States only move forward: a poll answered before a webhook arrived must not undo it.
            if known is not None and known.id == prediction.id and known.terminal:
                return
            if delivered is not None and delivered.id == prediction.id:
                prediction = delivered
        self._delivered = None
        self.memory.prediction, self.memory.prediction_attempt = prediction, attempt
        if prediction.terminal and prediction.id not in self._finished_predictions:
            self._finished_predictions.add(prediction.id)
            recorded = (self.body.get("status") or {}).get("prediction") or {}
            # Recorded as final already: an earlier process counted it (its time was billed once).
            if not (recorded.get("id") == prediction.id and recorded.get("status") in TERMINAL_STATUSES):
                self.deps.metrics.prediction_finished(self._model, prediction)

    def _prediction_id(self, view: View) -> str | None:
        if self.memory.prediction is not None:
            return self.memory.prediction.id
        return view.status.prediction.id if view.status.prediction else None

    async def _maybe_progress(self, view: View, phase: Phase, progress: int | None) -> None:
        """Progress writes are extra by design: only on change, and at most one per interval."""
        if self.deps.monotonic() - self._last_status_write < self.deps.progress_interval:
            return
        if progress is not None and self._last_progress is not None:
            progress = max(progress, self._last_progress)  # a model's second tqdm bar must not move it back
        if phase is Phase.RUNNING and (progress is None or progress == self._last_progress):
            return
        if view.status.prediction is None:
            return  # not recorded yet: the Record write comes first
        self._last_progress = progress
        await self._write_status(
            view, patches.progress_patch(view, phase, progress, self.memory.prediction, self.deps.now())
        )
        self.deps.metrics.progress_write()

    async def _upload_reporting_slowness(self, view: View) -> None:
        """Copy the outputs; write the Uploading phase only if the copy outlasts one progress interval.

        Most copies take milliseconds: writing Uploading up front cost every generation a fourth write."""
        upload = asyncio.ensure_future(self._call(view, "upload", self._upload(view)))
        try:
            await asyncio.wait_for(asyncio.shield(upload), timeout=self.deps.progress_interval)
        except TimeoutError:
            await self._maybe_progress(view, Phase.UPLOADING, 100)
            await upload
        except asyncio.CancelledError:
            upload.cancel()
            raise

    async def _upload(self, view: View) -> None:
        prediction = self.memory.prediction
        assert prediction is not None
        if prediction.output is None:
            raise PermanentError("NoOutput", "the prediction succeeded but returned no output")
        began = self.deps.monotonic()
        try:
            outputs, expires = await store_outputs(self.deps, view, prediction)
        except Exception:
            self.deps.metrics.upload(self.deps.monotonic() - began, None)
            raise
        self.deps.metrics.upload(self.deps.monotonic() - began, [output.size_bytes for output in outputs])
        self.memory.outputs, self.memory.url_expires_at = outputs, expires

    async def _cancel(self, prediction_id: str) -> None:
        """Best effort with a few quick retries: a cancel that cannot get through must not block forever."""
        for attempt in range(4):
            try:
                prediction = await self.deps.generator.cancel(prediction_id)
            except PermanentError:
                break  # e.g. not found: nothing left to cancel
            except Exception as err:
                failure: Failure = from_exception(err, during="cancel")
                self._log(logging.WARNING, "cancel of %s failed: %s", prediction_id, failure.message)
                await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            if self.memory.prediction is None or self.memory.prediction.id == prediction.id:
                self._remember(prediction, self.memory.prediction_attempt or 1)
            break
        self.memory.cancel_requested_remote = True

    async def _cleanup(self, view: View, step: Cleanup) -> None:
        deps = self.deps
        try:
            async with asyncio.timeout(deps.delete_timeout):
                if step.find_pending and view.pending is not None:
                    try:
                        found = await deps.generator.find(
                            correlation(view.uid, view.pending.attempt), view.pending.since - RECOVERY_CLOCK_SKEW
                        )
                    except GeneratorError as err:
                        self._log(logging.WARNING, "lookup of a pending prediction failed: %s", err)
                        found = None
                    if found is not None and not found.terminal:
                        await self._cancel(found.id)
                if step.cancel_prediction:
                    prediction_id = self._prediction_id(view)
                    if prediction_id:
                        await self._cancel(prediction_id)
                if step.delete_objects:
                    prefix = resource_prefix(view.spec.output.key_prefix, view.namespace, view.name, view.uid)
                    await asyncio.to_thread(deps.store.delete_prefix, prefix)
        except TimeoutError:
            await self._event("Warning", "CleanupIncomplete", "cleanup did not finish in time; releasing the resource")
        except Exception as err:
            await self._event("Warning", "CleanupIncomplete", f"cleanup failed: {err}")
        self.memory.cleanup_done = True


def _describe(err: BaseException) -> str:
    """One line about an exception, for logs (the redaction filter scrubs secrets from it)."""
    status = getattr(err, "status", None)
    return f"{type(err).__name__}{f' HTTP {status}' if status else ''}: {str(err)[:300]}"
