"""parse_progress on log samples shaped like real Replicate logs (docs/replicate.md#progress)."""

from __future__ import annotations

import itertools

import pytest

from mediagen.reconcile.progress import parse_progress
from mediagen_dev.fake_replicate.logs import CR_JOINED, ONE_BAR, PREFIXED, TWO_BARS, render_logs

FLUX_LOGS = (
    "Using seed: 1234\n"
    "Loading LoRA weights\n"
    "  0%|          | 0/4 [00:00<?, ?it/s]\n"
    " 25%|██▌       | 1/4 [00:00<00:01,  2.92it/s]\n"
    " 50%|█████     | 2/4 [00:00<00:00,  3.37it/s]\n"
)
SDXL_REFINER = (
    "Using seed: 42\n"
    "txt2img mode\n"
    "100%|██████████| 40/40 [00:09<00:00,  4.30it/s]\n"
    "Refining...\n"
    " 50%|█████     | 5/10 [00:01<00:01,  4.88it/s]\n"
)
CARRIAGE_RETURNS = (
    "Using seed: 7\n"
    "  0%|          | 0/28 [00:00<?, ?it/s]\r 36%|███▌      | 10/28 [00:02<00:03,  4.71it/s]"
    "\r 71%|███████▏  | 20/28 [00:04<00:01,  4.73it/s]"
)
PREFIXED_BAR = "Loading pipeline components...\nSampling:  40%|████      | 20/50 [00:04<00:06,  4.88it/s]\n"
ANSI_BAR = "\x1b[A\x1b[2K 60%|██████    | 30/50 [00:06<00:04,  4.88it/s]\x1b[0m\n"


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        (FLUX_LOGS, 50),
        (SDXL_REFINER, 90),  # 45 of 50 steps across both bars
        (CARRIAGE_RETURNS, 71),
        (PREFIXED_BAR, 40),
        (ANSI_BAR, 60),
        ("Generating video...\nStill generating...\n", None),
        ("", None),
        (None, None),
        ("Downloading 1176164 bytes\n100% done\n", None),
        (" 30%|███       |\n", 30),  # a bar without step counts still has a percentage
    ],
)
def test_samples(logs: str | None, expected: int | None) -> None:
    assert parse_progress(logs) == expected


def test_loading_bar_then_sampling_is_weighted_by_steps() -> None:
    logs = (
        "Loading checkpoint shards: 100%|██████████| 3/3 [00:02<00:00,  1.21it/s]\n"
        "Sampling:   0%|          | 0/27 [00:00<?, ?it/s]\n"
        "Sampling:  48%|████▊     | 13/27 [00:03<00:03,  4.20it/s]\n"
    )
    assert parse_progress(logs) == 53  # (3 + 13) / (3 + 27)


def test_batch_of_identical_bars_counts_each_run() -> None:
    first = "".join(f"{n * 10:3d}%|          | {n}/10 [00:00<00:00, 9.0it/s]\n" for n in range(11))
    second = "".join(f"{n * 10:3d}%|          | {n}/10 [00:00<00:00, 9.0it/s]\n" for n in range(4))
    assert parse_progress(first) == 100
    assert parse_progress(first + second) == 65  # the restart is a new bar, not progress going back


@pytest.mark.parametrize("script", [ONE_BAR, CR_JOINED, PREFIXED])
def test_single_bar_progress_never_goes_back(script: tuple[object, ...]) -> None:
    readings = [parse_progress(render_logs(script, step / 100)) for step in range(101)]  # type: ignore[arg-type]
    assert readings[0] == 0
    assert readings[-1] == 100
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(readings))


def test_two_bars_reach_100_and_only_dip_when_the_second_appears() -> None:
    readings = [parse_progress(render_logs(TWO_BARS, step / 100)) for step in range(101)]
    assert readings[-1] == 100
    drops = [(a, b) for a, b in itertools.pairwise(readings) if a is not None and b is not None and b < a]
    assert drops == [(97, 80)]  # 39/40 of the base bar, then 40/50 once the refiner bar starts
