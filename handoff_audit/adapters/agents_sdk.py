"""OpenAI Agents SDK trace export: the objects its traces' and spans' ``export()`` return, one per line.

A custom tracing processor writes them as they come (``{"object": "trace", ...}`` and
``{"object": "trace.span", "span_data": {"type": ...}, ...}``). docs/input-formats.md lists the
fields read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from handoff_audit.adapters.spans import Span, buffer_for
from handoff_audit.models import Skipped

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector

ROLES = {"agent": "agent", "handoff": "handoff", "generation": "llm", "response": "llm", "function": "tool"}


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if type(value) is not str:
        raise ValueError
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        raise ValueError
    return dt.timestamp()


def read_span(ev: dict[str, Any], source: str, line: int) -> Span | str:
    """A Span from one exported span object, or why it cannot be used."""
    tid, sid, data = ev.get("trace_id"), ev.get("id"), ev.get("span_data")
    if type(tid) is not str or not tid:
        return "span without a 'trace_id'"
    if type(sid) is not str or not sid:
        return "span without an 'id'"
    if type(data) is not dict or type(data.get("type")) is not str:
        return "span without a 'span_data' object with a 'type'"
    parent = ev.get("parent_id")
    try:
        start, end = _time(ev.get("started_at")), _time(ev.get("ended_at"))
    except ValueError:
        return "'started_at' or 'ended_at' is not an ISO 8601 time with an offset"
    err = ev.get("error")
    error = None
    requested: tuple[str, ...] = ()
    if err:
        error = str(err.get("message") or "error") if type(err) is dict else "error"
        agents = (err.get("data") or {}).get("requested_agents") if type(err) is dict and type(err.get("data")) is dict else None
        if type(agents) is list:
            requested = tuple(str(a) for a in agents)
    typ = data["type"]
    span = Span(tid, sid, parent if type(parent) is str else None, ROLES.get(typ, "other"),
                str(data.get("name") or typ), start, end, source, line, error, requested)
    if typ == "handoff":
        span.name = str(data.get("from_agent") or "")
        span.to_agent = data.get("to_agent") if type(data.get("to_agent")) is str else None
    elif typ in ("generation", "response"):
        # Held as compact JSON until the trace is converted (see Span).
        span.input = None if data.get("input") is None else orjson.dumps(data["input"])
        span.output = None if data.get("output") is None else orjson.dumps(data["output"])
        span.model = data.get("model")
        usage: dict[str, Any] = data["usage"] if type(data.get("usage")) is dict else {}
        span.tokens = (usage.get("input_tokens"), usage.get("output_tokens"))
    elif typ == "function":
        span.input = data.get("input")
    return span


class AgentsSdkAdapter:
    """Reads an OpenAI Agents SDK trace export (JSON Lines)."""

    name = "agents-sdk"

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        """Buffer every span; trace objects carry nothing the audit reads."""
        buf = buffer_for(sink)
        lineno = 0
        try:
            for lineno, raw in enumerate(lines, 1):
                if not raw.strip():
                    continue
                try:
                    ev = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    sink.skip(Skipped(name, lineno, "not valid JSON"))
                    continue
                if type(ev) is not dict:
                    sink.skip(Skipped(name, lineno, "not a JSON object"))
                    continue
                # A line is one exported object, or a batch as the SDK's backend exporter sends it.
                batch = ev.get("data") if "object" not in ev else None
                for item in batch if type(batch) is list else (ev,):
                    obj = item.get("object") if type(item) is dict else None
                    if obj == "trace":
                        continue
                    if obj != "trace.span":
                        sink.skip(Skipped(name, lineno, "neither a trace nor a trace.span object"))
                        continue
                    span = read_span(item, name, lineno)
                    if isinstance(span, str):
                        sink.skip(Skipped(name, lineno, span))
                    else:
                        buf.add(span, sink)
        finally:
            sink.last_line = lineno
