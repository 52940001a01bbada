"""The audit pipeline: read -> pair -> diff -> classify -> aggregate.

Events stream through: each trace's events are buffered only while the trace is open, and a trace is
closed (classified, then dropped) at the end of the input or once ``idle_events`` further events have
been read without one of its own. An event that arrives for a trace already closed is not merged into
it: it is skipped with a reason, so nothing is lost silently.
"""

from __future__ import annotations

import gc
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from handoff_audit.adapters.native import KNOWN_TYPES, NativeAdapter
from handoff_audit.classify import classify_trace
from handoff_audit.errors import InputError
from handoff_audit.models import Event, Report, Skipped
from handoff_audit.pairing import build_timeline
from handoff_audit.sources import expand
from handoff_audit.summary import Aggregator

DEFAULT_IDLE_EVENTS = 200_000
_EXPIRE_EVERY = 16_384


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """What to read and how."""

    paths: tuple[str, ...]
    idle_events: int = DEFAULT_IDLE_EVENTS


# Only these events take part in pairing and the ordering rules; the others are counted as they are
# read and dropped at once, which keeps open traces small.
KEPT_TYPES = frozenset({"handoff.sent", "handoff.received", "outcome", "tool.call"})


class _Collector:
    """Buffers the events of open traces; hands each trace on when it closes."""

    def __init__(self, idle_events: int, agg: Aggregator) -> None:
        self.idle_events = idle_events
        self.agg = agg
        self.open: dict[str, list[Any]] = {}  # trace_id -> [seq of its last event, kept events]
        self.closed_early: set[str] = set()
        # Look for idle traces a few times per window: a trace closes within 1.25 windows of its last event.
        self.expire_every = max(1, min(_EXPIRE_EVERY, idle_events // 4))
        self.next_expiry = self.expire_every
        self.last_line = 0

    def consume(self, batches: Iterator[list[Event | Skipped]]) -> None:
        """Take one source's events and skips; ``last_line`` tells how far it got, even on an error."""
        agg, open_traces, kept_types, closed_early = self.agg, self.open, KEPT_TYPES, self.closed_early
        agent_ends, unknown = agg.agent_ends, agg.unknown_types
        events = 0
        try:
            for batch in batches:
                events += len(batch)
                self.last_line = batch[-1].line
                for item in batch:
                    if type(item) is not Event:
                        agg.skip(item)  # type: ignore[arg-type]
                        events -= 1
                        continue
                    tid = item.trace_id
                    entry = open_traces.get(tid)
                    if entry is None:
                        if tid in closed_early:
                            reason = f"trace was closed after {self.idle_events} idle events"
                            agg.skip(Skipped(item.source, item.line, reason))
                            events -= 1
                            continue
                        entry = open_traces[tid] = [item.seq, []]
                    else:
                        entry[0] = item.seq
                    typ = item.type
                    if typ in kept_types:
                        entry[1].append(item)
                    elif typ == "agent.end":
                        counts = agent_ends.get(item.agent)  # type: ignore[arg-type]
                        if counts is None:
                            counts = agent_ends[item.agent] = [0, 0]  # type: ignore[index]
                        counts[0] += 1
                        if item.status == "ok":
                            counts[1] += 1
                    elif typ not in KNOWN_TYPES:
                        unknown[typ] += 1
                    if item.seq >= self.next_expiry:
                        self.next_expiry = item.seq + self.expire_every
                        self._expire(item.seq - self.idle_events)
        finally:
            agg.events += events

    def _expire(self, before: int) -> None:
        idle = [tid for tid, entry in self.open.items() if entry[0] < before]
        for tid in idle:
            self.closed_early.add(tid)
            self._close(tid, self.open.pop(tid)[1])

    def close_all(self) -> None:
        for tid, entry in self.open.items():
            self._close(tid, entry[1])
        self.open.clear()

    def _close(self, tid: str, events: list[Event]) -> None:
        self.agg.add_trace(classify_trace(build_timeline(tid, events)))


def run(config: ScanConfig) -> Report:
    """Audit every input named in ``config``; raises InputError when nothing can be audited."""
    sources = expand(list(config.paths))
    if not sources:
        raise InputError(f"{', '.join(config.paths)}: no trace files (*.jsonl, *.jsonl.gz) found")
    agg = Aggregator()
    collector = _Collector(config.idle_events, agg)
    adapter = NativeAdapter()
    next_seq = itertools.count(1).__next__
    gc_was_enabled = gc.isenabled()
    gc.disable()  # parsed events hold no cycles; the collector's passes would cost more than the audit
    try:
        for src in sources:
            try:
                stream = src.open()
            except OSError as err:
                raise InputError(f"{src.name}: cannot open ({err.strerror or err})") from None
            read = adapter.read(stream, src.name, next_seq)
            try:
                with stream:
                    collector.consume(read)
            except (OSError, EOFError, zlib.error) as err:
                reason = "truncated compressed stream" if isinstance(err, EOFError) else "read error"
                agg.skip(Skipped(src.name, collector.last_line + 1, f"{reason}; the rest of the file was not read"))
        collector.close_all()
    finally:
        if gc_was_enabled:
            gc.enable()
    if agg.events == 0:
        where = ", ".join(s.name for s in sources[:3]) + (", ..." if len(sources) > 3 else "")
        n = agg.skipped_count
        detail = f" ({n} line{'s' if n != 1 else ''} skipped)" if n else ""
        raise InputError(f"{where}: no usable events{detail}")
    return agg.report(tuple(s.name for s in sources))
