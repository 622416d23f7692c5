"""Leader election on a Lease: the decisions, as pure functions of what the Lease says and this process's clock.

The rules are client-go's (https://pkg.go.dev/k8s.io/client-go/tools/leaderelection), and so is the safety
argument, which rests on local monotonic clocks only:

* A candidate never compares a Lease's timestamps with its own clock. It notes *when it first saw* each version
  of the record (``resourceVersion``) and may take the Lease only if that same version is still there
  ``leaseDurationSeconds`` later by its own clock. Clock skew between machines therefore changes nothing; only a
  difference in clock *rate* could (tolerated up to ``lease_duration / renew_deadline``).
* The leader notes the time just *before* sending each renewal and counts itself the leader only until
  ``renew_deadline`` after the last renewal that succeeded. A candidate can only have seen that renewal after it
  was sent, so the leader's time is up at least ``lease_duration - renew_deadline`` (:attr:`Timing.gap`) before
  any candidate may take over. Writes are guarded by resourceVersion, so of two candidates only one takes it.
* A leader whose time is up exits the process (:mod:`mediagen.controller.elector`); a restart is cheap because
  all state is in the resources.

So two replicas never act at the same moment, and the longest either may be *affected* by the other is a request
the old leader sent before its deadline that lands late: the gap (3 s with the defaults) covers a Kubernetes write,
and a create on Replicate, sent only while :attr:`Timing.create_margin` is left (:mod:`.create_fence`), has
``create_margin + gap`` (5.5 s). The resources make a late arrival harmless beyond that in most cases: every create
follows the pending-create marker, a metadata patch guarded by resourceVersion, so of two replicas writing it for
the same attempt only one succeeds; a replica that did not write the marker itself looks the prediction up by its
correlation marker on Replicate before it creates one. What remains is a create that reaches Replicate after the new
leader looked (a second prediction) and a status write held up for longer than the gap (status patches are merge
patches, not guarded by resourceVersion): both need a request delayed by seconds on its way.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from dataclasses import dataclass, replace

from mediagen.kube.lease import LeaseRecord


@dataclass(frozen=True)
class Timing:
    """How long a Lease lasts, how long its holder keeps trying to renew it, and how often everyone asks."""

    lease_duration: int
    """Seconds a candidate waits, from when it saw the holder's last renewal, before taking the Lease."""
    renew_deadline: float
    """Seconds after its last successful renewal (counted from sending it) at which a leader stops acting."""
    retry_period: float
    """Seconds between renewals, and between a candidate's looks at the Lease."""

    def __post_init__(self) -> None:
        if self.retry_period <= 0:
            raise ValueError(f"the retry period must be positive (got {self.retry_period:g})")
        if not self.retry_period < self.renew_deadline:
            raise ValueError(
                f"the renew deadline ({self.renew_deadline:g} s) must be longer than the retry period "
                f"({self.retry_period:g} s), or a single late renewal would end the leadership"
            )
        if not self.renew_deadline < self.lease_duration:
            raise ValueError(
                f"the lease duration ({self.lease_duration:g} s) must be longer than the renew deadline "
                f"({self.renew_deadline:g} s): the difference is the time a stopping leader has to finish"
            )

    @property
    def gap(self) -> float:
        """The least time between a leader's stop and the first moment another replica may take over."""
        return self.lease_duration - self.renew_deadline

    @property
    def create_margin(self) -> float:
        """A leader starts a prediction only while its leadership has at least this long to run.

        Half of what is left of the renew deadline just before a renewal that comes on time, so that a healthy
        leader never waits for it; a create it sends then has ``create_margin + gap`` seconds to reach Replicate
        before another replica could act on the resource."""
        return (self.renew_deadline - self.retry_period) / 2


@dataclass(frozen=True)
class Observation:
    """A version of the Lease record and the local monotonic time this process first saw it."""

    record: LeaseRecord
    since: float


@dataclass(frozen=True)
class Take:
    """Write ``record`` (create the Lease when ``create``): this process becomes the leader if the write wins."""

    record: LeaseRecord
    create: bool = False


@dataclass(frozen=True)
class Wait:
    """Look at the Lease again after ``seconds``."""

    seconds: float


def new_identity(pod_name: str | None) -> str:
    """This process's holder identity: ``<pod name>_<random>`` (the host name outside Kubernetes).

    Pod names never contain ``_``, so everything before the last one names the pod. The random part makes a
    restarted container a new candidate rather than the old holder, which must not skip the wait."""
    return f"{pod_name or socket.gethostname()}_{secrets.token_hex(4)}"


def pod_of(identity: str) -> str:
    """The pod (or host) name inside a holder identity made by :func:`new_identity`."""
    return identity.rpartition("_")[0] or identity


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """Keep the time a version was first seen; a new version restarts the count."""
    if previous is not None and previous.record.version == record.version:
        return previous
    return Observation(record, now)


def expires_at(seen: Observation, timing: Timing) -> float:
    """When (local monotonic time) the observed holder's claim runs out unless it renews."""
    duration = seen.record.duration_seconds if seen.record.duration_seconds > 0 else timing.lease_duration
    return seen.since + duration


def candidate_step(
    record: LeaseRecord | None,
    seen: Observation | None,
    identity: str,
    timing: Timing,
    now: float,
    wall: dt.datetime,
) -> tuple[Observation | None, Take | Wait]:
    """What a replica that does not lead does with the Lease it just read (None: there is none yet)."""
    if record is None:
        fresh = LeaseRecord(holder=identity, duration_seconds=timing.lease_duration, acquire_time=wall, renew_time=wall)
        return None, Take(fresh, create=True)
    seen = observe(seen, record, now)
    if not record.holder or record.holder == identity:
        return seen, Take(taken(record, identity, timing, wall))  # released (or a write of ours whose answer was lost)
    due = expires_at(seen, timing)
    if now >= due:
        return seen, Take(taken(record, identity, timing, wall))
    return seen, Wait(min(timing.retry_period, due - now))


def taken(record: LeaseRecord, identity: str, timing: Timing, wall: dt.datetime) -> LeaseRecord:
    """``record`` rewritten with this process as the holder (a transition unless it held it already)."""
    same = record.holder == identity
    return replace(
        record,
        holder=identity,
        duration_seconds=timing.lease_duration,
        acquire_time=record.acquire_time if same else wall,
        renew_time=wall,
        transitions=record.transitions + (0 if same else 1),
    )


def renewed(record: LeaseRecord, wall: dt.datetime) -> LeaseRecord:
    """The holder's renewal: only the renew time changes (and, once stored, the version)."""
    return replace(record, renew_time=wall)


def released(record: LeaseRecord, wall: dt.datetime) -> LeaseRecord:
    """Given up on a clean stop, after this process stopped acting: no holder, so a candidate takes it at once."""
    return replace(record, holder="", duration_seconds=1, renew_time=wall)


def valid_until(sent: float, timing: Timing) -> float:
    """The end of a leadership whose last successful write was sent at ``sent`` (local monotonic time)."""
    return sent + timing.renew_deadline
