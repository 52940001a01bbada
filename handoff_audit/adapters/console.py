"""The OpenTelemetry Python SDK's ``ConsoleSpanExporter`` output: pretty-printed span objects one
after another (``span.to_json()``), as people paste it from a terminal.

Each object starts with a line ``{`` and ends with a line ``}``, so spans are read one at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from handoff_audit.adapters.otlp import BadSpan, span_from_attributes
from handoff_audit.adapters.spans import Span, buffer_for
from handoff_audit.models import Skipped

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector


def _id(value: Any, size: int, what: str) -> str:
    if type(value) is not str or not value.startswith("0x") or len(value) != 2 + 2 * size:
        raise BadSpan(f"missing or malformed '{what}'")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise BadSpan(f"missing or malformed '{what}'") from None
    return value[2:].lower()


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is not str:
        raise BadSpan("'start_time' or 'end_time' is not a time")
    try:
        # A time without an offset is local time: the first day of year 1 is then out of range.
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        raise BadSpan("'start_time' or 'end_time' is not a time") from None


def read_span(doc: Any, source: str, line: int) -> Span:
    """One console span object; BadSpan when it cannot be used."""
    if type(doc) is not dict:
        raise BadSpan("not a JSON object")
    ctx = doc.get("context")
    if type(ctx) is not dict:
        raise BadSpan("missing 'context'")
    tid = _id(ctx.get("trace_id"), 16, "context.trace_id")
    sid = _id(ctx.get("span_id"), 8, "context.span_id")
    parent = doc.get("parent_id")
    pid = _id(parent, 8, "parent_id") if parent else None
    attrs = doc.get("attributes") or {}
    if type(attrs) is not dict:
        raise BadSpan("'attributes' is not an object")
    status = doc.get("status") or {}
    error = None
    if type(status) is dict and status.get("status_code") == "ERROR":
        error = str(status.get("description") or "error")
    name = doc.get("name")
    if type(name) is not str:
        raise BadSpan("'name' is not a string")
    return span_from_attributes(tid, sid, pid, name, _time(doc.get("start_time")), _time(doc.get("end_time")),
                                error, attrs, source, line)


class ConsoleAdapter:
    """Reads ConsoleSpanExporter output."""

    name = "otel-console"

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        """Gather each ``{`` ... ``}`` block and read it as one span."""
        buf = buffer_for(sink)
        block: list[bytes] = []
        start = 0
        lineno = 0
        try:
            for lineno, raw in enumerate(lines, 1):
                if not block:
                    if not raw.strip():
                        continue
                    start = lineno
                block.append(raw)
                if raw.rstrip() != b"}":
                    continue
                text = b"".join(block)
                block = []
                try:
                    buf.add(read_span(orjson.loads(text), name, start), sink)
                except orjson.JSONDecodeError:
                    sink.skip(Skipped(name, start, "not a valid span object"))
                except BadSpan as err:
                    sink.skip(Skipped(name, start, str(err)))
            if block:
                sink.skip(Skipped(name, start, "span object cut short at the end of the input"))
        finally:
            sink.last_line = lineno
