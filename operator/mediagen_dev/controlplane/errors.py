"""The one exception the control plane raises."""

from __future__ import annotations


class ControlPlaneError(RuntimeError):
    """The local control plane could not be found, built, started or used.

    The message always says what went wrong and, where it can, how to fix it (and carries the
    tail of the relevant log), because it usually ends up as the only output of a failed test run.
    """
