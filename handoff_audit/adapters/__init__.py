"""Input adapters: each turns one source's lines into native events and Skipped records.

Every adapter has the same shape (see ``base.Adapter``); ``REGISTRY`` lists them by name. The
span formats are imported only when a file of theirs is read, so the CLI starts fast. ``detect``
picks the format of each input from its first lines that could be read.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import orjson

from handoff_audit.adapters.base import Adapter
from handoff_audit.adapters.native import NativeAdapter
from handoff_audit.config import Limits
from handoff_audit.models import Skipped
from handoff_audit.sources import READ_ERRORS, Source, UnreadLine, open_failure, read_failure, read_lines

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector
    from handoff_audit.progress import Bar


class _Lazy:
    """An adapter whose module is imported on first use."""

    def __init__(self, name: str, module: str, cls: str) -> None:
        self.name = name
        self._where = (module, cls)
        self._adapter: Adapter | None = None

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        if self._adapter is None:
            module, cls = self._where
            self._adapter = getattr(importlib.import_module(module), cls)()
        self._adapter.feed(_unread_listed(lines, name, sink), name, sink)


def _unread_listed(lines: Iterable[bytes], name: str, sink: Sink) -> Iterator[bytes]:
    """The lines, each one that was not read listed on ``sink`` with its own reason and handed on blank.

    The span formats would call such a line not valid JSON; blank, it is passed over and the lines
    after it keep their numbers.
    """
    for lineno, raw in enumerate(lines, 1):
        if isinstance(raw, UnreadLine):
            sink.skip(Skipped(name, lineno, raw.reason))
            raw = b""
        yield raw


REGISTRY: dict[str, Adapter] = {
    a.name: a
    for a in (
        NativeAdapter(),
        _Lazy("otlp-json", "handoff_audit.adapters.otlp", "OtlpJsonAdapter"),
        _Lazy("agents-sdk", "handoff_audit.adapters.agents_sdk", "AgentsSdkAdapter"),
        _Lazy("otel-console", "handoff_audit.adapters.console", "ConsoleAdapter"),
    )
}
FORMATS = tuple(REGISTRY)
SNIFF_LINES = 32  # non-blank lines looked at to tell a format
# Lines not read (too long) tell nothing about the format and are looked past, up to this many; the
# lines looked at are held, but every unread line of an input is the same small object.
SNIFF_UNREAD = 10_000


def _decide(line: bytes) -> str | None:
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(ev) is not dict:
        return None
    if "resourceSpans" in ev or "resource_spans" in ev:
        return "otlp-json"
    if ev.get("object") in ("trace", "trace.span"):
        return "agents-sdk"
    data = ev.get("data")
    if type(data) is list and data and type(data[0]) is dict and data[0].get("object") in ("trace", "trace.span"):
        return "agents-sdk"  # the SDK's backend exporter's batches, {"data": [...]}
    return "native"


def detect(stream: Iterator[bytes], forced: str | None = None) -> tuple[str | None, Iterator[bytes]]:
    """The format of an input and its lines (those read to tell the format come first again).

    The first non-blank lines decide: a JSON object with ``resourceSpans`` is OTLP JSON; one whose
    ``object`` is ``trace`` or ``trace.span`` is an Agents SDK export; any other JSON object is a
    native event. A first line ``{`` opens a pretty-printed document: OTLP JSON if it holds
    ``"resourceSpans"``, console output if its spans have a ``"context"``. None when nothing fits.
    Lines that were not read (``UnreadLine``) are passed over: an input with nothing else in its
    first lines is in no format, as one with no line at all.
    """
    if forced is not None:
        return forced, iter(stream)
    head: list[bytes] = []
    found: str | None = None
    seen = unread = 0
    for raw in stream:
        head.append(raw)
        if isinstance(raw, UnreadLine):
            unread += 1
            if unread >= SNIFF_UNREAD:
                break
            continue
        if not raw.strip():
            continue
        seen += 1
        if seen == 1 and raw.strip() == b"{":
            found = _pretty(head, stream)
            break
        found = _decide(raw)
        if found is not None or seen >= SNIFF_LINES:
            break
    return found, itertools.chain(head, stream)


def _pretty(head: list[bytes], stream: Iterator[bytes]) -> str | None:
    """Read ahead in a pretty-printed document until a key tells which one it is.

    A line that is a whole OTLP JSON request tells too: the ``{`` was the cut first line of a file
    of one request per line.
    """
    for raw in stream:
        head.append(raw)
        key = raw.strip()
        if key.startswith((b'"resourceSpans"', b'"resource_spans"')):
            return "otlp-json"
        if key.startswith(b"{") and (b"resourceSpans" in key or b"resource_spans" in key) and _decide(key) == "otlp-json":
            return "otlp-json"
        if key.startswith(b'"context"'):
            return "otel-console"
        if len(head) > 64:
            break
    return None


def finish(sink: Collector) -> None:
    """Hand over what the span formats hold until the input ends."""
    spans = sys.modules.get("handoff_audit.adapters.spans")
    if spans is not None:
        spans.finish(sink)


__all__ = ["FORMATS", "REGISTRY", "Adapter", "detect", "finish"]


class Sink(Protocol):
    """Where ``read_inputs`` lists what it cannot read; ``last_line`` is the last line an adapter read."""

    last_line: int

    def skip(self, item: Skipped) -> None: ...


def read_inputs(
    sources: Sequence[Source],
    limits: Limits,
    input_format: str | None,
    sink: Sink,
    feed: Callable[[str, Iterator[bytes], str], None],
    bar: Bar | None = None,
) -> None:
    """Open each input in turn, tell its format, and hand its lines to ``feed(format, lines, name)``.

    What cannot be read is listed on ``sink`` as skipped and the run goes on with the next input: an
    input found but not readable (its ``problem``) or that cannot be opened at line 0, which stands
    for the whole file; one in no known format as ``_unknown`` says; a read that fails part way at the
    line after the last one read, as the rest of the file is not read.
    """
    for src in sources:
        sink.last_line = 0
        if src.problem is not None:
            sink.skip(Skipped(src.name, 0, src.problem))
            continue
        try:
            stream = src.open()  # reads the first block, to recognise compression
        except READ_ERRORS as err:
            sink.skip(Skipped(src.name, 0, open_failure(err)))
            continue
        if bar is not None:
            bar.begin(stream)
        try:
            fmt, lines = detect(read_lines(stream, limits), input_format)
            if fmt is None:
                _unknown(lines, src.name, sink)
            else:
                feed(fmt, lines, src.name)
        except READ_ERRORS as err:
            sink.skip(Skipped(src.name, sink.last_line + 1, f"{read_failure(err)}; the rest of the file was not read"))
        finally:
            stream.close()  # a decompressing stream closes the file under it
        if bar is not None:
            bar.end(src)


def _unknown(lines: Iterator[bytes], name: str, sink: Sink) -> None:
    """List an input in no known format: each line that was not read with its own reason, as an
    adapter would, then the rest of the file, from the line after the last of those (line 1 if there
    is none), as one skipped line. An input of blank lines alone lists nothing.
    """
    at = 1
    for lineno, raw in enumerate(lines, 1):
        sink.last_line = lineno
        if isinstance(raw, UnreadLine):
            sink.skip(Skipped(name, lineno, raw.reason))
            at = lineno + 1
        elif raw.strip():
            sink.skip(Skipped(name, at, f"not a known trace format (tried {', '.join(FORMATS)})"))
            return
