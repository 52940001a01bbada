"""Span-shaped traces (OpenTelemetry, OpenAI Agents SDK) to native events.

The span readers (``otlp.py``, ``console.py``, ``agents_sdk.py``) turn each span into a ``Span``:
what it is (an agent's turn, a graph node, a handoff, a model call, a tool call) and the few values
the audit reads. Spans are held per trace until the end of the input, since a trace may be split
across lines and files and arrive out of order; then ``trace_events`` makes the trace's native
events. docs/input-formats.md states every rule used here.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from handoff_audit.adapters.native import MAX_DEPTH, check_event, depth, make_event
from handoff_audit.models import Skipped

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


NO_CONTENT = (
    "the export holds no message content, so the state handed over was not compared "
    "(record handoffs with the recording integration to audit them)"
)


NO_CALL = "the receiver made no model call before the run ended, so what it got is unknown"


NO_SENDER = "no agent span of the sender was read, so the state handed over was not compared"


@dataclass(slots=True)
class Span:
    """One span, reduced to what the audit reads. ``role`` is agent, node, graph, handoff, llm, tool or other."""

    trace_id: str
    span_id: str
    parent_id: str | None
    role: str
    name: str
    start: float | None
    end: float | None
    source: str
    line: int
    error: str | None = None
    requested: tuple[str, ...] = ()  # agents named by a "Multiple handoffs requested" error
    to_agent: str | None = None
    # llm: messages; node/graph: state; tool: arguments. Held as read (JSON text, or compact JSON
    # bytes) and parsed only when the trace is converted: parsed values cost many times their text.
    input: Any = None
    output: Any = None
    model: Any = None
    tokens: tuple[Any, Any] = (None, None)
    call_id: Any = None  # tool: the id of the model's tool call it ran, where the format records it
    meta: dict[str, Any] = field(default_factory=dict)


def loads_maybe(value: Any) -> Any:
    """JSON text (str, or bytes as held by ``Span``) parsed, or the value as it is when it is not JSON."""
    if isinstance(value, bytes):
        return orjson.loads(value)
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


# --- holding spans until their trace is complete -----------------------------------------------

# A trace is converted once its root span (one without a parent) has been read and this many spans
# of other traces have been read since its last span; the rest wait for the end of the input.
SPAN_WINDOW = 10_000
_CHECK_EVERY = 1_024


class SpanBuffer:
    """The spans of the traces of one run that are not converted yet."""

    def __init__(self) -> None:
        self.traces: dict[str, list[Span]] = {}
        self.last: dict[str, int] = {}  # trace id -> count of spans read at its last span
        self.rooted: set[str] = set()
        self.converted: set[str] = set()
        self.count = 0

    def add(self, span: Span, sink: Any) -> None:
        """Hold one span; convert the traces that are complete and idle now and then."""
        tid = span.trace_id
        if tid in self.converted:
            sink.skip(Skipped(span.source, span.line,
                              f"span of a trace already converted ({SPAN_WINDOW} spans after its root span)"))
            return
        self.count += 1
        self.traces.setdefault(tid, []).append(span)
        self.last[tid] = self.count
        if span.parent_id is None:
            self.rooted.add(tid)
        if self.count % _CHECK_EVERY == 0:
            before = self.count - SPAN_WINDOW
            for done in [t for t in self.rooted if self.last[t] < before]:
                self.rooted.discard(done)
                self.converted.add(done)
                del self.last[done]
                _emit(sink, done, self.traces.pop(done))


_buffers: weakref.WeakKeyDictionary[Any, SpanBuffer] = weakref.WeakKeyDictionary()


def buffer_for(sink: Any) -> SpanBuffer:
    """The span buffer of the run that ``sink`` collects."""
    buf = _buffers.get(sink)
    if buf is None:
        buf = _buffers[sink] = SpanBuffer()
    return buf


def finish(sink: Any) -> None:
    """Convert every trace still held (the end of the input) and hand its events to ``sink``."""
    buf = _buffers.pop(sink, None)
    if buf is None:
        return
    for tid in sorted(buf.traces):
        _emit(sink, tid, buf.traces.pop(tid))


def _emit(sink: Any, tid: str, spans: list[Span]) -> None:
    """One trace's native events to ``sink``: a Collector takes Events, a converter (``write_event``) dicts.

    An event that is not a usable native event (an agent span without a name, say, or one nested
    deeper than the sink's ``max_depth``) is skipped with the reason and the span's file and line.
    """
    write = getattr(sink, "write_event", None)
    max_depth = getattr(sink, "max_depth", MAX_DEPTH)
    for ev, source, line in trace_events(tid, spans, sink.skip):
        reason = check_event(ev)
        if reason is None and depth(ev) > max_depth:
            # A JSON text in an attribute (a tool's input or output) can nest without end.
            reason = f"nested deeper than {max_depth} levels"
        if reason is not None:
            sink.skip(Skipped(source, line, reason))
        elif write is not None:
            write(ev)
        else:
            sink.add(make_event(ev, sink.seq + 1, source, line), ev)
    if write is None:
        sink.close(tid)


# --- messages as a state ------------------------------------------------------------------------


def _text(content: Any) -> Any:
    """Message content as text where it is text parts; other shapes as they are."""
    if isinstance(content, list):
        texts = [p.get("text", p.get("content")) for p in content if isinstance(p, dict)]
        strings = [t for t in texts if isinstance(t, str)]
        if texts and len(strings) == len(texts):
            return "".join(strings)
    return content


def call_id(value: Any) -> str | int | None:
    """A tool call's id as recorded: a string or an integer; any other value (a list, an object) is no id."""
    return value if type(value) in (str, int) else None


def message_items(messages: Any) -> Iterator[tuple[str, Any]]:
    """Normalise chat, Responses-API and GenAI-parts messages to (kind, value) items.

    Kinds: ``message`` ({role, content}), ``call`` ((id, name, arguments)), ``output`` ((id, output)).
    System and developer messages are instructions of the agent, not state handed over: left out.
    What is not in the shape read is absent, as a message that is not an object is: an id that is
    neither a string nor an integer is no id, ``tool_calls`` that is not a list holds no call, and a
    call whose ``function`` is not an object is not a call.
    """
    if isinstance(messages, dict):
        if isinstance(messages.get("output"), list):
            messages = messages["output"]  # a Responses-API response object
        elif isinstance(messages.get("messages"), list):
            messages = messages["messages"]  # a Chat Completions request body
        elif isinstance(messages.get("input"), list):
            messages = messages["input"]  # a Responses-API request body
        elif isinstance(messages.get("choices"), list):  # a Chat Completions response
            messages = [c.get("message") for c in messages["choices"] if isinstance(c, dict)]
    if not isinstance(messages, list):
        return
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        typ = m.get("type")
        if role in ("system", "developer"):
            continue
        if typ == "function_call":
            yield "call", (call_id(m.get("call_id")), m.get("name"), loads_maybe(m.get("arguments")))
            continue
        if typ == "function_call_output":
            yield "output", (call_id(m.get("call_id")), m.get("output"))
            continue
        if isinstance(m.get("parts"), list):  # GenAI semantic conventions
            texts = []
            for p in m["parts"]:
                if not isinstance(p, dict):
                    continue
                if p.get("type") == "tool_call":
                    yield "call", (call_id(p.get("id")), p.get("name"), loads_maybe(p.get("arguments")))
                elif p.get("type") == "tool_call_response":
                    yield "output", (call_id(p.get("id")), p.get("response", p.get("result")))
                elif isinstance(p.get("content"), str):
                    texts.append(p["content"])
            if texts:
                yield "message", {"role": role, "content": "".join(texts)}
            continue
        if role == "tool":
            yield "output", (call_id(m.get("tool_call_id")), _text(m.get("content")))
            continue
        calls = m.get("tool_calls")
        for tc in calls if isinstance(calls, list) else ():
            fn = tc.get("function", {}) if isinstance(tc, dict) else None
            if isinstance(fn, dict):
                yield "call", (call_id(tc.get("id")), fn.get("name"), loads_maybe(fn.get("arguments")))
        content = _text(m.get("content"))
        if content not in (None, "", []):
            yield "message", {"role": role, "content": content}


def messages_state(messages: list[Any], skip_calls: set[Any]) -> dict[str, Any]:
    """A conversation as a state: ``messages``, ``tool_calls`` and ``tool_outputs`` by call id."""
    state: dict[str, Any] = {}
    for kind, value in message_items(messages):
        if kind == "message":
            state.setdefault("messages", []).append(value)
        elif kind == "call" and value[0] not in skip_calls:
            state.setdefault("tool_calls", {})[str(value[0])] = {"name": value[1], "arguments": value[2]}
        elif kind == "output" and value[0] not in skip_calls:
            state.setdefault("tool_outputs", {})[str(value[0])] = value[1]
    return state


def tool_calls_in(messages: Any) -> list[tuple[Any, Any]]:
    """(id, name) of the tool calls in a model's output."""
    return [(v[0], v[1]) for kind, v in message_items(messages) if kind == "call"]


# Tool names that hand the conversation to another agent (the Agents SDK's and LangGraph's handoff
# tools are named ``transfer_to_<agent>``; a supervisor's way back ``transfer_back_to_<agent>``).
HANDOFF_PREFIXES = ("transfer_to_", "transfer_back_to_", "handoff_to_")


def _plain(name: str) -> str:
    """An agent or tool name as the Agents SDK turns it into a tool name: lower case, ``_`` for the rest."""
    return "".join(c if c.isalnum() else "_" for c in name.lower())


def handoff_call_names(spans: list[Span]) -> Callable[[Any], bool]:
    """A test telling a tool call's name as a handoff: no tool span ran a tool of that name, and the
    name starts with a handoff prefix or, with or without one, names an agent of the trace."""
    tools = {s.name for s in spans if s.role == "tool"}
    agents = {_plain(s.name) for s in spans if s.role in ("agent", "node") and s.name}
    agents.update(_plain(s.to_agent) for s in spans if s.role == "handoff" and s.to_agent)

    def is_handoff(name: Any) -> bool:
        if not isinstance(name, str) or name in tools:
            return False
        if name.startswith(HANDOFF_PREFIXES):
            return True
        plain = _plain(name).removeprefix("transfer_").removeprefix("handoff_")
        return plain in agents

    return is_handoff


# --- one trace to native events -----------------------------------------------------------------


CYCLE = "span is its own ancestor (parent cycle)"


def _cycles(by_id: dict[str, Span]) -> set[str]:
    """The ids of the spans whose parent ids lead back to themselves (a span its own parent, or a loop)."""
    done: set[str] = set()
    looped: set[str] = set()
    for sid in by_id:
        path: dict[str, int] = {}  # the spans of this walk, in order
        at: str | None = sid
        while at is not None and at in by_id and at not in done and at not in path:
            path[at] = len(path)
            at = by_id[at].parent_id
        if at is not None and at in path:
            looped.update(list(path)[path[at]:])
        done.update(path)
    return looped


class _Trace:
    def __init__(self, tid: str, spans: list[Span], skip: Any) -> None:
        self.tid = tid
        # A span read twice (the same trace exported to two files) counts once: the first read.
        unique: dict[str, Span] = {}
        for s in spans:
            unique.setdefault(s.span_id, s)
        # A span that is its own ancestor has no place in the tree: listed, and left out. The spans
        # under it are read as if their parent were missing.
        looped = _cycles(unique)
        for sid in sorted(looped, key=lambda i: (unique[i].source, unique[i].line, i)):
            s = unique.pop(sid)
            skip(Skipped(s.source, s.line, CYCLE))
        self.spans = sorted(unique.values(), key=lambda s: (s.start if s.start is not None else 0.0, s.line))
        self.by_id = unique
        self.out: list[tuple[float, int, dict[str, Any], str, int]] = []
        # An agent span that holds other agents' spans is the run around them (the OpenInference
        # instrumentation of the Agents SDK records the workflow as one), not an agent.
        for s in self.spans:
            if s.role == "agent":
                for a in self.ancestors(s):
                    if a.role == "agent":
                        a.role = "other"

    def emit(self, ts: float | None, ev: dict[str, Any], span: Span) -> None:
        ev["trace_id"] = self.tid
        if ts is not None:
            ev["ts"] = ts
        self.out.append((ts if ts is not None else 0.0, len(self.out), ev, span.source, span.line))

    def ancestors(self, span: Span) -> Iterator[Span]:
        seen = 0
        parent = self.by_id.get(span.parent_id) if span.parent_id else None
        while parent is not None and seen < 256:
            yield parent
            seen += 1
            parent = self.by_id.get(parent.parent_id) if parent.parent_id else None

    def owner(self, span: Span, roles: tuple[str, ...] = ("agent", "node")) -> Span | None:
        """The agent or node span a span belongs to: an ancestor, else the latest one running at its start."""
        for a in self.ancestors(span):
            if a.role in roles:
                return a
        best = None
        for a in self.spans:
            if a.role in roles and a.start is not None and span.start is not None and a.start <= span.start:
                if a.end is None or a.end >= span.start:
                    best = a
        return best


def trace_events(
    tid: str, spans: list[Span], skip: Any
) -> list[tuple[dict[str, Any], str, int]]:
    """The native events of one trace, in time order, with the file and line of the span behind each."""
    for s in spans:
        s.input, s.output = loads_maybe(s.input), loads_maybe(s.output)
    t = _Trace(tid, spans, skip)
    agents = [s for s in t.spans if s.role in ("agent", "node")]
    for a in agents:
        t.emit(a.start, {"type": "agent.start", "agent": a.name}, a)
        t.emit(a.end, {"type": "agent.end", "agent": a.name, "status": "error" if a.error else "ok"}, a)
    for s in t.spans:
        if s.role == "llm":
            owner = t.owner(s)
            ev = {"type": "llm.call", "agent": owner.name if owner else "unknown", "model": s.model,
                  "input_tokens": s.tokens[0], "output_tokens": s.tokens[1]}
            t.emit(s.start, ev, s)
        elif s.role == "tool":
            owner = t.owner(s)
            args = s.input if isinstance(s.input, dict) else {}
            ev = {"type": "tool.call", "agent": owner.name if owner else "unknown", "tool": s.name, "args": args}
            t.emit(s.start, ev, s)
    _output_tool_calls(t)
    if any(s.role == "node" for s in t.spans):
        _graph_handoffs(t)
        _graph_outcome(t)
    else:
        _agent_handoffs(t, skip)
        _agent_outcome(t)
    t.out.sort(key=lambda x: (x[0], x[1]))
    return [(ev, source, line) for _, _, ev, source, line in t.out]


def _output_tool_calls(t: _Trace) -> None:
    """The tool calls of a model's output that no tool span recorded, as ``tool.call`` events.

    A call counts once: not when a tool span ran it (the same call id; without ids, the same tool
    name and arguments under the same agent span, each tool span matching one call), nor when another
    model span's output held the same call id. Handoff calls are the handoff, not a tool call.
    """
    is_handoff = handoff_call_names(t.spans)
    ran: list[tuple[Span | None, Span]] = [(t.owner(s), s) for s in t.spans if s.role == "tool"]
    ran_ids = {s.call_id for _, s in ran if s.call_id is not None}
    seen: set[Any] = set()
    for s in t.spans:
        if s.role != "llm" or s.output is None:
            continue
        owner = t.owner(s)
        for kind, value in message_items(s.output):
            if kind != "call":
                continue
            cid, name, args = value
            if is_handoff(name):
                continue
            if cid is not None:
                if cid in seen or cid in ran_ids:
                    continue
                seen.add(cid)
            match = next((n for n, (o, tool) in enumerate(ran)
                          if o is owner and tool.call_id is None and tool.name == name and tool.input == args), None)
            if match is not None:
                del ran[match]
                continue
            ev = {"type": "tool.call", "agent": owner.name if owner else "unknown", "tool": name,
                  "args": args if isinstance(args, dict) else {}}
            t.emit(s.end if s.end is not None else s.start, ev, s)


def _handoff(t: _Trace, hid: str, frm: str, to: str, sent: Any, received: Any,
             ts_sent: float | None, ts_recv: float | None, span: Span, recv_span: Span | None) -> None:
    if sent is not None:
        t.emit(ts_sent, {"type": "handoff.sent", "handoff_id": hid, "from": frm, "to": to, "state": sent}, span)
    if received is not None and recv_span is not None:
        ev = {"type": "handoff.received", "handoff_id": hid, "from": frm, "to": to, "state": received}
        t.emit(ts_recv, ev, recv_span)


# --- agents that hand off (Agents SDK, and its OpenInference / GenAI instrumentations) -----------


def _agent_handoffs(t: _Trace, skip: Any) -> None:
    is_handoff = handoff_call_names(t.spans)
    llms = [s for s in t.spans if s.role == "llm"]
    # Handoff calls (see handoff_call_names) are the handoff itself, and their "transferred" outputs
    # are not state either side holds.
    handoff_calls = {
        cid for s in llms for m in (s.input, s.output) for cid, name in tool_calls_in(m) if is_handoff(name)
    }
    agent_spans = [s for s in t.spans if s.role == "agent"]
    handoffs = [s for s in t.spans if s.role == "handoff"]
    if not handoffs:
        # No handoff spans: consecutive agent turns are the handoffs.
        pairs = [(a, b) for a, b in zip(agent_spans, agent_spans[1:]) if a.name != b.name]
        for n, (a, b) in enumerate(pairs, 1):
            _agent_edge(t, f"{t.tid}:{n}", a, b, a.end, llms, handoff_calls, skip, a)
        return
    for h in handoffs:
        sender = t.owner(h, ("agent",))
        frm = sender.name if sender else h.name
        to = h.to_agent
        receiver = None
        for a in agent_spans:
            if a.start is not None and h.start is not None and a.start >= h.start and a is not sender:
                if to is None or a.name == to:
                    receiver = a
                    break
        if to is None:
            if receiver is None:
                continue
            to = receiver.name
        _agent_edge(t, h.span_id, sender, receiver, h.start, llms, handoff_calls, skip, h, frm=frm, to=to)


def _agent_edge(t: _Trace, hid: str, sender: Span | None, receiver: Span | None, ts: float | None,
                llms: list[Span], handoff_calls: set[Any], skip: Any, at: Span,
                frm: str | None = None, to: str | None = None) -> None:
    frm = frm or (sender.name if sender else "unknown")
    to = to or (receiver.name if receiver else "unknown")
    last = None
    if sender is not None:
        for s in llms:
            if t.owner(s, ("agent",)) is sender and (ts is None or s.start is None or s.start <= ts):
                last = s
    first = None
    if receiver is not None:
        first = next((s for s in llms if t.owner(s, ("agent",)) is receiver), None)
    ts_recv = first.start if first is not None else (receiver.start if receiver else None)
    content = last is not None and last.input is not None and first is not None and first.input is not None
    if content:
        assert last is not None and first is not None
        history = (list(last.input) if isinstance(last.input, list) else []) + (
            list(last.output) if isinstance(last.output, list) else []
        )
        sent = messages_state(history, handoff_calls)
        received = messages_state(first.input if isinstance(first.input, list) else [], handoff_calls)
    else:
        sent, received = {}, {}
        if receiver is not None and first is None and last is not None and last.input is not None:
            skip(Skipped(at.source, at.line, f"handoff {frm} -> {to}: {NO_CALL}"))
        elif receiver is not None:
            why = NO_SENDER if sender is None else NO_CONTENT
            skip(Skipped(at.source, at.line, f"handoff {frm} -> {to}: {why}"))
    recv_span = first if first is not None else receiver
    _handoff(t, hid, frm, to, sent, received if receiver is not None else None, ts, ts_recv, at, recv_span)
    # The model asked for more handoffs than the one taken: each other request was never received.
    requested = list(at.requested)
    if not requested and last is not None:
        calls = tool_calls_in(last.output)
        if not calls and first is not None:
            # No output recorded: the calls the receiver saw that the sender's last input did not hold.
            before = {cid for cid, _ in tool_calls_in(last.input)}
            calls = [(cid, name) for cid, name in tool_calls_in(first.input) if cid not in before]
        requested = [_agent_of_call(str(name)) for cid, name in calls if cid in handoff_calls]
    if len(requested) > 1:
        if to in requested:
            requested.remove(to)
        for n, other in enumerate(requested, 1):
            _handoff(t, f"{hid}:{n}", frm, other, sent, None, ts, None, at, None)


def _agent_of_call(tool: str) -> str:
    return tool[len("transfer_to_"):] if tool.startswith("transfer_to_") else tool


def _agent_outcome(t: _Trace) -> None:
    agents = [s for s in t.spans if s.role == "agent"]
    if not agents:
        return
    failed = [a for a in agents if a.error]
    if failed:
        last = max(failed, key=lambda a: a.end or 0.0)
        t.emit(last.end, {"type": "outcome", "agent": last.name, "status": "failure"}, last)
        return
    roots = [s for s in t.spans if not s.parent_id or s.parent_id not in t.by_id]
    if any(r.error for r in roots):
        return  # the run failed outside every agent: nobody claims it
    last = max(agents, key=lambda a: a.end or 0.0)
    t.emit(last.end, {"type": "outcome", "agent": last.name, "status": "success"}, last)


# --- graphs of nodes (LangGraph through OpenInference) ------------------------------------------


def _graph_of(t: _Trace, node: Span) -> Span | None:
    for a in t.ancestors(node):
        if a.role in ("node", "graph"):
            return a
    return None


def _sent_state(node: Span, received: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """What a node meant the next to get: its input with its update applied. The flag says the input was readable."""
    inp = node.input if isinstance(node.input, dict) else None
    out = node.output
    sent = dict(inp or {})
    if isinstance(out, dict):
        for k, v in out.items():
            old = sent.get(k)
            if isinstance(old, list) and isinstance(v, list) and received.get(k) == old + v:
                sent[k] = old + v  # an appending reducer (messages, notes)
            else:
                sent[k] = v
    return sent, inp is not None


def _graph_handoffs(t: _Trace) -> None:
    nodes = [s for s in t.spans if s.role == "node"]
    levels: dict[str | None, list[Span]] = {}
    for n in nodes:
        g = _graph_of(t, n)
        levels.setdefault(g.span_id if g else None, []).append(n)
    for gid, members in levels.items():
        graph = t.by_id.get(gid) if gid else None
        for a, b in zip(members, members[1:]):
            received = b.input if isinstance(b.input, dict) else None
            if received is None:
                continue
            sent, whole = _sent_state(a, received)
            if not whole or not isinstance(a.output, dict):
                # The sender's input or update was not a readable object (a one-key state is recorded as
                # its bare value): compare only the keys known to have been sent.
                received = {k: v for k, v in received.items() if k in sent}
            _handoff(t, f"{a.span_id}->{b.span_id}", a.name, b.name, sent, received, a.end, b.start, a, b)
        # A graph run inside a node: that node hands its first node the graph's input.
        if graph is not None and graph.role == "graph":
            outer = next((x for x in t.ancestors(graph) if x.role == "node"), None)
            first = members[0]
            if outer is None or not isinstance(first.input, dict) or not isinstance(outer.input, dict):
                continue
            sent = dict(outer.input)
            received = first.input
            if graph.input != outer.input:
                # The node's own code called the graph with what it chose: keys it did not pass are its
                # scoping; keys passed, or whose value arrived under another name, are compared.
                values = {orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in received.values()}
                sent = {k: v for k, v in sent.items()
                        if k in received or orjson.dumps(v, option=orjson.OPT_SORT_KEYS) in values}
            hid = f"{outer.span_id}->{first.span_id}"
            _handoff(t, hid, outer.name, first.name, sent, received, first.start, first.start, outer, first)


def _graph_outcome(t: _Trace) -> None:
    roots = [s for s in t.spans if s.role == "graph" and not any(a.role in ("graph", "node") for a in t.ancestors(s))]
    top = [n for n in t.spans if n.role == "node" and (_graph_of(t, n) in roots)]
    if not roots or not top:
        return
    root = roots[-1]
    failed = [n for n in t.spans if n.role == "node" and n.error]
    if failed or root.error:
        if failed:
            last = max(failed, key=lambda a: a.end or 0.0)
            t.emit(last.end, {"type": "outcome", "agent": last.name, "status": "failure"}, last)
        return
    final = root.output
    given = root.input
    if isinstance(final, dict):
        results = {k: v for k, v in final.items()
                   if v not in (None, "", [], {}) and not (isinstance(given, dict) and given.get(k) == v) and v != given}
    else:
        results = {None: final} if final not in (None, "", [], {}) and final != given else {}
    if not results:
        return  # the run returned nothing a node produced: nobody claims the outcome
    for n in sorted(top, key=lambda a: a.end or 0.0, reverse=True):
        if _wrote(n.output, results):
            t.emit(n.end, {"type": "outcome", "agent": n.name, "status": "success"}, n)
            return


def _wrote(update: Any, results: dict[Any, Any]) -> bool:
    """Whether a node's update wrote part of what the graph returned.

    A key's value counts when the returned value equals it, or is a list ending with its items (an
    appending reducer); an update recorded as a bare value counts when it equals a returned value.
    """
    if not isinstance(update, dict):
        return update not in (None, "", [], {}) and any(update == v for v in results.values())
    for k, v in update.items():
        got = results.get(k)
        if got is None or v in (None, "", [], {}):
            continue
        if got == v or (isinstance(got, list) and isinstance(v, list) and got[len(got) - len(v):] == v):
            return True
    return False
