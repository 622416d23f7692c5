"""Winding down a generation that an edit of the request replaced, before the new one starts. Pure.

The replaced generation may still be at work: a prediction running on Replicate (canceled: nobody wants its result
any more, and it is paid by the second), a create whose answer was lost (looked up by its marker, then canceled),
outputs stored (deleted under ``deletionPolicy: Delete``, the policy in force when the edit is acted on: the bucket
then holds what the resource stands for and nothing else; kept under Retain, like the outputs of a deleted
resource). Only then does :func:`~mediagen.reconcile.decide.decide` mark the new generation's first attempt, so a
marker of the new generation proves the old one was dealt with, and a crash anywhere before it only repeats steps
that are idempotent (a cancel of a finished prediction returns it unchanged: docs/replicate.md; a delete of
deleted objects deletes nothing).

All of it is best effort and bounded: a look-up that fails counts as "not found", a cancel is let go after
:data:`~mediagen.reconcile.cancels.CANCEL_ATTEMPTS` tries, a failed delete is reported in an event. The new
generation never waits on the old one for long, and spends nothing of its own retry budget on it.
"""

from __future__ import annotations

from mediagen.api.types import TERMINAL_PHASES, DeletionPolicy
from mediagen.generators.base import TERMINAL_STATUSES
from mediagen.reconcile.cancels import cancel_delay, cancel_settled
from mediagen.reconcile.state import CancelBecause, CancelRemote, DeleteSuperseded, Memory, Recover, Step, View
from mediagen.storage.keys import prediction_folder


def wind_down(view: View, memory: Memory) -> Step | None:
    """The next step in winding down the replaced generation, or None when there is none (nothing was replaced,
    the replaced one is dealt with, or the new one has begun)."""
    current = view.current
    if not current.superseded or current.pending is not None:
        return None
    written, stale = view.written, current.stale_pending
    running: tuple[str, bool] | None = None  # (prediction id, terminal) of the replaced generation's prediction
    if stale is not None:
        # The replaced generation's latest attempt is unrecorded: it may exist on Replicate all the same.
        found = memory.prediction if memory.prediction_attempt == stale.attempt else None
        if found is None and memory.recovery_done_for != stale.attempt:
            return Recover(stale.attempt, stale.since, best_effort=True)
        if found is not None:
            running = (found.id, found.terminal)
    elif written.phase not in TERMINAL_PHASES and written.prediction is not None:
        recorded = written.prediction
        known = memory.prediction if memory.prediction is not None and memory.prediction.id == recorded.id else None
        running = (recorded.id, known.terminal if known is not None else recorded.status in TERMINAL_STATUSES)
    if running is not None and not running[1] and not cancel_settled(memory):
        return CancelRemote(running[0], CancelBecause.EDIT, cancel_delay(memory))
    if view.spec.output.deletion_policy is DeletionPolicy.DELETE and not memory.superseded_outputs_done:
        folders = _stored_folders(view, memory, include_written=stale is None)
        if folders:
            return DeleteSuperseded(folders)
    return None


def _stored_folders(view: View, memory: Memory, *, include_written: bool) -> tuple[str, ...]:
    """The folders of the replaced generation's stored outputs: those its status lists (unless a newer marker shows
    they were dealt with already) and those copied but not written down yet (an edit during the copy)."""
    outputs = list(view.written.outputs) if include_written else []
    outputs += memory.outputs or []
    folders = {prediction_folder(output.key, view.namespace, view.name, view.uid) for output in outputs}
    return tuple(sorted(folder for folder in folders if folder is not None))
