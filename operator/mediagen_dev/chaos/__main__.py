"""``python -m mediagen_dev.chaos --scale full``: run the reliability scenarios and write bench/reliability.json."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mediagen_dev.chaos.results import HEADLINE_KEYS
from mediagen_dev.chaos.runner import DEFAULT_OUT, SCENARIOS, run


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the headline numbers, and exit 0 when every scenario held (1 otherwise)."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev.chaos", description=__doc__)
    parser.add_argument("--scale", choices=("small", "full"), default="full")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where the report goes (default {DEFAULT_OUT})")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios: {','.join(SCENARIOS)}")
    parser.add_argument("--workdir", type=Path, help="where logs go (default: a new temp dir, kept)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("kubernetes", "urllib3", "httpx", "botocore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    only = [name for name in args.only.split(",") if name]
    report = run(args.scale, out=args.out, only=only, workdir=args.workdir)
    print(json.dumps({key: report[key] for key in (*HEADLINE_KEYS, "all_survived")}, indent=2))
    print(f"report: {args.out}  logs: {report['workdir']}")
    return 0 if report["all_survived"] else 1


if __name__ == "__main__":
    sys.exit(main())
