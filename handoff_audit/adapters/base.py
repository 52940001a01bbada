"""The adapter protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from handoff_audit.models import Event, Skipped


class Adapter(Protocol):
    """Reads one source's raw lines into native events.

    ``next_seq`` hands out the global read order, so that events of one trace spread over many
    files keep a stable order.
    """

    name: str

    def read(
        self, lines: Iterable[bytes], name: str, next_seq: Callable[[], int]
    ) -> Iterator[list[Event | Skipped]]:
        """Yield, in read order and in batches, an Event for every usable line and a Skipped record
        for every other one. On a read error, yield what was read, then raise."""
        ...
