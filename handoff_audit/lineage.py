"""``lineage``: follow one field through every hop, per trace or aggregated per edge.

At each handoff the field's fate is named from the handoff's own findings (the same rules as ``scan``):
a finding at the field's path or at a path above it (a removed parent object loses the field too) gives
its kind; a rename is followed to the new key for the rest of the trace; a finding below the field is
``changed_inside``; no finding is ``kept``. A sender that had received the field and hands on a state
without it, with no finding, is ``not_handed_on`` (top-level scoping, not a loss by the rules).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from handoff_audit.classify import match_renames
from handoff_audit.diffing import counterpart, diff_states, format_path
from handoff_audit.errors import UsageError
from handoff_audit.filters import Filter
from handoff_audit.models import Finding, Handoff, Path
from handoff_audit.whole_trace import WholeTrace
from handoff_audit.rules import RULES

WILD = "*"  # a list-index wildcard in a pattern: order.items[*].qty
Pattern = Path
KEPT, INSIDE, NOT_HANDED_ON, ORPHANED = "kept", "changed_inside", "not_handed_on", "never_received"
_NAME = re.compile(r"[^.\[\]]+")


def parse_pattern(text: str) -> Pattern:
    """``order.items[*].qty`` -> ("order", "items", "*", "qty"); quoted keys as in reports: ``meta["x.y"]``.

    ``[*]`` matches every index of a list; ``[2]`` one index; a key may be any text without ``.``,
    ``[`` or ``]``, or a JSON string in brackets.
    """
    out: list[str | int] = []
    i, n = 0, len(text)
    if not text.strip():
        raise UsageError("FIELD_PATH is empty")
    while i < n:
        c = text[i]
        if c == ".":
            if not out or i + 1 >= n or text[i + 1] in ".[":
                raise UsageError(f"{text}: a '.' must sit between two keys")
            i += 1
            continue
        if c == "[":
            end = _bracket_end(text, i)
            inner = text[i + 1 : end]
            if inner == "*":
                out.append(WILD)
            elif inner.isdigit():
                out.append(int(inner))
            elif inner.startswith('"'):
                try:
                    key = orjson.loads(inner)
                except orjson.JSONDecodeError:
                    key = None
                if type(key) is not str:
                    raise UsageError(f"{text}: [{inner}] is not an index, [*] or a quoted key")
                out.append(key)
            else:
                raise UsageError(f"{text}: [{inner}] is not an index, [*] or a quoted key")
            i = end + 1
            continue
        if c == "]":
            raise UsageError(f"{text}: unmatched ']'")
        m = _NAME.match(text, i)
        assert m is not None
        out.append(m.group())
        i = m.end()
    return tuple(out)


def _bracket_end(text: str, start: int) -> int:
    if text.startswith('["', start):
        j = start + 2
        while j < len(text):
            if text[j] == "\\":
                j += 2
                continue
            if text[j] == '"':
                if text.startswith('"]', j):
                    return j + 1
                break
            j += 1
    else:
        end = text.find("]", start)
        if end > 0:
            return end
    raise UsageError(f"{text}: unmatched '['")


def format_pattern(pattern: Pattern) -> str:
    """A pattern written back as a report path, ``[*]`` for a wildcard."""
    return format_path(tuple(-1 if s == WILD else s for s in pattern)).replace("[-1]", "[*]")


def expand(state: Any, pattern: Pattern) -> list[tuple[Path, Any]]:
    """Every concrete (path, value) in ``state`` that ``pattern`` names, in state order."""
    found: list[tuple[Path, Any]] = []
    stack: list[tuple[Any, Path, int]] = [(state, (), 0)]
    while stack:
        node, path, k = stack.pop()
        if k == len(pattern):
            found.append((path, node))
            continue
        seg = pattern[k]
        if seg == WILD:
            if type(node) is list:
                stack.extend((v, (*path, i), k + 1) for i, v in reversed(list(enumerate(node))))
        elif type(seg) is int:
            if type(node) is list and seg < len(node):
                stack.append((node[seg], (*path, seg), k + 1))
        elif type(node) is dict and seg in node:
            stack.append((node[seg], (*path, seg), k + 1))
    return found


@dataclass(frozen=True, slots=True)
class Hop:
    """What happened to the field at one handoff."""

    handoff_id: str | None
    from_agent: str
    to_agent: str
    ts: float | None
    path: str  # the field's path on the sending side
    fate: str  # a finding kind, or kept / changed_inside / not_handed_on / never_received
    sent: Any
    received: Any
    renamed_to: str | None = None
    kinds_inside: tuple[str, ...] = ()
    renamed_from: tuple[Path, Path] | None = None  # (old key, new key) of the rename, to follow it
    renamed_pattern: str | None = None  # the new pattern, when the rename renamed the whole pattern
    arrived: bool = True  # whether the receiver's state has the field (``received`` is null otherwise)

    def to_dict(self) -> dict[str, Any]:
        rule = RULES.get(self.fate)
        return {
            "handoff_id": self.handoff_id,
            "from": self.from_agent,
            "to": self.to_agent,
            "ts": self.ts,
            "path": self.path,
            "fate": self.fate,
            "code": rule.code if rule else None,
            "class": rule.failure_class.value if rule else None,
            "sent": self.sent,
            "received": self.received,
            "renamed_to": self.renamed_to,
            "kinds_inside": list(self.kinds_inside),
            "arrived": self.arrived,
        }


def trace_hops(rec: WholeTrace, pattern: Pattern, flt: Filter) -> list[Hop]:
    """The field's fate at every reported handoff of one trace, in send order, following renames.

    Every fate, whatever ``--class`` and ``--kind`` ask for: the hops carry the field all the same
    (``fate_ok`` picks the fates to show).
    """
    held: dict[str, Pattern] = {}  # agent -> where it holds the field (after a rename, the new key)
    had: dict[str, set[str]] = {}  # agent -> the agents it received the field from
    hops: list[Hop] = []
    for h in rec.timeline.handoffs:
        pat = held.get(h.from_agent, pattern)
        sent_state = h.sent_state if h.sent is not None else None
        recv_state = h.received_state if h.received is not None else None
        sent_at = expand(sent_state, pat) if sent_state is not None else []
        new_pat = pat
        found: list[Hop] = []
        ts = rec.handoff_time(h)
        if sent_at:
            for path, value in sent_at:
                hop = _fate(h, path, value, recv_state, ts)
                if hop.renamed_from is not None:
                    new_pat = _follow(pat, *hop.renamed_from)
                    if new_pat != pat:
                        # Counted over traces, a rename of the whole pattern reads as the new pattern.
                        hop = dataclasses.replace(hop, renamed_pattern=format_pattern(new_pat))
                found.append(hop)
        elif sent_state is not None and had.get(h.from_agent) and h.to_agent not in had[h.from_agent]:
            # (A hand-back to an agent the field came from loses nothing: that agent has it.)
            lost = _not_forwarded(h, pat)
            found.append(Hop(h.handoff_id, h.from_agent, h.to_agent, ts, format_pattern(pat),
                             lost.kind if lost else NOT_HANDED_ON, lost.sent if lost else None, None))
        elif recv_state is not None:
            for path, value in expand(recv_state, pat):
                f = _finding_at(h, path)
                if f is not None and f.kind == "injected_field":
                    found.append(Hop(h.handoff_id, h.from_agent, h.to_agent, ts, format_path(path), f.kind, None, value))
        if recv_state is not None and expand(recv_state, new_pat):
            held[h.to_agent] = new_pat
            had.setdefault(h.to_agent, set()).add(h.from_agent)
        if flt.handoff_ok(rec, h):
            hops.extend(found)
    return hops


def fate_ok(flt: Filter, fate: str) -> bool:
    """Whether ``--class`` and ``--kind`` keep a fate (without them, every fate)."""
    rule = RULES.get(fate)
    if not flt.classes and not flt.kinds:
        return True
    if rule is None:
        return False
    return (not flt.classes or rule.failure_class.value in flt.classes) and (not flt.kinds or fate in flt.kinds)


def _fate(h: Handoff, path: Path, value: Any, recv_state: Any, ts: float | None) -> Hop:
    where = format_path(path)
    if recv_state is None:
        return Hop(h.handoff_id, h.from_agent, h.to_agent, ts, where, ORPHANED, value, None, arrived=False)
    # A list item may arrive at another index (the diff aligns lists): look for it where it went.
    at = counterpart(h.sent_state, recv_state, path)
    got = expand(recv_state, at) if at is not None else []
    received = got[0][1] if got else None
    f = _finding_at(h, path)
    if f is not None:
        renamed = _rename_target(h, path, f) if f.kind == "renamed_field" else None
        if renamed is not None:
            source, target, received = renamed
            new = format_path((*target, *path[len(source):]))
            return Hop(h.handoff_id, h.from_agent, h.to_agent, ts, where, f.kind, value, received, new,
                       renamed_from=(source, target))
        return Hop(h.handoff_id, h.from_agent, h.to_agent, ts, where, f.kind, value, received, arrived=bool(got))
    inside = sorted({f.kind for f in h.findings if _below(f.path, where)})
    if inside:
        return Hop(h.handoff_id, h.from_agent, h.to_agent, ts, where, INSIDE, value, received, kinds_inside=tuple(inside))
    return Hop(h.handoff_id, h.from_agent, h.to_agent, ts, where, KEPT, value, received)


def _finding_at(h: Handoff, path: Path) -> Finding | None:
    """A finding of the handoff at ``path`` or above it (the nearest), from the state comparison rules."""
    above = {format_path(path[:k]): k for k in range(len(path) + 1)}
    best: Finding | None = None
    for f in h.findings:
        if f.path in above and f.kind in _PATH_KINDS:
            if best is None or above[f.path] > above[best.path]:
                best = f
    return best


_PATH_KINDS = frozenset({
    "removed_field", "nulled_field", "truncated_value", "not_forwarded", "changed_value", "type_changed",
    "unit_changed", "renamed_field", "injected_field", "reinterpreted_field",
})


def _below(fpath: str, where: str) -> bool:
    if not fpath.startswith(where) or fpath == where:
        return False
    if not where:
        return True
    return fpath[len(where)] in ".["


def _rename_target(h: Handoff, path: Path, f: Finding) -> tuple[Path, Path, Any] | None:
    """(renamed key, its new key, the field's value there) for a field renamed itself or under a parent."""
    diff = diff_states(h.sent_state or {}, h.received_state or {})
    renames = match_renames(diff)
    for c in diff:
        if c.op == "removed" and id(c) in renames and format_path(c.path) == f.path:
            target = renames[id(c)].path
            got = expand(h.received_state, (*target, *path[len(c.path):]))
            return c.path, target, (got[0][1] if got else None)
    return None


def _follow(pat: Pattern, source: Path, target: Path) -> Pattern:
    """The pattern after its key ``source`` was renamed ``target``.

    A rename below a list wildcard renamed one item's key, not the field in every item: the pattern
    stays as it was.
    """
    wild = pat.index(WILD) if WILD in pat else len(pat)
    return (*target, *pat[len(source):]) if len(source) <= wild else pat


def _not_forwarded(h: Handoff, pat: Pattern) -> Finding | None:
    where = format_pattern(pat)
    for f in h.findings:
        if f.kind == "not_forwarded" and (f.path == where or _below(where, f.path) or _below(f.path, where)):
            return f
    return None


# --- over many traces ------------------------------------------------------------------------------


@dataclass(slots=True)
class Aggregate:
    """Per edge: traces that carried the field, and traces by fate."""

    traces: int = 0  # traces reported
    with_field: int = 0  # of them, traces where some handoff carried the field
    carried: Counter[tuple[str, str]] = field(default_factory=Counter)
    fates: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (from, to, fate, renamed_to)

    def add(self, hops: list[Hop], flt: Filter | None = None) -> None:
        """Count one trace's hops: each edge that carried the field, and each fate on it that ``flt``
        keeps, once per trace."""
        self.traces += 1
        if not hops:
            return
        self.with_field += 1
        for edge in {(h.from_agent, h.to_agent) for h in hops}:
            self.carried[edge] += 1
        for key in {(h.from_agent, h.to_agent, h.fate, h.renamed_pattern or h.renamed_to or "") for h in hops
                    if flt is None or fate_ok(flt, h.fate)}:
            self.fates[key] += 1

    def to_dict(self, field_path: str) -> dict[str, Any]:
        edges = []
        for (frm, to), n in sorted(self.carried.items()):
            fates = []
            for (a, b, fate, renamed), m in sorted(self.fates.items(), key=lambda kv: (-kv[1], kv[0])):
                if (a, b) != (frm, to):
                    continue
                rule = RULES.get(fate)
                fates.append({
                    "fate": fate,
                    "code": rule.code if rule else None,
                    "class": rule.failure_class.value if rule else None,
                    "renamed_to": renamed or None,
                    "traces": m,
                    "share_of_carrying": round(m / n, 6),
                    "share_of_traces": round(m / self.traces, 6) if self.traces else None,
                })
            edges.append({"from": frm, "to": to, "traces_carrying": n, "fates": fates})
        return {"field": field_path, "traces": self.traces, "traces_with_field": self.with_field, "edges": edges}
