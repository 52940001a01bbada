"""The adapter protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector


class Adapter(Protocol):
    """Reads one source's raw lines into native events.

    An adapter numbers each usable event with the next read position (``sink.seq + 1``) and hands it
    to ``sink.add``; a line it cannot use goes to ``sink.skip`` as a Skipped record with its line.
    On a read error it sets ``sink.last_line`` to the last line read and lets the error propagate.
    """

    name: str

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        """Read every line of one source into ``sink``."""
        ...
