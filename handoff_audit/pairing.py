"""Group a trace's events into a timeline: handoffs paired send-to-receipt, outcomes, tool calls.

Events of one trace are put in event-time order (``ts``; an event without one keeps its place after
the last timed event before it in read order; ties keep read order). A send matches its receipt by
``handoff_id`` on the same (from, to); without one, the n-th send on (from, to) matches the n-th receipt. A send repeated with
the same ``handoff_id`` is a retry of the same handoff: the receipt is compared with the last attempt
sent before it.
"""

from __future__ import annotations

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
    by_key: dict[tuple[Any, Any, Any], Handoff] = {}  # (handoff_id, from, to)
    retried: dict[tuple[Any, Any, Any], list[tuple[int, Event]]] = {}  # every attempt, where more than one
    unkeyed: dict[tuple[str, str], tuple[list[tuple[int, Event]], list[tuple[int, Event]]]] = {}
    keyed_recvs: list[tuple[int, Event]] = []

    for pos, ev in enumerate(ordered):
        typ = ev.type
        if typ == "handoff.sent":
            hid = ev.handoff_id
            if hid is None:
                pair = unkeyed.get((ev.frm, ev.to))
                if pair is None:
                    pair = unkeyed[(ev.frm, ev.to)] = ([], [])
                pair[0].append((pos, ev))
                continue
            key = (hid, ev.frm, ev.to)
            h = by_key.get(key)
            if h is None:
                by_key[key] = Handoff(
                    trace_id, hid, ev.frm, ev.to, sent=ev, send_pos=pos, first_send_pos=pos, attempts=1
                )
            else:
                tries = retried.get(key)
                if tries is None:
                    assert h.send_pos is not None and h.sent is not None  # set by its first attempt
                    tries = retried[key] = [(h.send_pos, h.sent)]
                tries.append((pos, ev))
                h.sent, h.send_pos = ev, pos
                h.attempts += 1
        elif typ == "handoff.received":
            if ev.handoff_id is None:
                pair = unkeyed.get((ev.frm, ev.to))
                if pair is None:
                    pair = unkeyed[(ev.frm, ev.to)] = ([], [])
                pair[1].append((pos, ev))
            else:
                keyed_recvs.append((pos, ev))
        elif typ == "outcome":
            tl.outcomes.append((pos, ev.agent, ev.status))
        elif typ == "tool.call":
            tl.tool_calls.append((pos, ev.agent, ev.args or {}))

    for pos, ev in keyed_recvs:
        key = (ev.handoff_id, ev.frm, ev.to)
        h = by_key.get(key)
        if h is None:
            # No send with this id on this edge (a send with the same id to other agents is another
            # handoff): the receipt stands alone.
            h = by_key[key] = Handoff(trace_id, ev.handoff_id, ev.frm, ev.to)
        elif h.received is not None:
            dup = Handoff(trace_id, ev.handoff_id, ev.frm, ev.to, received=ev, recv_pos=pos)
            tl.duplicate_receipts.append((dup, h))
            continue
        h.received, h.recv_pos = ev, pos

    for key, tries in retried.items():
        h = by_key[key]
        tl.retries += len(tries) - 1
        if h.recv_pos is not None:
            # Compare the receipt with the last attempt sent before it.
            before = [t for t in tries if t[0] < h.recv_pos]
            if before:
                h.send_pos, h.sent = before[-1]

    handoffs = list(by_key.values())
    for (frm, to), (sends, recvs) in unkeyed.items():
        for n in range(max(len(sends), len(recvs))):
            h = Handoff(trace_id, None, frm, to)
            if n < len(sends):
                h.send_pos, h.sent = sends[n]
                h.first_send_pos = h.send_pos
                h.attempts = 1
            if n < len(recvs):
                h.recv_pos, h.received = recvs[n]
            handoffs.append(h)

    handoffs.sort(key=_position)
    tl.handoffs = handoffs
    return tl


def _position(h: Handoff) -> int:
    return h.pos
