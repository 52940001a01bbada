"""The native trace format, version 1 (see docs/trace-format.md).

Validation happens here, at the edge, so that every later stage can rely on the shape of an event:
a line that cannot be used becomes a Skipped record with its line number and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
from zlib import crc32

from handoff_audit.config import DEFAULT_MAX_DEPTH
from handoff_audit.models import KEPT_TYPES, KNOWN_TYPES, Event, Skipped
from handoff_audit.sources import UnreadLine

if TYPE_CHECKING:
    from handoff_audit.buffer import Collector

HANDOFF_TYPES = frozenset({"handoff.sent", "handoff.received"})
AGENT_TYPES = frozenset({"agent.start", "agent.end", "outcome", "llm.call", "tool.call"})
# How deeply a line may nest. The JSON encoder used for reports refuses more than 254 levels, and the
# diff walks values recursively; real states nest a handful of levels. --max-depth sets it per scan.
MAX_DEPTH = DEFAULT_MAX_DEPTH


_fromisoformat = datetime.fromisoformat
_new_event = tuple.__new__  # an Event without NamedTuple's slower constructor
_loads, _dumps = orjson.loads, orjson.dumps
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=timezone.utc)


def parse_ts(value: Any) -> float:
    """Event time as Unix seconds, from a number or an RFC 3339 date-time; ValueError otherwise.

    A string is split into its whole second (``2026-01-01T10:00:00``), fraction and offset. The whole
    second and offset are checked and converted once (their shape by position, digits and ranges by
    ``datetime.fromisoformat``) and remembered, since a log repeats them line after line; the
    fraction is checked to be ``.`` and digits. This runs for every timed line.
    """
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is not str or len(value) < 20 or not value.isascii():
        raise ValueError("not Unix seconds or an RFC 3339 date-time")
    last = value[-1]
    if last == "Z" or last == "z":
        zone, fraction = "Z", value[19:-1]
    else:
        zone, fraction = value[-6:], value[19:-6]
    key = value[:19] + zone
    base = _seconds.get(key)
    if base is None:
        base = _whole_second(value[:19], zone)
        if len(_seconds) >= 100_000:
            _seconds.clear()
        _seconds[key] = base
    if not fraction:
        return base
    if fraction[0] != "." or not fraction[1:].isdigit():
        raise ValueError("not an RFC 3339 date-time")
    return base + float(fraction)


_seconds: dict[str, float] = {}  # "YYYY-MM-DDThh:mm:ss" + zone -> Unix seconds


def _whole_second(head: str, zone: str) -> float:
    if not (head[4] == "-" and head[7] == "-" and head[10] in "Tt " and head[13] == ":" and head[16] == ":"):
        raise ValueError("not an RFC 3339 date-time")
    if zone == "Z":
        return (_fromisoformat(head) - _EPOCH).total_seconds()
    if zone[0] in "+-" and zone[3] == ":":
        dt = _fromisoformat(head + zone)
        if dt.tzinfo is not None:
            return (dt - _EPOCH_UTC).total_seconds()
    raise ValueError("not an RFC 3339 date-time")


def make_event(ev: dict[str, Any], seq: int, source: str, line: int) -> Event:
    """An Event from a native event dict that passed ``check_event``, for adapters that build dicts."""
    ts = ev.get("ts")
    if ts is not None:
        ts = parse_ts(ts)
    get = ev.get
    state = get("state")
    return _new_event(
        Event,
        (
            ts,
            seq,
            ev["type"],
            ev["trace_id"],
            get("agent"),
            get("from"),
            get("to"),
            get("handoff_id"),
            get("status"),
            get("tool"),
            get("args"),
            None if state is None else _dumps(state),
            source,
            line,
        ),
    )


def load_kept(trace_id: str, kept: tuple[Any, ...]) -> Event:
    """The Event of an outcome or tool call that ``feed`` buffered as its checked line."""
    seq, ts, raw, source, line = kept
    ev = _loads(raw)
    get = ev.get
    fields = (ts, seq, ev["type"], trace_id, ev["agent"], None, None, None,
              get("status"), get("tool"), get("args"), None, source, line)
    return _new_event(Event, fields)


def depth(value: Any) -> int:
    """How deeply objects and arrays nest in ``value`` (a scalar is 0, ``{}`` is 1)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if type(node) is dict:
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if type(child) is dict or type(child) is list)
    return deepest


def parse_failure(err: Exception, raw: bytes, max_depth: int) -> str:
    """Why a line did not parse. Runs only for lines that failed, so it may take its time."""
    if isinstance(raw, UnreadLine):
        return raw.reason
    text = str(err)
    if "depth limit" in text or "recursion" in text.lower():
        return f"nested deeper than {max_depth} levels"
    if "infinity" in text:
        return "number out of range"  # 1e400: larger than any double
    if "byte order mark" in text:
        return "byte-order mark inside the file"  # as after joining files with cat
    if "UTF-8" in text or "utf-8" in text:
        return "not valid UTF-8"
    return "not valid JSON"


def check_event(ev: Any) -> str | None:
    """Return why a parsed line is not a usable native event, or None if it is."""
    if type(ev) is not dict:
        return "not a JSON object"
    tid = ev.get("trace_id")
    if type(tid) is not str or not tid:
        return "missing 'trace_id'" if tid is None else "'trace_id' is not a non-empty string"
    typ = ev.get("type")
    if type(typ) is not str:
        return "missing 'type'" if typ is None else "'type' is not a string"
    if typ in HANDOFF_TYPES:
        for key in ("from", "to"):
            v = ev.get(key)
            if type(v) is not str or not v:
                return f"{typ} without a '{key}' agent name"
        state = ev.get("state", None)
        if type(state) is not dict:
            return f"{typ} without a 'state' object" if state is None else "'state' is not an object"
        hid = ev.get("handoff_id")
        if hid is not None and type(hid) is not str:
            return "'handoff_id' is not a string"
    elif typ in AGENT_TYPES:
        agent = ev.get("agent")
        if type(agent) is not str or not agent:
            return f"{typ} without an 'agent' name"
        if typ == "tool.call" and type(ev.get("args", {})) is not dict:
            return "'args' is not an object"
    return None


def usable_trace_id(raw: bytes, max_depth: int = MAX_DEPTH) -> str | None:
    """The trace id of a line that ``NativeAdapter.feed`` takes as an event, else None.

    The same checks as the reader's loop, which makes them inline for speed (keep the two in step;
    tests/test_native_adapter.py compares them line by line): the line parses, ``check_event`` finds
    nothing wrong, and a kept event nests no deeper than ``max_depth`` and has a usable ``ts``.
    Whether its trace is still open is not the line's own property, and is not asked.
    """
    try:
        ev = _loads(raw)
    except orjson.JSONDecodeError:
        return None
    if check_event(ev) is not None:
        return None
    if ev["type"] in KEPT_TYPES:
        if raw.count(b"{") + raw.count(b"[") > max_depth and depth(ev) > max_depth:
            return None
        ts = ev.get("ts")
        if ts is not None and type(ts) is not float:
            try:
                parse_ts(ts)
            except (ValueError, OverflowError, OSError):
                return None
    tid: str = ev["trace_id"]
    return tid


class NativeAdapter:
    """Reads native JSONL."""

    name = "native"

    def feed(self, lines: Iterable[bytes], name: str, sink: Collector) -> None:
        """Parse, check and hand over every line; blank lines are neither events nor skips.

        This loop runs once per input line, so it does ``Collector.add``'s work inline (see that
        method). A handoff is buffered as its Event, holding its state as compact JSON, its agent
        names shared with earlier lines and its trace's id as the buffer's key; an outcome or tool
        call as a small tuple of its raw line, which ``load_kept`` parses again when the trace
        closes. Measured on
        the benchmark corpus: handing every line over as an object, or holding every parsed field
        of kept events, each cost more than the whole audit of a trace, as each held field pins a
        small object of its line in memory.
        """
        loads, dumps = orjson.loads, orjson.dumps
        new_event, event_cls = _new_event, Event
        decode_error = orjson.JSONDecodeError
        type_code = _TYPE_CODE.get
        open_get = sink.open.get
        names: dict[Any, Any] = {}
        agent_ends = sink.agg.agent_ends
        keep_rest = sink.keep_rest  # the investigation commands also keep agent turns, model calls, unknown types
        skip = sink.agg.skip
        idle = sink.idle_lines
        next_expiry = sink.next_expiry
        parts, part = sink.parts, sink.part
        partitioned = parts > 1
        base = sink.seq  # lines read before this input
        seq = base
        max_depth = sink.max_depth
        only = sink.only
        mention = sink.mention
        passed_over = 0
        events = 0
        lineno = sink.line_base  # nonzero when the lines start inside a file (see ranges.py)
        owner = part
        tid: Any
        typ: Any
        agent: Any
        frm: Any
        to: Any
        try:
            for lineno, raw in enumerate(lines, lineno + 1):
                if partitioned:
                    # A partition reads every line but parses only its own traces' lines; a line
                    # whose trace id cannot be read off its bytes is parsed by every partition.
                    owner = line_owner(raw, parts)
                    if owner >= 0 and owner != part:
                        continue
                if mention is not None and b"\\" not in raw and type(raw) is bytes:
                    # Without an escape, a line's strings are their own bytes: a line that holds none
                    # of the ids asked for is no event of their traces, and is not parsed.
                    for m in mention:
                        if m in raw:
                            break
                    else:
                        passed_over += 1
                        seq = base + lineno
                        if seq >= next_expiry:
                            sink.expire(seq)
                            next_expiry = sink.next_expiry
                        continue
                try:
                    ev: Any = loads(raw)
                except decode_error as err:
                    if raw.strip() and (owner != -1 or part == 0):
                        skip(Skipped(name, lineno, parse_failure(err, raw, max_depth)))
                    continue
                # Fast path for well-formed events; anything else gets its exact reason from check_event.
                code = _BAD
                if type(ev) is dict:
                    tid, typ = ev.get("trace_id"), ev.get("type")
                    if type(tid) is str and tid and type(typ) is str:
                        code = type_code(typ, _UNKNOWN)
                        if code <= _RECEIVED:
                            frm, to, hid = ev.get("from"), ev.get("to"), ev.get("handoff_id")
                            if not (
                                type(ev.get("state")) is dict
                                and type(frm) is str
                                and type(to) is str
                                and frm
                                and to
                                and (hid is None or type(hid) is str)
                            ):
                                code = _BAD
                        elif code < _UNKNOWN:
                            agent = ev.get("agent")
                            if not (
                                type(agent) is str
                                and agent
                                and (code != _TOOL or type(ev.get("args", {})) is dict)
                            ):
                                code = _BAD
                if partitioned and code != _BAD:
                    if owner == -1:
                        if event_owner(ev, parts) != part:
                            continue
                    elif event_owner(ev, parts) != owner:
                        raise Misrouted(f"{name}:{lineno}")
                elif owner == -1 and event_owner(ev, parts) != part:
                    continue
                if code == _BAD:
                    skip(Skipped(name, lineno, check_event(ev) or "not a usable event"))
                    continue
                if code <= _TOOL:
                    # Only kept events are ordered, encoded and walked later, so only their time
                    # and depth are read. A line can nest deeper than MAX_DEPTH only if it holds
                    # more brackets than that, so the exact depth is rarely computed.
                    if raw.count(b"{") + raw.count(b"[") > max_depth and depth(ev) > max_depth:
                        skip(Skipped(name, lineno, f"nested deeper than {max_depth} levels"))
                        continue
                    ts = ev.get("ts")
                    if ts is not None and type(ts) is not float:
                        try:
                            ts = parse_ts(ts)
                        except (ValueError, OverflowError, OSError):
                            skip(Skipped(name, lineno, "'ts' is neither RFC 3339 nor Unix seconds"))
                            continue
                seq = base + lineno
                if only is not None and not only(tid):
                    events += 1  # a usable event all the same
                    if seq >= next_expiry:
                        sink.expire(seq)
                        next_expiry = sink.next_expiry
                    continue
                entry = open_get(tid)
                if entry is None:
                    entry = sink.trace_entry(tid, seq, name, lineno)
                    if entry is None:
                        continue
                elif seq - entry[0] > idle:
                    sink.close_late(tid, name, lineno)
                    continue
                else:
                    entry[0] = seq
                events += 1
                if code <= _RECEIVED:
                    # A handoff keeps its state as compact JSON and shares its agents' names
                    # with earlier lines, so the rest of the parsed line can be freed at once.
                    a = names.get(frm)
                    if a is None:
                        a = names[frm] = frm
                    b = names.get(to)
                    if b is None:
                        b = names[to] = to
                    entry[1].append(new_event(event_cls, (
                        ts, seq, _SENT_TYPE if code == _SENT else _RECEIVED_TYPE, entry[2], None,
                        a, b, hid, None, None, None, dumps(ev["state"]), name, lineno,
                    )))
                elif code == _OUTCOME:
                    # An outcome keeps its agent and status, shared with earlier lines.
                    a = names.get(agent)
                    if a is None:
                        a = names[agent] = agent
                    status = ev.get("status")
                    if type(status) is str:
                        st = names.get(status)
                        if st is None:
                            st = names[status] = status
                        status = st
                    entry[1].append(new_event(event_cls, (
                        ts, seq, _OUTCOME_TYPE, entry[2], a, None, None, None, status, None, None, None,
                        name, lineno,
                    )))
                elif code == _TOOL:
                    # A tool call keeps its line, parsed again when the trace closes.
                    entry[1].append((seq, ts, raw, name, lineno))
                elif code == _END:
                    counts = agent_ends.get(agent)
                    if counts is None:
                        counts = agent_ends[agent] = [0, 0]
                    counts[0] += 1
                    if ev.get("status") == "ok":
                        counts[1] += 1
                    if keep_rest:
                        entry[1].append((seq, raw, name, lineno))
                elif code == _UNKNOWN:
                    sink.unknown(typ)
                    if keep_rest:
                        entry[1].append((seq, raw, name, lineno))
                elif keep_rest:
                    entry[1].append((seq, raw, name, lineno))
                if seq >= next_expiry:
                    sink.expire(seq)
                    next_expiry = sink.next_expiry
        finally:
            sink.seq = base + lineno
            sink.agg.events += events
            sink.agg.passed_over += passed_over
            sink.last_line = lineno


# What the reader does with each type, in the order its tests rely on: handoffs, then kept agent
# events, then counted ones, then types it does not know.
_SENT, _RECEIVED, _OUTCOME, _TOOL, _END, _COUNTED, _UNKNOWN, _BAD = range(8)
_SENT_TYPE, _RECEIVED_TYPE, _OUTCOME_TYPE = "handoff.sent", "handoff.received", "outcome"
_TYPE_CODE = {
    _SENT_TYPE: _SENT,
    _RECEIVED_TYPE: _RECEIVED,
    _OUTCOME_TYPE: _OUTCOME,
    "tool.call": _TOOL,
    "agent.end": _END,
    "agent.start": _COUNTED,
    "llm.call": _COUNTED,
}
assert set(_TYPE_CODE) == KNOWN_TYPES and {t for t, c in _TYPE_CODE.items() if c <= _TOOL} == KEPT_TYPES


_TRACE_KEY = b'"trace_id"'
# The common layout, read in one step: a compact line that starts with its time, then its trace id.
_TS_FIRST = re.compile(rb'\{"ts":(?:[0-9.eE+-]+|"[0-9T:.+Zz -]+"),"trace_id":"([^"\\]+)"').match


class Misrouted(Exception):
    """A line's bytes named another trace than its parse (a repeated ``trace_id`` key): the line
    went to the wrong partition, so this partitioning cannot give the report of one run."""


def line_owner(raw: bytes, parts: int) -> int:
    """The partition of a line's trace, read off its bytes; -1 when only a parse can tell.

    The partition is the CRC-32 of the trace id's UTF-8 bytes modulo ``parts``, the number
    ``event_owner`` gives the parsed line. A later repeat of the ``trace_id`` key, which the parse
    would take instead, is caught by the partition that parses the line (``Misrouted``).
    """
    m = _TS_FIRST(raw)
    if m is not None:
        return crc32(m.group(1)) % parts
    span = _trace_id_span(raw)
    return -1 if span is None else crc32(raw[span[0] : span[1]]) % parts


def line_trace_id(raw: bytes) -> str | None:
    """The trace id of a line, read off its bytes as ``line_owner`` does; None when only a parse can
    tell. Says nothing of whether the line is a usable event, nor of a later repeat of the key."""
    m = _TS_FIRST(raw)
    if m is not None:
        tid = m.group(1)
    else:
        span = _trace_id_span(raw)
        if span is None:
            return None
        tid = raw[span[0] : span[1]]
    try:
        return tid.decode()
    except UnicodeDecodeError:
        return None


def _trace_id_span(raw: bytes) -> tuple[int, int] | None:
    """Where the first ``"trace_id"`` string value is, if the bytes cannot mislead: the key must be
    one of the line's own object (nothing before it opens an object or array, escapes anything, or
    leaves a string open), followed by a colon and a string without escapes. Only the few bytes up
    to the id are looked at."""
    i = raw.find(_TRACE_KEY)
    if (
        i < 0
        or raw.find(b"{", 1, i) >= 0
        or raw.find(b"[", 0, i) >= 0
        or raw.find(b"\\", 0, i) >= 0
        or raw.count(b'"', 0, i) & 1
    ):
        return None
    j = i + 10
    if raw[j : j + 2] != b':"':
        while raw[j : j + 1] in _JSON_SPACE:
            j += 1
        if raw[j : j + 1] != b":":
            return None
        j += 1
        while raw[j : j + 1] in _JSON_SPACE:
            j += 1
        if raw[j : j + 1] != b'"':
            return None
    else:
        j += 1
    end = raw.find(b'"', j + 1)
    if end <= j + 1 or raw.find(b"\\", j + 1, end) >= 0:
        return None
    return j + 1, end


_JSON_SPACE = (b" ", b"\t", b"\r", b"\n")


def event_owner(ev: Any, parts: int) -> int:
    """The partition of a parsed line: by its trace id, or 0 for a line without a usable one."""
    tid = ev.get("trace_id") if type(ev) is dict else None
    if type(tid) is not str or not tid:
        return 0
    return trace_owner(tid, parts)


def trace_owner(trace_id: str, parts: int) -> int:
    """The partition of a trace: the CRC-32 of its id's UTF-8 bytes modulo ``parts``."""
    return crc32(trace_id.encode("utf-8", "surrogatepass")) % parts
