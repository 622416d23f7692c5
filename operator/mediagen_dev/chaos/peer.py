"""``python -m mediagen_dev.chaos.peer --lifetime N <mediagen CLI arguments>``: the operator with kopf's
peering lifetime set to ``N`` seconds instead of kopf's 60.

kopf declares a peer dead only when its keep-alive is older than the lifetime the peer itself published, so a
SIGKILLed leader blocks its standby for up to that long. This wrapper measures what a shorter lifetime would give
(the failover scenario runs it next to the unchanged operator); it adds one startup handler and nothing else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``--lifetime``, register the handler that applies it, and hand the rest to ``mediagen``'s CLI."""
    parser = argparse.ArgumentParser(prog="python -m mediagen_dev.chaos.peer")
    parser.add_argument("--lifetime", type=int, required=True, help="kopf peering lifetime, in seconds")
    args, rest = parser.parse_known_args(argv)

    import kopf

    from mediagen import cli

    @kopf.on.startup()
    def peering_lifetime(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Startup handlers run before kopf starts its keep-alives, so the first one already carries it.
        settings.peering.lifetime = args.lifetime

    return cli.main(rest)


if __name__ == "__main__":
    sys.exit(main())
