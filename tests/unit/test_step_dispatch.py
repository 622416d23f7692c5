"""The worker's dispatch over the steps is exhaustive, and mypy says so when it is not."""

from __future__ import annotations

import ast
import inspect
import textwrap
import typing
from pathlib import Path

from mypy import api as mypy_api

from mediagen.controller.worker_steps import StepRunner
from mediagen.reconcile import state


def _cases() -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(StepRunner.perform)))
    match = next(node for node in ast.walk(tree) if isinstance(node, ast.Match))
    return [
        case.pattern.cls.id
        for case in match.cases
        if isinstance(case.pattern, ast.MatchClass) and isinstance(case.pattern.cls, ast.Name)
    ]


def test_every_step_has_exactly_one_case() -> None:
    steps = sorted(step.__name__ for step in typing.get_args(state.Step))
    assert sorted(_cases()) == steps


def test_mypy_rejects_a_step_without_a_case(tmp_path: Path) -> None:
    # The worker's match, minus the case for one step: what a step added to the union without a case looks like.
    arms = "\n".join(f"        case {name}():\n            pass" for name in _cases() if name != "WriteProgress")
    snippet = tmp_path / "dispatch.py"
    snippet.write_text(
        "from typing import assert_never\n"
        "from mediagen.reconcile.state import *  # noqa: F403\n\n\n"
        "def perform(step: Step) -> None:\n"
        "    match step:\n"
        f"{arms}\n"
        "        case _:\n"
        "            assert_never(step)\n"
    )
    out, _, status = mypy_api.run(["--strict", "--follow-imports=silent", str(snippet)])
    assert status == 1, out
    assert 'Argument 1 to "assert_never" has incompatible type "WriteProgress"; expected "Never"' in out
