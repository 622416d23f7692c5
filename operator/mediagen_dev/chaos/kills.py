"""Operator kills: a load of generations while the operator is SIGKILLed and restarted at random moments.

Afterwards every resource must be final, no (resource, attempt) may have paid for a second prediction, every
recorded output must be in the bucket as recorded, no multipart upload may be left open, and deleting everything
(with one more kill in the middle of it) must leave no resource held by its finalizer.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from mediagen_dev.chaos import checks
from mediagen_dev.chaos.chaos_stack import STARTED, TERMINAL, Stack, phase_of
from mediagen_dev.chaos.results import Outcome
from mediagen_dev.fake_replicate import Fault, ModelScript, OutputFile
from mediagen_dev.operator_process import OperatorProcess

MIB = 1024 * 1024
LARGE_OUTPUT = 12 * MIB
"""Above the 8 MiB multipart threshold: these outputs are stored by multipart uploads a kill can interrupt."""


@dataclass(frozen=True)
class Params:
    """How big the scenario is."""

    generations: int
    kills: int
    min_seconds: int
    """Shortest prediction (queue + processing), in seconds."""
    max_seconds: int
    large_every: int
    """Every n-th generation has a multipart-sized output (0: none)."""
    window: float
    """The kills fall at random moments within this many seconds after the generations were created."""
    max_downtime: float
    timeout: float
    """How long, after the last restart, everything may take to reach a final phase."""
    held_creates: int = 0
    """The first n creates are answered only 2 s after Replicate made the prediction: the window in which a kill
    leaves a paid prediction whose id the operator never learnt (it must find it again, not create another)."""


SMALL = Params(
    generations=12,
    kills=2,
    min_seconds=2,
    max_seconds=5,
    large_every=4,
    window=8,
    max_downtime=1.0,
    timeout=90,
    held_creates=6,
)
FULL = Params(
    generations=200,
    kills=10,
    min_seconds=5,
    max_seconds=30,
    large_every=8,
    window=110,
    max_downtime=4.0,
    timeout=300,
    held_creates=100,
)


def start_and_wait(process: OperatorProcess, timeout: float = 60.0) -> None:
    """Start ``process`` and return once it logged its start (earlier starts in the same log do not count)."""
    before = process.logs().count(STARTED)
    process.start()
    deadline = time.monotonic() + timeout
    while process.logs().count(STARTED) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the operator did not start within {timeout} s:\n{process.logs()[-3000:]}")
        if process.pid is None:
            raise RuntimeError(f"the operator exited at startup:\n{process.logs()[-3000:]}")
        time.sleep(0.1)


def _models(stack: Stack, owner: str, params: Params) -> dict[tuple[int, bool], str]:
    """One fake model per (duration, large output): the fake scripts timing and output per model."""
    models = {}
    for seconds in range(params.min_seconds, params.max_seconds + 1):
        for large in (False, True):
            name = f"{owner}/d{seconds}{'-large' if large else ''}"
            files = (
                (OutputFile("clip.mp4", "video/mp4", size=LARGE_OUTPUT, seed=seconds),) if large else (OutputFile(),)
            )
            stack.fake.add_model(
                name,
                ModelScript(queue_seconds=0.5, processing_seconds=seconds - 0.5, output="url", files=files),
            )
            models[seconds, large] = name
    return models


def run(stack: Stack, params: Params, seed: int = 7) -> Outcome:
    """Run the scenario; see the module docstring."""
    began = time.monotonic()
    rng = random.Random(seed)
    namespace = stack.namespace("chaos-kill")
    models = _models(stack, namespace, params)
    operator = stack.operator(f"kills-{namespace}", stack.operator_env(namespace, via_proxy=False))
    start_and_wait(operator)
    if params.held_creates:
        stack.fake.inject(Fault.held(2.0).on("create").repeat(params.held_creates))

    items = []
    for index in range(params.generations):
        seconds = rng.randint(params.min_seconds, params.max_seconds)
        large = params.large_every > 0 and index % params.large_every == params.large_every - 1
        items.append((f"gen-{index:03d}", {"model": models[seconds, large], "input": {"prompt": f"chaos {index}"}}))
    names = stack.create(namespace, items)
    created = time.monotonic()

    kill_log: list[dict[str, object]] = []
    for moment in sorted(rng.uniform(1.0, params.window) for _ in range(params.kills)):
        time.sleep(max(0.0, created + moment - time.monotonic()))
        in_flight = sum(n for phase, n in stack.phases(namespace).items() if phase not in TERMINAL)
        operator.kill()
        downtime = rng.uniform(0.2, params.max_downtime)
        kill_log.append(
            {"at": round(time.monotonic() - created, 1), "in_flight": in_flight, "down": round(downtime, 1)}
        )
        time.sleep(downtime)
        start_and_wait(operator)

    bodies = stack.wait_terminal(namespace, names, params.timeout)
    with stack.fake.lock:
        stack.fake.faults.clear()  # held creates not used up (none should be left)
    phases: dict[str, int] = {}
    for body in bodies.values():
        phases[phase_of(body)] = phases.get(phase_of(body), 0) + 1
    terminal = sum(1 for body in bodies.values() if phase_of(body) in TERMINAL)
    uids = [str(body["metadata"]["uid"]) for body in bodies.values()]
    duplicates = checks.duplicate_predictions(stack, uids)
    outputs = checks.lost_outputs(stack, bodies)
    orphans = checks.orphan_uploads(stack, f"{namespace}/")
    multipart = checks.multipart_objects(stack, f"{namespace}/")

    # Delete everything, and kill the operator while it releases the finalizers.
    stack.delete_all(namespace)
    time.sleep(rng.uniform(0.2, 1.0))
    operator.kill()
    time.sleep(1.0)
    start_and_wait(operator)
    stuck = checks.stuck_after_deletion(stack, namespace, timeout=90)

    operator.stop()
    log = operator.logs()
    crashes = checks.operator_crashes(log)
    notes = []
    if terminal < params.generations:
        notes.append(f"{params.generations - terminal} resources did not reach a final phase: {phases}")
    if phases.get("Succeeded", 0) < terminal:
        notes.append(f"not every generation succeeded: {phases}")
    if duplicates:
        notes.append(f"{duplicates} predictions were paid for twice")
    if outputs.lost:
        notes.append(f"{outputs.lost} outputs lost: {outputs.problems[:5]}")
    if orphans:
        notes.append(
            f"{len(orphans)} multipart uploads were left open by kills in the middle of an upload: {orphans[:5]}"
        )
    if stuck:
        notes.append(f"{len(stuck)} resources still present 90 s after deletion: {stuck[:5]}")
    if crashes:
        notes.append(f"{len(crashes)} crash lines in the operator log: {crashes[:3]}")
    survived = (
        terminal == params.generations
        and phases.get("Succeeded", 0) == terminal
        and not duplicates
        and not outputs.lost
        and not orphans
        and not stuck
    )
    return Outcome(
        name="operator_kills",
        survived=survived,
        headline={
            "kills": params.kills + 1,
            "generations": params.generations,
            "terminal": terminal,
            "duplicate_predictions": duplicates,
            "lost_outputs": outputs.lost,
            "orphan_uploads": len(orphans),
            "stuck_finalizers": len(stuck),
        },
        details={
            "namespace": namespace,
            "phases": phases,
            "predictions": checks.predictions_of(stack, uids),
            "outputs_checked": outputs.checked,
            "multipart_objects": multipart,
            "kills_during_generation": kill_log,
            "kills_during_deletion": 1,
            "recovered_predictions": log.count("recovered prediction"),
            "held_creates": params.held_creates,
            "operator_starts": operator.starts,
            "crash_lines": len(crashes),
            "prediction_seconds": [params.min_seconds, params.max_seconds],
        },
        notes=notes,
        seconds=time.monotonic() - began,
    )
