"""Convert traces in any readable format to native JSON Lines (``handoff-audit convert``).

Native input passes through line by line (usable events as they were written); span formats are
turned into native events by their adapters, exactly as ``scan`` reads them, so scanning the output
gives the same findings as scanning the input. Events are written as they are made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from handoff_audit.adapters import REGISTRY, read_inputs
from handoff_audit.adapters.native import MAX_DEPTH, check_event, depth, parse_failure, parse_ts
from handoff_audit.config import Limits
from handoff_audit.formatters._text import json_safe
from handoff_audit.models import KEPT_TYPES, Skipped
from handoff_audit.sources import inputs


class OutputFailed(Exception):
    """The output of a conversion could not be written; ``error`` says why."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error


# eq=False: a conversion is the key of its run's span buffer, held by a weak reference.
@dataclass(slots=True, weakref_slot=True, eq=False)
class Conversion:
    """Where a conversion writes its lines, and what it read: lines skipped, events written."""

    write: Callable[[bytes], Any]
    skipped: list[Skipped] = field(default_factory=list)
    events: int = 0
    last_line: int = 0

    def skip(self, item: Skipped) -> None:
        """Note a line that could not be used."""
        self.skipped.append(item)

    def write_event(self, ev: dict[str, Any]) -> None:
        """Write one native event as a line: characters a terminal would act on, or that a reader
        would not see, as ``\\uXXXX`` escapes, as in the JSON reports (the same JSON value)."""
        self.events += 1
        try:
            self.write(json_safe(orjson.dumps(ev).decode()).encode() + b"\n")
        except OSError as err:
            # Not an OSError any more: the reader would take it for a failure to read its input.
            raise OutputFailed(err) from err


def convert(paths: tuple[str, ...], out: Conversion, input_format: str | None = None) -> None:
    """Write every input as native events to ``out``, reading within the default limits; an input that
    cannot be opened is listed as skipped at line 0."""
    def feed(fmt: str, lines: Iterator[bytes], name: str) -> None:
        if fmt == "native":
            _native(lines, name, out)
        else:
            REGISTRY[fmt].feed(lines, name, out)  # type: ignore[arg-type]

    read_inputs(inputs(paths), Limits(), input_format, out, feed)
    from handoff_audit.adapters import spans

    spans.finish(out)


def _native(lines: Iterator[bytes], name: str, out: Conversion) -> None:
    for lineno, raw in enumerate(lines, 1):
        out.last_line = lineno
        if not raw.strip():
            continue
        try:
            ev = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            out.skip(Skipped(name, lineno, parse_failure(err, raw, MAX_DEPTH)))
            continue
        reason = check_event(ev)
        if reason is None and depth(ev) > MAX_DEPTH:
            reason = f"nested deeper than {MAX_DEPTH} levels"  # nor could it be written again
        if reason is None and ev["type"] in KEPT_TYPES and ev.get("ts") is not None:
            try:  # as scan reads it: the time of an event that is paired or ordered must be usable
                parse_ts(ev["ts"])
            except (ValueError, OverflowError, OSError):
                reason = "'ts' is neither RFC 3339 nor Unix seconds"
        if reason is not None:
            out.skip(Skipped(name, lineno, reason))
            continue
        out.write_event(ev)
