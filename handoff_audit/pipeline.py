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
from dataclasses import dataclass

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


class _Collector:
    """Buffers the events of open traces; hands each trace on when it closes."""

    def __init__(self, idle_events: int, agg: Aggregator) -> None:
        self.idle_events = idle_events
        self.agg = agg
        self.open: dict[str, list[Event]] = {}
        self.closed_early: set[str] = set()
        # Look for idle traces a few times per window: a trace closes within 1.25 windows of its last event.
        self.expire_every = max(1, min(_EXPIRE_EVERY, idle_events // 4))
        self.next_expiry = self.expire_every

    def add(self, ev: Event) -> None:
        data = ev.data
        tid = data["trace_id"]
        events = self.open.get(tid)
        if events is None:
            if tid in self.closed_early:
                self.agg.skip(
                    Skipped(ev.source, ev.line, f"trace was closed after {self.idle_events} idle events")
                )
                return
            self.open[tid] = [ev]
        else:
            events.append(ev)
        self.agg.events += 1
        if data["type"] not in KNOWN_TYPES:
            self.agg.unknown_types[data["type"]] += 1
        if ev.seq >= self.next_expiry:
            self.next_expiry = ev.seq + self.expire_every
            self._expire(ev.seq - self.idle_events)

    def _expire(self, before: int) -> None:
        idle = [tid for tid, events in self.open.items() if events[-1].seq < before]
        for tid in idle:
            self.closed_early.add(tid)
            self._close(tid, self.open.pop(tid))

    def close_all(self) -> None:
        for tid, events in self.open.items():
            self._close(tid, events)
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
            last_line = 0
            try:
                with stream:
                    for item in adapter.read(stream, src.name, next_seq):
                        last_line = item.line
                        if type(item) is Event:
                            collector.add(item)
                        else:
                            agg.skip(item)  # type: ignore[arg-type]
            except (OSError, EOFError, zlib.error) as err:
                reason = "truncated compressed stream" if isinstance(err, EOFError) else "read error"
                agg.skip(Skipped(src.name, last_line + 1, f"{reason}; the rest of the file was not read"))
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
