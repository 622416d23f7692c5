"""``python -m mediagen_dev``: the developer commands (``make dev`` runs ``dev``)."""

from __future__ import annotations

import sys

from mediagen_dev.cli import main

if __name__ == "__main__":
    sys.exit(main())
