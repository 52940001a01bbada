"""Uncompressed native files audited by several processes, each reading its own byte range.

``scan --jobs N`` reads its inputs one after another as one sequence of lines; on uncompressed
native files it cuts that sequence into N byte ranges at line starts (a range may span files). Each
worker reads only its range, so no line is read twice (the partitioning by trace id in
``pipeline.audit`` has every worker read every line). A trace may cross a boundary; this module puts
such traces back together, so that the report is the one a single process gives, byte for byte:

- A worker numbers its lines as one process does: it first counts the lines before its range.
- The idle window decides, per trace, which events join it (``buffer.py``): an event joins if it
  comes at most ``idle_lines`` lines after the trace's last event. So the only traces that can carry
  on into a range are those with an event in the ``idle_lines`` lines before it (its look-back).
  A worker reads its look-back with the reader's own checks, and opens each trace found there as
  *carried*, with the line of its last event: the window then runs on as in one process.
- Once a worker is ``idle_lines`` into its range it knows which carried traces went on, and tells
  the worker before, which classifies its other open traces itself at the end of its range and
  hands back only those (``carry_out``). A carried trace that closes is handed back too (``carry_in``).
- The parent joins each carried trace's events from both sides of a boundary and classifies the
  whole trace. It checks what the workers assumed: the traces carried into a range must be exactly
  those the range before left open with an event in the look-back, at the same line, and no trace
  may start afresh in a range after it was seen in an earlier one (in one process its later events
  would be too late). Where a check fails, as it can on an input that reuses a trace id after a long
  pause, the run is done again in one process.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO, cast


from handoff_audit.adapters.native import NativeAdapter, line_trace_id, usable_trace_id
from handoff_audit.buffer import CloseHook, Collector
from handoff_audit.config import ScanConfig
from handoff_audit.progress import Bar
from handoff_audit.sources import GZIP_MAGIC, READ_ERRORS, UTF8_BOM, ZSTD_MAGIC, Source, read_lines
from handoff_audit.summary import Aggregator

# A range smaller than this is not worth a process of its own.
MIN_RANGE_BYTES = 1 << 20
_CHUNK = 1 << 23


@dataclass(frozen=True)
class Plan:
    """Where the inputs, read one after another as one sequence of lines, are cut into ranges.

    A position is (input, byte offset) at a line start; range ``i`` runs from ``cuts[i]`` up to
    ``cuts[i + 1]``, and the last cut is (number of inputs, 0).
    """

    sources: tuple[Source, ...]
    sizes: tuple[int, ...]
    starts: tuple[int, ...]  # where each input's first line begins (after a byte-order mark)
    cuts: tuple[tuple[int, int], ...]

    def segments(self, index: int) -> list[tuple[int, int, int]]:
        """(input, start, end) of each input range ``index`` reads, in order."""
        (k0, o0), (k1, o1) = self.cuts[index], self.cuts[index + 1]
        out = []
        for k in range(k0, min(k1, len(self.sizes) - 1) + 1):
            start = o0 if k == k0 else self.starts[k]
            end = o1 if k == k1 else self.sizes[k]
            if start < end:
                out.append((k, start, end))
        return out

    def size(self, index: int) -> int:
        """Bytes of range ``index``."""
        return sum(end - start for _, start, end in self.segments(index))


def plan(sources: Sequence[Source], parts: int, idle_lines: int = 1) -> Plan | None:
    """Cut the inputs into ``parts`` ranges, or None if they are not worth reading that way.

    Only regular, uncompressed files can be read from the middle; the caller has already found their
    format to be native. The ranges must be longer than the idle window (judged by the line length
    of the first MiB), or the traces open at each boundary would be most of the work.
    """
    if parts < 2 or not sources:
        return None
    sizes: list[int] = []
    starts: list[int] = []
    sample = b""
    try:
        for src in sources:
            if src.path is None or src.problem is not None or not os.path.isfile(src.path):
                return None
            with open(src.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(4)
                if head[:2] == GZIP_MAGIC or head == ZSTD_MAGIC:
                    return None
                starts.append(3 if head[:3] == UTF8_BOM else 0)
                sizes.append(size)
                if len(sample) < 1 << 20:
                    f.seek(0)
                    sample += f.read((1 << 20) - len(sample))
        total = sum(sizes)
        if total < parts * MIN_RANGE_BYTES:
            return None
        if sample.count(b"\n") * (total / parts) / max(1, len(sample)) < idle_lines:
            return None  # traces would stay open across whole ranges: see docs/scale.md
        cuts = [_normal((0, starts[0]), sizes, starts)]
        base = 0
        k = 0
        for j in range(1, parts):
            target = total * j // parts
            while base + sizes[k] <= target and k < len(sizes) - 1:
                base += sizes[k]
                k += 1
            path = sources[k].path
            assert path is not None
            if target - base <= starts[k]:
                off = starts[k]
            else:
                with open(path, "rb") as f:
                    off = _next_line(f, target - base, sizes[k])
            cuts.append(max(_normal((k, off), sizes, starts), cuts[-1]))
        cuts.append((len(sizes), 0))
    except OSError:
        return None
    return Plan(tuple(sources), tuple(sizes), tuple(starts), tuple(cuts))


def _normal(pos: tuple[int, int], sizes: Sequence[int], starts: Sequence[int]) -> tuple[int, int]:
    """The same position, moved on to the next input's first line where it is at an input's end."""
    k, off = pos
    while k < len(sizes) and off >= sizes[k]:
        k += 1
        off = starts[k] if k < len(sizes) else 0
    return k, off


def _next_line(f: BinaryIO, offset: int, size: int) -> int:
    """The offset of the first line that starts at or after ``offset`` (past the first byte)."""
    f.seek(offset - 1)
    while True:
        chunk = f.read(1 << 16)
        if not chunk:
            return size
        i = chunk.find(b"\n")
        if i >= 0:
            return f.tell() - len(chunk) + i + 1


class _Range:
    """A file read from ``start`` up to ``end`` only."""

    def __init__(self, f: BinaryIO, start: int, end: int) -> None:
        self._f = f
        f.seek(start)
        self._left = end - start

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if size < 0 else min(size, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    read1 = read

    def fileno(self) -> int:
        return self._f.fileno()


def _lines(f: BinaryIO, start: int, end: int, config: ScanConfig) -> Iterator[bytes]:
    """The lines of the file from ``start`` up to ``end``, bounded as ``read_lines`` bounds them."""
    return read_lines(cast(BinaryIO, _Range(f, start, end)), config.limits)


@dataclass
class RangePart:
    """What one worker hands back: its partial aggregate and what the parent needs to join traces."""

    agg: Aggregator
    lines_before: int = 0  # lines of the inputs before this range, all inputs counted
    assumed: dict[str, int] = field(default_factory=dict)  # carried traces -> line of their last event before
    carry_in: dict[str, list[Any]] = field(default_factory=dict)  # carried traces closed here -> events here
    carry_out: dict[str, tuple[int, list[Any]]] = field(default_factory=dict)  # going on -> (last line, events)
    open_last: dict[str, int] = field(default_factory=dict)  # every trace open at the end -> its last line
    started: set[str] = field(default_factory=set)  # traces opened afresh in this range
    read_error: bool = False


class _RangeCollector(Collector):
    """A buffer that hands carried traces back instead of classifying them.

    A carried trace that gets no event in this range belongs wholly to the ranges before. Once the
    reader is ``idle_lines`` past the start of the range, the carried traces that got one are known
    (``continued``): they are sent to the worker of the range before (``tell``), which then classifies
    the rest of its open traces itself and hands back only these.
    """

    def __init__(self, idle_lines: int, agg: Aggregator, hook: CloseHook | None, first: int) -> None:
        super().__init__(idle_lines, agg, hook=hook)
        self.first = first  # the number of the range's first line
        self.seeds: dict[str, list[Any]] = {}  # carried traces -> their buffer entries
        self.carry_in: dict[str, list[Any]] = {}
        self.quiet: set[str] = set()  # carried traces closed without an event in this range
        self.started: set[str] = set()
        self.tell: Callable[[set[str] | None], None] | None = None
        self.definite = False  # told the range before exactly which carried traces go on

    def carry(self, assumed: dict[str, int]) -> None:
        """Open the traces carried into this range, each with the line of its last event."""
        for tid, seq in assumed.items():
            self.seeds[tid] = self.open[tid] = [seq, [], tid]

    def trace_entry(self, trace_id: str, seq: int, source: str, line: int) -> list[Any] | None:
        entry = super().trace_entry(trace_id, seq, source, line)
        if entry is not None:
            self.started.add(trace_id)
        return entry

    def expire(self, seq: int) -> None:
        super().expire(seq)
        if self.tell is not None and seq >= self.first + self.idle_lines:
            self.told(definite=True)

    def told(self, definite: bool) -> None:
        """Tell the worker before which carried traces go on here; None, before the window has passed
        (a range shorter than the window), means that any of them may, and it hands back all."""
        assert self.tell is not None
        tell, self.tell = self.tell, None
        self.definite = definite
        tell(self.continued() if definite else None)

    def continued(self) -> set[str]:
        first = self.first
        return {tid for tid, entry in self.seeds.items() if entry[0] >= first}

    def _close(self, tid: str, kept: list[Any]) -> None:
        entry = self.seeds.get(tid)
        if entry is None:
            super()._close(tid, kept)
        elif entry[0] >= self.first:
            self.carry_in[tid] = kept
        elif not self.definite:
            self.quiet.add(tid)  # handed back unless the range before is told that it need not be

    def finish(self, going_on: set[str] | None, last: bool) -> tuple[dict[str, tuple[int, list[Any]]], dict[str, int]]:
        """Close or hand back the traces open at the end of the range: those in ``going_on`` (told by
        the worker after; None means all of them) are handed back with their events, the rest close
        here. Returns the handed back traces and the last line of every open trace. The worker before
        has been told already (``told``): it may be waiting for that before it can finish."""
        open_last = {tid: entry[0] for tid, entry in self.open.items()}
        out: dict[str, tuple[int, list[Any]]] = {}
        if last:
            self.close_all()
        else:
            for tid, entry in self.open.items():
                if going_on is None or tid in going_on:
                    out[tid] = (entry[0], entry[1])
                else:
                    self._close(tid, entry[1])
            self.open.clear()
        if not self.definite:
            for tid in self.quiet:
                self.carry_in[tid] = []
        return out, open_last


def audit_range(
    config: ScanConfig,
    p: Plan,
    index: int,
    tell: Callable[[set[str] | None], None] | None = None,
    hear: Callable[[], set[str] | None] | None = None,
    bar: Bar | None = None,
) -> RangePart:
    """Audit range ``index`` of the plan (in a worker process).

    ``tell`` sends the worker of the range before which carried traces go on in this one; ``hear``
    waits for the same from the worker of the range after. Without them, every open trace is handed
    back. ``bar`` shows how far the range has been read.
    """
    from handoff_audit.pipeline import new_aggregator

    agg, hook, checker = new_aggregator(p.sources, config)
    part = RangePart(agg)
    last = index == len(p.cuts) - 2
    segments = p.segments(index)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # as in pipeline._audit
    try:
        try:
            counted = _Lines(p, p.cuts[index])
            part.lines_before = counted.before
            if index:
                part.assumed = _look_back(counted.window(config.idle_lines), config)
            collector = _RangeCollector(config.idle_lines, agg, hook, counted.before + 1)
            collector.max_depth = config.limits.max_depth
            collector.carry(part.assumed)
            if index:
                collector.tell = tell or (lambda _: None)
            for k, start, end in segments:
                src = p.sources[k]
                path = src.path
                assert path is not None
                with open(path, "rb") as f:
                    if k == p.cuts[index][0]:  # where the range starts: maybe inside the input
                        collector.seq = counted.before - counted.in_input
                        collector.line_base = counted.in_input
                    else:  # the seq the input before ended at is the one this starts from
                        collector.line_base = 0
                    if bar is not None:
                        bar.begin(f)
                        collector.tick = bar.tick
                    NativeAdapter().feed(_lines(f, start, end, config), src.name, collector)
                    if bar is not None:
                        bar.end(src)
        except READ_ERRORS:
            # One process reports the error and stops reading there: the run is redone that way.
            part.read_error = True
            if tell is not None:
                tell(None)
            return part
        if collector.tell is not None:
            collector.told(definite=False)  # before waiting: the worker before may be waiting too
        going_on = None if last or hear is None else hear()
        part.carry_out, part.open_last = collector.finish(going_on, last)
    finally:
        if gc_was_enabled:
            gc.enable()
    part.carry_in = collector.carry_in
    part.started = collector.started
    if checker is not None:
        checker.record(agg)
    return part


class _Lines:
    """The lines of the inputs before a position: how many there are in all (``before``) and in its
    own input (``in_input``), and where each of the last few of them starts."""

    def __init__(self, p: Plan, pos: tuple[int, int]) -> None:
        self.plan = p
        self.pos = pos
        self.first_of: list[int] = []  # inputs before pos and its own -> the seq of the line before its first
        self.chunks: list[list[tuple[int, int]]] = []  # per input: (offset of a read, newlines before it)
        total = 0
        k_pos, off_pos = pos
        for k in range(min(k_pos, len(p.sizes) - 1) + 1):
            self.first_of.append(total)
            end = off_pos if k == k_pos else p.sizes[k]
            n, chunks, tail = _count(p.sources[k].path, p.starts[k], end)
            self.chunks.append(chunks)
            # A last line without its line end is a line too.
            total += n + (1 if k != k_pos and tail else 0)
        self.before = total
        self.in_input = total - self.first_of[k_pos] if k_pos < len(p.sizes) else 0

    def window(self, lines: int) -> list[tuple[str, int, int, int]]:
        """(path, start, end, seq of its first line) of each input read to go over the last ``lines``
        lines before the position."""
        p = self.plan
        first = max(1, self.before + 1 - lines)  # the seq of the first line to read
        k_pos, off_pos = self.pos
        out = []
        for k in range(len(self.first_of)):
            end = off_pos if k == k_pos else p.sizes[k]
            if k < len(self.first_of) - 1 and self.first_of[k + 1] < first:
                continue  # wholly before the window
            path = p.sources[k].path
            assert path is not None
            if self.first_of[k] + 1 >= first:
                out.append((path, p.starts[k], end, self.first_of[k] + 1))
            else:
                skip = first - self.first_of[k] - 1  # lines of this input before the window
                out.append((path, _offset_of(path, self.chunks[k], skip, p.starts[k], end), end, first))
        return out


def _count(path: str | None, start: int, end: int) -> tuple[int, list[tuple[int, int]], bool]:
    """Newlines in ``start``..``end`` of a file, the (offset, newlines before) of each chunk read, and
    whether bytes follow the last newline."""
    assert path is not None
    chunks: list[tuple[int, int]] = []
    total = 0
    tail = False
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        while offset < end:
            chunk = f.read(min(_CHUNK, end - offset))
            if not chunk:
                break
            chunks.append((offset, total))
            total += chunk.count(b"\n")
            offset += len(chunk)
            tail = not chunk.endswith(b"\n")
    return total, chunks, tail


def _offset_of(path: str, chunks: list[tuple[int, int]], newlines: int, start: int, end: int) -> int:
    """The offset of the line after the first ``newlines`` newlines of a file, found from its chunks."""
    if newlines == 0:
        return start
    for at, before in reversed(chunks):
        if before < newlines:
            with open(path, "rb") as f:
                f.seek(at)
                chunk = f.read(min(_CHUNK, end - at))
            i = -1
            for _ in range(newlines - before):
                i = chunk.find(b"\n", i + 1)
            return at + i + 1
    raise AssertionError("line count out of step")  # pragma: no cover


def _look_back(segments: list[tuple[str, int, int, int]], config: ScanConfig) -> dict[str, int]:
    """The traces with a usable event in ``segments`` (path, start, end, seq of the first line), each
    with the seq of its last one, by the native reader's own checks.

    Only the last line of each trace needs those checks, so a line's trace is first read off its
    bytes where it can be (``line_trace_id``), and only the last line found for each trace is parsed
    and checked; where that line is not usable, the lines before it are gone through again.
    """
    max_depth = config.limits.max_depth
    latest: dict[str, tuple[int, bytes]] = {}  # trace -> (seq, bytes) of its last line
    usable: dict[str, int] = {}
    for seq, raw in _window_lines(segments, config):
        tid = line_trace_id(raw)
        if tid is not None:
            latest[tid] = (seq, raw)
            continue
        tid = usable_trace_id(raw, max_depth)  # read only by a parse: checked at once
        if tid is not None:
            latest.pop(tid, None)
            usable[tid] = seq
    unsure: set[str] = set()
    for tid, (seq, raw) in latest.items():
        got = usable_trace_id(raw, max_depth)
        if got != tid:
            unsure.add(tid)
        if got is not None:
            usable[got] = max(seq, usable.get(got, 0))
    if unsure:  # the last line of these traces was not usable: look for their last usable one
        for seq, raw in _window_lines(segments, config):
            if line_trace_id(raw) in unsure:
                got = usable_trace_id(raw, max_depth)
                if got is not None:
                    usable[got] = max(seq, usable.get(got, 0))
    return usable


def _window_lines(segments: list[tuple[str, int, int, int]], config: ScanConfig) -> Iterator[tuple[int, bytes]]:
    for path, start, end, first in segments:
        with open(path, "rb") as f:
            yield from enumerate(_lines(f, start, end, config), first)


def join(parts: list[RangePart], config: ScanConfig, sources: Sequence[Source]) -> list[Aggregator] | None:
    """The partial aggregates of the ranges and of the traces that cross them; None if the workers'
    assumptions do not hold and the file must be audited in one process."""
    from handoff_audit.pipeline import new_aggregator

    if any(p.read_error for p in parts):
        return None  # one process stops at a read error; the ranges after it would not
    agg, hook, checker = new_aggregator(sources, config)
    collector = Collector(config.idle_lines, agg, hook=hook)
    window = config.idle_lines
    seen: set[str] = set()
    pending: dict[str, list[Any]] = {}  # traces handed on over the boundary -> their events so far
    for i, p in enumerate(parts):
        if i:
            first = p.lines_before + 1
            live = {tid: seq for tid, seq in parts[i - 1].open_last.items() if seq >= first - window}
            if live != p.assumed or not p.started.isdisjoint(seen):
                return None
            for tid in [tid for tid in pending if tid not in live]:
                collector._close(tid, pending.pop(tid))  # idle at the boundary: nothing after it joins
        for tid, kept in p.carry_in.items():
            before = pending.pop(tid, None)
            if before is None:
                return None  # pragma: no cover - a carried trace closed here was handed on from before
            collector._close(tid, before + kept)
        following: dict[str, list[Any]] = {}
        for tid, (_, kept) in p.carry_out.items():
            before = pending.pop(tid, None)
            following[tid] = kept if before is None else before + kept
        if pending:  # pragma: no cover - every trace handed on closes in the next range or goes on
            return None
        pending = following
        seen |= p.started
    if pending:  # pragma: no cover - the last range closes everything
        return None
    if checker is not None:
        checker.record(agg)
    return [p.agg for p in parts] + [agg]


def run(config: ScanConfig, p: Plan, ctx: Any) -> list[RangePart]:
    """Audit every range of the plan, each in its own process, and collect what they hand back.

    Each worker but the first tells the one before it which carried traces go on (a queue per
    boundary); each result comes back through a queue of its own, read in order.
    """
    n = len(p.cuts) - 1
    # notes[i]: from worker i + 1 to worker i. A Queue, whose put returns at once (a thread of the
    # sender writes it): worker i reads its note only at the end of its range, and a note longer than
    # a pipe holds would otherwise stop worker i + 1 until then.
    notes = [ctx.Queue() for _ in range(n - 1)]
    results = [ctx.SimpleQueue() for _ in range(n)]
    procs = [
        ctx.Process(target=_worker, args=(config, p, i, notes, results[i]), daemon=True) for i in range(n)
    ]
    for proc in procs:
        proc.start()
    parts: list[RangePart] = []
    try:
        for i, q in enumerate(results):
            status, value = _get(q, procs[i])
            if status != "ok":
                raise value
            parts.append(value)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
    return parts


def _get(q: Any, proc: Any) -> tuple[str, Any]:
    """The next item of ``q``, put there by ``proc``; an error if the process ends without one."""
    while True:
        if not q.empty():
            return cast(tuple[str, Any], q.get())
        if not proc.is_alive() and q.empty():
            return "error", RuntimeError(f"a worker process ended with exit code {proc.exitcode}")
        proc.join(0.05)


def _worker(config: ScanConfig, p: Plan, index: int, notes: list[Any], result: Any) -> None:
    from handoff_audit import progress

    try:
        tell = notes[index - 1].put if index else None
        hear = notes[index].get if index < len(notes) else None
        if index == 0 and progress.wanted(p.sources, config.progress):
            with progress.Bar(p.sources, scale=sum(p.sizes) / max(1, p.size(0))) as bar:
                part = audit_range(config, p, index, tell, hear, bar)
        else:
            part = audit_range(config, p, index, tell, hear)
    except BaseException as err:  # handed to the parent, which raises it
        if index:
            notes[index - 1].put(None)  # never leave the worker before waiting
        result.put(("error", err))
        return
    result.put(("ok", part))
