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
    agent_ends: dict[str, list[int]] = field(default_factory=dict)  # agent -> [ends, ok]
    duplicate_receipts: list[tuple[Handoff, Handoff]] = field(default_factory=list)  # (receipt, original)
    retries: int = 0


def order_events(events: list[Event]) -> list[Event]:
    """Sort one trace's events (given in read order) into event-time order."""
    keys = []
    last = _NO_TS
    for ev in events:
        if ev.ts is not None:
            last = ev.ts
        keys.append(last)
    if all(a <= b for a, b in zip(keys, keys[1:])):
        return events  # already in time order, as most logs are
    order = sorted(range(len(events)), key=lambda i: (keys[i], events[i].seq))
    return [events[i] for i in order]


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
        data = ev.data
        typ = data["type"]
        if typ == "handoff.sent":
            hid = data.get("handoff_id")
            if hid is None:
                unkeyed_sends[(data["from"], data["to"])].append((pos, ev))
                continue
            key = (hid, data["from"], data["to"])
            if key not in by_id:
                by_id[key] = Handoff(trace_id, hid, data["from"], data["to"])
            attempts[key].append((pos, ev))
        elif typ == "handoff.received":
            hid = data.get("handoff_id")
            if hid is None:
                unkeyed_recvs[(data["from"], data["to"])].append((pos, ev))
            else:
                keyed_recvs.append((pos, ev))
        elif typ == "outcome":
            tl.outcomes.append((pos, data["agent"], data.get("status")))
        elif typ == "tool.call":
            tl.tool_calls.append((pos, data["agent"], data.get("args") or {}))
        elif typ == "agent.end":
            counts = tl.agent_ends.setdefault(data["agent"], [0, 0])
            counts[0] += 1
            if data.get("status") == "ok":
                counts[1] += 1

    for pos, ev in keyed_recvs:
        data = ev.data
        key = (data["handoff_id"], data["from"], data["to"])
        hid, frm, to = key
        h = by_id.get(key)
        if h is None:
            # No send with this id on this edge (a send with the same id to other agents is another
            # handoff): the receipt stands alone.
            h = by_id[key] = Handoff(trace_id, hid, frm, to)
        if h.received is not None:
            tl.duplicate_receipts.append((Handoff(trace_id, hid, frm, to, received=ev, recv_pos=pos), h))
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
