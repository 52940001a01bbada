"""JSON report: the stable field names of docs/reports.md, sorted keys, byte-stable."""

from __future__ import annotations

from typing import Any

import orjson

from handoff_audit.formatters._text import json_safe
from handoff_audit.models import ContractCoverage, Report

REPORT_VERSION = 1


def _rate(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _ms(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _contracts(c: ContractCoverage | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "file": c.file,
        "contracts": c.contracts,
        "outcome_owner": c.outcome_owner,
        "uncovered_edges": [{"from": a, "to": b} for a, b in c.uncovered_edges],
        "unused_contracts": [{"from": a, "to": b} for a, b in c.unused_contracts],
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The report as plain data."""
    s = report.summary
    summary = {
        "inputs": list(s.inputs),
        "traces": s.traces,
        "events": s.events,
        "handoffs": s.handoffs,
        "failed_handoffs": s.failed_handoffs,
        "failed_handoffs_by_class": {c: s.failed_handoffs_of_class(c) for c in s.findings_by_class},
        "retries": s.retries,
        "skipped": s.skipped,
        "unknown_types": s.unknown_types,
        "findings": s.findings,
        "findings_by_class": s.findings_by_class,
        "findings_by_kind": s.findings_by_kind,
        "findings_by_severity": s.findings_by_severity,
        "handoff_failure_rate": _rate(s.handoff_failure_rate),
        "agent_success_rate": _rate(s.agent_success_rate),
        "end_to_end_success_rate": _rate(s.end_to_end_success_rate),
        "traces_succeeded": s.traces_succeeded,
        "agents": [
            {"agent": a.agent, "ends": a.ends, "ok": a.ok, "success_rate": _rate(a.success_rate)} for a in s.agents
        ],
        "edges": [
            {
                "from": e.from_agent,
                "to": e.to_agent,
                "handoffs": e.handoffs,
                "failed_handoffs": e.failed_handoffs,
                "failed_handoffs_by_class": e.failed_by_class,
                "failure_rate": _rate(e.failure_rate),
                "findings_by_class": e.findings_by_class,
                "latency_p50_ms": _ms(e.latency_p50_ms),
                "latency_p95_ms": _ms(e.latency_p95_ms),
                "contract": e.contract,
            }
            for e in s.edges
        ],
        "contracts": _contracts(s.contracts),
    }
    if s.filters:
        summary["filters"] = list(s.filters)
    return {
        "version": REPORT_VERSION,
        "summary": summary,
        "skipped": [{"file": k.file, "line": k.line, "reason": k.reason} for k in report.skipped],
        "findings": [f.to_dict() for f in report.findings],
    }


def render(report: Report) -> str:
    """Indented JSON with sorted keys and a final newline.

    Characters a terminal would act on (C1 controls, bidirectional overrides) are written as
    ``\\uXXXX`` escapes, like the C0 controls: the same JSON, safe to print.
    """
    text = orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return json_safe(text) + "\n"
