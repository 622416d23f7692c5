"""Scripted faults (docs/replicate.md#rate-limits, #errors) and token-bucket rate limits, consumed by the fake's
dispatcher.

A :class:`Fault` applies to the next ``times`` matching requests. ``endpoint`` narrows it to one route:
a route name (``create``, ``get``, ``cancel``, ``list``, ``secret``, ``version``, ``file``) or a route
template (``/v1/models/{owner}/{name}/predictions``). Without ``endpoint`` a fault hits API routes only,
never ``/files``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from mediagen_dev.fake_replicate import problems
from mediagen_dev.fake_replicate.problems import Canned


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. Combine ``delay`` with the others: a slow 502, a slow drop.

    * ``answer``: reply with this instead of handling the request;
    * ``drop``: handle the request (a create really creates), then cut the connection mid-response;
    * ``delay``: real seconds to wait before answering (to hit a client's read timeout);
    * ``hold``: real seconds to wait *after* handling, before answering: the request took effect (a create
      created) but the client has not heard yet — the window a crash test kills the client in.
    """

    answer: Canned | None = None
    drop: bool = False
    delay: float = 0.0
    hold: float = 0.0
    times: int = 1
    endpoint: str | None = None
    method: str | None = None

    def on(self, endpoint: str, method: str | None = None) -> Fault:
        """The same fault, limited to one endpoint (and optionally one method)."""
        return replace(self, endpoint=endpoint, method=method)

    def repeat(self, times: int) -> Fault:
        """The same fault for the next ``times`` matching requests."""
        return replace(self, times=times)

    @classmethod
    def throttled(
        cls, retry_after: int = 5, *, in_body: bool = True, in_header: bool = True, in_text: bool = True
    ) -> Fault:
        """429 with ``retry_after`` in the body, ``Retry-After`` header and ``~Ns`` text (each optional)."""
        return cls(answer=problems.throttled(retry_after, in_body=in_body, in_header=in_header, in_text=in_text))

    @classmethod
    def server_error(cls, status: int = 502) -> Fault:
        """A 5xx with a Cloudflare-style HTML body."""
        return cls(answer=problems.cloudflare_html(status))

    @classmethod
    def status(cls, canned: Canned) -> Fault:
        """Any canned answer, e.g. ``problems.billing_required()`` or ``problems.forbidden()``."""
        return cls(answer=canned)

    @classmethod
    def dropped(cls) -> Fault:
        """Accept and process the request, then drop the connection before the response completes."""
        return cls(drop=True)

    @classmethod
    def held(cls, seconds: float) -> Fault:
        """Handle the request at once, then answer only after ``seconds`` of real time."""
        return cls(hold=seconds)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` of real time."""
        return cls(delay=seconds)


@dataclass
class _Armed:
    fault: Fault
    remaining: int


class FaultQueue:
    """Faults waiting for matching requests, first armed first served. Not thread-safe: use the fake's lock."""

    def __init__(self) -> None:
        self._armed: deque[_Armed] = deque()

    def add(self, fault: Fault) -> None:
        """Arm ``fault`` for its next ``times`` matching requests."""
        if fault.times > 0:
            self._armed.append(_Armed(fault, fault.times))

    def take(self, method: str, name: str, template: str) -> Fault | None:
        """The fault for this request, consuming one use of it, or ``None``."""
        for armed in self._armed:
            fault = armed.fault
            if fault.method is not None and fault.method.upper() != method:
                continue
            if fault.endpoint is None:
                if name == "file":
                    continue
            elif fault.endpoint not in (name, template):
                continue
            armed.remaining -= 1
            if armed.remaining <= 0:
                self._armed.remove(armed)
            return fault
        return None

    def pending(self) -> int:
        """How many uses of armed faults are left."""
        return sum(a.remaining for a in self._armed)

    def clear(self) -> None:
        """Disarm everything."""
        self._armed.clear()


class TokenBucket:
    """A token bucket: ``burst`` tokens, refilled at ``per_minute / 60`` tokens per second of the clock."""

    def __init__(self, per_minute: float, burst: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = burst
        self.tokens = burst
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, now: float) -> int | None:
        """Take one token; on failure return whole seconds until one is available (at least 1)."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1, math.ceil((1 - self.tokens) / self.rate))

    def remaining(self, now: float) -> int:
        """Whole tokens left, for the ``ratelimit-remaining`` header."""
        self._refill(now)
        return int(self.tokens)


@dataclass(frozen=True)
class RateLimits:
    """Token-bucket limits; ``None`` disables a class. Replicate: 600/min creates, 3000/min others, "short bursts"
    of unstated size: by default a whole minute's allowance (the bucket counting down from 599 is what Replicate's
    ``ratelimit-remaining`` shows), :meth:`one_second_bursts` the other reading. Low-credit accounts:
    :meth:`low_credit` (6/min, burst 1)."""

    creates_per_minute: float | None = 600.0
    creates_burst: float | None = None
    others_per_minute: float | None = 3000.0
    others_burst: float | None = None

    @classmethod
    def one_second_bursts(cls) -> RateLimits:
        """The documented limits with bursts of one second's allowance: 10 creates, 50 other requests."""
        return cls(creates_burst=10.0, others_burst=50.0)

    @classmethod
    def one_minute_bursts(cls) -> RateLimits:
        """The documented limits with bursts of a whole minute's allowance: 600 creates, 3000 other requests."""
        return cls(creates_burst=600.0, others_burst=3000.0)

    @classmethod
    def low_credit(cls) -> RateLimits:
        """The limit for accounts with under $5 of credit."""
        return cls(creates_per_minute=6.0, creates_burst=1.0)

    def bucket(self, creates: bool, now: float) -> TokenBucket | None:
        """A fresh bucket for creates or for everything else."""
        per_minute = self.creates_per_minute if creates else self.others_per_minute
        if per_minute is None:
            return None
        burst = self.creates_burst if creates else self.others_burst
        return TokenBucket(per_minute, burst if burst is not None else per_minute, now)
