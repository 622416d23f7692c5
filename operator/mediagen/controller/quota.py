"""How fast requests of one kind may leave for Replicate: a model of the account's token bucket, corrected by
what Replicate answers. Pure logic, the time passed in; :mod:`mediagen.controller.request_pacing` does the waiting.

Replicate documents 600 creates and 3000 other requests a minute and allows "short bursts" of unstated size
(docs/replicate.md#rate-limits). A fixed pace is either too slow (it never uses a burst) or too fast (429s), so
a :class:`Quota` keeps an estimate of the bucket instead (how many requests it holds at once, how many are left,
the refill rate) and lets a request go whenever the estimate says one is left:

* **Start** from one second's allowance at once, refilled at the documented rate (2 % under it), keeping
  :data:`JITTER_SECONDS` of it in the bucket, and never more requests on the way than the bucket holds (until
  Replicate has counted them they may be in it still, and a full bucket loses its refill).
* **Bursts** are found while Replicate accepts them: Replicate's ``ratelimit-remaining`` header says how many
  are left (taken as a hint: see :meth:`Quota.accepted`); without it, each accepted request shows the bucket
  held one more than believed and lets one more go, until a 429 or a whole minute's allowance.
* **429**: nothing leaves until Replicate's ``retry_after`` has passed (at most :data:`MAX_PAUSE_SECONDS`), the
  bucket counts as empty, and the pace halves (once per round of requests, not once per 429 of the round);
  each later accepted request adds back a fiftieth of the documented rate (AIMD).
* **Ceilings** configured by the operator are upper bounds: a ceiling of C a second spaces requests at least
  1 / (0.9 C) apart, whatever the estimate allows (:class:`Spacing`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_PAUSE_SECONDS = 600.0
"""The longest a 429's ``retry_after`` holds requests back: a server-told wait is clamped, never trusted blindly."""
DEFAULT_PAUSE_SECONDS = 10.0
"""The pause after a 429 that says nothing about when to retry."""
PACE_MARGIN = 0.02
"""The steady pace is this fraction under the documented refill rate, so the bucket is never run exactly dry."""
JITTER_SECONDS = 0.1
"""Tokens worth this many seconds of the pace stay in the bucket: requests spaced evenly here still arrive
bunched by up to ~50 ms (this process's busy event loop, the network, the server's own; measured by the
``rate`` benchmark), and a bucket holding one more absorbs that instead of answering 429."""
DECREASE = 0.5
"""Multiplicative decrease of the pace on a 429."""
INCREASE = 0.02
"""Additive increase of the pace per accepted request, as a fraction of the documented rate (at most a quarter
of the current pace, so a nearly stopped pace does not leap)."""
HINT_STRIKES = 3
"""429s contradicting ``ratelimit-remaining`` after which it may only lower the estimate: it counts something else.
A 429 contradicts it when the estimate it set held a whole second of pace more than needed: bunching on the way
cannot explain that much."""
CEILING_HEADROOM = 0.10
"""A configured ceiling holds where Replicate counts, and nothing on the way keeps time: requests are spaced
for 10 % under it. (Measured with 500 predictions in flight, departures spaced 1 / (0.95 x limit) apart still
arrived up to ~50 ms bunched: 41 requests in one second against 40; at 10 % it takes 100 ms of bunching.)"""
_EPSILON = 1e-9


@dataclass(frozen=True)
class _Departure:
    """One request on its way: its ticket and when it left, what the estimate held then (before it), the sum of
    corrections so far, and how many others were on the way."""

    ticket: int
    at: float
    tokens: float
    corrected: float
    ahead: int


class Spacing:
    """A configured ceiling: departures at least ``1 / (0.9 x per_second)`` apart, counted from the last one."""

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ValueError("a ceiling must be a positive number of requests a second")
        self.per_second = per_second
        self.interval = 1.0 / (per_second * (1.0 - CEILING_HEADROOM))
        self._last = -math.inf

    def delay(self, now: float) -> float:
        """Seconds until the next departure keeps the spacing (0: now)."""
        return max(0.0, self._last + self.interval - now)

    def depart(self, now: float) -> None:
        """A request left at ``now``."""
        self._last = now


class Quota:
    """One of Replicate's buckets as this operator believes it to be, and the pace that follows.

    ``per_minute`` is the documented allowance (600 for creates, 3000 for the rest): the refill rate starts at
    it and never exceeds it, and no burst is believed larger than a whole minute of it. ``ceiling`` is an
    optional configured limit a second (:class:`Spacing`).

    Callers ask :meth:`delay`, call :meth:`depart` once it is 0 and keep the ticket it returns, then report
    the answer: :meth:`accepted`, :meth:`throttled` or :meth:`unanswered`."""

    def __init__(self, per_minute: float, *, now: float, ceiling: float | None = None) -> None:
        if not per_minute > 0:
            raise ValueError("the allowance must be a positive number of requests a minute")
        self.per_minute = per_minute
        self.limit = per_minute / 60.0
        """The documented refill rate, requests a second."""
        self._spacing = Spacing(ceiling) if ceiling is not None else None
        self._top = self.limit * (1.0 - PACE_MARGIN)
        self._floor = min(self._top, 1.0 / 60.0)  # one a minute: a pace halved many times still probes
        self._rate = self._top
        self._initial_capacity = max(1.0, self.limit)
        self._capacity = self._initial_capacity
        self._tokens = self._capacity
        self._updated = now
        self._sent = 0
        self._out: dict[int, _Departure] = {}  # tickets not answered yet
        self._corrected = 0.0  # every correction answers have made to the estimate, summed
        self._decreased = 0  # the pace was last cut when this many had been sent
        self._probing = True  # slow start: no 429 and no hint yet
        self._trust_hints = True
        self._hinted = False
        self._strikes = 0
        self.paused_until = -math.inf
        self.throttled_count = 0

    # --- what it believes --------------------------------------------------------------------------------

    @property
    def pace(self) -> float:
        """Requests a second once the burst is spent: the refill estimate, under the ceiling if one is set."""
        if self._spacing is None:
            return self._rate
        return min(self._rate, 1.0 / self._spacing.interval)

    @property
    def burst(self) -> float:
        """How many requests the bucket is believed to hold at once."""
        return self._capacity

    @property
    def ceiling(self) -> float | None:
        """The configured ceiling a second, if any."""
        return self._spacing.per_second if self._spacing is not None else None

    @property
    def trusts_hints(self) -> bool:
        """False once ``ratelimit-remaining`` was contradicted by :data:`HINT_STRIKES` 429s."""
        return self._trust_hints

    def tokens(self, now: float) -> float:
        """Requests the bucket is believed to hold at ``now`` (negative: owed to requests already on the way)."""
        self._refill(now)
        return self._tokens

    def _reserve(self) -> float:
        return min(JITTER_SECONDS * self.pace, self._capacity - 1.0)

    def _refill(self, now: float) -> None:
        # Requests on the way are spent here but may not have been counted there yet: until they are, the bucket
        # holds their tokens too, and what would refill beyond its capacity is lost. Refilling past that would
        # let go requests that reach a full bucket together with the delayed ones, and are answered 429.
        if now > self._updated:
            room = max(self._tokens, self._capacity - len(self._out))
            self._tokens = min(room, self._tokens + (now - self._updated) * self.pace)
            self._updated = now

    # --- decisions ---------------------------------------------------------------------------------------

    def delay(self, now: float) -> float:
        """Seconds until the next request may leave (0: now; infinite: not before an answer comes)."""
        self._refill(now)
        wait = self.paused_until - now
        needed = 1.0 + self._reserve()
        if self._tokens < needed:
            if self._capacity - len(self._out) < needed:
                return math.inf  # the bucket may be full of requests on the way: wait for an answer
            wait = max(wait, (needed - self._tokens) / self.pace)
        if self._spacing is not None:
            wait = max(wait, self._spacing.delay(now))
        return wait if wait > _EPSILON else 0.0

    def depart(self, now: float) -> int:
        """A request leaves at ``now``; returns its ticket. Raises ValueError if :meth:`delay` is not 0."""
        if self.delay(now) > 0:
            raise ValueError("a request may not leave before its quota allows")
        self._sent += 1
        self._out[self._sent] = _Departure(self._sent, now, self._tokens, self._corrected, len(self._out))
        self._tokens -= 1.0
        if self._spacing is not None:
            self._spacing.depart(now)
        return self._sent

    def accepted(self, ticket: int, now: float, remaining: int | None = None) -> None:
        """Replicate answered the request (anything but a 429). ``remaining`` is its ``ratelimit-remaining``.

        The header is a hint: the bucket as Replicate counted this request, compared with what the estimate held
        when the request left (less the request itself, plus any correction since). The difference is what the
        estimate missed, give or take what happened on the way: the bucket refilled for part of the time between
        departure and answer, requests on the way ahead of this one may not have been counted yet, and requests
        sent after it may have been counted first. The estimate moves only by what the difference is certain to
        be whichever of those happened; in a steady flow nothing is certain and it keeps its own pace, while a
        burst far larger than believed (or another client spending the same allowance) shows at once. The first
        answer with the header ends slow start. Once the header has been contradicted by 429s, it can only lower
        the estimate.
        """
        departure = self._answer(ticket)
        self._refill(now)
        if ticket > self._decreased:
            self._increase()
        if remaining is not None and remaining >= 0:
            if self._trust_hints:
                self._capacity = min(self.per_minute, max(self._capacity, remaining + 1.0))
                self._probing, self._hinted = False, True
            # A whole count: the bucket held at least that, and less than one more.
            seen = (float(remaining), remaining + 1.0)
            self._correct(departure, now, seen, departure.tokens - 1.0, raise_=self._trust_hints)
        elif self._probing:
            self._capacity = min(self.per_minute, self._capacity + 1.0)
            self._adjust(1.0)
            self._probing = self._capacity < self.per_minute

    def throttled(self, ticket: int, now: float, retry_after: float | None) -> None:
        """Replicate answered 429: pause for ``retry_after`` (clamped), empty the bucket, cut the pace."""
        departure = self._answer(ticket)
        self._refill(now)
        self.throttled_count += 1
        wait = DEFAULT_PAUSE_SECONDS if retry_after is None else min(MAX_PAUSE_SECONDS, max(0.0, retry_after))
        self.paused_until = max(self.paused_until, now + wait)
        if self._hinted and self._trust_hints and departure.tokens >= 1.0 + self._reserve() + self.pace:
            self._strikes += 1
            if self._strikes >= HINT_STRIKES:
                self._trust_hints = False
                self._capacity = min(self._capacity, self._initial_capacity)
        # Not counted: its token comes back; and the bucket held less than one when it arrived.
        self._adjust(1.0)
        self._correct(departure, now, (0.0, 1.0), departure.tokens, raise_=False)
        if ticket > self._decreased:  # sent at the pace now known to be too fast: one cut per round
            self._decreased = self._sent
            if self._probing:
                self._probing = False  # the burst was overshot, not the rate: halve what slow start believed
                self._capacity = max(1.0, self._capacity * DECREASE)
            else:
                self._rate = max(self._floor, self._rate * DECREASE)

    def unanswered(self, ticket: int, now: float) -> None:
        """No answer came back (a network error, a timeout): nothing is learnt, and the token stays spent."""
        self._answer(ticket)
        self._refill(now)

    def _correct(
        self, departure: _Departure, now: float, seen: tuple[float, float], believed: float, *, raise_: bool
    ) -> None:
        """Correct the estimate by what it certainly missed: ``seen`` bounds the bucket as Replicate counted this
        request (at least, less than), ``believed`` is what the estimate held for it when it left."""
        believed += self._corrected - departure.corrected
        # The most it missed: Replicate counted it the moment it left (nothing refilled on the way), and counted
        # every request sent since before it (which the estimate had not taken off yet when it left).
        most = seen[1] - believed + (self._sent - departure.ticket)
        # The least: counted just now (a whole refill on the way at the documented rate), with every request that
        # was on the way ahead of it still uncounted (which the estimate had already taken off).
        least = seen[0] - believed - self.limit * max(0.0, now - departure.at) - departure.ahead
        if raise_ and least > 0:
            correction = least
        elif most < 0:
            correction = most
        else:
            return
        self._adjust(correction)

    def _adjust(self, tokens: float) -> None:
        """Change the estimate other than by refill and departures, keeping count of it."""
        before = self._tokens
        self._tokens = min(self._capacity, self._tokens + tokens)
        self._corrected += self._tokens - before

    def _increase(self) -> None:
        if self._rate < self._top:
            self._rate = min(self._top, self._rate + min(INCREASE * self.limit, self._rate / 4.0))

    def _answer(self, ticket: int) -> _Departure:
        """Close ``ticket``; raises ValueError for a ticket that is not waiting for an answer."""
        try:
            return self._out.pop(ticket)
        except KeyError:
            raise ValueError(f"ticket {ticket} is not waiting for an answer") from None

    @property
    def in_flight(self) -> int:
        """Requests that left and have not been answered."""
        return len(self._out)
