"""Aggregate trace results into the run summary, one trace at a time.

Only counters, per-edge latency samples and the findings themselves are kept: a trace's events are
dropped as soon as it has been classified.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from handoff_audit.classify import TraceResult
from handoff_audit.models import AgentStats, ContractCoverage, EdgeStats, Finding, HandoffRecord, Report, Skipped, Summary, TraceRecord
from handoff_audit.rules import FailureClass, Severity

MAX_LISTED_SKIPS = 1000  # every skipped line is counted; the first this many are listed


@dataclass(slots=True)
class _Edge:
    handoffs: int = 0
    failed: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    failed_by_class: Counter[str] = field(default_factory=Counter)
    latencies: array = field(default_factory=lambda: array("d"))


class Aggregator:
    """Accumulates TraceResults, skipped lines and event counts into a Report.

    ``ignore`` holds rule codes whose findings are dropped before anything is counted, as if the
    rule did not exist; ``keep_traces`` keeps a small record of every trace and handoff for the
    per-trace reports.
    """

    def __init__(
        self, inputs: tuple[str, ...] = (), ignore: frozenset[str] = frozenset(), keep_traces: bool = False
    ) -> None:
        self.inputs = inputs  # the names of the inputs, in read order
        self.ignore = ignore
        self.keep_traces = keep_traces
        self.trace_records: list[TraceRecord] = []
        self.traces = 0
        self.events = 0
        self.retries = 0
        self.traces_succeeded = 0
        self.skipped_count = 0
        self.skipped: list[Skipped] = []
        # Once the list is full: a max-heap of its read-order keys, to keep the first lines whatever
        # order they are reported in (span formats report theirs when an input ends).
        self._latest: list[tuple[int, int, int]] | None = None
        self._order = {name: i for i, name in reversed(list(enumerate(inputs)))}  # name -> place read
        # Lines not parsed because they cannot hold an event of the traces asked for (``show``).
        self.passed_over = 0
        self.unknown_types: Counter[str] = Counter()
        self.agent_ends: dict[str, list[int]] = {}  # agent -> [agent.end events, of them ok]; filled while reading
        self.edges: dict[tuple[str, str], _Edge] = {}
        self.findings: list[Finding] = []
        # With a contract file: (file, declared edges as (from, to), outcome owner), and every edge seen
        # -> the index of the declared edge covering it, or None. Plain data, to cross process bounds.
        self.contracts: tuple[str, tuple[tuple[str, str], ...], str | None] | None = None
        self.contract_edges: dict[tuple[str, str], int | None] = {}

    def skip(self, item: Skipped) -> None:
        """Count a line that could not be used; list the first ``MAX_LISTED_SKIPS`` in read order
        (input, then line), as ``merged`` does for partitions."""
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append(item)
            return
        heap = self._latest
        if heap is None:
            heap = self._latest = [(-o, -n, i) for i, (o, n) in enumerate(map(self._read_order, self.skipped))]
            heapq.heapify(heap)
        order, line = self._read_order(item)
        worst_order, worst_line, i = heap[0]
        if (order, line) < (-worst_order, -worst_line):
            self.skipped[i] = item
            heapq.heapreplace(heap, (-order, -line, i))

    def _read_order(self, item: Skipped) -> tuple[int, int]:
        return self._order.get(item.file, len(self.inputs)), item.line

    def add_trace(self, result: TraceResult) -> None:
        """Fold one classified trace into the totals."""
        self.traces += 1
        self.retries += result.retries
        ignore = self.ignore
        if ignore:
            for h in result.handoffs:
                if h.findings:
                    h.findings[:] = [f for f in h.findings if f.code not in ignore]
            result.trace_findings[:] = [f for f in result.trace_findings if f.code not in ignore]
        has_error = False
        for h in result.handoffs:
            edge = self.edges.get((h.from_agent, h.to_agent))
            if edge is None:
                edge = self.edges[(h.from_agent, h.to_agent)] = _Edge()
            edge.handoffs += 1
            if h.findings:
                edge.failed += 1
                for f in h.findings:
                    edge.by_class[f.failure_class] += 1
                    has_error = has_error or f.severity == "error"
                edge.failed_by_class.update({f.failure_class for f in h.findings})
                self.findings.extend(h.findings)
            if h.sent is not None and h.received is not None and h.sent.ts is not None and h.received.ts is not None:
                latency = (h.received.ts - h.sent.ts) * 1000.0
                # A receipt stamped before its send is clock skew, not a latency; nor is an infinite
                # one (times near the ends of the float range).
                if 0 <= latency < math.inf:
                    edge.latencies.append(latency)
        for f in result.trace_findings:
            has_error = has_error or f.severity == "error"
        self.findings.extend(result.trace_findings)
        succeeded = result.claimed_success and not has_error
        if succeeded:
            self.traces_succeeded += 1
        if self.keep_traces:
            self.trace_records.append(_trace_record(result, succeeded))

    @classmethod
    def merged(cls, partials: Sequence[Aggregator]) -> Aggregator:
        """One aggregate of the partial ones of disjoint partitions of the same inputs.

        Every total is a sum and every list is put in a fixed order by ``report``; the listed skipped
        lines are the first ``MAX_LISTED_SKIPS`` in read order (input, then line), as in one run.
        """
        if len(partials) == 1:
            return partials[0]
        out = cls(partials[0].inputs, partials[0].ignore, partials[0].keep_traces)
        for p in partials:
            if p.inputs != out.inputs:
                raise ValueError("partial results of different inputs cannot be merged")
            out.traces += p.traces
            out.events += p.events
            out.retries += p.retries
            out.traces_succeeded += p.traces_succeeded
            out.skipped_count += p.skipped_count
            out.passed_over += p.passed_over
            out.skipped.extend(p.skipped)
            out.unknown_types.update(p.unknown_types)
            for agent, (ends, ok) in p.agent_ends.items():
                counts = out.agent_ends.setdefault(agent, [0, 0])
                counts[0] += ends
                counts[1] += ok
            for key, e in p.edges.items():
                edge = out.edges.get(key)
                if edge is None:
                    edge = out.edges[key] = _Edge()
                edge.handoffs += e.handoffs
                edge.failed += e.failed
                edge.by_class.update(e.by_class)
                edge.failed_by_class.update(e.failed_by_class)
                edge.latencies.extend(e.latencies)
            out.findings.extend(p.findings)
            out.trace_records.extend(p.trace_records)
            for key, index in p.contract_edges.items():
                out.contract_edges[key] = index
            out.contracts = out.contracts or p.contracts
        out.skipped.sort(key=out._read_order)
        del out.skipped[MAX_LISTED_SKIPS:]
        return out

    def _coverage(self) -> tuple[ContractCoverage | None, dict[tuple[str, str], str]]:
        if self.contracts is None:
            return None, {}
        file, declared, owner = self.contracts
        used = {i for i in self.contract_edges.values() if i is not None}
        coverage = ContractCoverage(
            file=file,
            contracts=len(declared),
            outcome_owner=owner,
            uncovered_edges=tuple(sorted(k for k, i in self.contract_edges.items() if i is None)),
            unused_contracts=tuple(d for i, d in enumerate(declared) if i not in used),
        )
        labels = {k: f"{declared[i][0]} -> {declared[i][1]}" for k, i in self.contract_edges.items() if i is not None}
        return coverage, labels

    def report(self) -> Report:
        """The finished report: findings in a fixed order, edges and agents sorted by name."""
        coverage, labels = self._coverage()
        findings = sorted(self.findings, key=_finding_key)
        by_class = Counter({c.value: 0 for c in FailureClass})
        by_kind: Counter[str] = Counter()
        by_sev = Counter({s.value: 0 for s in Severity})
        for f in findings:
            by_class[f.failure_class] += 1
            by_kind[f.kind] += 1
            by_sev[f.severity] += 1
        edges = tuple(
            EdgeStats(
                src,
                dst,
                e.handoffs,
                e.failed,
                {c.value: e.by_class.get(c.value, 0) for c in FailureClass},
                percentile(e.latencies, 0.50),
                percentile(e.latencies, 0.95),
                {c.value: e.failed_by_class.get(c.value, 0) for c in FailureClass},
                labels.get((src, dst)),
            )
            for (src, dst), e in sorted(self.edges.items())
        )
        agents = tuple(AgentStats(a, c[0], c[1]) for a, c in sorted(self.agent_ends.items()))
        summary = Summary(
            inputs=self.inputs,
            traces=self.traces,
            events=self.events,
            handoffs=sum(e.handoffs for e in self.edges.values()),
            failed_handoffs=sum(e.failed for e in self.edges.values()),
            retries=self.retries,
            skipped=self.skipped_count,
            unknown_types=dict(sorted(self.unknown_types.items())),
            traces_succeeded=self.traces_succeeded,
            agent_ends=sum(c[0] for c in self.agent_ends.values()),
            agent_ends_ok=sum(c[1] for c in self.agent_ends.values()),
            findings_by_class=dict(by_class),
            findings_by_kind=dict(sorted(by_kind.items())),
            findings_by_severity=dict(by_sev),
            edges=edges,
            agents=agents,
            contracts=coverage,
        )
        skipped = tuple(sorted(self.skipped, key=lambda s: (s.file, s.line)))
        traces = tuple(sorted(self.trace_records, key=lambda t: t.trace_id))
        return Report(summary, tuple(findings), skipped, traces)


def _finding_key(f: Finding) -> tuple[object, ...]:
    return (f.trace_id, f.order, f.code, f.path, f.handoff_id or "", f.message)


def _trace_record(result: TraceResult, succeeded: bool) -> TraceRecord:
    handoffs = []
    for h in sorted(result.handoffs, key=lambda h: h.pos):
        ev = h.sent if h.sent is not None else h.received
        handoffs.append(
            HandoffRecord(
                h.handoff_id,
                h.from_agent,
                h.to_agent,
                ev.source if ev is not None else None,
                ev.line if ev is not None else None,
                tuple(sorted(h.findings, key=_finding_key)),
            )
        )
    return TraceRecord(
        result.trace_id,
        tuple(handoffs),
        tuple(sorted(result.trace_findings, key=_finding_key)),
        result.claimed_success,
        succeeded,
    )


def percentile(values: array, q: float) -> float | None:
    """Nearest-rank percentile, in the samples' unit; None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
