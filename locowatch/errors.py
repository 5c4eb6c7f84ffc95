"""The error base that the command line turns into a one-line message and an exit code."""

from __future__ import annotations


class LocowatchError(Exception):
    """An expected failure with a message meant for the user (no traceback needed)."""

    exit_code = 1


class UsageError(LocowatchError):
    """Bad input: an invalid config, a wrong option value."""

    exit_code = 2
