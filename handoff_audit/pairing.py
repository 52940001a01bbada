"""Group a trace's events into a timeline: handoffs paired send-to-receipt, outcomes, tool calls.

Events of one trace are put in event-time order (``ts``; an event without one keeps its place after
the last timed event before it in read order; ties keep read order). A send matches its receipt by
``handoff_id`` on the same (from, to); without one, the n-th send on (from, to) matches the n-th receipt. A send repeated with
the same ``handoff_id`` is a retry of the same handoff: the receipt is compared with the last attempt
sent before it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from handoff_audit.models import Event, Handoff

_NO_TS = float("-inf")


@dataclass(slots=True)
class Timeline:
    """One trace, ordered and paired. Positions (``pos``) index ``events``."""

    trace_id: str
    events: list[Event]
    handoffs: list[Handoff]
    outcomes: list[tuple[int, str, Any]] = field(default_factory=list)  # (pos, agent, status)
    tool_calls: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)  # (pos, agent, args)
    duplicate_receipts: list[tuple[Handoff, Handoff]] = field(default_factory=list)  # (receipt, original)
    retries: int = 0


def order_events(events: list[Event]) -> list[Event]:
    """Sort one trace's events (given in read order) into event-time order."""
    decorated = []
    last = _NO_TS
    in_order = True
    for ev in events:
        ts = ev.ts
        if ts is not None:
            if ts < last:
                in_order = False
            last = ts
        decorated.append((last, ev.seq, ev))
    if in_order:
        return events  # already in time order, as most logs are
    decorated.sort()  # (time, read order) is unique: the events themselves are never compared
    return [d[2] for d in decorated]


def build_timeline(trace_id: str, events: list[Event]) -> Timeline:
    """Order and pair one trace's events (given in read order)."""
    ordered = order_events(events)
    tl = Timeline(trace_id, ordered, [])
    by_id: dict[tuple[str, str, str], Handoff] = {}  # (handoff_id, from, to)
    attempts: dict[tuple[str, str, str], list[tuple[int, Event]]] = defaultdict(list)
    unkeyed_sends: dict[tuple[str, str], list[tuple[int, Event]]] = defaultdict(list)
    unkeyed_recvs: dict[tuple[str, str], list[tuple[int, Event]]] = defaultdict(list)
    keyed_recvs: list[tuple[int, Event]] = []

    for pos, ev in enumerate(ordered):
        typ = ev.type
        if typ == "handoff.sent":
            hid = ev.handoff_id
            if hid is None:
                unkeyed_sends[(ev.frm, ev.to)].append((pos, ev))  # type: ignore[index]
                continue
            key = (hid, ev.frm, ev.to)
            if key not in by_id:
                by_id[key] = Handoff(trace_id, hid, ev.frm, ev.to)  # type: ignore[arg-type]
            attempts[key].append((pos, ev))  # type: ignore[index]
        elif typ == "handoff.received":
            if ev.handoff_id is None:
                unkeyed_recvs[(ev.frm, ev.to)].append((pos, ev))  # type: ignore[index]
            else:
                keyed_recvs.append((pos, ev))
        elif typ == "outcome":
            tl.outcomes.append((pos, ev.agent, ev.status))  # type: ignore[arg-type]
        elif typ == "tool.call":
            tl.tool_calls.append((pos, ev.agent, ev.args or {}))  # type: ignore[arg-type]

    for pos, ev in keyed_recvs:
        key = (ev.handoff_id, ev.frm, ev.to)
        hid, frm, to = key
        h = by_id.get(key)  # type: ignore[arg-type]
        if h is None:
            # No send with this id on this edge (a send with the same id to other agents is another
            # handoff): the receipt stands alone.
            h = by_id[key] = Handoff(trace_id, hid, frm, to)  # type: ignore[index, arg-type]
        if h.received is not None:
            tl.duplicate_receipts.append((Handoff(trace_id, hid, frm, to, received=ev, recv_pos=pos), h))  # type: ignore[arg-type]
            continue
        h.received = ev
        h.recv_pos = pos

    handoffs: list[Handoff] = []
    for key, h in by_id.items():
        tries = attempts.get(key, [])
        if tries:
            h.attempts = len(tries)
            tl.retries += len(tries) - 1
            chosen = tries[-1]
            if h.recv_pos is not None:
                before = [t for t in tries if t[0] < h.recv_pos]
                if before:
                    chosen = before[-1]
            h.send_pos, h.sent = chosen
            h.first_send_pos = tries[0][0]
        handoffs.append(h)

    for key in unkeyed_sends.keys() | unkeyed_recvs.keys():
        sends, recvs = unkeyed_sends.get(key, []), unkeyed_recvs.get(key, [])
        for n in range(max(len(sends), len(recvs))):
            h = Handoff(trace_id, None, key[0], key[1])
            if n < len(sends):
                h.send_pos, h.sent = sends[n]
                h.first_send_pos = h.send_pos
                h.attempts = 1
            if n < len(recvs):
                h.recv_pos, h.received = recvs[n]
            handoffs.append(h)

    handoffs.sort(key=lambda h: h.pos)
    tl.handoffs = handoffs
    return tl
