"""Open traces: events buffered per trace until the trace closes, then classified and dropped.

A trace closes at the end of the input, or by the idle window: an event more than ``idle_lines`` input
lines after the last event of its trace does not join it. Such an event is skipped with a reason, so
nothing is lost silently, and the trace is closed as it stood. Whether an event is too late depends
only on line numbers, never on when the buffer happens to look for idle traces (every
``expire_every`` lines, to free their memory), so every partition of a run decides alike.

Only the events that take part in pairing and the ordering rules are kept (``KEPT_TYPES``); agent
turns and model calls are counted as they are read and dropped at once. Adapters hand events over with
``add``; the native reader, which runs once per input line, does the same work inline (see
``adapters/native.py``) and uses ``trace_entry``, ``close_late``, ``agent_end``, ``unknown`` and
``expire``.

A buffer can audit one partition of the traces (``part`` of ``parts``, by a hash of the trace id; see
``pipeline.audit``): it still sees every event, to count lines alike, but keeps only its own traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from handoff_audit.adapters.native import MAX_DEPTH, load_kept, trace_owner
from handoff_audit.classify import Refine, TraceResult, classify_trace
from handoff_audit.models import KEPT_TYPES, KNOWN_TYPES, Event, Skipped
from handoff_audit.pairing import Timeline, build_timeline
from handoff_audit.summary import Aggregator

_EXPIRE_EVERY = 16_384


class CloseHook(Protocol):
    """Work done on each closed trace besides the built-in rules (contract checks, contract inference)."""

    refine: Refine | None  # passed to classify_trace

    def check(self, tl: Timeline, result: TraceResult) -> None:
        """Called after classification, before the trace is folded into the aggregate."""


class Collector:
    """The sink adapters feed: buffers open traces and folds closed ones into the aggregate."""

    # True in a collector that also keeps agent turns, model calls and unknown types until the trace
    # closes (``whole_trace.FullCollector``); ``scan`` without filters drops them as they are read.
    keep_rest = False

    def __init__(
        self,
        idle_lines: int,
        agg: Aggregator,
        part: int = 0,
        parts: int = 1,
        hook: CloseHook | None = None,
        max_depth: int = MAX_DEPTH,
    ) -> None:
        if not 0 <= part < parts:
            raise ValueError(f"partition {part} of {parts} does not exist")
        self.idle_lines = idle_lines
        self.agg = agg
        self.max_depth = max_depth  # adapters skip kept events nested deeper than this
        self.part, self.parts = part, parts
        self.hook = hook
        self.open: dict[str, list[Any]] = {}  # trace_id -> [seq of its last event, kept events, trace_id]
        self.closed_early: set[str] = set()
        self.seq = 0  # input lines read so far, across inputs: the global read order
        self.last_line = 0  # last line read of the current input, for errors that end a read
        self.line_base = 0  # lines of the current input before those handed to the adapter
        # Free idle traces a few times per window.
        self.expire_every = max(1, min(_EXPIRE_EVERY, idle_lines // 4))
        self.next_expiry = self.expire_every
        self.tick: Callable[[int], None] | None = None  # told the lines read, at every idle check
        # Which traces to audit, by id, when the caller needs only some (``show``, ``lineage --trace``).
        # The lines of other traces are still read and checked, so that every unusable line is
        # counted, but they are neither kept nor audited.
        self.only: Callable[[str], bool] | None = None
        # With ``only``: byte strings one of which the line of any such trace's event must hold, unless
        # it writes something escaped. The native reader passes over the other lines without parsing
        # them, and counts them in ``agg.passed_over``.
        self.mention: tuple[bytes, ...] | None = None

    def add(self, ev: Event, data: dict[str, Any] | None = None) -> None:
        """Take one event; its ``seq`` counts input lines and must not go back.

        ``data`` is the event as the adapter built it, where it has one: a collector that keeps every
        event (``keep_rest``) keeps it with an agent turn or model call, for the fields an Event
        does not carry (token counts, cost).
        """
        self.seq = ev.seq
        if self.parts > 1 and trace_owner(ev.trace_id, self.parts) != self.part:
            return
        if self.only is not None and not self.only(ev.trace_id):
            self.agg.events += 1  # a usable event all the same
            if ev.seq >= self.next_expiry:
                self.expire(ev.seq)
            return
        entry = self.open.get(ev.trace_id)
        if entry is None:
            entry = self.trace_entry(ev.trace_id, ev.seq, ev.source, ev.line)
            if entry is None:
                return
        elif ev.seq - entry[0] > self.idle_lines:
            self.close_late(ev.trace_id, ev.source, ev.line)
            return
        else:
            entry[0] = ev.seq
        self.agg.events += 1
        if ev.type in KEPT_TYPES:
            entry[1].append(ev)
        elif ev.type == "agent.end":
            self.agent_end(ev.agent, ev.status)
        elif ev.type not in KNOWN_TYPES:
            self.unknown(ev.type)
        if self.keep_rest and ev.type not in KEPT_TYPES:
            entry[1].append(ev if data is None else (ev, data))
        if ev.seq >= self.next_expiry:
            self.expire(ev.seq)

    def skip(self, item: Skipped) -> None:
        """Count and list a line that could not be used (in a partitioned run, by partition 0 only:
        an adapter's own skips are seen alike by every partition)."""
        if self.part == 0:
            self.agg.skip(item)

    def trace_entry(self, trace_id: str, seq: int, source: str, line: int) -> list[Any] | None:
        """Open a trace for its first event; None (and a skip) if the trace was already closed."""
        if trace_id in self.closed_early:
            self._skip_late(source, line)
            return None
        entry = self.open[trace_id] = [seq, [], trace_id]
        return entry

    def close(self, trace_id: str) -> None:
        """Close one trace now: its adapter has handed over every event the trace will have.

        The span formats call this once a trace is converted, so that its events are not held for
        the idle window. A later event of the trace is skipped, as after the idle window.
        """
        entry = self.open.pop(trace_id, None)
        if entry is not None:
            self.closed_early.add(trace_id)
            self._close(trace_id, entry[1])

    def close_late(self, trace_id: str, source: str, line: int) -> None:
        """An event came more than the idle window after its trace's last one: close the trace, skip it."""
        self.closed_early.add(trace_id)
        self._close(trace_id, self.open.pop(trace_id)[1])
        self._skip_late(source, line)

    def _skip_late(self, source: str, line: int) -> None:
        self.agg.skip(Skipped(source, line, f"trace was closed after {self.idle_lines} idle lines"))

    def agent_end(self, agent: str, status: Any) -> None:
        """Count an ``agent.end`` for per-agent success."""
        counts = self.agg.agent_ends.get(agent)
        if counts is None:
            counts = self.agg.agent_ends[agent] = [0, 0]
        counts[0] += 1
        if status == "ok":
            counts[1] += 1

    def unknown(self, type_: str) -> None:
        """Count an event of a type the audit does not use."""
        self.agg.unknown_types[type_] += 1

    def expire(self, seq: int) -> None:
        """Close the traces idle for more than the window; call when ``seq`` reaches ``next_expiry``."""
        self.next_expiry = seq + self.expire_every
        if self.tick is not None:
            self.tick(seq)
        before = seq - self.idle_lines
        idle = [tid for tid, entry in self.open.items() if entry[0] < before]
        for tid in idle:
            self.closed_early.add(tid)
            self._close(tid, self.open.pop(tid)[1])

    def close_all(self) -> None:
        """Close every open trace (the end of the input)."""
        for tid, entry in self.open.items():
            self._close(tid, entry[1])
        self.open.clear()

    def _close(self, tid: str, kept: list[Any]) -> None:
        # The native reader buffers outcomes and tool calls as tuples (see load_kept).
        events = [e if type(e) is Event else load_kept(tid, e) for e in kept]
        hook = self.hook
        if hook is None:
            self.agg.add_trace(classify_trace(build_timeline(tid, events)))
            return
        tl = build_timeline(tid, events)
        result = classify_trace(tl, hook.refine)
        hook.check(tl, result)
        self.agg.add_trace(result)
