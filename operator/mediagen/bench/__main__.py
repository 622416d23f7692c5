"""``python -m mediagen.bench``: see :func:`mediagen.bench.runner.main`."""

from __future__ import annotations

import sys

from mediagen.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
