"""Holding the Lease: wait to become the leader, renew, end the process when the leadership is lost, release.

The decisions are :mod:`mediagen.controller.election`'s; this module performs them against a
:class:`~mediagen.kube.lease.LeaseStore`. It runs on threads of its own, never in the operator's event loop, so a
loop busy with two thousand workers cannot delay a renewal, and the :class:`Watchdog` ends the process at the
deadline even while a renewal hangs in a request. The clock and the waiting are injected: unit tests drive every
path without sleeping.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
import time
from collections.abc import Callable

from mediagen.controller.election import (
    Timing,
    Wait,
    candidate_step,
    released,
    renewed,
    valid_until,
)
from mediagen.kube.lease import LeaseConflict, LeaseError, LeaseRecord, LeaseStore

log = logging.getLogger(__name__)

EXIT_LEADERSHIP_LOST = os.EX_TEMPFAIL
"""Exit status of a leader whose Lease ran out or was taken: the container restarts as a candidate."""

Waiter = Callable[[float], bool]
"""``wait(seconds)``: block up to ``seconds``; True when asked to stop meanwhile."""


def utcnow() -> dt.datetime:
    """The wall-clock time, written into the Lease for people to read (never used to decide)."""
    return dt.datetime.now(dt.UTC)


class LeaderElector:
    """One replica's side of the election on one Lease."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: Timing,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = utcnow,
        wait: Waiter | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing
        self._monotonic = monotonic
        self._wall = wall
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self.valid_until = -math.inf
        """Local monotonic time at which this replica must have stopped acting (-inf: it does not lead)."""
        self.leader = ""
        """The holder this replica last saw (itself while it leads); for logs and the standby's health answer."""
        self.held: LeaseRecord | None = None
        self._last_sent = -math.inf

    def remaining(self) -> float:
        """Seconds of leadership left (negative when it does not lead)."""
        return self.valid_until - self._monotonic()

    def stop(self) -> None:
        """Make :meth:`acquire` and :meth:`keep` return at their next wait."""
        self._stopping.set()

    def acquire(self) -> bool:
        """Block until this replica holds the Lease (True), or :meth:`stop` was called (False)."""
        seen = None
        delay = 0.0
        while True:
            if self._wait(delay):
                return False
            delay = self.timing.retry_period
            try:
                record = self.store.get()
            except LeaseError as err:
                log.warning("cannot read the Lease: %s", err)
                continue
            seen, step = candidate_step(record, seen, self.identity, self.timing, self._monotonic(), self._wall())
            if record is not None and record.holder != self.leader:
                self.leader = record.holder
                if record.holder:
                    log.info("the Lease %s is held by %s; standing by", self.store.describe(), record.holder)
            if isinstance(step, Wait):
                delay = step.seconds
                continue
            sent = self._monotonic()
            try:
                stored = self.store.create(step.record) if step.create else self.store.replace(step.record)
            except LeaseConflict:
                delay = 0.0  # another replica wrote first: read again at once to see who
                continue
            except LeaseError as err:
                log.warning("cannot take the Lease: %s", err)
                continue
            self._hold(stored, sent)
            log.info(
                "became the leader: Lease %s held by %s (transition %d)",
                self.store.describe(),
                self.identity,
                stored.transitions,
            )
            return True

    def keep(self) -> str | None:
        """Renew every retry period until :meth:`stop` (None) or until the leadership is lost (the reason)."""
        next_at = self._last_sent + self.timing.retry_period
        while True:
            if self._wait(max(0.0, next_at - self._monotonic())):
                return None
            now = self._monotonic()
            if now >= self.valid_until:
                return f"no renewal succeeded within the renew deadline ({self.timing.renew_deadline:g} s)"
            assert self.held is not None
            next_at = now + self.timing.retry_period
            try:
                stored = self.store.replace(renewed(self.held, self._wall()))
            except LeaseConflict:
                current = self._read()
                if current is None:
                    return "the Lease was deleted"
                if current.holder != self.identity:
                    return f"the Lease is held by {current.holder or 'nobody'} now"
                self.held = current  # changed by someone else but still ours: renew that version at once
                next_at = now
                continue
            except LeaseError as err:
                log.warning("renewing the Lease failed (%.1f s of leadership left): %s", self.remaining(), err)
                continue
            self._hold(stored, now)
            next_at = now + self.timing.retry_period

    def release(self) -> bool:
        """Give the Lease up so that a standby takes over at once. Only after this replica stopped acting."""
        held, self.held = self.held, None
        self.valid_until = -math.inf
        if held is None:
            return True
        try:
            self.store.replace(released(held, self._wall()))
        except (LeaseConflict, LeaseError) as err:
            log.warning("could not release the Lease (it expires by itself): %s", err)
            return False
        log.info("released the Lease %s", self.store.describe())
        return True

    def _hold(self, stored: LeaseRecord, sent: float) -> None:
        self.held = stored
        self.leader = self.identity
        self._last_sent = sent
        self.valid_until = max(self.valid_until, valid_until(sent, self.timing))

    def _read(self) -> LeaseRecord | None:
        """The Lease after a conflict; on a read error, the record we hold (keep trying until the deadline)."""
        try:
            return self.store.get()
        except LeaseError as err:
            log.warning("cannot read the Lease after a conflict: %s", err)
            return self.held


class Watchdog:
    """Calls ``on_expiry`` (which ends the process) the moment the leadership runs out without a renewal."""

    def __init__(
        self,
        elector: LeaderElector,
        on_expiry: Callable[[str], None],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wait: Waiter | None = None,
    ) -> None:
        self._elector = elector
        self._on_expiry = on_expiry
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait

    def stop(self) -> None:
        """Stand down (a clean stop, before the Lease is released)."""
        self._stopping.set()

    def run(self) -> None:
        """Until stopped: sleep to the current deadline; a deadline not moved on by then ends the leadership."""
        while True:
            left = self._elector.valid_until - self._monotonic()
            if left <= 0:
                self._on_expiry(f"the leadership ran out {max(0.0, -left):.2f} s ago without a renewal")
                return
            if self._wait(left):
                return


def exit_now(reason: str) -> None:
    """End the process at once: no cleanup may run, since cleanup would act after the leadership ended."""
    log.critical("lost the leadership (%s); exiting so that no two replicas act at once", reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_LEADERSHIP_LOST)


class Leadership:
    """The threads that keep a won Lease: one renews, one watches the deadline."""

    def __init__(self, elector: LeaderElector, on_lost: Callable[[str], None] = exit_now) -> None:
        self.elector = elector
        self._on_lost = on_lost
        self._watchdog = Watchdog(elector, on_lost)
        self._renewer = threading.Thread(target=self._renew, name="lease-renewer", daemon=True)
        self._watcher = threading.Thread(target=self._watchdog.run, name="lease-watchdog", daemon=True)

    def start(self) -> None:
        """Start renewing and watching (call right after :meth:`LeaderElector.acquire` returned True)."""
        self._renewer.start()
        self._watcher.start()

    def finish(self) -> None:
        """After this replica stopped acting: stop renewing and watching, then release the Lease."""
        self.elector.stop()
        self._renewer.join(timeout=self.elector.timing.retry_period + 5)
        self._watchdog.stop()
        self._watcher.join(timeout=5)
        self.elector.release()

    def _renew(self) -> None:
        reason = self.elector.keep()
        if reason is not None:
            self._on_lost(reason)
