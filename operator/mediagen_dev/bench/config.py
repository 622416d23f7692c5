"""How big each benchmark runs: ``full`` (the numbers in the README, ~15 minutes on two cores) and ``smoke``
(tiny counts, about a minute, run by the test suite so the benchmarks never rot)."""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Scale:
    """Counts and durations of one benchmark run."""

    name: str
    long_prediction_seconds: float
    """The long prediction of :mod:`.writes` (queue included): 60 s, as the targets say."""
    overhead_rounds: tuple[tuple[int, int], ...]
    """(concurrency, rounds) pairs for :mod:`.overhead`: each round creates that many at once."""
    throughput_count: int
    """Instant generations drained by :mod:`.throughput`."""
    throughput_runs: int
    """How many drains :mod:`.throughput` makes (the median counts)."""
    rate_count: int
    """Slow predictions started at once by :mod:`.rate`."""
    rate_tail_seconds: float
    """How long :mod:`.rate` keeps measuring once every prediction was created."""
    inflight_count: int
    """Slow predictions held in flight by :mod:`.inflight`."""
    inflight_warmup_seconds: float
    inflight_window_seconds: float
    large_bytes: int
    """Size of the output file copied by :mod:`.large`."""
    large_runs: int
    """Copies by the operator (and baseline uploads) in :mod:`.large`, alternating."""
    floor_patches: int
    """Raw status patches made by :mod:`.floor`."""
    held: tuple[tuple[int, float], ...]
    """(concurrency, seconds) pairs for :mod:`.held`: that many kept in flight for that long (after the warm-up)."""
    held_warmup_seconds: float
    """How long a held load runs before its generations count (longer than a prediction: a steady state)."""
    held_durations: tuple[float, float]
    """Shortest and longest prediction of a held load, seconds."""
    settle_seconds: float
    """How long :mod:`.writes` waits after the last generation for anything late."""
    max_objects_count: int
    """Maximum-size finished generations in the namespace of :mod:`.maxobjects`."""
    aggregated_requests: int
    """``POST generate`` requests of each kind (standalone, aggregated) in :mod:`.aggregated`."""
    makespan_count: int
    """Generations submitted at once by :mod:`.makespan`."""
    makespan_model_seconds: float
    """How long each of them runs on the (fake) Replicate."""
    makespan_variants: bool
    """Also measure the makespan with completion webhooks and with Replicate's limits off (not at smoke scale)."""
    sustained_count: int
    """Generations submitted at once by :mod:`.sustained`: far more than a minute's allowance."""


FULL = Scale(
    name="full",
    long_prediction_seconds=60.0,
    overhead_rounds=((1, 30), (50, 4), (200, 3)),
    throughput_count=1000,
    throughput_runs=3,
    rate_count=500,
    rate_tail_seconds=20.0,
    inflight_count=2000,
    inflight_warmup_seconds=20.0,
    inflight_window_seconds=60.0,
    large_bytes=1 * GIB,
    large_runs=2,
    floor_patches=1000,
    held=((50, 60.0), (200, 60.0)),
    held_warmup_seconds=20.0,
    held_durations=(5.0, 15.0),
    settle_seconds=2.0,
    max_objects_count=2000,
    aggregated_requests=200,
    makespan_count=200,
    makespan_model_seconds=10.0,
    makespan_variants=True,
    sustained_count=2000,
)
SMOKE = Scale(
    name="smoke",
    long_prediction_seconds=3.0,
    overhead_rounds=((1, 1), (3, 1)),
    throughput_count=20,
    throughput_runs=1,
    rate_count=20,
    rate_tail_seconds=1.0,
    inflight_count=20,
    inflight_warmup_seconds=1.0,
    inflight_window_seconds=1.5,
    large_bytes=16 * MIB,
    large_runs=1,
    floor_patches=30,
    held=((3, 2.0),),
    held_warmup_seconds=0.0,
    held_durations=(1.0, 2.0),
    settle_seconds=0.5,
    max_objects_count=30,
    aggregated_requests=10,
    makespan_count=20,
    makespan_model_seconds=2.0,
    makespan_variants=False,
    sustained_count=40,
)
SCALES = {s.name: s for s in (FULL, SMOKE)}
