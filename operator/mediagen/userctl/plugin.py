"""The ``kubectl-mediagen`` executable: kubectl runs it for ``kubectl mediagen ...``."""

from __future__ import annotations

import sys

from mediagen.userctl.parser import plugin_main


def main() -> None:
    """Console-script entry point."""
    sys.exit(plugin_main())
