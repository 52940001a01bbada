"""Field changes and trace timelines -> findings, by the rules in ``rules.py``.

Each function here implements one rule that docs/rules.md states in words; keep them in step.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from handoff_audit.diffing import diff_states, format_path, same
from handoff_audit.models import FieldChange, Finding, Handoff, Path
from handoff_audit.pairing import Timeline

ELLIPSES = ("...", "\u2026")
_ABSENT = object()
MAX_UNIT_EXPONENT = 9  # dollars -> nano-dollars at most
UNIT_RELATIVE_TOLERANCE = 0.006  # covers rounding to whole cents of a dollar amount >= 1


@dataclass(slots=True)
class TraceResult:
    """Everything the aggregate needs from one trace; the events themselves are dropped."""

    trace_id: str
    handoffs: list[Handoff]  # each with its findings
    trace_findings: list[Finding]
    claimed_success: bool
    retries: int

    def findings(self) -> Iterator[Finding]:
        """All findings of the trace, handoff findings first."""
        for h in self.handoffs:
            yield from h.findings
        yield from self.trace_findings


Refine = Callable[[Handoff, list[FieldChange]], list[FieldChange]]


def classify_trace(tl: Timeline, refine: Refine | None = None) -> TraceResult:
    """Apply every rule to one trace.

    ``refine``, given only when a contract file sets diff options, filters a handoff's field changes
    before they are named (ignored paths, numeric tolerance).
    """
    trace_findings: list[Finding] = []

    receipts = _receipts_by_agent(tl.handoffs)
    for h in tl.handoffs:
        found = h.findings
        sent, received = h.sent, h.received
        if sent is not None:
            if received is None:
                found.append(_finding(h, "orphaned_handoff", "", None, None, "sent but never received"))
            elif sent.state != received.state:  # equal encodings: equal states, nothing to parse
                changes = diff_states(h.sent_state or {}, h.received_state or {})
                if changes and refine is not None:
                    changes = refine(h, changes)
                if changes:
                    found.extend(handoff_findings(h, changes))
            src = _latest_receipt(receipts, h.from_agent, h.pos)
            if src is not None:
                found.extend(not_forwarded(h, src))
        else:
            found.append(_finding(h, "unsolicited_receipt", "", None, None, "received but never sent"))
    for dup, original in tl.duplicate_receipts:
        original.findings.append(
            _finding(dup, "unsolicited_receipt", "", None, None, "received again (a duplicate delivery)")
        )
    for pos, agent, args in tl.tool_calls:
        src = _latest_receipt(receipts, agent, pos) if args else None
        if src is not None and src.received is not None and src.received.state is not None:
            src.findings.extend(reinterpreted(src, args, tl.events[pos], src.received.state))
    for h, first in clarification_loops(tl.handoffs):
        h.findings.append(
            _finding(
                h,
                "clarification_loop",
                "",
                None,
                None,
                f"{h.to_agent} handed back to {h.from_agent}, which sent the same state again "
                f"(previously sent as {first.handoff_id or 'an unnamed handoff'})",
                at=h.sent,
            )
        )
    trace_findings.extend(outcome_findings(tl))
    return TraceResult(
        tl.trace_id,
        tl.handoffs,
        trace_findings,
        any(status == "success" for _, _, status in tl.outcomes),
        tl.retries,
    )


# --- one handoff: sent vs received -------------------------------------------------------------


def handoff_findings(h: Handoff, changes: list[FieldChange]) -> list[Finding]:
    """Name every change of one handoff; a removal and an addition of the same value are one rename."""
    renames = match_renames(changes)
    out: list[Finding] = []
    for c in changes:
        if c.op == "removed":
            target = renames.get(id(c))
            if target is not None:
                out.append(
                    _finding(h, "renamed_field", c.path, c.sent, target.received,
                             f"arrived renamed as {format_path(target.path)}")
                )
            else:
                out.append(_finding(h, "removed_field", c.path, c.sent, None, "sent but absent on receipt"))
        elif c.op == "added":
            if id(c) not in renames.values_used:
                out.append(_finding(h, "injected_field", c.path, None, c.received, "received but never sent"))
        elif c.op == "item_removed":
            out.append(_finding(h, "removed_field", c.path, c.sent, None, "list item sent but absent on receipt"))
        elif c.op == "item_added":
            out.append(_finding(h, "injected_field", c.path, None, c.received, "list item received but never sent"))
        else:
            kind, message = classify_value_change(c.sent, c.received)
            out.append(_finding(h, kind, c.path, c.sent, c.received, message))
    return out


class _Renames(dict[int, FieldChange]):
    """Removed change id -> the added change that carries its value."""

    def __init__(self) -> None:
        super().__init__()
        self.values_used: set[int] = set()


def match_renames(changes: list[FieldChange]) -> _Renames:
    """Pair removed keys with added keys that carry an equal value.

    An added key under the same parent wins, then one with the same key name, then the first other.
    Weak values (null, booleans, empty values, numbers below 10) only pair under the same parent:
    elsewhere an equal value is too likely to be chance. Candidates are queued by value, by value
    and parent, and by value and name, so that many equal values cost time in proportion to their
    number, not to its square.
    """
    renames = _Renames()
    added = [c for c in changes if c.op == "added"]
    if not added:
        return renames
    by_value: dict[bytes, _Queue] = {}
    by_parent: dict[tuple[bytes, Path], _Queue] = {}
    by_name: dict[tuple[bytes, Any], _Queue] = {}
    for c in added:
        key = _value_key(c.received)
        by_value.setdefault(key, _Queue()).append(c)
        by_parent.setdefault((key, c.path[:-1]), _Queue()).append(c)
        by_name.setdefault((key, c.path[-1]), _Queue()).append(c)
    used = renames.values_used
    for c in changes:
        if c.op != "removed":
            continue
        key = _value_key(c.sent)
        queue = by_value.get(key)
        first = queue.first(used) if queue is not None else None
        if first is None:
            continue
        best = by_parent[(key, c.path[:-1])].first(used) if (key, c.path[:-1]) in by_parent else None
        if best is None:
            if _weak(c.sent):
                continue
            same_name = by_name.get((key, c.path[-1]))
            best = (same_name.first(used) if same_name is not None else None) or first
        renames[id(c)] = best
        used.add(id(best))
    return renames


class _Queue(list[FieldChange]):
    """Changes in order, with a cursor past those already used (used ones never come back)."""

    start = 0

    def first(self, used: set[int]) -> FieldChange | None:
        """The first change not in ``used``, or None."""
        i = self.start
        while i < len(self) and id(self[i]) in used:
            i += 1
        self.start = i
        return self[i] if i < len(self) else None


def _value_key(v: Any) -> bytes:
    return orjson.dumps(_canonical(v), option=orjson.OPT_SORT_KEYS)


def _canonical(v: Any) -> Any:
    """Integral floats as ints, so that 12 and 12.0 encode alike (JSON equality)."""
    if type(v) is float and v.is_integer() and abs(v) < 2**63:
        return int(v)
    if type(v) is dict:
        return {k: _canonical(x) for k, x in v.items()}
    if type(v) is list:
        return [_canonical(x) for x in v]
    return v


def _weak(v: Any) -> bool:
    if v is None or type(v) is bool:
        return True
    if type(v) in (str, list, dict):
        return not v
    return abs(v) < 10


def _is_empty(v: Any) -> bool:
    return v is None or (type(v) in (str, list, dict) and not v)


def _is_number(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and math.isfinite(v)


_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def _as_number(v: Any) -> float | None:
    """A number, or a string holding exactly a JSON number (``"12.50"``), as a float."""
    if _is_number(v):
        return float(v)
    if type(v) is str:
        text = v.strip()
        if _JSON_NUMBER.match(text):
            x = float(text)
            return x if math.isfinite(x) else None
    return None


def power_of_ten(a: float, b: float) -> int:
    """The k != 0 with b == a * 10**k (within rounding), else 0."""
    if a == 0 or b == 0 or (a < 0) != (b < 0):
        return 0
    ratio = abs(b / a) if abs(a) >= 1e-300 else math.inf
    if ratio == 0 or not math.isfinite(ratio):
        return 0
    k = round(math.log10(ratio))
    if k == 0 or abs(k) > MAX_UNIT_EXPONENT:
        return 0
    expected = a * 10.0**k
    return k if abs(b - expected) <= UNIT_RELATIVE_TOLERANCE * abs(expected) else 0


def kept_prefix(received: str) -> str:
    """``received`` without a trailing ellipsis mark and the whitespace before it."""
    for mark in ELLIPSES:
        if received.endswith(mark):
            return received[: -len(mark)].rstrip()
    return received.rstrip()


def is_truncation(sent: str, received: str) -> bool:
    """True when ``received`` is ``sent`` cut short, with or without a trailing ellipsis."""
    cut = kept_prefix(received)
    return len(cut) < len(sent.rstrip()) and sent.startswith(cut) and (bool(cut) or cut != received)


def classify_value_change(sent: Any, received: Any) -> tuple[str, str]:
    """Name a change of value at one path: (kind, message)."""
    if _is_empty(received) and not _is_empty(sent):
        return "nulled_field", "arrived null or empty"
    ts, tr = type(sent), type(received)
    if ts is str and tr is str:
        if is_truncation(sent, received):
            return "truncated_value", f"string cut from {len(sent)} to {len(kept_prefix(received))} characters"
        return "changed_value", "arrived with another value"
    if ts is list and tr is list:
        if len(received) < len(sent) and same(sent[: len(received)], received):
            return "truncated_value", f"list cut from {len(sent)} to {len(received)} items"
        return "changed_value", "arrived with another value"
    a, b = _as_number(sent), _as_number(received)
    if a is not None and b is not None and (_is_number(sent) or _is_number(received)):
        k = power_of_ten(a, b)
        if k:
            return "unit_changed", f"scaled by 10^{k}"
        if ts is not tr and not (_is_number(sent) and _is_number(received)):
            return "type_changed", f"arrived as {_json_type(received)} instead of {_json_type(sent)}"
        return "changed_value", "arrived with another value"
    if _json_type(sent) != _json_type(received):
        return "type_changed", f"arrived as {_json_type(received)} instead of {_json_type(sent)}"
    return "changed_value", "arrived with another value"


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if type(v) is bool:
        return "boolean"
    if type(v) in (int, float):
        return "number"
    if type(v) is str:
        return "string"
    if type(v) is list:
        return "array"
    return "object" if type(v) is dict else "value"


# --- rules that look across handoffs -------------------------------------------------------------


def _receipts_by_agent(handoffs: list[Handoff]) -> dict[str, tuple[list[int], list[Handoff]]]:
    lists: dict[str, list[Handoff]] = {}
    for h in handoffs:
        if h.received is not None:
            lists.setdefault(h.to_agent, []).append(h)
    out = {}
    for agent, hs in lists.items():
        if len(hs) > 1:
            hs.sort(key=_recv_pos)
        out[agent] = ([h.recv_pos or 0 for h in hs], hs)
    return out


def _recv_pos(h: Handoff) -> int:
    return h.recv_pos or 0


def _latest_receipt(receipts: dict[str, tuple[list[int], list[Handoff]]], agent: str, pos: int) -> Handoff | None:
    entry = receipts.get(agent)
    if entry is None:
        return None
    i = bisect_left(entry[0], pos)
    return entry[1][i - 1] if i else None


def not_forwarded(out: Handoff, src: Handoff | None) -> list[Finding]:
    """Fields of a nested object the sender received and hands on, at the same path, without.

    Compares the sender's latest receipt before this send with what it sends. Top-level keys it does
    not pass on at all are its own scoping; a hand-back to the agent the state came from loses nothing.
    """
    if src is None or src.from_agent == out.to_agent:
        return []
    if src.received is not None and out.sent is not None and carries(out.sent.state, src.received.state):
        return []  # handed on whole
    had, sends = src.received_state or {}, out.sent_state or {}
    findings: list[Finding] = []
    for key, value in had.items():
        passed = sends.get(key, _ABSENT)
        if passed is not _ABSENT and passed is not value and type(passed) is type(value) and passed != value:
            for path, lost in _missing_nested(value, passed, (key,)):
                findings.append(
                    _finding(out, "not_forwarded", path, lost, None,
                             f"{out.from_agent} received this from {src.from_agent} and did not hand it on",
                             at=out.sent)
                )
    return findings


def _missing_nested(had: Any, sends: Any, path: Path) -> Iterator[tuple[Path, Any]]:
    if had is sends or type(had) is not type(sends) or had == sends:
        return
    if type(had) is dict:
        for k, v in had.items():
            if k in sends:
                yield from _missing_nested(v, sends[k], (*path, k))
            else:
                yield (*path, k), v
    elif type(had) is list:
        for i, (x, y) in enumerate(zip(had, sends)):
            if type(x) is dict:
                yield from _missing_nested(x, y, (*path, i))


def reinterpreted(src: Handoff, args: dict[str, Any], call: Any, blob: bytes) -> list[Finding]:
    """Tool-call arguments named like a field the caller was handed, carrying another value.

    ``blob`` is the compact encoding of the received state. A key appears there as ``{"name":`` or
    ``,"name":`` and nowhere else, so counting those finds the unique names without a walk, and an
    argument whose encoding follows its unique key directly carries the received value: only the
    rest need the walk for their path and value.
    """
    suspects = set()
    dumps = orjson.dumps
    for name, value in args.items():
        key = dumps(name) + b":"
        at = _unique_key(blob, key)
        if at < 0:
            continue
        encoded = dumps(value)
        end = at + len(key) + len(encoded)
        # The value ends where the object goes on (",") or closes ("}"): 88 must not match 88.9.
        if not (blob.startswith(encoded, at + len(key)) and blob[end : end + 1] in (b",", b"}")):
            suspects.add(name)
    if not suspects:
        return []
    state = src.received_state or {}
    findings: list[Finding] = []
    for name, (path, had) in _find_keys(state, suspects).items():
        value = args[name]
        if same(had, value) or _same_number(had, value):
            continue
        tool = call.tool
        findings.append(
            _finding(src, "reinterpreted_field", path, had, value,
                     f"{src.to_agent} called {tool if type(tool) is str else 'a tool'} with another value for it",
                     at=call)
        )
    return findings


def _unique_key(blob: bytes, key: bytes) -> int:
    """Where ``key`` (``"name":``) starts in ``blob`` if it is a key there exactly once, else -1.

    In a compact encoding a key follows ``{`` or ``,``; other matches lie inside longer keys.
    """
    found = -1
    i = blob.find(key)
    while i > 0:
        if blob[i - 1] in _KEY_OPENERS:
            if found >= 0:
                return -1
            found = i
        i = blob.find(key, i + 1)
    return found


_KEY_OPENERS = (ord("{"), ord(","))


def _same_number(a: Any, b: Any) -> bool:
    x, y = _as_number(a), _as_number(b)
    return x is not None and x == y and type(a) is not bool and type(b) is not bool


def _find_keys(state: dict[str, Any], names: set[str]) -> dict[str, tuple[Path, Any]]:
    """Path and value of each of ``names`` that occurs as a key somewhere in ``state``."""
    found: dict[str, tuple[Path, Any]] = {}
    stack: list[tuple[Any, Path]] = [(state, ())]
    while stack and len(found) < len(names):
        node, path = stack.pop()
        if type(node) is dict:
            for k, v in node.items():
                if k in names:
                    found[k] = ((*path, k), v)
                if type(v) is dict or type(v) is list:
                    stack.append((v, (*path, k)))
        else:
            stack.extend((v, (*path, i)) for i, v in enumerate(node) if type(v) is dict or type(v) is list)
    return found


def clarification_loops(handoffs: list[Handoff]) -> list[tuple[Handoff, Handoff]]:
    """A -> B, then B -> A, then A -> B with the same state again: (the re-send, the earlier send).

    The earlier send is the previous send on the same edge, so each hand-back makes at most one loop.
    The re-send may add to the state (an answer to the question, say) but must keep all of it.
    """
    sends = [h for h in handoffs if h.sent is not None]
    edges = {(h.from_agent, h.to_agent) for h in sends}
    if not any((b, a) in edges for a, b in edges):
        return []
    found: list[tuple[Handoff, Handoff]] = []
    last: dict[tuple[str, str], int] = {}  # edge -> index of its latest send so far
    for k, again in enumerate(sends):
        edge = (again.from_agent, again.to_agent)
        prev, back = last.get(edge), last.get((edge[1], edge[0]))
        last[edge] = k
        # A hand-back between the two sends, and the state sent again.
        if prev is not None and back is not None and back > prev and _resent(sends[prev], again):
            found.append((again, sends[prev]))
    return found


def carries(outer: bytes | None, inner: bytes | None) -> bool:
    """Cheap sufficient test that the encoded object ``outer`` holds every key of ``inner`` unchanged.

    True when the encodings are equal, or when ``outer`` starts with ``inner`` less its closing brace
    and goes on with another key: the common case of an agent handing on what it got plus keys of its
    own. False means "parse and look", not "no".
    """
    if outer is None or inner is None:
        return False
    if outer == inner:
        return True
    n = len(inner) - 1
    return n > 1 and outer[n : n + 1] == b"," and outer.startswith(inner[:n])


def _resent(before: Handoff, again: Handoff) -> bool:
    """``again`` sends all that ``before`` sent, unchanged, plus perhaps new keys or list items."""
    if before.sent is not None and again.sent is not None and carries(again.sent.state, before.sent.state):
        return True
    changes = diff_states(before.sent_state or {}, again.sent_state or {})
    return all(c.op in ("added", "item_added") for c in changes)


def outcome_findings(tl: Timeline) -> list[Finding]:
    """missing_outcome and conflicting_outcome on the trace; premature_termination on the handoff."""
    tid = tl.trace_id
    if not tl.outcomes:
        return [
            Finding(tid, None, None, None, "missing_outcome", "", None, None, "no agent claimed the outcome",
                    order=len(tl.events))
        ]
    out: list[Finding] = []
    claimants = sorted({agent for _, agent, _ in tl.outcomes})
    if len(claimants) > 1:
        first = tl.events[tl.outcomes[0][0]]
        out.append(
            Finding(tid, None, None, None, "conflicting_outcome", "", None, None,
                    f"{len(claimants)} agents claimed the outcome: {', '.join(claimants)}",
                    first.source, first.line, tl.outcomes[0][0])
        )
    # Each handoff in flight (from its first attempt) when an outcome is claimed gets one finding,
    # naming the first such claim: found by bisection, not by trying every claim on every handoff.
    positions = [pos for pos, _, _ in tl.outcomes]
    for h in tl.handoffs:
        if h.first_send_pos is None or h.recv_pos is None:
            continue
        i = bisect_right(positions, h.first_send_pos)
        if i < len(positions) and positions[i] < h.recv_pos:
            pos, agent, _ = tl.outcomes[i]
            h.findings.append(
                _finding(h, "premature_termination", "", None, None,
                         f"{agent} claimed the outcome while this handoff was in flight",
                         at=tl.events[pos])
            )
    return out


def _finding(
    h: Handoff, kind: str, path: Path | str, sent: Any, received: Any, message: str, at: Any = None
) -> Finding:
    ev = at if at is not None else (h.received if h.received is not None else h.sent)
    return Finding(
        h.trace_id,
        h.handoff_id,
        h.from_agent,
        h.to_agent,
        kind,
        path if isinstance(path, str) else format_path(path),
        sent,
        received,
        message,
        ev.source if ev is not None else None,
        ev.line if ev is not None else None,
        h.pos,
    )
