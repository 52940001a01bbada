"""The project's one exception hierarchy and its exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in the README."""

    PASSED = 0
    FINDINGS = 1
    ERROR = 2


class HandoffAuditError(Exception):
    """Base class: the CLI prints the message as one line and exits 2.

    Messages put the location first (``traces/a.jsonl:42: ...``) and never carry trace values.
    """


class InputError(HandoffAuditError):
    """An input could not be read at all (missing file, unreadable directory, no events)."""


class UsageError(HandoffAuditError):
    """The command line asks for something that cannot be done."""


class LimitError(InputError):
    """An input went past one of the scan's limits; the reader stops reading that input."""


class OutputError(HandoffAuditError):
    """Standard output could not be written: a full disk, a closed pipe (``closed_pipe``: the reader
    went away, as under ``| head``, which needs no message)."""

    def __init__(self, message: str, closed_pipe: bool = False) -> None:
        super().__init__(message)
        self.closed_pipe = closed_pipe
