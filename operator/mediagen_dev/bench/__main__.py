"""``python -m mediagen_dev.bench``: see :func:`mediagen_dev.bench.runner.main`."""

from __future__ import annotations

import sys

from mediagen_dev.bench.runner import main

if __name__ == "__main__":
    sys.exit(main())
