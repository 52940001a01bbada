"""The audit pipeline: read -> pair -> diff -> classify -> aggregate -> merge.

Events stream through: adapters feed them to a Collector (``buffer.py``), which holds each trace only
while it is open and hands it to pairing and classification when it closes.

The traces can be audited in partitions, by a hash of the trace id: ``audit(config, part, parts)``
reads every input but audits only its own traces, and ``finish`` merges partial aggregates into
exactly the report of one unpartitioned run (the same bytes in every format). The same two calls let
a cluster scheduler (Dask, Spark) run the partitions on other machines that see the same inputs.

``run`` uses ``config.jobs`` worker processes: on uncompressed native files each reads a byte range
of them (``ranges.py``), otherwise each audits a partition as above.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from handoff_audit import progress, ranges
from handoff_audit.adapters import REGISTRY, detect, read_inputs
from handoff_audit.adapters import finish as finish_spans
from handoff_audit.adapters.native import Misrouted
from handoff_audit.buffer import CloseHook, Collector
from handoff_audit.config import AUTO_JOBS_BYTES, ScanConfig
from handoff_audit.errors import InputError, UsageError
from handoff_audit.models import Report
from handoff_audit.whole_trace import FullCollector, TraceHook
from handoff_audit.sources import READ_ERRORS, Source, inputs, read_lines
from handoff_audit.summary import Aggregator

__all__ = ["Misrouted", "ScanConfig", "audit", "finish", "run", "run_traces"]


def run(config: ScanConfig, hook: CloseHook | None = None) -> Report:
    """Audit every input named in ``config``; raises InputError when nothing can be audited.

    With ``config.contracts`` every handoff is also checked against its edge's contract. ``hook``
    (for tools built on the scan, such as contract inference) sees every closed trace, in this process.
    """
    if config.require_contracts and config.contracts is None:
        raise UsageError("--require-contracts needs a contract file (--contracts)")
    sources = _sources(config)
    jobs = _jobs(config.jobs, sources)
    if hook is not None:
        jobs = 1  # a hook collects in this process
    if jobs <= 1:
        return finish([_audit(sources, config, 0, 1, hook=hook)])
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    cut = _byte_ranges(sources, config, jobs)
    if cut is not None:
        joined = ranges.join(ranges.run(config, cut, ctx), config, sources)
        if joined is None:
            return finish([_audit(sources, config, 0, 1)])  # see ranges.py: the ranges did not fit together
        return finish(joined)
    try:
        with ctx.Pool(jobs) as pool:
            partials = pool.starmap(audit, [(config, part, jobs) for part in range(jobs)])
    except Misrouted:
        # A line repeats its trace_id key: only one process reading every line in order can be sure
        # to give it to the right trace.
        return finish([_audit(sources, config, 0, 1)])
    return finish(partials)


def _byte_ranges(sources: list[Source], config: ScanConfig, jobs: int) -> ranges.Plan | None:
    """How to cut the inputs into byte ranges, one per worker: for uncompressed native files."""
    if config.input_format not in (None, "native"):
        return None
    cut = ranges.plan(sources, jobs, config.idle_lines)
    if cut is None or config.input_format is not None:
        return cut
    for src in sources:
        try:
            stream = src.open()
        except READ_ERRORS:
            return None
        try:
            fmt, _ = detect(read_lines(stream, config.limits))
        except READ_ERRORS:
            return None
        finally:
            stream.close()
        if fmt != "native" and not (src.path is not None and os.path.getsize(src.path) == 0):
            return None  # only native lines can be cut anywhere; an empty file has none at all
    return cut


def audit(config: ScanConfig, part: int = 0, parts: int = 1) -> Aggregator:
    """Audit partition ``part`` of ``parts`` of the traces in ``config.paths``: a partial result.

    Raises ``Misrouted`` for an input whose lines cannot be partitioned exactly (a line that repeats
    its ``trace_id`` key); audit such input in one partition.
    """
    return _audit(_sources(config), config, part, parts)


def finish(partials: Sequence[Aggregator]) -> Report:
    """Merge the partial results of every partition into the report; InputError without events
    (unless lines were passed over unread: whether they held events is not known)."""
    agg = Aggregator.merged(partials)
    names = agg.inputs
    if agg.events == 0 and not agg.passed_over:
        where = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        n = agg.skipped_count
        detail = ""
        if n:
            # The first reason is often the whole story (a JSON array, a binary file, a locked file).
            first = min(agg.skipped, key=lambda k: (k.file, k.line))
            if first.file == where:
                at = f"line {first.line}: " if first.line else ""
            else:
                at = f"{first.file}:{first.line}: " if first.line else f"{first.file}: "
            detail = f" ({n} line{'s' if n != 1 else ''} skipped; {at}{first.reason})"
        raise InputError(f"{where}: no usable events{detail}")
    return agg.report()


def _jobs(asked: int | None, sources: list[Source]) -> int:
    if any(s.path is None for s in sources):
        return 1  # standard input can be read only once
    if asked is None:
        asked = 0 if progress.total_bytes(sources) >= AUTO_JOBS_BYTES else 1
    if asked == 0:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on every platform
            return os.cpu_count() or 1
    return asked


def mentions(ids: Sequence[str]) -> tuple[bytes, ...] | None:
    """The ``mention`` of ``run_traces`` for trace ids or starts of ids: their UTF-8 bytes; None
    (read every line) when one is empty or cannot be written in UTF-8."""
    try:
        found = tuple(i.encode() for i in ids)
    except UnicodeEncodeError:
        return None
    return found if found and all(found) else None


def _sources(config: ScanConfig) -> list[Source]:
    return inputs(config.paths)


def run_traces(
    config: ScanConfig,
    on_trace: TraceHook,
    only: Callable[[str], bool] | None = None,
    mention: tuple[bytes, ...] | None = None,
) -> tuple[Report, Aggregator]:
    """Audit every input in one process, keeping every event of a trace until it closes.

    Each closed trace goes to ``on_trace`` as a WholeTrace, and what it returns is folded into the
    report (see ``whole_trace.py``). Returns the report and the aggregate it was made from.

    With ``only``, just the traces whose id it accepts are kept and audited: every line is still read,
    checked and counted, as an event or a skipped line. The late events of other traces, which are not
    followed, count as events, not as skipped lines; no other trace is in the report.

    ``mention`` goes further (with ``only``): byte strings one of which every event line of those
    traces holds, unless the line escapes something (the ids asked for, or their starts). A native
    line that holds none of them is passed over unparsed; the report counts such lines in
    ``passed_over``, and its events and skipped lines are then those of the lines read.
    """
    agg = _audit(_sources(config), config, 0, 1, on_trace, only=only, mention=mention)
    return finish([agg]), agg


def _audit(
    sources: list[Source],
    config: ScanConfig,
    part: int,
    parts: int,
    on_trace: TraceHook | None = None,
    hook: CloseHook | None = None,
    only: Callable[[str], bool] | None = None,
    mention: tuple[bytes, ...] | None = None,
) -> Aggregator:
    agg, contract_hook, checker = new_aggregator(sources, config)
    if checker is not None:
        hook = contract_hook
    if on_trace is None:
        collector = Collector(config.idle_lines, agg, part, parts, hook)
    else:
        collector = FullCollector(config.idle_lines, agg, on_trace, hook)
    collector.max_depth = config.limits.max_depth
    collector.only = only
    collector.mention = mention
    gc_was_enabled = gc.isenabled()
    gc.disable()  # parsed events hold no reference cycles, and the cyclic collector's passes cost time
    # The first partition reads every line of every input, so its position is the run's.
    with ExitStack() as stack:
        bar = None
        if part == 0 and progress.wanted(sources, config.progress):
            bar = stack.enter_context(progress.Bar(sources))
            collector.tick = bar.tick
        try:
            read_inputs(
                sources,
                config.limits,
                config.input_format,
                collector,
                lambda fmt, lines, name: REGISTRY[fmt].feed(lines, name, collector),
                bar,
            )
            finish_spans(collector)
            collector.close_all()
        finally:
            if gc_was_enabled:
                gc.enable()
    if checker is not None:
        checker.record(agg)
    return agg


def new_aggregator(sources: Sequence[Source], config: ScanConfig) -> tuple[Aggregator, CloseHook | None, Any]:
    """An empty aggregate for ``sources``, with the contract checker that fills it where there is one."""
    agg = Aggregator(tuple(s.name for s in sources), config.ignore, config.keep_traces)
    if config.contracts is None:
        return agg, None, None
    from handoff_audit.contracts import ContractChecker

    checker = ContractChecker(config.contracts, require=config.require_contracts)
    return agg, checker, checker
