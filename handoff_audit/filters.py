"""Filters shared by scan, show, lineage and stats: they choose what is reported, never what is read.

Every input line is read, audited and counted (events, skipped lines) whatever the filters say; a
filter then selects traces, handoffs, findings and agent turns. docs/investigate.md states what each
filter does to each number of each report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from handoff_audit import pipeline
from handoff_audit.adapters.native import parse_ts
from handoff_audit.classify import TraceResult
from handoff_audit.config import ScanConfig
from handoff_audit.errors import UsageError
from handoff_audit.models import AgentStats, Finding, Handoff, Report
from handoff_audit.whole_trace import WholeTrace
from handoff_audit.rules import RULES, RULES_BY_CODE, FailureClass


@dataclass(frozen=True, slots=True)
class Filter:
    """What to report. Empty tuples and None bounds select everything."""

    traces: tuple[str, ...] = ()  # trace ids; one ending in "*" is a prefix
    agents: tuple[str, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()
    classes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    since: float | None = None  # inclusive, Unix seconds
    until: float | None = None  # exclusive
    given: tuple[str, ...] = ()  # the options as given, for the report

    @property
    def active(self) -> bool:
        return bool(self.given)

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    # --- single tests ---------------------------------------------------------------------------

    def trace_id_texts(self) -> list[str]:
        """What each ``--trace`` value says an id is or starts with (its final ``*`` dropped)."""
        return [t[:-1] if t.endswith("*") else t for t in self.traces]

    def trace_id_ok(self, trace_id: str) -> bool:
        """The trace id passes ``--trace`` (an id, or a prefix written with a final ``*``)."""
        if not self.traces:
            return True
        return any(trace_id.startswith(t[:-1]) if t.endswith("*") else trace_id == t for t in self.traces)

    def time_ok(self, ts: float | None) -> bool:
        """The time lies in [since, until); without a time, only when no time filter is given."""
        if not self.timed:
            return True
        if ts is None:
            return False
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)

    def edge_ok(self, frm: str, to: str) -> bool:
        """The edge passes ``--edge`` and ``--agent`` (one of its two agents is named)."""
        if self.edges and (frm, to) not in self.edges:
            return False
        return not self.agents or frm in self.agents or to in self.agents

    def finding_kind_ok(self, f: Finding) -> bool:
        """The finding passes ``--class`` and ``--kind``."""
        return (not self.classes or f.failure_class in self.classes) and (not self.kinds or f.kind in self.kinds)

    def agent_ok(self, agent: str | None) -> bool:
        """An agent's own events (its turns): ``--agent``, or under ``--edge`` the edges' agents."""
        if agent is None:
            return not self.agents and not self.edges
        if self.agents and agent not in self.agents:
            return False
        return not self.edges or any(agent in e for e in self.edges)

    # --- a whole trace --------------------------------------------------------------------------

    def trace_ok(self, rec: WholeTrace) -> bool:
        """Whether the trace is reported at all (counted in ``traces``)."""
        if not self.trace_id_ok(rec.trace_id):
            return False
        if self.agents and not (rec.agents() & set(self.agents)):
            return False
        if self.edges and not any((h.from_agent, h.to_agent) in self.edges for h in rec.timeline.handoffs):
            return False
        if self.timed:
            times = [t for t in rec.times() if t is not None] + [x.ts for x in rec.extras if x.ts is not None]
            return any(self.time_ok(t) for t in times)
        return True

    def handoff_ok(self, rec: WholeTrace, h: Handoff) -> bool:
        """Whether a handoff of a reported trace is reported (its edge, agents and time)."""
        return self.edge_ok(h.from_agent, h.to_agent) and self.time_ok(rec.handoff_time(h))

    def trace_finding_ok(self, rec: WholeTrace, f: Finding) -> bool:
        """A finding on the trace itself (RG303, RG304): no edge, timed at its outcome or the trace end."""
        if self.edges or not self.finding_kind_ok(f):
            return False
        if not self.timed:
            return True
        if f.kind == "conflicting_outcome" and rec.timeline.outcomes:
            return self.time_ok(rec.times()[rec.timeline.outcomes[0][0]])
        return self.time_ok(rec.end_time())

    def select(self, rec: WholeTrace) -> TraceResult | None:
        """The part of a trace to report, as a TraceResult the aggregate can fold; None to leave it out.

        End-to-end success stays that of the whole trace, whatever ``--class`` or ``--kind`` hide.
        """
        if not self.trace_ok(rec):
            return None
        handoffs = []
        for h in rec.timeline.handoffs:
            if self.handoff_ok(rec, h):
                kept = dataclasses.replace(h, findings=[f for f in h.findings if self.finding_kind_ok(f)])
                handoffs.append(kept)
        result = rec.result
        return TraceResult(
            result.trace_id,
            handoffs,
            [f for f in result.trace_findings if self.trace_finding_ok(rec, f)],
            rec.succeeded,
            sum(max(0, h.attempts - 1) for h in handoffs),
        )

    def agent_ends(self, rec: WholeTrace) -> Iterable[tuple[str, Any]]:
        """(agent, status) of each reported ``agent.end`` of a reported trace."""
        for x in rec.extras:
            if x.type == "agent.end" and x.agent is not None and self.agent_ok(x.agent) and self.time_ok(x.ts):
                yield x.agent, x.data.get("status")


def parse_filter(
    traces: list[str] | None = None,
    agents: list[str] | None = None,
    edges: list[str] | None = None,
    classes: list[str] | None = None,
    kinds: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Filter:
    """A Filter from command-line values; UsageError names the option and value that do not parse."""
    given: list[str] = []
    given += [f"--trace {t}" for t in traces or ()]
    given += [f"--agent {a}" for a in agents or ()]
    parsed_edges = tuple(_edge(e) for e in edges or ())
    given += [f"--edge {e}" for e in edges or ()]
    class_names = {c.value for c in FailureClass}
    for c in classes or ():
        if c not in class_names:
            raise UsageError(f"--class {c}: not a class (one of {', '.join(sorted(class_names))})")
    given += [f"--class {c}" for c in classes or ()]
    kind_names = []
    for k in kinds or ():
        rule = RULES.get(k) or RULES_BY_CODE.get(k.upper())
        if rule is None:
            raise UsageError(f"--kind {k}: not a finding kind or rule code (see docs/rules.md)")
        kind_names.append(rule.kind)
    given += [f"--kind {k}" for k in kinds or ()]
    lo, hi = _time("--since", since), _time("--until", until)
    given += [f"--since {since}"] if since is not None else []
    given += [f"--until {until}"] if until is not None else []
    return Filter(
        tuple(traces or ()), tuple(agents or ()), parsed_edges, tuple(classes or ()), tuple(kind_names), lo, hi,
        tuple(given),
    )


def _edge(value: str) -> tuple[str, str]:
    frm, sep, to = value.partition("->") if "->" in value else value.partition(":")
    frm, to = frm.strip(), to.strip()
    if not sep or not frm or not to:
        raise UsageError(f"--edge {value}: expected FROM:TO (or FROM->TO)")
    return frm, to


def _time(option: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value) if _is_number(value) else parse_ts(value)
    except (ValueError, OverflowError):
        raise UsageError(f"{option} {value}: expected an RFC 3339 date-time (2026-01-01T10:00:00Z) or Unix seconds") from None


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def run_filtered(config: ScanConfig, flt: Filter) -> Report:
    """``pipeline.run`` with the report cut down to what ``flt`` selects (see docs/investigate.md)."""
    ends: dict[str, list[int]] = {}

    def on_trace(rec: WholeTrace) -> TraceResult | None:
        selected = flt.select(rec)
        if selected is not None:
            for agent, status in flt.agent_ends(rec):
                counts = ends.setdefault(agent, [0, 0])
                counts[0] += 1
                counts[1] += status == "ok"
        return selected

    report, _ = pipeline.run_traces(config, on_trace)
    summary = dataclasses.replace(
        report.summary,
        agents=tuple(AgentStats(a, c[0], c[1]) for a, c in sorted(ends.items())),
        agent_ends=sum(c[0] for c in ends.values()),
        agent_ends_ok=sum(c[1] for c in ends.values()),
        filters=flt.given,
    )
    return dataclasses.replace(report, summary=summary)
