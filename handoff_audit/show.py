"""``show``: one trace as a timeline, with each handoff's sent -> received diff and its findings.

The view is built as plain data (``build``), which ``--format json`` prints as it is and the terminal
renderer (``views.render_show``) draws as a tree, so the two always say the same thing.
"""

from __future__ import annotations

from typing import Any

from handoff_audit import pipeline
from handoff_audit.classify import classify_value_change, match_renames
from handoff_audit.config import ScanConfig
from handoff_audit.diffing import diff_states, format_path
from handoff_audit.errors import InputError
from handoff_audit.filters import Filter
from handoff_audit.models import Event, Finding, Handoff
from handoff_audit.whole_trace import Extra, WholeTrace, skipped_view
from handoff_audit.rules import FailureClass

VIEW_VERSION = 1
MAX_CANDIDATES = 20


class UnknownTrace(InputError):
    """No trace, or more than one, answers to the id or prefix given."""


def find_trace(config: ScanConfig, wanted: str) -> tuple[WholeTrace, dict[str, Any]]:
    """Read every input and return the trace whose id is ``wanted``, or the one it is a prefix of,
    with the lines of the read that could not be used (``skipped_view``).

    Only the traces whose id starts with ``wanted`` are kept and audited; of those, only the exact
    match and the first prefix match are kept in memory. A native line that does not hold ``wanted``
    (and escapes nothing) is passed over unparsed: it cannot be an event of such a trace.
    """
    exact: list[WholeTrace] = []
    first: list[WholeTrace] = []
    candidates: set[str] = set()

    def on_trace(rec: WholeTrace) -> None:
        tid = rec.trace_id
        if tid == wanted:
            exact.append(rec)
        elif tid.startswith(wanted):
            candidates.add(tid)
            if not first:
                first.append(rec)
        return None

    report, agg = pipeline.run_traces(
        config, on_trace, only=lambda tid: tid.startswith(wanted), mention=pipeline.mentions([wanted])
    )
    skipped = skipped_view(report, agg.passed_over)
    if exact:
        return exact[0], skipped
    if not candidates:
        raise UnknownTrace(f"no trace with id or id prefix {wanted!r} in {', '.join(config.paths)}")
    if len(candidates) > 1:
        listed = sorted(candidates)
        more = len(listed) - MAX_CANDIDATES
        shown = ", ".join(listed[:MAX_CANDIDATES]) + (f" and {more} more" if more > 0 else "")
        raise UnknownTrace(f"trace id prefix {wanted!r} is ambiguous: {len(listed)} traces match: {shown}")
    return first[0], skipped


def build(rec: WholeTrace, flt: Filter, skipped: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trace as data: summary, timeline entries in event-time order, the findings shown, and the
    input lines that could not be used (``skipped``, from the read that found the trace)."""
    tl = rec.timeline
    merged = rec.merged()
    start = next((item.ts for item in merged if item.ts is not None), None)
    shown: list[Finding] = []
    at_event: dict[tuple[str | None, int | None], list[Finding]] = {}
    entries: list[dict[str, Any]] = []
    first_send = {h.first_send_pos: h for h in tl.handoffs if h.first_send_pos is not None}
    lone_receipt = {h.recv_pos: h for h in tl.handoffs if h.first_send_pos is None and h.recv_pos is not None}
    pos_of = {id(ev): pos for pos, ev in enumerate(tl.events)}
    retried: dict[int, Handoff] = {}  # position of a later attempt -> its handoff
    attempt_no: dict[int, int] = {}
    for h in tl.handoffs:
        if h.attempts > 1:
            n = 1
            for pos, ev in enumerate(tl.events):
                if (ev.type == "handoff.sent" and ev.handoff_id == h.handoff_id and ev.frm == h.from_agent
                        and ev.to == h.to_agent and pos != h.first_send_pos):
                    n += 1
                    retried[pos], attempt_no[pos] = h, n

    for h in tl.handoffs:
        if flt.handoff_ok(rec, h):
            for f in h.findings:
                if flt.finding_kind_ok(f):
                    shown.append(f)
                    at_event.setdefault((f.file, f.line), []).append(f)
    for f in rec.result.trace_findings:
        if flt.trace_finding_ok(rec, f):
            shown.append(f)

    llm = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    for item in merged:
        if isinstance(item, Extra):
            if not (flt.agent_ok(item.agent) and flt.time_ok(item.ts)):
                continue
            entry = _extra_entry(item)
            if item.type == "llm.call":
                llm["calls"] += 1
                llm["input_tokens"] += entry["input_tokens"] or 0
                llm["output_tokens"] += entry["output_tokens"] or 0
                llm["cost_usd"] += entry["cost_usd"] or 0.0
        else:
            pos = pos_of[id(item)]
            hop = first_send.get(pos) or lone_receipt.get(pos)
            if hop is not None:
                if not flt.handoff_ok(rec, hop):
                    continue
                entry = _handoff_entry(rec, hop, flt)
            elif item.type in ("outcome", "tool.call"):
                if not (flt.agent_ok(item.agent) and flt.time_ok(rec.times()[pos])):
                    continue
                entry = _kept_entry(item)
            elif item.type == "handoff.sent":
                again = retried.get(pos)
                if again is None or not flt.handoff_ok(rec, again):
                    continue
                entry = {"type": "retry", "agent": again.from_agent, "file": item.source, "line": item.line,
                         "handoff_id": again.handoff_id, "from": again.from_agent, "to": again.to_agent,
                         "attempt": attempt_no[pos]}
            else:
                continue  # a receipt: shown with its handoff
            entry["ts"] = rec.times()[pos]
        entry["offset_ms"] = None if entry["ts"] is None or start is None else round((entry["ts"] - start) * 1000, 3)
        marks = at_event.get((entry["file"], entry["line"]), [])
        if entry["type"] in ("tool.call", "outcome") and marks:
            entry["findings"] = sorted({f.code for f in marks})
        entries.append(entry)
    trace_level = [f for f in rec.result.trace_findings if f in shown]
    if trace_level:
        end = rec.end_time()
        entries.append(
            {"type": "trace", "ts": end, "offset_ms": None if end is None or start is None else round((end - start) * 1000, 3),
             "agent": None, "file": None, "line": None, "findings": [f.to_dict() for f in trace_level]}
        )
    by_class = {c.value: 0 for c in FailureClass}
    for f in shown:
        by_class[f.failure_class] += 1
    llm["cost_usd"] = round(float(llm["cost_usd"]), 6)
    view: dict[str, Any] = {
        "version": VIEW_VERSION,
        "trace_id": rec.trace_id,
        "summary": {
            "events": len(tl.events) + len(rec.extras),
            "handoffs": sum(1 for h in tl.handoffs if flt.handoff_ok(rec, h)),
            "findings": len(shown),
            "findings_by_class": by_class,
            "outcomes": [{"agent": agent, "status": status} for _, agent, status in tl.outcomes],
            "succeeded": rec.succeeded,
            "llm": llm,
        },
        "timeline": entries,
        "findings": [f.to_dict() for f in sorted(shown, key=_finding_order)],
        "skipped": skipped if skipped is not None else skipped_view(None),
    }
    if flt.active:
        view["filters"] = list(flt.given)
    return view


def _finding_order(f: Finding) -> tuple[Any, ...]:
    return (f.order, f.code, f.path, f.handoff_id or "", f.message)


def _extra_entry(x: Extra) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": x.type, "ts": x.ts, "agent": x.agent, "file": x.source, "line": x.line}
    d = x.data
    if x.type == "agent.end":
        entry["status"] = d.get("status")
    elif x.type == "llm.call":
        entry["model"] = d.get("model")
        entry["input_tokens"] = count(d.get("input_tokens"))
        entry["output_tokens"] = count(d.get("output_tokens"))
        entry["cost_usd"] = usd(d.get("cost_usd"))
        entry["purpose"] = d.get("purpose")
    return entry


def count(v: Any) -> int | None:
    """A token count as given, or None when it is not a non-negative whole number."""
    if type(v) is int and v >= 0:
        return v
    if type(v) is float and v >= 0 and v.is_integer():
        return int(v)
    return None


def usd(v: Any) -> float | None:
    """A cost as given, or None when it is not a non-negative finite number."""
    if (type(v) is int or type(v) is float) and 0 <= v < float("inf"):
        return float(v)
    return None


def _kept_entry(ev: Event) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": ev.type, "agent": ev.agent, "file": ev.source, "line": ev.line}
    if ev.type == "outcome":
        entry["status"] = ev.status
    else:
        entry["tool"] = ev.tool
        entry["args"] = ev.args or {}
    return entry


def _handoff_entry(rec: WholeTrace, h: Handoff, flt: Filter) -> dict[str, Any]:
    at = h.sent if h.sent is not None else h.received
    assert at is not None
    latency = None
    if h.sent is not None and h.received is not None and h.sent.ts is not None and h.received.ts is not None:
        latency = round((h.received.ts - h.sent.ts) * 1000, 3)
    if h.sent is None:
        status = "unsolicited"
    elif h.received is None:
        status = "orphaned"
    else:
        status = "delivered"
    first = rec.timeline.events[h.first_send_pos] if h.first_send_pos is not None else at
    return {
        "type": "handoff",
        "agent": h.from_agent,
        "file": first.source,
        "line": first.line,
        "handoff_id": h.handoff_id,
        "from": h.from_agent,
        "to": h.to_agent,
        "status": status,
        "attempts": h.attempts,
        "latency_ms": latency,
        "changes": changes(h),
        "findings": [f.to_dict() for f in sorted(h.findings, key=_finding_order) if flt.finding_kind_ok(f)],
    }


def changes(h: Handoff) -> list[dict[str, Any]]:
    """The sent -> received diff of a delivered handoff: removed, changed, added and renamed paths."""
    if h.sent is None or h.received is None or h.sent.state == h.received.state:
        return []
    diff = diff_states(h.sent_state or {}, h.received_state or {})
    renames = match_renames(diff)
    out: list[dict[str, Any]] = []
    for c in diff:
        path = format_path(c.path)
        if c.op == "removed" and id(c) in renames:
            out.append({"op": "renamed", "path": path, "to": format_path(renames[id(c)].path), "sent": c.sent,
                        "received": renames[id(c)].received})
        elif c.op in ("removed", "item_removed"):
            out.append({"op": "removed", "path": path, "sent": c.sent, "received": None})
        elif c.op in ("added", "item_added"):
            if id(c) not in renames.values_used:
                out.append({"op": "added", "path": path, "sent": None, "received": c.received})
        else:
            kind, _ = classify_value_change(c.sent, c.received)
            out.append({"op": "changed", "path": path, "kind": kind, "sent": c.sent, "received": c.received})
    return out
