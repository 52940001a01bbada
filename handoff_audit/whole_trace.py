"""Whole traces for the investigation commands (``show``, ``lineage``, ``stats``, filtered ``scan``).

``scan`` keeps only the events that pairing and the rules read, and drops agent turns and model calls
as they are read. The investigation commands need those too: ``FullCollector`` keeps every event of a
trace until it closes, audits the trace exactly as ``scan`` does (the same timeline, the same
classification, from the same kept events) and hands a ``WholeTrace`` to a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from handoff_audit.adapters.native import load_kept, parse_ts
from handoff_audit.buffer import CloseHook, Collector
from handoff_audit.classify import TraceResult, classify_trace
from handoff_audit.models import KEPT_TYPES, Event, Finding, Handoff, Report
from handoff_audit.pairing import Timeline, build_timeline
from handoff_audit.summary import Aggregator


@dataclass(frozen=True, slots=True)
class Extra:
    """An event the audit itself does not read: an agent turn, a model call, an unknown type."""

    ts: float | None
    seq: int
    type: str
    agent: str | None
    data: dict[str, Any]  # the event as parsed (for an event from another adapter: the fields it kept)
    source: str
    line: int


@dataclass(slots=True)
class WholeTrace:
    """One closed trace: its audited timeline, its findings, and the events the audit did not read."""

    timeline: Timeline
    result: TraceResult
    extras: list[Extra]
    _times: list[float | None] | None = field(default=None, repr=False)

    @property
    def trace_id(self) -> str:
        return self.timeline.trace_id

    @property
    def succeeded(self) -> bool:
        """End-to-end success as the report counts it: a success claim and no error finding."""
        return self.result.claimed_success and not any(f.severity == "error" for f in self.result.findings())

    def findings(self) -> Iterator[Finding]:
        """Every finding of the trace."""
        return self.result.findings()

    def times(self) -> list[float | None]:
        """The time of each timeline event: its ``ts``, else that of the last timed event before it."""
        if self._times is None:
            self._times = effective_times(self.timeline.events)
        return self._times

    def handoff_time(self, h: Handoff) -> float | None:
        """When a handoff happened: its first send, else its receipt."""
        pos = h.first_send_pos if h.first_send_pos is not None else h.recv_pos
        return None if pos is None else self.times()[pos]

    def agents(self) -> set[str]:
        """Every agent that took part: sent or received a handoff, or emitted any event."""
        names: set[str] = set()
        for h in self.timeline.handoffs:
            names.add(h.from_agent)
            names.add(h.to_agent)
        for ev in self.timeline.events:
            if type(ev.agent) is str:
                names.add(ev.agent)
        for x in self.extras:
            if x.agent is not None:
                names.add(x.agent)
        return names

    def end_time(self) -> float | None:
        """The time of the trace's last timed event."""
        stamps = [t for t in self.times() if t is not None] + [x.ts for x in self.extras if x.ts is not None]
        return max(stamps) if stamps else None

    def merged(self) -> list[Event | Extra]:
        """Every event of the trace in event-time order, by the rule that orders the kept events.

        A kept event stands at the time the audit gave it (``times``: an untimed one takes the time of
        the last timed kept event before it), so that the timeline and the audit agree; any other
        untimed event takes that of the last timed event read before it.
        """
        items: list[Event | Extra] = sorted([*self.timeline.events, *self.extras], key=_seq)
        audited = {id(ev): t for ev, t in zip(self.timeline.events, self.times())}
        last = float("-inf")
        decorated = []
        for item in items:
            if item.ts is not None:
                last = item.ts
            at = audited.get(id(item)) if type(item) is Event else None
            decorated.append((last if at is None else at, item.seq, item))
        return [item for _, _, item in sorted(decorated, key=lambda d: (d[0], d[1]))]


def _seq(item: Event | Extra) -> int:
    return item.seq


def effective_times(events: list[Event]) -> list[float | None]:
    """Each event's ``ts``, or for an untimed one that of the last timed event before it (None if none)."""
    out: list[float | None] = []
    last: float | None = None
    for ev in events:
        if ev.ts is not None:
            last = ev.ts
        out.append(last)
    return out


TraceHook = Callable[[WholeTrace], TraceResult | None]


def skipped_view(report: Report | None, passed_over: int = 0) -> dict[str, Any]:
    """The input lines a read could not use, for the views of ``show`` and ``lineage``: how many, the
    first of them (as many as the scan report lists) with file, line and reason, and how many lines
    were passed over unread (``run_traces``'s ``mention``)."""
    if report is None:
        return {"count": 0, "lines": [], "not_read": passed_over}
    return {
        "count": report.summary.skipped,
        "lines": [{"file": k.file, "line": k.line, "reason": k.reason} for k in report.skipped],
        "not_read": passed_over,
    }


class FullCollector(Collector):
    """A Collector that keeps every event type and hands each closed trace to ``on_trace``.

    ``on_trace`` returns the TraceResult to fold into the aggregate (the trace as audited, or the part
    of it a filter selects), or None to leave the trace out of it.
    """

    keep_rest = True

    def __init__(self, idle_lines: int, agg: Aggregator, on_trace: TraceHook, hook: CloseHook | None = None) -> None:
        super().__init__(idle_lines, agg, hook=hook)  # ``hook``: contract checks, as in Collector
        self.on_trace = on_trace

    def _close(self, tid: str, kept: list[Any]) -> None:
        events: list[Event] = []
        extras: list[Extra] = []
        for e in kept:
            if type(e) is Event:
                if e.type in KEPT_TYPES:
                    events.append(e)
                else:
                    extras.append(_extra_of_event(e))
            elif len(e) == 2:  # an event handed over with the dict it was made from
                extras.append(_extra_of_event(e[0], e[1]))
            elif len(e) == 4:
                extras.append(_extra_of_line(tid, e))
            else:
                events.append(load_kept(tid, e))
        tl = build_timeline(tid, events)
        hook = self.hook
        result = classify_trace(tl, None if hook is None else hook.refine)
        if hook is not None:
            hook.check(tl, result)
        folded = self.on_trace(WholeTrace(tl, result, extras))
        if folded is not None:
            self.agg.add_trace(folded)


def _lenient_ts(value: Any) -> float | None:
    # The audit does not read the time of these events, so a bad one is not a skipped line: no time.
    if value is None:
        return None
    try:
        return parse_ts(value)
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def _extra_of_line(tid: str, kept: tuple[Any, ...]) -> Extra:
    seq, raw, source, line = kept
    data = orjson.loads(raw)
    agent = data.get("agent")
    return Extra(_lenient_ts(data.get("ts")), seq, data["type"], agent if type(agent) is str else None,
                 data, source, line)


def _extra_of_event(ev: Event, given: dict[str, Any] | None = None) -> Extra:
    data: dict[str, Any] = {"trace_id": ev.trace_id, "type": ev.type}
    if given is not None:
        data.update(given)
    if ev.agent is not None:
        data["agent"] = ev.agent
    if ev.status is not None:
        data["status"] = ev.status
    return Extra(ev.ts, ev.seq, ev.type, ev.agent if type(ev.agent) is str else None, data, ev.source, ev.line)
