"""What can go wrong in a user command, as messages for people (never tracebacks)."""

from __future__ import annotations


class UsageError(Exception):
    """The command line asks for something invalid; the message says what (exit status 2)."""


class BackendError(Exception):
    """The cluster or the gateway refused or failed a request; the message says why (exit status 1)."""
