"""The native trace format, version 1 (see docs/trace-format.md).

Validation happens here, at the edge, so that every later stage can rely on the shape of an event:
a line that cannot be used becomes a Skipped record with its line number and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
import itertools
import re
from datetime import datetime, timezone
from typing import Any

import orjson

from handoff_audit.models import Event, Skipped

HANDOFF_TYPES = frozenset({"handoff.sent", "handoff.received"})
AGENT_TYPES = frozenset({"agent.start", "agent.end", "outcome", "llm.call", "tool.call"})
KNOWN_TYPES = HANDOFF_TYPES | AGENT_TYPES
UTF8_BOM = b"\xef\xbb\xbf"


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_UTC = timezone.utc


def parse_ts(value: Any) -> float:
    """Event time as Unix seconds, from a number or an RFC 3339 date-time; ValueError otherwise."""
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str and _RFC3339.match(value):
        last = value[-1]
        dt = datetime.fromisoformat(value[:-1] if last in "Zz" else value)
        return (dt.replace(tzinfo=_UTC) if last in "Zz" else dt).timestamp()
    raise ValueError("not Unix seconds or an RFC 3339 date-time")


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


class NativeAdapter:
    """Reads native JSONL."""

    name = "native"

    def read(
        self, lines: Iterable[bytes], name: str, next_seq: Callable[[], int]
    ) -> Iterator[Event | Skipped]:
        """Yield events and skips; blank lines are neither (they carry nothing)."""
        it = iter(lines)
        first = next(it, None)
        if first is None:
            return
        if first.startswith(UTF8_BOM):
            first = first[len(UTF8_BOM) :]
        lines = itertools.chain((first,), it)
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        new_event = tuple.__new__  # an Event without NamedTuple's slower constructor: this runs per line
        handoff_types, agent_types = HANDOFF_TYPES, AGENT_TYPES
        for lineno, raw in enumerate(lines, 1):
            try:
                ev = loads(raw)
            except decode_error:
                if raw.strip():
                    yield Skipped(name, lineno, "not valid JSON")
                continue
            # Fast path for well-formed events; anything else gets its exact reason from check_event.
            ok = False
            if type(ev) is dict:
                tid, typ = ev.get("trace_id"), ev.get("type")
                if type(tid) is str and tid and type(typ) is str:
                    if typ in handoff_types:
                        frm, to, hid = ev.get("from"), ev.get("to"), ev.get("handoff_id")
                        ok = (
                            type(ev.get("state")) is dict
                            and type(frm) is str
                            and type(to) is str
                            and bool(frm)
                            and bool(to)
                            and (hid is None or type(hid) is str)
                        )
                    elif typ in agent_types:
                        agent = ev.get("agent")
                        ok = type(agent) is str and bool(agent) and (typ != "tool.call" or type(ev.get("args", {})) is dict)
                    else:
                        ok = True
            if not ok:
                yield Skipped(name, lineno, check_event(ev) or "not a usable event")
                continue
            ts = ev.get("ts")
            if ts is not None:
                try:
                    ts = parse_ts(ts)
                except (ValueError, OverflowError, OSError):
                    yield Skipped(name, lineno, "'ts' is neither RFC 3339 nor Unix seconds")
                    continue
            yield new_event(Event, (ts, next_seq(), ev, name, lineno))
