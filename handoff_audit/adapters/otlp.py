"""OTLP JSON: what the OpenTelemetry Collector's file exporter writes, and OTLP/HTTP JSON bodies.

One ``{"resourceSpans": [...]}`` request per line is read line by line; a file holding one
request spread over many lines is read whole (``OtlpJsonAdapter.feed`` tells the two apart, and
lists every line of a document that does not parse). Spans are read by their OpenInference and OpenTelemetry
GenAI attributes (see ``span_from_attributes`` and docs/input-formats.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from handoff_audit.adapters.spans import Span, buffer_for, call_id, loads_maybe
from handoff_audit.models import Skipped

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector

STATUS_ERROR = 2
_CAMEL = {"trace_id": "traceId", "span_id": "spanId", "parent_span_id": "parentSpanId",
          "start_time_unix_nano": "startTimeUnixNano", "end_time_unix_nano": "endTimeUnixNano"}
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "responses", "response"})


class BadSpan(ValueError):
    """A span that cannot be used; the message is the reason."""


_DECIMAL = re.compile(r"-?[0-9]+")  # ASCII digits only: str.isdigit() takes '²' too, which int() refuses


def _integer(value: Any) -> int | None:
    """A JSON integer, or a decimal integer written as a string; None for anything else."""
    if type(value) is int:
        return value
    if type(value) is str and _DECIMAL.fullmatch(value):
        try:
            return int(value)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            return None
    return None


def attribute_value(value: Any) -> Any:
    """A typed OTLP ``AnyValue`` as a plain value; BadSpan when it is not one."""
    if type(value) is not dict or len(value) > 1:
        raise BadSpan("not a typed value")
    if not value:
        return None
    ((kind, v),) = value.items()
    if kind == "stringValue" and type(v) is str:
        return v
    if kind == "boolValue" and type(v) is bool:
        return v
    if kind == "intValue" and (n := _integer(v)) is not None and -(2**63) <= n < 2**63:
        return n  # an int64: a larger value could be neither compared as read nor written by convert
    if kind == "doubleValue" and type(v) in (int, float):
        return float(v)
    if kind == "doubleValue" and v in ("NaN", "Infinity", "-Infinity"):
        return None
    if kind in ("arrayValue", "kvlistValue") and type(v) is dict:
        values = v.get("values")
        if values is None:
            values = []  # an empty list or object, written without its 'values'
        if type(values) is list:
            return [attribute_value(x) for x in values] if kind == "arrayValue" else attributes(values)
    if kind == "bytesValue" and type(v) is str:
        return v
    raise BadSpan(f"'{kind}' is not a readable value")


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list as a dict."""
    if type(items) is not list:
        raise BadSpan("'attributes' is not a list")
    out: dict[str, Any] = {}
    for kv in items:
        if type(kv) is not dict or type(kv.get("key")) is not str:
            raise BadSpan("an attribute without a key")
        try:
            out[kv["key"]] = attribute_value(kv.get("value", {}))
        except BadSpan as err:
            raise BadSpan(f"attribute '{kv['key']}': {err}") from None
    return out


def hex_id(value: Any, size: int, what: str) -> str:
    """A trace or span id as lower-case hex (OTLP JSON writes hex; base64 is read too)."""
    if type(value) is not str or not value:
        raise BadSpan(f"missing '{what}'")
    if len(value) == 2 * size:
        try:
            bytes.fromhex(value)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return raw.hex()
    raise BadSpan(f"'{what}' is not a {size}-byte id")


def _nanos(value: Any) -> float | None:
    """A time in nanoseconds since the Unix epoch (a fixed64 in OTLP) as seconds."""
    if value in (None, "", "0", 0):
        return None
    n = _integer(value)
    if n is not None and 0 <= n < 2**64:
        return n / 1e9
    raise BadSpan("'startTimeUnixNano' or 'endTimeUnixNano' is not a number of nanoseconds")


def span_from_attributes(
    trace_id: str, span_id: str, parent_id: str | None, name: str, start: float | None, end: float | None,
    error: str | None, attrs: dict[str, Any], source: str, line: int,
) -> Span:
    """Classify a span by its OpenInference or GenAI attributes and keep what the audit reads."""
    kind = attrs.get("openinference.span.kind")
    op = attrs.get("gen_ai.operation.name")
    span = Span(trace_id, span_id, parent_id, "other", name, start, end, source, line, error)
    if op == "handoff" or (kind == "TOOL" and name.startswith("handoff to ")):
        span.role = "handoff"
        span.name = str(attrs.get("gen_ai.handoff.from_agent") or attrs.get("input.value") or "")
        to = attrs.get("gen_ai.handoff.to_agent") or attrs.get("output.value")
        span.to_agent = to if isinstance(to, str) and to else None
    elif kind == "AGENT" or op in ("invoke_agent", "create_agent"):
        span.role = "agent"
        span.name = str(attrs.get("agent.name") or attrs.get("gen_ai.agent.name") or attrs.get("graph.node.id") or name)
    elif kind == "LLM" or op in LLM_OPERATIONS:
        span.role = "llm"
        span.input = attrs.get("gen_ai.input.messages", attrs.get("input.value"))
        span.output = attrs.get("gen_ai.output.messages", attrs.get("output.value"))
        # Instrumentations that record messages only as flattened attributes.
        if "llm.input_messages.0.message.role" in attrs:
            span.input = orjson.dumps(flattened_messages(attrs, "llm.input_messages."))
        if "llm.output_messages.0.message.role" in attrs and span.output is None:
            span.output = orjson.dumps(flattened_messages(attrs, "llm.output_messages."))
        span.model = attrs.get("llm.model_name") or attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
        span.tokens = (
            attrs.get("llm.token_count.prompt", attrs.get("gen_ai.usage.input_tokens")),
            attrs.get("llm.token_count.completion", attrs.get("gen_ai.usage.output_tokens")),
        )
    elif kind == "TOOL" or op == "execute_tool":
        span.role = "tool"
        span.name = str(attrs.get("tool.name") or attrs.get("gen_ai.tool.name") or name)
        span.input = attrs.get("gen_ai.tool.call.arguments", attrs.get("input.value"))
        span.call_id = call_id(attrs.get("gen_ai.tool.call.id", attrs.get("tool_call.id")))
    elif kind == "CHAIN":
        meta = loads_maybe(attrs.get("metadata"))
        node = meta.get("langgraph_node") if isinstance(meta, dict) else None
        if (node == name or attrs.get("graph.node.id") == name) and not name.startswith("__"):
            span.role = "node"
        elif name == "LangGraph" or (isinstance(meta, dict) and meta.get("ls_integration") == "langgraph" and node is None):
            span.role = "graph"
        elif node is not None and node != name and "checkpoint_ns" in meta:
            span.role = "graph"  # a graph run inside a node
        if span.role in ("node", "graph"):
            span.input = attrs.get("input.value")
            span.output = attrs.get("output.value")
    return span


def flattened_messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """OpenInference's flattened messages (``llm.input_messages.N.message.role`` ...) as chat messages."""
    messages: dict[int, dict[str, Any]] = {}
    calls: dict[tuple[int, int], dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        head, _, rest = key[len(prefix):].partition(".message.")
        if not head.isdigit():
            continue
        msg = messages.setdefault(int(head), {})
        if rest in ("role", "content", "tool_call_id", "name"):
            msg[rest] = value
        elif rest.startswith("tool_calls."):
            n, _, field = rest[len("tool_calls."):].partition(".tool_call.")
            if n.isdigit():
                call = calls.setdefault((int(head), int(n)), {"type": "function", "function": {}})
                if field == "id":
                    call["id"] = value
                elif field in ("function.name", "function.arguments"):
                    call["function"][field.split(".")[1]] = value
    for (m, _), call in sorted(calls.items()):
        messages[m].setdefault("tool_calls", []).append(call)
    return [messages[i] for i in sorted(messages)]


def read_span(raw: Any, resource_path: str, source: str, line: int) -> Span:
    """One OTLP JSON span; BadSpan when it has no ids or an unreadable attribute."""
    if type(raw) is not dict:
        raise BadSpan("not an object")
    if "traceId" not in raw and "trace_id" in raw:  # protobuf JSON with the proto field names
        raw = {_CAMEL.get(k, k): v for k, v in raw.items()}
    tid = hex_id(raw.get("traceId"), 16, "traceId")
    sid = hex_id(raw.get("spanId"), 8, "spanId")
    parent = raw.get("parentSpanId")
    pid = hex_id(parent, 8, "parentSpanId") if parent else None
    name = raw.get("name")
    if type(name) is not str:
        raise BadSpan("'name' is not a string")
    attrs = attributes(raw.get("attributes") or [])
    status = raw.get("status") or {}
    code = status.get("code") if type(status) is dict else None
    error = None
    if code in (STATUS_ERROR, "STATUS_CODE_ERROR"):
        error = str(status.get("message") or "error")
    return span_from_attributes(
        tid, sid, pid, name, _nanos(raw.get("startTimeUnixNano")), _nanos(raw.get("endTimeUnixNano")),
        error, attrs, source, line,
    )


def read_request(doc: Any, source: str, line: int, sink: Collector) -> None:
    """Every span of one ExportTraceServiceRequest into the run's span buffer."""
    buf = buffer_for(sink)
    resource_spans = doc.get("resourceSpans", doc.get("resource_spans")) if type(doc) is dict else None
    if type(resource_spans) is not list:
        sink.skip(Skipped(source, line, "not an OTLP JSON request (no 'resourceSpans' list)"))
        return
    for r, rs in enumerate(resource_spans):
        scopes = None
        if type(rs) is dict:
            scopes = rs.get("scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans")))
        if type(scopes) is not list:
            sink.skip(Skipped(source, line, f"resourceSpans[{r}]: no 'scopeSpans' list"))
            continue
        for s, ss in enumerate(scopes):
            spans = ss.get("spans") if type(ss) is dict else None
            if type(spans) is not list:
                sink.skip(Skipped(source, line, f"resourceSpans[{r}].scopeSpans[{s}]: no 'spans' list"))
                continue
            for n, raw in enumerate(spans):
                try:
                    buf.add(read_span(raw, f"resourceSpans[{r}]", source, line), sink)
                except BadSpan as err:
                    where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                    sink.skip(Skipped(source, line, f"{where}: {err}"))


def _request_line(raw: bytes) -> Any:
    """A line parsed as a request of its own (an object with 'resourceSpans'), else None."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if type(doc) is dict and ("resourceSpans" in doc or "resource_spans" in doc) else None


class OtlpJsonAdapter:
    """Reads OTLP JSON: one request per line, or one request in the whole file."""

    name = "otlp-json"

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        """Read each line as a request. A first line that starts an object and does not parse opens
        one request pretty-printed over the whole file, unless the next line is a request of its own
        (a JSON Lines file whose first line is cut); a document that does not parse whole is read line
        by line after all, so that every line is listed with its own reason or read."""
        lineno = 0
        first = True
        it = enumerate(lines, 1)
        try:
            for lineno, raw in it:
                if not raw.strip():
                    continue
                try:
                    doc = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    if first and raw.lstrip()[:1] == b"{":
                        # Should reading fail on the way, nothing from this line on has been read.
                        lineno, start = lineno - 1, lineno
                        lineno = self._document(raw, start, it, name, sink)
                    else:
                        sink.skip(Skipped(name, lineno, "not valid JSON"))
                    first = False
                    continue
                first = False
                read_request(doc, name, lineno, sink)
        finally:
            sink.last_line = lineno

    @staticmethod
    def _document(raw: bytes, lineno: int, it: Iterator[tuple[int, bytes]], name: str, sink: Collector) -> int:
        """Read a first line ``raw`` that starts an object and does not parse, and the lines after it
        that belong with it; the number of the last line read."""
        start = lineno
        held = [raw]
        for lineno, nxt in it:  # the next non-blank line tells
            held.append(nxt)
            if nxt.strip():
                break
        if _request_line(held[-1]) is None:
            for lineno, more in it:
                held.append(more)
            try:
                doc = orjson.loads(b"".join(held))
            except orjson.JSONDecodeError:
                pass
            else:
                read_request(doc, name, start, sink)
                return lineno
        # JSON Lines after all: every line read, or listed with its reason.
        for n, line in enumerate(held, start):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                sink.skip(Skipped(name, n, "not valid JSON"))
                continue
            read_request(doc, name, n, sink)
        return lineno
