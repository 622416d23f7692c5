"""Performing one step of :func:`~mediagen.reconcile.decide.decide`: the I/O each step names, and nothing else.

The dispatch is a ``match`` over the :data:`~mediagen.reconcile.state.Step` union ending in ``assert_never``, so
mypy rejects a step that has no case here. What a step learns goes into the worker's memory (or the API server,
for writes); whether and when to do anything is decided by ``decide``, never here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, assert_never

from mediagen.api.types import Phase
from mediagen.controller.outputs import resign, store_outputs
from mediagen.generators.base import CreateRequest, GeneratorError, PermanentError
from mediagen.kube.client import Conflict, Gone
from mediagen.reconcile import status_patches as patches
from mediagen.reconcile.failures import Kind, from_exception
from mediagen.reconcile.progress import parse_progress
from mediagen.reconcile.state import (
    FINALIZER,
    PENDING_ANNOTATION,
    AbandonCleanup,
    CancelBecause,
    CancelRemote,
    Create,
    DeleteObjects,
    DeleteResource,
    DeleteSuperseded,
    Done,
    Finish,
    MarkPending,
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
    WriteProgress,
    correlation,
)

if TYPE_CHECKING:
    from mediagen.controller.worker import Worker

# Look for a lost create a little before the marker's time: clocks of the operator and Replicate differ.
RECOVERY_CLOCK_SKEW = dt.timedelta(seconds=60)


class StepRunner:
    """Performs steps for one :class:`~mediagen.controller.worker.Worker`."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.deps = worker.deps
        self.memory = worker.memory
        self.telemetry = worker.telemetry

    async def perform(self, view: View, step: Step, now: dt.datetime) -> None:
        """Do what ``step`` says; a failure of a backend or the store is remembered for the next decision."""
        match step:
            case MarkPending():
                await self._mark_pending(view, step, now)
            case Recover():
                await self._call("recover", self._recover(view, step))
            case Create():
                await self._call("create", self._create(view, step))
            case Record():
                await self._record(view, now)
            case Poll():
                if not await self.worker.sleep(step.delay):
                    await self._call("poll", self._poll(view))
            case WriteProgress():
                await self._write_progress(view, Phase.RUNNING, step.progress)
                self.memory.progress_written = step.progress
            case CancelRemote():
                if not await self.worker.sleep(step.delay):
                    await self._cancel(view, step)
            case Upload():
                await self._upload_reporting_slowness(view, step)
            case Wait():
                await self.worker.sleep((step.until - now).total_seconds())
            case ScheduleRetry():
                await self._schedule_retry(view, step, now)
            case Finish():
                await self._finish(view, step, now)
            case RefreshURLs():
                outputs, expires = await asyncio.to_thread(resign, self.deps, view.status.outputs)
                await self.worker.write_status(view, patches.urls_patch(outputs, expires))
                self.telemetry.log(logging.INFO, "signed the output URLs again; they expire at %s", expires)
            case ObserveGeneration():
                await self.worker.write_status(view, patches.observe_patch(view, now))
                self.telemetry.log(
                    logging.INFO, "generation %d changes nothing: it had finished already", view.generation
                )
            case DeleteResource():
                await self.deps.kube.delete(view.namespace, view.name, view.uid)
                await self.worker.sleep(5.0)  # the DELETED (or finalizing) event wakes us; don't spin meanwhile
            case DeleteSuperseded():
                await self._delete_superseded(view, step)
            case DeleteObjects():
                await self._call("cleanup", self._delete_objects(step))
            case AbandonCleanup():
                await self.telemetry.event("Warning", "CleanupIncomplete", step.message)
                self.memory.cleanup_done = True
            case ReleaseFinalizer():
                finalizers = [f for f in self.worker.body["metadata"].get("finalizers") or [] if f != FINALIZER]
                meta = {"resourceVersion": self.worker.body["metadata"]["resourceVersion"], "finalizers": finalizers}
                await self.worker.patch_metadata(view, {"metadata": meta})
            case Done():
                pass
            case _:
                assert_never(step)

    async def _call(self, during: str, operation: Coroutine[Any, Any, None]) -> None:
        """Run one backend or storage operation; a failure is remembered for the next decision."""
        try:
            await operation
        except (Gone, Conflict, asyncio.CancelledError):
            raise
        except Exception as err:
            failure = from_exception(err, during=during)
            if failure.kind is not Kind.PERMANENT and not isinstance(err, GeneratorError):
                self.telemetry.log(logging.WARNING, "%s failed: %s", during, failure.message)
            self.memory.failure, self.memory.failure_during = failure, during
            if during == "poll":
                self.memory.poll_failures += 1

    async def _mark_pending(self, view: View, step: MarkPending, now: dt.datetime) -> None:
        body = self.worker.body
        finalizers = list(body["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        marker = PendingCreate(step.attempt, now, request=view.request, first=view.first_attempt)
        meta = {
            "resourceVersion": body["metadata"]["resourceVersion"],
            "finalizers": finalizers,
            "annotations": {PENDING_ANNOTATION: marker.to_annotation()},
        }
        await self.worker.patch_metadata(view, {"metadata": meta})
        self.memory.start_attempt(step.attempt)  # this process wrote the marker: nothing was created yet
        if view.superseded:
            message = f"the request changed (generation {view.generation}): starting over with attempt {step.attempt}"
            self.telemetry.event_soon("Normal", "RequestChanged", message)
            self.telemetry.log(logging.INFO, "%s", message)

    async def _recover(self, view: View, step: Recover) -> None:
        try:
            found = await self.deps.generator.find(
                correlation(view.uid, step.attempt), step.since - RECOVERY_CLOCK_SKEW
            )
        except GeneratorError as err:
            if not step.best_effort:
                raise
            self.telemetry.log(logging.WARNING, "lookup of a pending prediction failed: %s", err)
            found = None
        self.deps.metrics.recovery(found is not None)
        if found is None:
            self.memory.recovery_done_for = step.attempt
        else:
            self.worker.recovered = found.id
            self.telemetry.log(logging.INFO, "found prediction %s of attempt %d on Replicate", found.id, step.attempt)
            self.worker.intake.remember(found, step.attempt)

    async def _create(self, view: View, step: Create) -> None:
        request = CreateRequest(
            input=view.spec.input,
            correlation=correlation(view.uid, step.attempt),
            model=view.spec.model,
            deployment=view.spec.deployment,
            cancel_after_seconds=step.cancel_after_seconds,
        )
        self.worker.intake.remember(await self.deps.generator.create(request), step.attempt)

    async def _record(self, view: View, now: dt.datetime) -> None:
        mem = self.memory
        assert mem.prediction is not None
        await self.worker.write_status(view, patches.record_patch(view, mem.prediction, mem.prediction_attempt, now))
        verb = "Recovered" if self.worker.recovered == mem.prediction.id else "Started"
        what = f"prediction {mem.prediction.id} (attempt {mem.prediction_attempt})"
        # The reason is the condition's ("Running"); the message says whether this process created it.
        await self.telemetry.event("Normal", "Running", f"{verb} {what}")
        self.telemetry.log(logging.INFO, "%s %s", verb.lower(), what)

    async def _poll(self, view: View) -> None:
        prediction_id = self.worker.prediction_id(view)
        assert prediction_id is not None
        prediction = await self.deps.generator.get(prediction_id)
        attempt = view.status.prediction.attempt if view.status.prediction else self.memory.prediction_attempt
        self.worker.intake.remember(prediction, attempt)
        self.memory.poll_failures = 0
        if not prediction.terminal:
            self.memory.progress_seen = parse_progress(prediction.logs)

    async def _write_progress(self, view: View, phase: Phase, progress: int) -> None:
        patch = patches.progress_patch(view, phase, progress, self.memory.prediction, self.deps.clock.now())
        await self.worker.write_status(view, patch)
        self.deps.metrics.progress_write()

    async def _cancel(self, view: View, step: CancelRemote) -> None:
        """One try at cancelling; ``decide`` says whether and when to try again."""
        mem = self.memory
        if mem.cancel_failures == 0 and step.because is not CancelBecause.DELETION:
            if step.because is CancelBecause.CANCEL:
                why, kind = "spec.cancel is set", "Normal"
            elif step.because is CancelBecause.EDIT:
                why, kind = f"the request changed (generation {view.generation})", "Normal"
            else:
                why, kind = f"the deadline (spec.timeoutSeconds={view.spec.timeout_seconds}) passed", "Warning"
            await self.telemetry.event(kind, "Canceling", f"canceling prediction {step.prediction_id}: {why}")
            self.telemetry.log(logging.INFO, "canceling prediction %s: %s", step.prediction_id, why)
        try:
            prediction = await self.deps.generator.cancel(step.prediction_id)
        except PermanentError:
            mem.cancel_requested_remote = True  # e.g. not found: nothing left to cancel
            return
        except Exception as err:
            mem.cancel_failures += 1
            failure = from_exception(err, during="cancel")
            self.telemetry.log(logging.WARNING, "cancel of %s failed: %s", step.prediction_id, failure.message)
            return
        if mem.prediction is None or mem.prediction.id == prediction.id:
            recorded = view.written.prediction
            known = recorded.attempt if recorded is not None and recorded.id == prediction.id else 1
            self.worker.intake.remember(prediction, mem.prediction_attempt or known)
        mem.cancel_requested_remote = True

    async def _upload_reporting_slowness(self, view: View, step: Upload) -> None:
        """Copy the outputs; write the Uploading phase if the copy outlasts ``step.report_slow_after``."""
        self.telemetry.track(Phase.UPLOADING)
        if view.status.prediction is not None:  # an instant prediction goes straight to its final event
            assert self.memory.prediction is not None
            message = f"copying the outputs of prediction {self.memory.prediction.id} to storage"
            self.telemetry.event_soon("Normal", "Uploading", message)
            self.telemetry.log(logging.INFO, "%s", message)
        upload = asyncio.ensure_future(self._call("upload", self._upload(view)))
        try:
            slow = step.report_slow_after
            if slow is not None and not await self.deps.clock.wait(upload, slow):
                await self._write_progress(view, Phase.UPLOADING, 100)
                self.memory.progress_written = 100
            await upload
        except asyncio.CancelledError:
            upload.cancel()
            raise

    async def _upload(self, view: View) -> None:
        prediction = self.memory.prediction
        assert prediction is not None
        if prediction.output is None:
            raise PermanentError("NoOutput", "the prediction succeeded but returned no output")
        clock = self.deps.clock
        began = clock.monotonic()
        try:
            outputs, expires = await store_outputs(self.deps, view, prediction)
        except Exception:
            self.deps.metrics.upload(clock.monotonic() - began, None)
            raise
        self.deps.metrics.upload(clock.monotonic() - began, [output.size_bytes for output in outputs])
        self.memory.outputs, self.memory.url_expires_at = outputs, expires

    async def _schedule_retry(self, view: View, step: ScheduleRetry, now: dt.datetime) -> None:
        mem = self.memory
        if step.look_up_create:
            mem.recovery_done_for = 0
        await self.worker.write_status(view, patches.retry_patch(view, step.failure, step.delay, mem.prediction, now))
        self.deps.metrics.retry(step.failure.reason)
        message = self.worker.body["status"].get("message", "")
        # The condition's reason while retrying is the failure's; the message says which retry and when.
        await self.telemetry.event("Warning", step.failure.reason, message)
        self.telemetry.log(logging.WARNING, "retrying: %s", message)

    async def _finish(self, view: View, step: Finish, now: dt.datetime) -> None:
        await self.worker.write_status(
            view, patches.finish_patch(view, self.memory, step.phase, step.reason, step.message, now)
        )
        self.telemetry.track(None)
        kind = "Warning" if step.phase is Phase.FAILED else "Normal"
        self.telemetry.log(logging.INFO, "%s (%s): %s", step.phase.value, step.reason, step.message)
        await self.telemetry.event(kind, step.reason, step.message)
        # From creation for the first generation, from when it began for one an edit started.
        later = view.first_attempt > 1 and view.began is not None
        began = view.began.timestamp() if later and view.began is not None else self.telemetry.created
        self.deps.metrics.finished(step.phase, step.reason, now.timestamp() - began)

    async def _delete_objects(self, step: DeleteObjects) -> None:
        for prefix in step.prefixes:
            await asyncio.to_thread(self.deps.store.delete_prefix, prefix)
        self.memory.objects_deleted = True

    async def _delete_superseded(self, view: View, step: DeleteSuperseded) -> None:
        """Best effort: the new generation does not wait on storage for the old one's leftovers."""
        try:
            for prefix in step.prefixes:
                await asyncio.to_thread(self.deps.store.delete_prefix, prefix)
        except (Gone, Conflict, asyncio.CancelledError):
            raise
        except Exception as err:
            message = f"could not delete the outputs of the replaced generation ({', '.join(step.prefixes)}): {err}"
            await self.telemetry.event("Warning", "CleanupIncomplete", message[:1000])
            self.telemetry.log(logging.WARNING, "%s", message)
        else:
            self.telemetry.log(logging.INFO, "deleted the outputs of the replaced generation: %s", step.prefixes)
        self.memory.superseded_outputs_done = True
