"""Convert traces in any readable format to native JSON Lines (``handoff-audit convert``).

Native input passes through line by line (usable events as they were written); span formats are
turned into native events by their adapters, exactly as ``scan`` reads them, so scanning the output
gives the same findings as scanning the input. Events are written as they are made.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from handoff_audit.adapters import FORMATS, REGISTRY, detect
from handoff_audit.adapters.native import check_event
from handoff_audit.errors import InputError
from handoff_audit.models import Skipped
from handoff_audit.sources import expand


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
        """Write one native event as a line."""
        self.events += 1
        self.write(orjson.dumps(ev) + b"\n")


def convert(paths: tuple[str, ...], out: Conversion, input_format: str | None = None) -> None:
    """Write every input as native events to ``out``; InputError when an input cannot be opened."""
    sources = expand(list(paths))
    if not sources:
        raise InputError(f"{', '.join(paths)}: no trace files (*.jsonl, *.json, and .gz) found")
    for src in sources:
        try:
            stream = src.open()
        except OSError as err:
            raise InputError(f"{src.name}: cannot open ({err.strerror or err})") from None
        try:
            with stream:
                out.last_line = 0
                fmt, lines = detect(stream, input_format)
                if fmt is None:
                    out.skip(Skipped(src.name, 1, f"not a known trace format (tried {', '.join(FORMATS)})"))
                elif fmt == "native":
                    _native(lines, src.name, out)
                else:
                    REGISTRY[fmt].feed(lines, src.name, out)  # type: ignore[arg-type]
        except (OSError, EOFError, zlib.error) as err:
            reason = "truncated compressed stream" if isinstance(err, EOFError) else "read error"
            out.skip(Skipped(src.name, out.last_line + 1, f"{reason}; the rest of the file was not read"))
    from handoff_audit.adapters import spans

    spans.finish(out)


def _native(lines: Iterator[bytes], name: str, out: Conversion) -> None:
    for lineno, raw in enumerate(lines, 1):
        out.last_line = lineno
        if not raw.strip():
            continue
        try:
            ev = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.skip(Skipped(name, lineno, "not valid JSON"))
            continue
        reason = check_event(ev)
        if reason is not None:
            out.skip(Skipped(name, lineno, reason))
            continue
        out.write_event(ev)
