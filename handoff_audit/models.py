"""The records that cross stage boundaries.

An event is a plain tuple (``Event``) holding only what the audit reads, built by the reader that
validated its line: at millions of events a richer record per event costs more than the whole audit of
a clean handoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, NamedTuple

import orjson

from handoff_audit.rules import RULES

Path = tuple[str | int, ...]

# Event types a trace keeps until it closes: they take part in pairing and the ordering rules.
# The others are counted as they are read and dropped.
KEPT_TYPES = frozenset({"handoff.sent", "handoff.received", "outcome", "tool.call"})
KNOWN_TYPES = KEPT_TYPES | {"agent.start", "agent.end", "llm.call"}


class Event(NamedTuple):
    """One usable input line, reduced to what the audit reads.

    A handoff's ``state`` is its compact JSON encoding rather than parsed objects: equal encodings
    settle most comparisons without parsing, and a state is parsed only where a rule needs its fields.
    """

    ts: float | None
    seq: int
    type: str
    trace_id: str
    # Which of these are set depends on ``type`` (the reader has checked them): ``frm``, ``to`` and
    # ``state`` on handoff events, ``agent`` on agent events, ``handoff_id`` where given.
    agent: Any
    frm: Any
    to: Any
    handoff_id: Any
    status: Any
    tool: Any
    args: Any
    state: Any
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input line (or the rest of a file) that could not be used, and why."""

    file: str
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One difference between a sent and a received state.

    ``op`` is ``removed`` / ``added`` (a dict key present on one side only), ``changed`` (both
    present, values differ), or ``item_removed`` / ``item_added`` (a list element with no
    counterpart; its index is in the sent list for removals and in the received list for additions).
    """

    op: str
    path: Path
    sent: Any
    received: Any


@dataclass(slots=True)
class Handoff:
    """A send paired with its receipt; either side may be missing."""

    trace_id: str
    handoff_id: str | None
    from_agent: str
    to_agent: str
    sent: Event | None = None
    received: Event | None = None
    send_pos: int | None = None  # position of the send compared with the receipt, in the ordered events
    first_send_pos: int | None = None  # position of the first attempt
    recv_pos: int | None = None
    attempts: int = 0
    findings: list[Finding] = field(default_factory=list)  # filled by the classify stage
    _sent_state: dict[str, Any] | None = None
    _received_state: dict[str, Any] | None = None

    @property
    def sent_state(self) -> dict[str, Any] | None:
        """The sent state, parsed on first use."""
        if self._sent_state is None and self.sent is not None and self.sent.state is not None:
            self._sent_state = orjson.loads(self.sent.state)
        return self._sent_state

    @property
    def received_state(self) -> dict[str, Any] | None:
        """The received state, parsed on first use."""
        if self._received_state is None and self.received is not None and self.received.state is not None:
            self._received_state = orjson.loads(self.received.state)
        return self._received_state

    @property
    def pos(self) -> int:
        """Where the handoff sits in its trace: its send, else its receipt."""
        if self.send_pos is not None:
            return self.send_pos
        return self.recv_pos if self.recv_pos is not None else 0


@dataclass(frozen=True, slots=True)
class Finding:
    """One classified failure."""

    trace_id: str
    handoff_id: str | None
    from_agent: str | None
    to_agent: str | None
    kind: str
    path: str
    sent: Any
    received: Any
    message: str
    file: str | None = None
    line: int | None = None
    order: int = 0
    rule: str | None = None  # the contract rule broken (contract kinds only)

    @property
    def failure_class(self) -> str:
        return RULES[self.kind].failure_class.value

    @property
    def code(self) -> str:
        return RULES[self.kind].code

    @property
    def severity(self) -> str:
        return RULES[self.kind].severity.value

    def to_dict(self) -> dict[str, Any]:
        """The finding as the report's stable field names."""
        return {
            "trace_id": self.trace_id,
            "handoff_id": self.handoff_id,
            "from": self.from_agent,
            "to": self.to_agent,
            "class": self.failure_class,
            "kind": self.kind,
            "code": self.code,
            "severity": self.severity,
            "path": self.path,
            "sent": self.sent,
            "received": self.received,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "rule": self.rule,
        }

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Partial results cross process boundaries with every finding: the constructor's arguments
        # unpickle several times faster than the frozen dataclass's field-by-field __setstate__.
        return (Finding, _finding_values(self))


_finding_values = attrgetter(*(f.name for f in fields(Finding)))


FINDING_FIELDS = (
    "trace_id",
    "handoff_id",
    "from",
    "to",
    "class",
    "kind",
    "code",
    "severity",
    "path",
    "sent",
    "received",
    "message",
    "file",
    "line",
    "rule",
)


@dataclass(frozen=True, slots=True)
class EdgeStats:
    """Aggregates for one directed edge (from -> to)."""

    from_agent: str
    to_agent: str
    handoffs: int
    failed_handoffs: int
    findings_by_class: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    # class -> handoffs with at least one finding of that class; all three classes present
    failed_by_class: dict[str, int] = field(default_factory=dict)
    contract: str | None = None  # the contract covering the edge, as ``from -> to`` of its declaration

    @property
    def failure_rate(self) -> float | None:
        return _rate(self.failed_handoffs, self.handoffs)

    def class_failure_rate(self, failure_class: str) -> float | None:
        """Share of this edge's handoffs with at least one finding of ``failure_class``."""
        return _rate(self.failed_by_class.get(failure_class, 0), self.handoffs)


@dataclass(frozen=True, slots=True)
class AgentStats:
    """``agent.end`` counts for one agent."""

    agent: str
    ends: int
    ok: int

    @property
    def success_rate(self) -> float | None:
        return _rate(self.ok, self.ends)


@dataclass(frozen=True, slots=True)
class ContractCoverage:
    """Which edges of the run a contract file covered, and which of its contracts went unused."""

    file: str
    contracts: int  # edge contracts declared
    outcome_owner: str | None
    uncovered_edges: tuple[tuple[str, str], ...]  # (from, to) seen in the traces, covered by no contract
    unused_contracts: tuple[tuple[str, str], ...]  # (from, to) as declared, that matched no handoff


@dataclass(frozen=True, slots=True)
class Summary:
    """Run-level counts and rates."""

    inputs: tuple[str, ...]
    traces: int
    events: int
    handoffs: int
    failed_handoffs: int
    retries: int
    skipped: int
    unknown_types: dict[str, int]
    traces_succeeded: int
    agent_ends: int
    agent_ends_ok: int
    findings_by_class: dict[str, int]
    findings_by_kind: dict[str, int]
    findings_by_severity: dict[str, int]
    edges: tuple[EdgeStats, ...]
    agents: tuple[AgentStats, ...]
    filters: tuple[str, ...] = ()  # the filter options a filtered report was made with, as given
    contracts: ContractCoverage | None = None  # set when the scan was given a contract file

    @property
    def handoff_failure_rate(self) -> float | None:
        return _rate(self.failed_handoffs, self.handoffs)

    @property
    def agent_success_rate(self) -> float | None:
        return _rate(self.agent_ends_ok, self.agent_ends)

    @property
    def end_to_end_success_rate(self) -> float | None:
        return _rate(self.traces_succeeded, self.traces)

    @property
    def findings(self) -> int:
        return sum(self.findings_by_class.values())

    def failed_handoffs_of_class(self, failure_class: str) -> int:
        """Handoffs with at least one finding of ``failure_class``, over all edges."""
        return sum(e.failed_by_class.get(failure_class, 0) for e in self.edges)

    def class_failure_rate(self, failure_class: str) -> float | None:
        """Share of all handoffs with at least one finding of ``failure_class``."""
        return _rate(self.failed_handoffs_of_class(failure_class), self.handoffs)


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    """One handoff as the per-trace reports (JUnit, the pytest plugin) list it, with its findings."""

    handoff_id: str | None
    from_agent: str
    to_agent: str
    file: str | None
    line: int | None
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One audited trace: its handoffs in trace order and its trace-level findings.

    Kept only when a scan asks for them (``keep_traces``): a long run holds no per-handoff record
    otherwise.
    """

    trace_id: str
    handoffs: tuple[HandoffRecord, ...]
    findings: tuple[Finding, ...]  # trace-level findings (RG303, RG304)
    claimed_success: bool
    succeeded: bool


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a formatter needs; formatters get nothing else.

    ``traces`` is filled only when the scan kept per-trace records; ``verdict`` only once a policy
    has judged the report (the JUnit and Markdown reports show it; JSON and CSV do not).
    """

    summary: Summary
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...] = field(default=())
    traces: tuple[TraceRecord, ...] = field(default=())
    verdict: Verdict | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of a report against thresholds (and a baseline): see ``policy.py``.

    ``failing`` holds the indices (in ``Report.findings``) of the findings that fail the run;
    ``known`` those matched by the baseline.
    """

    passed: bool
    reasons: tuple[str, ...]
    failing: frozenset[int] = frozenset()
    known: frozenset[int] = frozenset()
    notes: tuple[str, ...] = ()


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else num / den
