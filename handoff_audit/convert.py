"""Convert traces in any readable format to native JSON Lines (``handoff-audit convert``).

Native input passes through line by line (usable events as they were written); span formats are
turned into native events by their adapters, exactly as ``scan`` reads them, so scanning the output
gives the same findings as scanning the input.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from handoff_audit.adapters import FORMATS, REGISTRY, detect
from handoff_audit.adapters.native import check_event
from handoff_audit.errors import InputError
from handoff_audit.models import Skipped
from handoff_audit.sources import expand


@dataclass(slots=True, weakref_slot=True, eq=False)  # the span buffer of a run is held by a weak reference to it
class Conversion:
    """What a conversion read: lines skipped, events written."""

    skipped: list[Skipped] = field(default_factory=list)
    events: int = 0
    last_line: int = 0

    def skip(self, item: Skipped) -> None:
        self.skipped.append(item)


def convert(paths: tuple[str, ...], input_format: str | None = None, result: Conversion | None = None) -> Iterator[bytes]:
    """Native JSON Lines for every input, one encoded line at a time; InputError when an input cannot be opened."""
    sources = expand(list(paths))
    if not sources:
        raise InputError(f"{', '.join(paths)}: no trace files found")
    out = result if result is not None else Conversion()
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
                    continue
                if fmt == "native":
                    yield from _native(lines, src.name, out)
                else:
                    REGISTRY[fmt].feed(lines, src.name, out)  # type: ignore[arg-type]
        except (OSError, EOFError, zlib.error) as err:
            reason = "truncated compressed stream" if isinstance(err, EOFError) else "read error"
            out.skip(Skipped(src.name, out.last_line + 1, f"{reason}; the rest of the file was not read"))
    from handoff_audit.adapters import spans

    for ev, _, _ in spans.converted(out):
        out.events += 1
        yield orjson.dumps(ev) + b"\n"


def _native(lines: Iterator[bytes], name: str, out: Conversion) -> Iterator[bytes]:
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
        out.events += 1
        yield orjson.dumps(ev) + b"\n"
